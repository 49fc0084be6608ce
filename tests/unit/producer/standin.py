"""A stand-in producer for the simulator's tests: ``POST /v1/readings`` answered by a handler, on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]


@asynccontextmanager
async def serving(post: Handler) -> AsyncIterator[str]:
    """The base URL of a server on a free loopback port whose ``POST /v1/readings`` is ``post``."""
    app = web.Application()
    app.router.add_post("/v1/readings", post)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
