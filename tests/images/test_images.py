"""The producer and consumer images, built here with buildah on the local debootstrap base.

The build reuses buildah's layer cache and the cached base (scripts/images/build-base.sh), so after the
first build on a machine this module takes seconds plus the service starts. Each test inspects or runs the
real image: its OCI config, its files (through ``buildah mount``) and its entrypoint (``buildah run
--isolation chroot``, host network, binding 127.0.0.1 only).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from homesec_devstack.azurite import AzuriteProcess, blob_connection_string
from homesec_devstack.emulator_process import EmulatorProcess, emulator_connection_string
from homesec_devstack.procs import ManagedProcess, free_port, http_status

from tests.images.buildah import (
    IMAGE_PREFIX,
    ContainerProcess,
    ImageConfig,
    WorkingContainer,
    build_images,
    cmdline,
    inspect_image,
    read_only_root_argv,
)

pytestmark = [
    pytest.mark.images,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah is not installed: make setup-system"),
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah (chroot isolation, mount) needs root here"),
]

UID = 10001
VENV = Path("opt/homesec")
SITE = VENV / "lib/python3.11/site-packages"
APP = VENV / "app"  # the project's own packages, on sys.path through SITE/homesec-app.pth
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LOCK = Path(__file__).resolve().parents[2] / "requirements" / "runtime.txt"
MAX_IMAGE_BYTES = 350_000_000  # base ~126 MB + venv ~89 MB today; a compiler or a cache would blow this
# Files that buildah itself bind-mounts over for each run; everything else must stay untouched.
RUNTIME_MANAGED = {"etc/hosts", "etc/resolv.conf", "etc/hostname"}
NOT_ROOTFS = {"proc", "sys", "dev", "tmp", "run"}
EmulatorFactory = Callable[..., EmulatorProcess]
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class ServiceEnv:
    port: int
    env: dict[str, str]
    eventhubs_live: bool  # a real emulator behind the connection string (else a dead port)


@dataclass(frozen=True)
class Service:
    name: str
    port: int
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
        "producer", 8080, frozenset({"homesec_domain", "homesec_producer"}), "Application shutdown complete"
    ),
    "consumer": Service(
        "consumer", 8081, frozenset({"homesec_domain", "homesec_consumer"}), "consumer stopped in"
    ),
}


@pytest.fixture(scope="module")
def built() -> float:
    """Build both images (a cached rebuild when nothing changed) once for this module."""
    return build_images()


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest, built: float) -> Service:
    return SERVICES[str(request.param)]


@pytest.fixture
def config(service: Service) -> ImageConfig:
    return inspect_image(service.image)


@pytest.fixture
def container(service: Service) -> Iterator[WorkingContainer]:
    with WorkingContainer(service.image) as ctr:
        yield ctr


# --- configuration ------------------------------------------------------------------------------------------


def test_runs_as_fixed_non_root_uid(config: ImageConfig, container: WorkingContainer) -> None:
    assert config.user == f"{UID}:{UID}"
    result = container.run(["id", "-u"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(UID)


def test_entrypoint_is_exec_form_python_module(service: Service, config: ImageConfig) -> None:
    # A list (exec form), python itself first: no /bin/sh -c in between to swallow SIGTERM.
    assert config.entrypoint == [f"/{VENV}/bin/python", "-P", "-m", f"homesec_{service.name}"]
    assert config.cmd == []
    assert config.exposed_ports == [f"{service.port}/tcp"]
    assert config.env[f"{service.env_prefix}PORT"] == str(service.port)
    assert config.env[f"{service.env_prefix}HOST"] == "0.0.0.0"  # in a pod, probes come from the node
    assert config.env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_carries_oci_labels(service: Service, config: ImageConfig) -> None:
    labels = config.labels
    assert labels["org.opencontainers.image.title"] == f"homesec-{service.name}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", labels["org.opencontainers.image.version"])
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", labels["org.opencontainers.image.revision"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.+", labels["org.opencontainers.image.created"])
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.base.name"].startswith("localhost/homesec-base:")
    assert labels["org.opencontainers.image.description"]


def test_size_is_bounded(config: ImageConfig) -> None:
    assert 50_000_000 < config.size_bytes < MAX_IMAGE_BYTES, config.size_bytes


# --- files --------------------------------------------------------------------------------------------------


def test_no_compilers_pip_or_caches(container: WorkingContainer) -> None:
    root = container.mount()
    for name in ("gcc", "cc", "c++", "g++", "clang", "ld", "as", "make", "x86_64-linux-gnu-gcc-12"):
        for bindir in ("usr/bin", "usr/local/bin", "bin", f"{VENV}/bin"):
            assert not (root / bindir / name).exists(), f"/{bindir}/{name} in the final image"
    assert not list((root / "usr/lib").glob("gcc/*/*/cc1")), "a C compiler backend in the final image"
    assert not list((root / SITE).glob("pip*")), "pip in the venv"
    assert not list((root / SITE).glob("setuptools*")), "setuptools in the venv"
    assert not (root / "usr/lib/python3/dist-packages/pip").exists()
    assert not (root / "usr/share/python-wheels").exists(), (
        "ensurepip's wheels (python3-venv) in the runtime base"
    )
    for leftover in ("root/.cache", "tmp/services", "tmp/requirements", "tmp/pip", "run/secrets/ca"):
        assert not (root / leftover).exists(), f"/{leftover} in the final image"
    assert list((root / "var/lib/apt/lists").glob("*_Packages")) == [], "apt package lists in the final image"
    wheels = [p for p in _walk(root) if p.name.endswith((".whl", ".deb"))]
    assert wheels == [], wheels
    result = container.run(["python", "-m", "pip", "--version"])
    assert result.returncode != 0, "python -m pip works in the final image"


def test_only_this_services_packages(service: Service, container: WorkingContainer) -> None:
    root = container.mount()
    assert {p.name for p in (root / APP).iterdir() if p.name != "__pycache__"} == set(service.packages)
    assert {p.name for p in (root / SITE).iterdir() if p.name.startswith("homesec")} == {"homesec-app.pth"}
    assert not any(p.name == "homesec_devstack" for p in _walk(root)), "devtools/ in the image"
    module = f"homesec_{service.name}"
    result = container.run(["python", "-c", f"import {module}; print({module}.__file__)"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"/{APP}/{module}/__init__.py"


def test_dependencies_are_the_lock(container: WorkingContainer) -> None:
    """Exactly the pins of requirements/runtime.txt are installed, nothing more, nothing less."""
    lock = {
        _canonical(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", LOCK.read_text(), re.M)
    }
    installed = {}
    for dist in (container.mount() / SITE).glob("*.dist-info"):
        name, version = dist.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[_canonical(name)] = version
    assert installed == lock


def test_bytecode_precompiled_hash_based(container: WorkingContainer) -> None:
    root = container.mount() / VENV
    sources = [p for p in _walk(root) if p.suffix == ".py"]
    assert len(sources) > 1000
    stale = []
    for src in sources:
        pyc = src.parent / "__pycache__" / f"{src.stem}.cpython-311.pyc"
        # PEP 552 flags: 0b01 = hash-based, unchecked (never compared with nor rewritten from the source).
        if not pyc.is_file() or int.from_bytes(pyc.read_bytes()[4:8], "little") != 0b01:
            stale.append(src)
    assert stale == []


def test_nothing_owned_or_writable_by_the_app_user(container: WorkingContainer) -> None:
    root = container.mount()
    owned = [p for p in _walk(root) if p.lstat().st_uid == UID]
    assert owned == []
    world_writable = {
        str(p.relative_to(root))
        for p in _walk(root)
        if p.is_dir() and not p.is_symlink() and p.lstat().st_mode & 0o002
    }
    assert world_writable <= {"var/tmp", "var/lock", "run/lock", "dev/shm"}, world_writable


def test_build_ca_secret_not_baked_in(container: WorkingContainer) -> None:
    """Certificates only the build host trusts (e.g. a proxy CA) were used by pip and left no trace."""
    if not HOST_CA_BUNDLE.is_file():
        pytest.skip("no host CA bundle")
    root = container.mount()
    image_bundle = root / "etc/ssl/certs/ca-certificates.crt"
    host_only = set(PEM.findall(HOST_CA_BUNDLE.read_bytes())) - set(PEM.findall(image_bundle.read_bytes()))
    assert not (root / "run/secrets").exists() or not any((root / "run/secrets").iterdir())
    if not host_only:
        return  # this host trusts nothing beyond Debian's bundle; the secret check above is all there is
    needles = [pem.split(b"\n")[1] for pem in host_only]  # the first base64 line of each such certificate
    for path in _walk(root):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 5_000_000:
            data = path.read_bytes()
            assert not any(n in data for n in needles), (
                f"/{path.relative_to(root)} holds a build-host certificate"
            )


# --- running ------------------------------------------------------------------------------------------------


def test_runtime_stack_serves_read_only(
    service: Service, container: WorkingContainer, tmp_path: Path
) -> None:
    """FastAPI/uvicorn(uvloop, httptools)/prometheus_client serve from the image, writing nothing but /tmp."""
    port = free_port()
    probe = Path(__file__).with_name("probe_app.py")
    argv = [f"/{VENV}/bin/python", "/probe/probe_app.py", str(port)]
    mounts = [f"type=bind,src={probe.parent},dst=/probe,ro"]
    with (
        WriteWatch(container, mounts) as watch,
        ContainerProcess(container, f"probe-{service.name}", argv, tmp_path, mounts) as app,
    ):
        app.proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert "probe_healthz_requests_total 1.0" in _get(f"http://127.0.0.1:{port}/metrics")
        ended = app.terminate()
    log = app.proc.log_tail()
    assert ended in {"exit 0", "SIGTERM"}, log
    assert "Application shutdown complete" in log, "uvicorn did not shut down gracefully on SIGTERM"
    assert watch.changed() == []


def test_entrypoint_serves_health_and_metrics(
    service: Service,
    config: ImageConfig,
    container: WorkingContainer,
    service_env: ServiceEnv,
    tmp_path: Path,
) -> None:
    """The image's own entrypoint starts, answers /healthz and /metrics, and exits 0 on SIGTERM."""
    root = container.mount()
    if not (root / APP / f"homesec_{service.name}" / "__main__.py").is_file():
        pytest.skip(f"homesec_{service.name}.__main__ is not written yet: the image has no service to start")
    port = service_env.port
    container.set_env(service_env.env)
    with (
        WriteWatch(container) as watch,
        ContainerProcess(container, service.name, config.entrypoint, tmp_path) as app,
    ):
        app.proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        body = _get(f"http://127.0.0.1:{port}/metrics")
        assert f"homesec_{service.name}_ready" in body, body[:2000]
        if service_env.eventhubs_live:
            # Ready: the SDKs inside the image reached the emulator over AMQP (and the consumer Azurite).
            app.proc.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
        else:
            assert http_status(f"http://127.0.0.1:{port}/readyz") in (200, 503)
        started = time.monotonic()
        ended = app.terminate(timeout=40)
    log = app.proc.log_tail(200)
    assert ended in {"exit 0", "SIGTERM"}, log
    assert service.stopped_log in log, "no graceful shutdown on SIGTERM"
    assert time.monotonic() - started < 35
    assert watch.changed() == []


