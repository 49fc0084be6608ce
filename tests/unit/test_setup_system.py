"""scripts/setup-system.sh installs packages without starting their services and never stops any, and
``make run`` installs only what it needs.

The script runs for real against fake ``dpkg-query``, ``id``, ``apt-get`` (and ``systemctl``, ``pkill``,
``killall`` that record any call) first on PATH; its policy-rc.d goes to a temporary path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "setup-system.sh"
FORBIDDEN = ("systemctl", "service", "pkill", "killall", "kill", "invoke-rc.d", "deb-systemd-invoke")


def _code(text: str) -> list[str]:
    """The script's lines without comment lines and trailing ``  # ...`` comments."""
    lines = (re.sub(r"(^|\s+)#\s.*$", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_script_never_stops_disables_or_kills_anything() -> None:
    words = {w for line in _code(SCRIPT.read_text()) for w in re.findall(r"[\w.-]+", line)}
    assert not words & set(FORBIDDEN), sorted(words & set(FORBIDDEN))
    assert not re.search(r"systemctl\s+(stop|disable|mask|kill)|\bpkill\b", SCRIPT.read_text())


def test_comment_stripping_keeps_code() -> None:
    assert _code("a  # b\n# c\n  # d\nprintf '#!/bin/sh\\n# e' >x\n") == ["a", "printf '#!/bin/sh\\n# e' >x"]


FAKES = {
    # Every package is missing, unless INSTALLED names it.
    "dpkg-query": 'case " $INSTALLED " in *" ${@: -1} "*) echo "install ok installed";; *) exit 1;; esac',
    "id": "echo 0",
    "python3.11": 'echo "$FAKE_INCLUDE"',
    # What apt-get saw: its arguments, and the policy-rc.d answer for starting prometheus.
    # An install fails with APT_EXIT.
    "apt-get": 'echo "apt-get $*" >>"$CALLS"; [ "$1" = install ] || exit 0\n'
    '"$SETUP_SYSTEM_POLICY_RC_D" prometheus start; echo "policy-rc.d exit $?" >>"$CALLS"; exit "$APT_EXIT"',
    **{name: 'echo "FORBIDDEN $0 $*" >>"$CALLS"' for name in ("systemctl", "pkill", "killall", "service")},
}


def _run(tmp_path: Path, *groups: str, installed: str = "", apt_exit: int = 0) -> tuple[int, list[str]]:
    bin_dir, include = tmp_path / "bin", tmp_path / "include"
    bin_dir.mkdir(exist_ok=True)
    include.mkdir(exist_ok=True)
    (include / "Python.h").touch()
    for name, body in FAKES.items():
        fake = bin_dir / name
        fake.write_text(f"#!/usr/bin/env bash\n{body}\n")
        fake.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "INSTALLED": installed,
        "FAKE_INCLUDE": str(include),
        "APT_EXIT": str(apt_exit),
        "SETUP_SYSTEM_POLICY_RC_D": str(tmp_path / "policy-rc.d"),
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), *groups], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return result.returncode, calls.read_text().splitlines()


def test_installs_with_every_service_start_refused_then_removes_the_policy(tmp_path: Path) -> None:
    code, calls = _run(tmp_path, "prometheus")
    assert code == 0
    assert calls == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends prometheus",
        "policy-rc.d exit 101",
    ]
    assert not (tmp_path / "policy-rc.d").exists()


def test_an_existing_policy_is_put_back_even_when_the_install_fails(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    policy.chmod(0o755)
    code, calls = _run(tmp_path, "images", apt_exit=100)
    assert code == 100
    assert calls[-2:] == [
        "apt-get install -y -qq --no-install-recommends buildah debootstrap",
        "policy-rc.d exit 101",
    ]
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "calls", "include", "policy-rc.d"]


def test_groups_install_only_their_missing_packages(tmp_path: Path) -> None:
    code, calls = _run(tmp_path, "build", installed="gcc")
    assert code == 0 and "apt-get install -y -qq --no-install-recommends libc6-dev" in calls
    (tmp_path / "calls").unlink()
    code, calls = _run(tmp_path, installed="gcc libc6-dev prometheus buildah debootstrap")
    assert code == 0 and calls == []  # nothing missing: not even apt-get update


def _make_n(target: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_installs_no_prometheus_buildah_nor_debootstrap() -> None:
    run = _make_n("run")
    assert "scripts/setup-system.sh build" in run  # the compiled fold's compiler
    for word in ("prometheus", "buildah", "debootstrap", "setup-system.sh images"):
        assert word not in run, word
    # The full setup (make test) still installs them.
    assert "scripts/setup-system.sh build prometheus images" in _make_n("setup")
    assert "scripts/setup-system.sh images" in _make_n("base-image")
    assert "scripts/setup-system.sh prometheus" in _make_n("rules-test")
