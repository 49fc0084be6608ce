"""The compiled fold (``homesec_runtime.native``): loaded only when it matches the sources, and giving exactly
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
from homesec_runtime import native

from .native_replay import replay

HERE = Path(__file__).parent
PACKAGE = Path(homesec_domain.__file__).parent


def run_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HERE / name), *args], env={**os.environ, **env},
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip


def run_replay(seed: int, **env: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(run_script("native_replay.py", str(seed), **env).stdout)
    return result


def test_the_build_is_in_use_where_it_is_expected() -> None:
    # `make test` sets HOMESEC_EXPECT_NATIVE=1 after `make setup` built it: a broken build fails here.
    if os.environ.get("HOMESEC_EXPECT_NATIVE") != "1":
        pytest.skip("HOMESEC_EXPECT_NATIVE is not set (outside `make test`)")
    assert native.check(PACKAGE) is None
    assert run_replay(1)["compiled"] is True


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_and_plain_modules_give_identical_results(seed: int) -> None:
    if (problem := native.check(PACKAGE)) is not None:
        pytest.skip(f"no usable build: {problem}")
    compiled, plain = run_replay(seed), run_replay(seed, HOMESEC_PURE_PYTHON="1")
    assert (compiled["compiled"], plain["compiled"]) == (True, False)
    assert compiled["digest"] == plain["digest"]


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


def fake_build(tmp_path: Path, kind: str, mode: str = "auto") -> tuple[dict[str, object], str]:
    pkg = copy_package(tmp_path)
    write_manifest(pkg)
    out = run_script("native_fake_build.py", str(pkg), kind, mode, HOMESEC_PURE_PYTHON="")
    lines = [line for line in out.stderr.splitlines() if "accelerator fold" in line]
    assert len(lines) == 1, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result, lines[0]


def test_a_build_that_folds_alike_is_enabled(tmp_path: Path) -> None:
    result, line = fake_build(tmp_path, "same")
    assert result == {"enabled": True, "reason": "self-check passed: identical to the public path",
                      "fold": "fake-build:fold", "minute_cap": 255, "active": True}  # fmt: skip
    assert line == "INFO accelerator fold: on (self-check passed: identical to the public path)"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("broken", "self-check failed: the sample fold's digest differs from the plain modules'"),
        (
            "raising",
            "self-check failed: loading the build failed: ImportError('undefined symbol: CPyStatics')",
        ),
        ("early", "self-check failed: the fold was imported before the accelerator's check"),
    ],
)
def test_a_build_that_differs_or_fails_leaves_the_plain_fold(tmp_path: Path, kind: str, reason: str) -> None:
    result, line = fake_build(tmp_path, kind)
    assert result == {"enabled": False, "reason": reason, "fold": str(PACKAGE / "fold.py"), "minute_cap": 255,
                      "active": False}  # fmt: skip
    assert line == f"WARNING accelerator fold: off ({reason}); using the public path"


def test_off_skips_the_check(tmp_path: Path) -> None:
    result, line = fake_build(tmp_path, "raising", mode="off")
    assert (result["enabled"], result["fold"]) == (False, str(PACKAGE / "fold.py"))
    assert line == "INFO accelerator fold: off (switched off: ACCELERATORS=off); using the public path"
