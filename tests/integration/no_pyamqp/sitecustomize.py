"""Loaded as ``sitecustomize`` by a service started with this directory first on ``PYTHONPATH``: the services'
own imports of the SDK's private AMQP modules (``azure.eventhub._pyamqp*``) raise ``ImportError``, as they
would on an SDK release that moved or dropped them. The SDK itself keeps them (its public API runs on them),
so only imports made from ``homesec_*`` modules are refused, whether by ``import`` statements or by
``importlib.import_module``."""

from __future__ import annotations

import builtins
import importlib
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

PRIVATE = "azure.eventhub._pyamqp"
_import = builtins.__import__
_import_module = importlib.import_module


def _ours(importer: Mapping[str, Any] | None) -> bool:
    return str((importer or {}).get("__name__", "")).startswith("homesec_")


def _private(name: str, fromlist: Sequence[str] | None) -> bool:
    if name == PRIVATE or name.startswith(PRIVATE + "."):
        return True
    return name == "azure.eventhub" and "_pyamqp" in (fromlist or ())


def _refuse(name: str) -> ImportError:
    return ImportError(f"No module named {name!r} (refused by tests/integration/no_pyamqp)", name=name)


def _guarded_import(
    name: str,
    globals: Mapping[str, Any] | None = None,
    locals: Mapping[str, Any] | None = None,
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> ModuleType:
    if level == 0 and _private(name, fromlist) and _ours(globals):
        raise _refuse(name)
    return _import(name, globals, locals, fromlist, level)


def _guarded_import_module(name: str, package: str | None = None) -> ModuleType:
    if _private(name, None) and _ours(sys._getframe(1).f_globals):
        raise _refuse(name)
    return _import_module(name, package)


builtins.__import__ = _guarded_import
importlib.import_module = _guarded_import_module
