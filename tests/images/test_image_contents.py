"""The producer and consumer images as built: OCI config and files (through ``buildah mount``).

The ``built`` fixture builds them here with buildah on the local debootstrap base (scripts/images/build.sh),
reusing buildah's layer cache and the cached base, so after the first build on a machine this takes seconds.
"""

from __future__ import annotations

import re

import pytest

from tests.images.buildah import ImageConfig, WorkingContainer
from tests.images.support import (
    APP,
    HOST_CA_BUNDLE,
    LOCK,
    MARKS,
    MAX_IMAGE_BYTES,
    PEM,
    SITE,
    UID,
    VENV,
    Service,
    canonical,
    walk,
)

pytestmark = MARKS


def test_runs_as_fixed_non_root_uid(config: ImageConfig, container: WorkingContainer) -> None:
    assert config.user == f"{UID}:{UID}"
    result = container.run(["id", "-u"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(UID)


def test_entrypoint_is_exec_form_python_module(service: Service, config: ImageConfig) -> None:
    # A list (exec form), python itself first: no /bin/sh -c in between to swallow SIGTERM.
    assert config.entrypoint == [f"/{VENV}/bin/python", "-P", "-m", f"homesec_{service.name}"]
    assert config.cmd == []
    assert sorted(config.exposed_ports) == sorted([f"{service.port}/tcp", f"{service.admin_port}/tcp"])
    assert config.env[f"{service.env_prefix}PORT"] == str(service.port)
    assert config.env[f"{service.env_prefix}ADMIN_PORT"] == str(service.admin_port)
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
    # The repository as a web URL (never a path of the build machine), the base by digest and content.
    assert re.fullmatch(r"https://[^/\s@]+/\S+", labels["org.opencontainers.image.source"])
    assert labels["org.opencontainers.image.url"] == labels["org.opencontainers.image.source"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", labels["org.opencontainers.image.base.digest"])
    assert re.fullmatch(r"[0-9a-f]{64}", labels["io.homesec.base.packages-sha256"])
    assert re.fullmatch(r"12\.\d+", labels["io.homesec.base.debian-version"])
    assert re.search(r"\d{4} \d\d:\d\d:\d\d", labels["io.homesec.base.debian-archive-date"])


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
    wheels = [p for p in walk(root) if p.name.endswith((".whl", ".deb"))]
    assert wheels == [], wheels
    result = container.run(["python", "-m", "pip", "--version"])
    assert result.returncode != 0, "python -m pip works in the final image"


def test_only_this_services_packages(service: Service, container: WorkingContainer) -> None:
    root = container.mount()
    assert {p.name for p in (root / APP).iterdir() if p.name != "__pycache__"} == set(service.packages)
    assert {p.name for p in (root / SITE).iterdir() if p.name.startswith("homesec")} == {"homesec-app.pth"}
    assert not any(p.name == "homesec_devstack" for p in walk(root)), "devtools/ in the image"
    module = f"homesec_{service.name}"
    result = container.run(["python", "-c", f"import {module}; print({module}.__file__)"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"/{APP}/{module}/__init__.py"


def test_dependencies_are_the_lock(container: WorkingContainer) -> None:
    """Exactly the pins of requirements/runtime.txt are installed, nothing more, nothing less."""
    lock = {
        canonical(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", LOCK.read_text(), re.M)
    }
    installed = {}
    for dist in (container.mount() / SITE).glob("*.dist-info"):
        name, version = dist.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[canonical(name)] = version
    assert installed == lock


def test_bytecode_precompiled_hash_based(container: WorkingContainer) -> None:
    root = container.mount() / VENV
    sources = [p for p in walk(root) if p.suffix == ".py"]
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
    owned = [p for p in walk(root) if p.lstat().st_uid == UID]
    assert owned == []
    world_writable = {
        str(p.relative_to(root))
        for p in walk(root)
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
    for path in walk(root):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 5_000_000:
            data = path.read_bytes()
            assert not any(n in data for n in needles), (
                f"/{path.relative_to(root)} holds a build-host certificate"
            )


def test_the_fold_is_compiled_where_it_runs(service: Service, container: WorkingContainer) -> None:
    """The consumer image carries the mypyc build of the fold, matching its sources (else the plain modules
    would load, correct but slower); the producer never folds and carries none. No compiler either way."""
    root = container.mount()
    compiled = root / APP / "homesec_domain" / "_compiled"
    probe = (
        "from homesec_runtime import native; native.enable('auto'); from homesec_domain import fold; "
        "print(native.ACTIVE, native.REASON, fold.__file__)"
    )
    result = container.run(["python", "-c", probe])
    assert result.returncode == 0, result.stderr
    if service.name == "consumer":
        assert result.stdout.startswith("True "), result.stdout
        assert result.stdout.strip().endswith(".so"), result.stdout
    else:
        assert not compiled.exists()
        assert result.stdout.startswith("False self-check failed: not built"), result.stdout
