"""Compile the fold's modules (``homesec_runtime.native.COMPILED_MODULES``) with mypyc.

``python scripts/build_native.py [--package-dir services/homesec_domain]``

Writes ``<package-dir>/_compiled/``: one extension module per compiled module, their shared library
(``homesec_domain.compiled__mypyc``) and ``manifest.json`` with the SHA-256 of each source compiled, which
``homesec_runtime.native.enable`` compares with the sources at start-up. The build works on a copy of the
package in a temporary directory, so the source tree only ever gains the finished ``_compiled/`` (replaced
atomically). Needs mypy (mypyc), setuptools and a C compiler with the Python headers. ``--if-stale``: do
nothing when ``_compiled/`` already matches the sources. ``--python-executable``: the interpreter whose
installed packages (pydantic, ...) mypy type-checks against, when mypy runs from another venv (the image).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from homesec_runtime import native

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
from setuptools import setup
from mypyc.build import mypycify

setup(
    name="homesec-domain-compiled",
    ext_modules=mypycify({args!r}, opt_level="3", group_name={group!r}),
)
"""


def build(package_dir: Path, mypy_options: list[str]) -> Path:
    package_dir = package_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="homesec-native-") as tmp:
        work = Path(tmp)
        src = work / "src" / package_dir.name
        shutil.copytree(package_dir, src, ignore=shutil.ignore_patterns("__pycache__", native.COMPILED_DIR))
        paths = [f"{package_dir.name}/{m}.py" for m in native.COMPILED_MODULES]
        (work / "src" / "setup.py").write_text(SETUP.format(args=[*mypy_options, *paths], group=native.GROUP))
        out = work / "lib"
        argv = [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out), "--build-temp", "tmp"]
        subprocess.run(argv, cwd=work / "src", check=True, stdout=subprocess.DEVNULL)
        staged = work / native.COMPILED_DIR
        staged.mkdir()
        for built in (out / package_dir.name).iterdir():
            if built.name.endswith(native.extension_suffix()):
                shutil.copy2(built, staged / built.name)
        expected = [*native.COMPILED_MODULES, native.GROUP.rsplit(".", 1)[1] + "__mypyc"]
        missing = [m for m in expected if not (staged / f"{m}{native.extension_suffix()}").is_file()]
        if missing:
            raise SystemExit(f"build_native: mypyc produced no module for {missing}")
        sources = {m: native.source_digest(src / f"{m}.py") for m in native.COMPILED_MODULES}
        manifest = {"ext_suffix": native.extension_suffix(), "sources": sources, "built_at": int(time.time())}
        (staged / native.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        target = package_dir / native.COMPILED_DIR
        old = package_dir / f"{native.COMPILED_DIR}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        shutil.move(str(staged), target)
        shutil.rmtree(old, ignore_errors=True)
    return target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--package-dir", type=Path, default=ROOT / "services" / "homesec_domain")
    p.add_argument("--if-stale", action="store_true", help="skip when _compiled/ matches the sources")
    p.add_argument("--python-executable", help="where mypy finds the installed packages (default: this one)")
    a = p.parse_args()
    if a.if_stale and native.check(a.package_dir) is None:
        print(f"build_native: {a.package_dir / native.COMPILED_DIR} is up to date")
        return
    started = time.monotonic()
    options = ["--python-executable", a.python_executable] if a.python_executable else []
    target = build(a.package_dir, options)
    print(f"build_native: {target} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
