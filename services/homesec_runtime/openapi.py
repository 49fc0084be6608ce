"""OpenAPI documents for people: descriptions in plain Markdown.

FastAPI takes a route's or a model's docstring as its description, and the services' docstrings are
written in reStructuredText: literals between double backticks, roles such as ``:class:`Name```.
``markdown_descriptions`` rewrites every ``description`` of a generated document in place: a literal or a
role becomes a Markdown code span (single backticks). Standard library only.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")


def markdown(text: str) -> str:
    """``text`` with its reStructuredText inline markup (literals, roles) as Markdown code spans."""
    return _LITERAL.sub(r"`\1`", _ROLE.sub(r"`\1`", text))


def markdown_descriptions(doc: Any) -> Any:
    """Every ``description`` string in ``doc`` (a JSON-like tree) through ``markdown``; returns ``doc``."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "description" and isinstance(value, str):
                doc[key] = markdown(value)
            else:
                markdown_descriptions(value)
    elif isinstance(doc, list):
        for item in doc:
            markdown_descriptions(item)
    return doc


def descriptions(doc: Any) -> list[str]:
    """Every ``description`` string in ``doc`` (tests walk a document with it)."""
    if isinstance(doc, dict):
        found = [v for k, v in doc.items() if k == "description" and isinstance(v, str)]
        return found + [d for k, v in doc.items() if k != "description" for d in descriptions(v)]
    if isinstance(doc, list):
        return [d for item in doc for d in descriptions(item)]
    return []