def test_entrypoint_on_read_only_root(
    service: Service,
    config: ImageConfig,
    container: WorkingContainer,
    service_env: ServiceEnv,
    tmp_path: Path,
) -> None:
    """readOnlyRootFilesystem: the entrypoint starts, serves and stops with only /tmp writable."""
    root = container.mount()
    if not (root / APP / f"homesec_{service.name}" / "__main__.py").is_file():
        pytest.skip(f"homesec_{service.name}.__main__ is not written yet: the image has no service to start")
    port = service_env.port
    argv = read_only_root_argv(root, config, service_env.env)
    with ManagedProcess(f"{service.name}-ro", argv, log_dir=tmp_path) as app:
        app.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert cmdline(app.pid) == config.entrypoint  # exec all the way: the signal goes to python itself
        assert f"homesec_{service.name}_ready" in _get(f"http://127.0.0.1:{port}/metrics")
        app.send_signal(signal.SIGTERM)
        code = app.wait(timeout=40)
    log = app.log_tail(200)
    assert code in (0, -signal.SIGTERM), log
    assert service.stopped_log in log, "no graceful shutdown on SIGTERM"
    assert "Read-only file system" not in log, log


# --- helpers ------------------------------------------------------------------------------------------------


@pytest.fixture
def service_env(
    service: Service, azurite: AzuriteProcess, emulator_factory: EmulatorFactory, container_name: str
) -> ServiceEnv:
    """A port and settings for a local run: the emulator when it exists (else a dead port: liveness must not
    need Event Hubs), Azurite for Blob."""
    port = free_port()
    live = importlib.util.find_spec("homesec_devstack.emulator.__main__") is not None
    eventhub = emulator_factory().connection_string() if live else emulator_connection_string(free_port())
    prefix = service.env_prefix
    env = {
        f"{prefix}HOST": "127.0.0.1",
        f"{prefix}PORT": str(port),
        f"{prefix}EVENTHUB_CONNECTION_STRING": eventhub,
    }
    if service.name == "producer":
        env[f"{prefix}AUTH_KEYS"] = json.dumps({"image-test": "k" * 40})
    else:
        env[f"{prefix}BLOB_CONNECTION_STRING"] = blob_connection_string(azurite.port)
        for kind in ("checkpoint", "rollup", "deadletter"):
            env[f"{prefix}{kind.upper()}_CONTAINER"] = f"{container_name}-{kind[:4]}"
    return ServiceEnv(port, env, eventhubs_live=live)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def _walk(root: Path) -> Iterator[Path]:
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
        for path in _walk(self.root):
            rel = str(path.relative_to(self.root))
            st = path.lstat()
            if rel not in RUNTIME_MANAGED and max(st.st_mtime, st.st_ctime) >= self.since:
                changed.append(rel)
        return sorted(changed)
