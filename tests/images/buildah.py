"""Thin helpers over the buildah CLI for the image tests: build, inspect, working containers, processes.

Everything a helper creates (working containers, mounts, processes) is removed by the helper itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from homesec_devstack.procs import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "images" / "build.sh"
IMAGE_PREFIX = "localhost/homesec-"


def buildah(*args: str, timeout: float = 120.0, check: bool = True) -> str:
    """Run ``buildah args`` and return its stdout."""
    proc = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def build_images(services: Sequence[str] = ("producer", "consumer"), timeout: float = 1800.0) -> float:
    """Build (or reuse the cached layers of) the images; returns the seconds it took."""
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), *services], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{BUILD_SCRIPT} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
        )
    return time.monotonic() - start


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's OCI config the tests look at."""

    user: str
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    exposed_ports: list[str]
    workdir: str = ""
    size_bytes: int = field(default=0)


def inspect_image(image: str) -> ImageConfig:
    data: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image))
    cfg: dict[str, Any] = data["OCIv1"]["config"]
    env = dict(item.split("=", 1) for item in cfg.get("Env") or [])
    return ImageConfig(
        user=cfg.get("User", ""),
        entrypoint=list(cfg.get("Entrypoint") or []),
        cmd=list(cfg.get("Cmd") or []),
        env=env,
        labels=dict(cfg.get("Labels") or {}),
        exposed_ports=sorted(cfg.get("ExposedPorts") or {}),
        workdir=cfg.get("WorkingDir", ""),
        size_bytes=image_size(image),
    )


def image_size(image: str) -> int:
    """Uncompressed size of the image: the sum of its layers' sizes in its manifest."""
    data: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image))
    manifest: dict[str, Any] = json.loads(data["Manifest"])
    return sum(int(layer["size"]) for layer in manifest["layers"])


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # Field 4 (ppid) follows the parenthesised command, which may contain spaces.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def descendants(pid: int) -> Iterator[int]:
    for kid in _children(pid):
        yield kid
        yield from descendants(kid)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


class WorkingContainer:
    """``buildah from IMAGE``: a throwaway working container, removed (and unmounted) on exit."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.name = ""
        self._mountpoint: Path | None = None

    def __enter__(self) -> WorkingContainer:
        self.name = buildah("from", "--pull=never", "--quiet", self.image).strip()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._mountpoint is not None:
            buildah("umount", self.name, check=False)
        buildah("rm", self.name, check=False)

    def mount(self) -> Path:
        """The container's root filesystem on the host (a copy-on-write view of the image)."""
        if self._mountpoint is None:
            self._mountpoint = Path(buildah("mount", self.name).strip())
        return self._mountpoint

    def set_env(self, env: Mapping[str, str]) -> None:
        """``buildah run`` has no ``--env``: set it on this throwaway container's config instead."""
        if env:
            buildah("config", *[arg for k, v in env.items() for arg in ("--env", f"{k}={v}")], self.name)

    def run_argv(self, argv: Sequence[str], mounts: Sequence[str] = ()) -> list[str]:
        """``buildah run --isolation chroot`` with the host network (the tests bind to 127.0.0.1 only)."""
        mount_args = [arg for m in mounts for arg in ("--mount", m)]
        return [
            "buildah",
            "run",
            "--isolation",
            "chroot",
            "--network",
            "host",
            *mount_args,
            self.name,
            "--",
            *argv,
        ]

    def run(
        self, argv: Sequence[str], mounts: Sequence[str] = (), timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.run_argv(argv, mounts), capture_output=True, text=True, timeout=timeout, check=False
        )


class ContainerProcess:
    """A long-running ``buildah run`` of ``argv`` in a working container, with a graceful stop.

    ``buildah run --isolation chroot`` does not forward SIGTERM (it kills its child), so ``terminate()``
    signals the containerised process itself, found as the descendant whose command line is ``argv``:
    that is what a kubelet's SIGTERM to PID 1 does to an exec-form entrypoint.
    """

    def __init__(
        self, ctr: WorkingContainer, name: str, argv: Sequence[str], log_dir: Path, mounts: Sequence[str] = ()
    ) -> None:
        self.argv = list(argv)
        self.proc = ManagedProcess(name, ctr.run_argv(argv, mounts), log_dir=log_dir)

    def __enter__(self) -> ContainerProcess:
        self.proc.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill_app()
        self.proc.stop(grace=5.0)

    def app_pid(self, timeout: float = 20.0) -> int:
        """The PID of the containerised process (the one the image's entrypoint started)."""
        deadline = time.monotonic() + timeout
        while True:
            for pid in descendants(self.proc.pid):
                if cmdline(pid) == self.argv:
                    return pid
            if not self.proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"no process {self.argv} under buildah run:\n{self.proc.log_tail()}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 30.0) -> str:
        """SIGTERM the app; returns how it ended: ``"exit 0"``, ``"exit N"`` or ``"SIGTERM"``.

        ``"SIGTERM"`` means the app died of the signal's default action, which uvicorn does on purpose after
        a complete graceful shutdown (it re-raises the signal; Kubernetes then sees exit code 143).
        """
        os.kill(self.app_pid(), signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        if code != 0 and "subprocess exited on terminated" in self.proc.log_tail(5):
            return "SIGTERM"
        return f"exit {code}"

    def kill_app(self) -> None:
        with contextlib.suppress(RuntimeError, ProcessLookupError, AssertionError):
            if self.proc.alive():
                os.kill(self.app_pid(timeout=0.5), signal.SIGKILL)


# Mount a private read-only view of the rootfs, a fresh tmpfs on /tmp (the pod's emptyDir), /proc and /dev,
# then exec the entrypoint as the image's user with exactly the image's environment (plus the test's).
_READ_ONLY_RUNNER = r"""
set -eu
root=$1 user=$2 workdir=$3; shift 3
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs "$root/tmp"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --rbind /dev "$root/dev"
cd /
exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$workdir" "$@"
"""


def read_only_root_argv(root: Path, config: ImageConfig, env: Mapping[str, str]) -> list[str]:
    """Run the image's entrypoint like a pod with ``readOnlyRootFilesystem: true`` and an emptyDir on /tmp.

    ``buildah run`` has no read-only root, so this chroots into the working container's mount, remounted
    read-only in a private mount namespace (the host's view of it stays as it was). Every ``exec`` keeps the
    PID, so the process started is the entrypoint itself and receives signals directly.
    """
    merged = {**config.env, **env}
    return [
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", _READ_ONLY_RUNNER, "read-only-root",
        str(root), config.user, config.workdir or "/",
        *[f"{k}={v}" for k, v in merged.items()], *config.entrypoint,
    ]  # fmt: skip
