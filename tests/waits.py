"""Waiting on a condition instead of sleeping a fixed time: the tests' one polling helper.

A test waits for what it needs to be true (a metric, a file, a process state) and fails with ``what`` (and
``detail()``, e.g. a process's log tail) when it is not true within ``timeout``: the timeout bounds a
failing run only, a passing run takes as long as the condition needs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Condition = Callable[[], bool | Awaitable[bool]]

INTERVAL_S = 0.02


def _message(what: str, timeout: float, detail: Callable[[], str] | None) -> str:
    return f"{what}: not within {timeout} s" + (f"\n{detail()}" if detail else "")


async def eventually(
    condition: Condition,
    timeout: float,
    what: str,
    *,
    detail: Callable[[], str] | None = None,
    interval: float = INTERVAL_S,
) -> None:
    """Return once ``condition()`` (a plain or async callable) is true; raise AssertionError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(_message(what, timeout, detail))
        await asyncio.sleep(interval)


def eventually_sync(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    detail: Callable[[], str] | None = None,
    interval: float = INTERVAL_S,
) -> None:
    """``eventually`` for code outside an event loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(_message(what, timeout, detail))
        time.sleep(interval)
