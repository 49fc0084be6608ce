"""Accelerator ``fold``: the fold's modules compiled with mypyc, used when they fold exactly like the sources.

The fold's modules (``COMPILED_MODULES``: the fold, the dedup window and the packed state) run once per
reading, so the consumer compiles them ahead of time with mypyc (``scripts/build_native.py``, run by
``make setup`` and by the consumer image's build). The result is a directory ``_compiled/`` next to the
sources in ``homesec_domain``, holding one extension module per source module plus ``manifest.json``: the
SHA-256 of each source it was compiled from and the interpreter's extension suffix.

``enable`` (called once by the consumer's ``runner.main``, before anything imports the fold) uses the build
only when every recorded hash equals the source beside it, the suffix equals this interpreter's, and a sample
fold (``fold_sample.replay``) gives the same digest through the compiled modules as through the plain ones.
The extension modules are loaded explicitly from their files (the package's search path is left alone) and
registered under the modules' own names, so every later ``import homesec_domain.fold`` gets them. Otherwise
(nothing built, a source edited since, another Python, another digest, a load error) the plain modules stay,
the consumer logs one line and exports ``homesec_consumer_accelerated{component="fold"} 0``.
``HOMESEC_CONSUMER_ACCELERATORS=off`` or ``HOMESEC_PURE_PYTHON=1`` keeps the plain modules without a check.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from homesec_runtime.accelerators import Decision, Mode, decide

COMPILED_MODULES = ("dedup", "fold", "rollup")
COMPILED_DIR = "_compiled"
MANIFEST = "manifest.json"
GROUP = "homesec_domain.compiled"  # the shared library: homesec_domain.compiled__mypyc, inside COMPILED_DIR

COMPONENT = "fold"
PACKAGE = "homesec_domain"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE  # the fold's sources, beside this package
SAMPLE_SEED = 20261125

ACTIVE = False  # set by enable(): the compiled modules are the ones imported
REASON = "not enabled"  # why
log = logging.getLogger(__name__)


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


def _names() -> list[str]:
    return [f"{PACKAGE}.{module}" for module in COMPILED_MODULES]


def _register(modules: dict[str, ModuleType | None]) -> None:
    """Put ``modules`` into ``sys.modules`` and onto the package (``None``: remove)."""
    package = sys.modules[PACKAGE]
    for name, module in modules.items():
        attr = name.rsplit(".", 1)[1]
        if module is None:
            sys.modules.pop(name, None)
            if hasattr(package, attr):
                delattr(package, attr)
        else:
            sys.modules[name] = module
            setattr(package, attr, module)


def _load_compiled(package_dir: Path) -> dict[str, ModuleType]:
    """Load the shared library, then each compiled module in import order, from their files."""
    loaded: dict[str, ModuleType] = {}
    for name in (GROUP.rsplit(".", 1)[1] + "__mypyc", *COMPILED_MODULES):
        full = f"{PACKAGE}.{name}"
        spec = importlib.util.spec_from_file_location(
            full, package_dir / COMPILED_DIR / f"{name}{extension_suffix()}"
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"no loader for {full}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = loaded[full] = module
        spec.loader.exec_module(module)
    return loaded


def _digest() -> str:
    """The sample fold through whatever ``homesec_domain.fold``/``rollup`` are now."""
    # Imported here: scripts/build_native.py imports this module in a build venv without the runtime
    # dependencies (the sample needs orjson); only the start-up check runs the sample.
    from homesec_domain import fold_sample

    return fold_sample.replay(
        SAMPLE_SEED, sys.modules[f"{PACKAGE}.fold"], sys.modules[f"{PACKAGE}.rollup"], 2, 40
    )


Loader = Callable[[Path], dict[str, ModuleType]]


def _swap_checked(package_dir: Path, load: Loader) -> str | None:
    """Load the build in place of the plain modules if it folds the sample alike; else restore them."""
    problem = check(package_dir)
    if problem is not None:
        return problem
    if any(name in sys.modules for name in _names()):
        return "the fold was imported before the accelerator's check"
    plain = {name: importlib.import_module(name) for name in _names()}
    expected = _digest()
    _register(dict.fromkeys(plain))
    try:
        compiled = load(package_dir)
        _register({name: compiled[name] for name in _names()})
        if _digest() == expected:
            return None
        problem = "the sample fold's digest differs from the plain modules'"
    except Exception as exc:
        problem = f"loading the build failed: {exc!r}"[:300]
    sys.modules.pop(f"{GROUP}__mypyc", None)
    _register(dict(plain))
    return problem


def enable(
    mode: Mode, logger: logging.Logger = log, package_dir: Path = PACKAGE_DIR, load: Loader = _load_compiled
) -> Decision:
    """Use the compiled fold if ``mode`` allows it and it passes ``_swap_checked``; logs one line.
    ``load`` (the tests inject broken builds) returns the loaded modules by full name."""
    global ACTIVE, REASON
    if ACTIVE:
        return Decision(COMPONENT, True, REASON)
    if os.environ.get("HOMESEC_PURE_PYTHON", "") not in ("", "0"):
        mode = "off"
    decision = decide(COMPONENT, mode, lambda: _swap_checked(package_dir, load), logger)
    ACTIVE, REASON = decision.enabled, decision.reason
    return decision


def describe() -> str:
    """Which fold runs, and why."""
    return f"fold: {'compiled' if ACTIVE else 'plain Python'} ({REASON})"
