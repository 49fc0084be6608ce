"""The compiled fold (``homesec_domain.native``): loaded only when it matches the sources, and giving exactly
what the plain Python modules give."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import homesec_domain
import pytest
from homesec_domain import fold, native

from .native_replay import replay

REPLAY = Path(__file__).with_name("native_replay.py")
PACKAGE = Path(homesec_domain.__file__).parent


def run_replay(seed: int, **env: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, str(REPLAY), str(seed)], env={**os.environ, **env},
                         capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_build_is_in_use_where_it_is_expected() -> None:
    # `make test` sets HOMESEC_EXPECT_NATIVE=1 after `make setup` built it: a broken build fails here.
    if os.environ.get("HOMESEC_EXPECT_NATIVE") != "1":
        pytest.skip("HOMESEC_EXPECT_NATIVE is not set (outside `make test`)")
    assert native.ACTIVE, native.REASON
    assert Path(fold.__file__).suffix != ".py"


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_and_plain_modules_give_identical_results(seed: int) -> None:
    if not native.ACTIVE:
        pytest.skip(f"the compiled modules are not loaded: {native.REASON}")
    plain = run_replay(seed, HOMESEC_PURE_PYTHON="1")
    assert plain["compiled"] is False
    assert replay(seed) == plain["digest"]


def test_the_replay_digest_depends_on_the_fold() -> None:
    # The comparison above can fail: a different stream gives a different digest.
    assert replay(1) != replay(2)


def copy_package(tmp_path: Path) -> Path:
    pkg = tmp_path / "homesec_domain"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", native.COMPILED_DIR))
    (pkg / native.COMPILED_DIR).mkdir()
    return pkg


def write_manifest(pkg: Path, **overrides: object) -> None:
    sources = {m: native.source_digest(pkg / f"{m}.py") for m in native.COMPILED_MODULES}
    doc = {"ext_suffix": native.extension_suffix(), "sources": sources, **overrides}
    (pkg / native.COMPILED_DIR / native.MANIFEST).write_text(json.dumps(doc))


def test_a_matching_build_is_accepted(tmp_path: Path) -> None:
    pkg = copy_package(tmp_path)
    write_manifest(pkg)
    assert native.check(pkg) is None


def test_an_edited_source_disables_the_build(tmp_path: Path) -> None:
    pkg = copy_package(tmp_path)
    write_manifest(pkg)
    with (pkg / "fold.py").open("a") as f:
        f.write("\n# edited\n")
    assert native.check(pkg) == "stale: fold.py changed since it was compiled"


def test_another_interpreter_or_no_build_or_garbage_disables_it(tmp_path: Path) -> None:
    pkg = copy_package(tmp_path)
    assert native.check(pkg) == "not built (scripts/build_native.py)"
    write_manifest(pkg, ext_suffix=".cpython-312-x86_64-linux-gnu.so")
    assert "this interpreter loads" in str(native.check(pkg))
    (pkg / native.COMPILED_DIR / native.MANIFEST).write_text("{")
    assert str(native.check(pkg)).startswith("unreadable manifest")


def test_activate_puts_the_build_first_only_when_it_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "ACTIVE", native.ACTIVE)
    monkeypatch.setattr(native, "REASON", native.REASON)
    monkeypatch.delenv("HOMESEC_PURE_PYTHON", raising=False)
    pkg = copy_package(tmp_path)
    path = [str(pkg)]
    assert native.activate(path) is False
    assert path == [str(pkg)]
    write_manifest(pkg)
    monkeypatch.setenv("HOMESEC_PURE_PYTHON", "1")
    assert native.activate(path) is False
    assert native.describe() == "fold: plain Python (HOMESEC_PURE_PYTHON is set)"
    monkeypatch.delenv("HOMESEC_PURE_PYTHON")
    assert native.activate(path) is True
    assert path == [str(pkg / native.COMPILED_DIR), str(pkg)]
