"""``python native_fake_build.py PACKAGE_COPY KIND MODE``: ``native.enable(MODE)`` against a package copy
whose "build" is the plain sources loaded by a fake loader, unchanged (``same``), folding differently
(``broken``: a per-minute count capped at 1) or failing to load (``raising``); ``early`` imports the fold
first. Prints the decision and which fold module is in use afterwards, as JSON."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType

from homesec_runtime import native


def fake_loader(kind: str) -> native.Loader:
    def load(package_dir: Path) -> dict[str, ModuleType]:
        if kind == "raising":
            raise ImportError("undefined symbol: CPyStatics")
        loaded: dict[str, ModuleType] = {}
        for name in native.COMPILED_MODULES:
            full = f"homesec_domain.{name}"
            source = (package_dir / f"{name}.py").read_text()
            if kind == "broken" and name == "fold":
                source = source.replace("MINUTE_CAP = 255", "MINUTE_CAP = 1")
            spec = importlib.util.spec_from_loader(full, loader=None)
            assert spec is not None
            module = importlib.util.module_from_spec(spec)
            module.__file__ = f"fake-build:{name}"
            sys.modules[full] = loaded[full] = module
            exec(compile(source, module.__file__, "exec"), module.__dict__)
        return loaded

    return load


if __name__ == "__main__":
    package, kind, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if kind == "early":
        import homesec_domain.fold  # noqa: F401
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    decision = native.enable(mode, package_dir=package, load=fake_loader(kind))  # type: ignore[arg-type]
    from homesec_domain import fold

    print(json.dumps({"enabled": decision.enabled, "reason": decision.reason, "fold": fold.__file__,
                      "minute_cap": fold.MINUTE_CAP, "active": native.ACTIVE}))  # fmt: skip
