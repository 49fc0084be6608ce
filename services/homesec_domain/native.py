"""The compiled fold: the same source, compiled with mypyc, used when it matches the source exactly.

The fold's modules (``COMPILED_MODULES``: the fold, the dedup window and the packed state) run once per
reading, so the consumer compiles them ahead of time with mypyc (``scripts/build_native.py``, run by
``make setup`` and by the consumer image's build). The result is a directory ``_compiled/`` next to the
sources holding one extension module per source module plus ``manifest.json``: the SHA-256 of each source it
was compiled from and the interpreter's extension suffix.

``activate`` (called by the package's ``__init__``) puts that directory first on the package's search path
only when every recorded hash equals the source file beside it and the suffix equals this interpreter's.
Otherwise (nothing built, a source edited since, another Python) the plain Python modules load, with the same
results: compiled and plain code are checked against each other in ``tests/unit/domain/test_native.py``.
``HOMESEC_PURE_PYTHON=1`` forces the plain modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
from pathlib import Path

COMPILED_MODULES = ("dedup", "fold", "rollup")
COMPILED_DIR = "_compiled"
MANIFEST = "manifest.json"
GROUP = "homesec_domain.compiled"  # the shared library: homesec_domain.compiled__mypyc, inside COMPILED_DIR

ACTIVE = False  # set by activate(): the compiled modules are the ones imported
REASON = "not activated"  # why (for the services' start-up log)


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_suffix() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX"))


def check(package_dir: Path) -> str | None:
    """``None`` when ``package_dir/_compiled`` matches the sources in ``package_dir``; else why not."""
    manifest = package_dir / COMPILED_DIR / MANIFEST
    if not manifest.is_file():
        return "not built (scripts/build_native.py)"
    try:
        recorded = json.loads(manifest.read_text())
        if recorded["ext_suffix"] != extension_suffix():
            return f"built for {recorded['ext_suffix']}, this interpreter loads {extension_suffix()}"
        for module in COMPILED_MODULES:
            if recorded["sources"][module] != source_digest(package_dir / f"{module}.py"):
                return f"stale: {module}.py changed since it was compiled"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable manifest: {exc!r}"
    return None


def activate(package_path: list[str]) -> bool:
    """Prefer the compiled modules of the package at ``package_path[0]`` when they match its sources."""
    global ACTIVE, REASON  # noqa: PLW0603 - module-level facts, set once by the package import
    ACTIVE = False
    if os.environ.get("HOMESEC_PURE_PYTHON", "") not in ("", "0"):
        REASON = "HOMESEC_PURE_PYTHON is set"
        return False
    package_dir = Path(package_path[0])
    problem = check(package_dir)
    if problem is not None:
        REASON = problem
        return False
    package_path.insert(0, str(package_dir / COMPILED_DIR))
    ACTIVE, REASON = True, "mypyc build matching the sources"
    return True


def describe() -> str:
    """One line for a start-up log: which fold runs, and why."""
    return f"fold: {'compiled' if ACTIVE else 'plain Python'} ({REASON})"
