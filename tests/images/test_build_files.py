"""The image build files and their docs, checked as text and by running the small helper scripts.

No buildah and no build: these run in seconds with the unit tests. The built images' labels are checked in
test_image_contents.py.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.images.buildah import ROOT

DOCKERFILES = {svc: (ROOT / f"Dockerfile.{svc}").read_text() for svc in ("producer", "consumer")}
SOURCE_URL_SH = ROOT / "scripts" / "images" / "source-url.sh"
CHART_SOURCES = yaml.safe_load((ROOT / "charts" / "homesec-telemetry" / "Chart.yaml").read_text())["sources"]


def _arg_default(dockerfile: str, name: str) -> str | None:
    """The default of the LAST ``ARG name=...`` (the final stage's), or None without a default."""
    found = re.findall(rf"^ARG {name}(?:=(.*))?$", dockerfile, flags=re.MULTILINE)
    assert found, f"no ARG {name}"
    return found[-1].strip().strip('"') if found[-1] else None


def _label(dockerfile: str, key: str) -> str:
    match = re.search(rf'{re.escape(key)}="([^"]*)"', dockerfile)
    assert match, f"no LABEL {key}"
    return match.group(1)


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_source_label_is_the_projects_repository(service: str) -> None:
    dockerfile = DOCKERFILES[service]
    for key in ("org.opencontainers.image.source", "org.opencontainers.image.url"):
        assert _label(dockerfile, key) == "${SOURCE_URL}"
    default = _arg_default(dockerfile, "SOURCE_URL")
    assert default == CHART_SOURCES[0] == "https://github.com/homesec/homesec-telemetry"
    assert not re.search(r"^ARG SOURCE\b(?!_URL)", dockerfile, flags=re.MULTILINE), "the old path-valued ARG"


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_base_is_recorded_by_digest(service: str) -> None:
    dockerfile = DOCKERFILES[service]
    assert _label(dockerfile, "org.opencontainers.image.base.digest") == "${BASE_DIGEST}"
    assert _label(dockerfile, "org.opencontainers.image.base.name") == "${BASE_IMAGE}"
    build = (ROOT / "scripts" / "images" / "build.sh").read_text()
    assert "--build-arg BASE_DIGEST=" in build
    assert "{{.FromImageDigest}}" in build


def test_build_script_never_passes_a_raw_remote() -> None:
    build = (ROOT / "scripts" / "images" / "build.sh").read_text()
    assert "git remote get-url" not in build
    assert "scripts/images/source-url.sh" in build
    assert "--build-arg SOURCE=" not in build


def _source_url(remote: str) -> str:
    result = subprocess.run(
        ["bash", str(SOURCE_URL_SH), remote], capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://github.com/homesec/homesec-telemetry.git", "https://github.com/homesec/homesec-telemetry"),
        ("https://github.com/homesec/homesec-telemetry/", "https://github.com/homesec/homesec-telemetry"),
        ("git@github.com:homesec/homesec-telemetry.git", "https://github.com/homesec/homesec-telemetry"),
        (
            "ssh://git@github.com:22/homesec/homesec-telemetry.git",
            "https://github.com/homesec/homesec-telemetry",
        ),
        (
            "https://user:s3cret@dev.azure.com/org/proj/_git/homesec",
            "https://dev.azure.com/org/proj/_git/homesec",
        ),
        # Never a path of the build machine, never a credential:
        ("/work/main", ""),
        ("/work/main/.git", ""),
        ("../homesec-telemetry", ""),
        ("file:///srv/git/homesec-telemetry.git", ""),
        ("", ""),
    ],
)
def test_source_url_is_a_web_url_or_nothing(remote: str, url: str) -> None:
    assert _source_url(remote) == url


def test_base_image_records_what_it_is_made_of() -> None:
    base = (ROOT / "scripts" / "images" / "build-base.sh").read_text()
    for label in (
        "io.homesec.base.debian-archive-date",
        "io.homesec.base.debian-version",
        "io.homesec.base.packages-sha256",
    ):
        assert f"--label {label}=" in base
    docs = (ROOT / "docs" / "images.md").read_text()
    assert "io.homesec.base.debian-archive-date" in docs and "snapshot.debian.org" in docs


def _code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def test_acr_login_for_buildah_uses_an_exposed_token() -> None:
    """Plain `az acr login` runs `docker login` (no Docker daemon: it fails); buildah needs a token."""
    for doc in ("images.md", "aks.md"):
        code = "\n".join(_code_blocks((ROOT / "docs" / doc).read_text()))
        logins = [line for line in code.splitlines() if "az acr login" in line]
        assert logins, doc
        for line in logins:
            assert "--expose-token" in line, f"{doc}: {line.strip()}"
        assert re.search(r"buildah login --username 00000000-0000-0000-0000-000000000000 --password", code), (
            doc
        )
    images = (ROOT / "docs" / "images.md").read_text()
    assert "--password-stdin" in images


def _section(markdown: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## )", markdown, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no section {heading!r}"
    return match.group(1)


def test_aks_prerequisites_say_how_to_install_the_tools_and_build_images() -> None:
    prerequisites = _section((ROOT / "docs" / "aks.md").read_text(), "2. Prerequisites")
    for needed in (
        "make setup-python",
        "pip install",
        "homesec_producer.cli",
        "homesec_devstack.simulator",
        "root",
        "debootstrap",
        "buildah",
        "make images",
    ):
        assert needed in prerequisites, needed
