"""Deadlines for slow clients: a request's headers, and its body, must arrive in time.

uvicorn has no read timeout of its own: a client sending one byte every few seconds would hold its connection
(and, once its headers are in, whatever the app gives a request) for as long as it likes. Two deadlines bound
that, each counted in ``request_timeouts_total{phase="headers"|"body"}`` (``request_timeouts_counter``):

- ``header_deadline_protocol`` (uvicorn's httptools protocol, one timer per connection): the request line and
  headers must be complete ``seconds`` after the connection opened, or after the first byte that follows a
  complete answer on a keep-alive connection (a later request, or the rest of a body the app did not read).
  Past it the connection is closed: with a 408 when part of a request came, silently when nothing did (an
  idle connection that never sent a request).
- ``BodyDeadlineMiddleware`` (pure ASGI): the body of a request to one of ``paths`` must be complete
  ``seconds`` after its headers. Past it the request is answered **408** with ``Connection: close``.

Idle keep-alive connections are uvicorn's own ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import orjson
from homesec_domain.errors import HomesecError
from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TIMEOUT_PHASES = ("headers", "body")  # which part of the request did not arrive in time


class BodyTimeoutError(HomesecError):
    """The request body did not arrive within ``seconds`` of its headers (answered 408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g} s")
        self.seconds = seconds


def request_timeouts_counter(prefix: str, registry: CollectorRegistry) -> Counter:
    """``<prefix>request_timeouts_total{phase}``, both phases primed (zeros, not missing series)."""
    counter = Counter(
        f"{prefix}request_timeouts",
        "Requests cut off because their headers or body did not arrive in time, by phase",
        ["phase"],
        registry=registry,
    )
    for phase in TIMEOUT_PHASES:
        counter.labels(phase=phase)
    return counter


def _timeout_body(detail: str) -> bytes:
    return orjson.dumps({"error": "request_timeout", "detail": detail})


class _DeadlineReceive:
    """``receive`` that raises ``BodyTimeoutError`` once the body is still incomplete at ``deadline``."""

    __slots__ = ("deadline", "done", "receive", "seconds")

    def __init__(self, receive: Receive, deadline: float, seconds: float) -> None:
        self.receive, self.deadline, self.seconds = receive, deadline, seconds
        self.done = False

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self.receive()
        except TimeoutError:
            raise BodyTimeoutError(self.seconds) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message


class BodyDeadlineMiddleware:
    """See the module docstring: 408 for a request to ``paths`` whose body is not complete in time. The
    endpoints of ``paths`` must read the whole body before they answer (no response has started then)."""

    def __init__(self, app: ASGIApp, seconds: float, timeouts: Counter, paths: Collection[str]) -> None:
        self.app, self.seconds, self.timeouts, self.paths = app, seconds, timeouts, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        try:
            await self.app(scope, _DeadlineReceive(receive, deadline, self.seconds), send)
        except BodyTimeoutError as exc:
            self.timeouts.labels(phase="body").inc()
            body = _timeout_body(str(exc))
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the rest of the body is not read: the connection cannot go on
            ]
            await send({"type": "http.response.start", "status": 408, "headers": headers})
            await send({"type": "http.response.body", "body": body})


def _raw_408(seconds: float) -> bytes:
    body = _timeout_body(f"the request headers did not arrive within {seconds:g} s")
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def header_deadline_protocol(seconds: float, timeouts: Counter) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the module docstring's header deadline (``Config(http=...)``)."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _partial = False  # bytes of a request came since the timer was armed

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            between_requests = self.cycle is None or self.cycle.response_complete
            if self._header_timer is None and between_requests:
                self._arm()  # the first byte after a complete answer on a keep-alive connection
            self._partial = self._partial or bool(data.strip())
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._partial = False
            self._header_timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            timeouts.labels(phase="headers").inc()
            if self._partial:
                self.transport.write(_raw_408(seconds))
            self.transport.close()

    return HeaderDeadlineProtocol
