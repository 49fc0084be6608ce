"""``homesec_domain`` stays pure: its modules import only the standard library, pydantic, orjson and
``homesec_domain`` itself (plus ``typing_extensions``, which pydantic needs for ``TypedDict`` on Python 3.11).
Process plumbing (logging, tracing, metrics, settings) lives in ``homesec_runtime``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import homesec_domain
import pytest

ALLOWED = frozenset({"pydantic", "orjson", "typing_extensions", "homesec_domain"})
PACKAGE = Path(homesec_domain.__file__).parent


def imported_roots(source: str) -> set[str]:
    """The top-level names of every absolute import in ``source``, nested ones included."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def foreign(source: str) -> set[str]:
    return {root for root in imported_roots(source) if root not in ALLOWED | sys.stdlib_module_names}


MODULES = sorted(PACKAGE.glob("*.py"))


def test_the_package_has_modules() -> None:
    assert {p.stem for p in MODULES} >= {"__init__", "fold", "models", "validation"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_only_stdlib_pydantic_orjson(path: Path) -> None:
    assert foreign(path.read_text()) == set(), f"{path.name} imports outside the domain's allowed set"


def test_the_check_sees_imports_anywhere_in_a_module() -> None:
    source = "import os\nfrom pydantic import BaseModel\ndef f():\n    import prometheus_client.core\n"
    assert foreign(source) == {"prometheus_client"}
    assert foreign("from homesec_runtime.tracing import Tracing\n") == {"homesec_runtime"}
    assert foreign("from . import fold\nimport orjson\n") == set()
