"""Stand-in for python-dotenv: the SDK's test conftest calls ``load_dotenv()``; the runner sets the env."""

from __future__ import annotations

from typing import Any


def load_dotenv(*_: Any, **__: Any) -> bool:
    return False
