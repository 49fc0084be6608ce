"""Process plumbing of the consumer's runner: waiting on a stop event, bounded closes, one-line
errors, and uvicorn without its own signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import uvicorn

log = logging.getLogger("homesec_consumer.runner")
T = TypeVar("T")


class Server(uvicorn.Server):
    """uvicorn without its own signal capture: the consumer orders its shutdown itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class StoppedError(Exception):
    """``stop`` was set while waiting."""


async def until_stopped(stop: asyncio.Event, aw: Awaitable[T], timeout: float | None = None) -> T:
    """Await ``aw`` unless ``stop`` is set first (then cancel it and raise ``StoppedError``)."""
    task = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if stop.is_set():
        raise StoppedError
    raise TimeoutError(f"no answer in {timeout:g} s")


def brief(exc: BaseException) -> str:
    """One line about an error (SDK messages run to many lines)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160] if text else ''}".rstrip(": ")


async def bounded_close(close: Callable[[], Awaitable[None]], timeout: float = 1.0) -> None:
    """Close a client without letting a dead endpoint hold the exit."""
    try:
        await asyncio.wait_for(close(), timeout=timeout)
    except Exception as exc:  # closing is best effort: the process is leaving
        log.debug("closing %r: %s", close, brief(exc))
