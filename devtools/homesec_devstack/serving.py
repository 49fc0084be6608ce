"""Run a dev tool's server coroutine until Ctrl-C: on uvloop (a dependency of the services) when it is
installed, else on asyncio's default loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


def run_forever(main: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency of the services
            asyncio.run(main)
        else:
            uvloop.run(main)
