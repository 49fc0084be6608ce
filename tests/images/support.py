"""Shared pieces of the image tests: what each image should be, and how to look at a container's files."""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.images.buildah import IMAGE_PREFIX, ROOT, WorkingContainer

MARKS = [
    pytest.mark.images,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        shutil.which("buildah") is None, reason="buildah is not installed: make setup-system-images"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah (chroot isolation, mount) needs root here"),
]

UID = 10001
VENV = Path("opt/homesec")
SITE = VENV / "lib/python3.11/site-packages"
APP = VENV / "app"  # the project's own packages, on sys.path through SITE/homesec-app.pth
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LOCK = ROOT / "requirements" / "runtime.txt"
MAX_IMAGE_BYTES = 350_000_000  # base ~126 MB + venv ~89 MB today; a compiler or a cache would blow this
# Files that buildah itself bind-mounts over for each run; everything else must stay untouched.
RUNTIME_MANAGED = {"etc/hosts", "etc/resolv.conf", "etc/hostname"}
NOT_ROOTFS = {"proc", "sys", "dev", "tmp", "run"}
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class ServiceEnv:
    port: int  # the admin port: probes and metrics
    env: dict[str, str]
    eventhubs_live: bool  # a real emulator behind the connection string (else a dead port)


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    admin_port: int
    packages: frozenset[str]
    stopped_log: str  # logged once its graceful shutdown has finished (its SIGTERM handler ran)

    @property
    def image(self) -> str:
        return f"{IMAGE_PREFIX}{self.name}:latest"

    @property
    def env_prefix(self) -> str:
        return f"HOMESEC_{self.name.upper()}_"


SERVICES = {
    "producer": Service(
        "producer",
        8080,
        9090,
        frozenset({"homesec_auth", "homesec_domain", "homesec_runtime", "homesec_producer"}),
        "Application shutdown complete",
    ),
    "consumer": Service(
        "consumer",
        8081,
        9091,
        frozenset({"homesec_auth", "homesec_domain", "homesec_runtime", "homesec_consumer"}),
        "consumer stopped in",
    ),
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def walk(root: Path) -> Iterator[Path]:
    """Every path of a container's root filesystem, without the runtime's pseudo filesystems."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in NOT_ROOTFS]
        for name in dirnames + filenames:
            yield here / name


class WriteWatch:
    """Paths outside /tmp that changed while the block ran (a read-only root filesystem would refuse them)."""

    def __init__(self, container: WorkingContainer, mounts: Sequence[str] = ()) -> None:
        self.container = container
        self.mounts = mounts
        self.root = container.mount()
        self.since = 0.0

    def __enter__(self) -> WriteWatch:
        # A first run lets buildah create its mount targets (/etc/hosts, bind mounts) before the clock starts.
        assert self.container.run(["true"], self.mounts).returncode == 0
        time.sleep(0.05)
        self.since = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def changed(self) -> list[str]:
        changed = []
        for path in walk(self.root):
            rel = str(path.relative_to(self.root))
            st = path.lstat()
            if rel not in RUNTIME_MANAGED and max(st.st_mtime, st.st_ctime) >= self.since:
                changed.append(rel)
        return sorted(changed)
