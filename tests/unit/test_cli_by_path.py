"""Both operator CLIs run as ``python -m`` and as a file path. Run by path, the file's own folder comes first
on ``sys.path``, so no module of a service package may carry a standard-library name (``http.py`` would
break ``urllib.request``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
CLIS = {"homesec_consumer": "progress", "homesec_producer": "genkey"}


def _env() -> dict[str, str]:
    paths = [str(SERVICES), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def test_no_service_module_shadows_the_standard_library() -> None:
    modules = [p for p in SERVICES.glob("homesec_*/**/*.py") if p.stem in sys.stdlib_module_names]
    assert modules == []


@pytest.mark.parametrize("package", sorted(CLIS))
@pytest.mark.parametrize("how", ["path", "module"])
def test_cli_help(package: str, how: str) -> None:
    target = [str(SERVICES / package / "cli.py")] if how == "path" else ["-m", f"{package}.cli"]
    argv = [sys.executable, *target, "--help"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=_env(), cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {package}.cli")
    assert CLIS[package] in done.stdout
