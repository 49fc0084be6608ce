"""Deadlines for slow clients: the request's headers and its body must arrive in time.

uvicorn has no read timeout of its own: a client sending one byte every few seconds would hold its connection
(and, once its headers are in, an admission slot) for as long as it likes. Two deadlines bound that:

- ``header_deadline_protocol`` (uvicorn's httptools protocol, one timer per connection): the request line and
  headers must be complete ``HEADER_READ_TIMEOUT_SECONDS`` after the connection opened, or after the first
  byte of a later request on a keep-alive connection. Past it the connection is closed: with a 408 when part
  of a request came, silently when nothing did (an idle connection that never sent a request).
- ``BodyDeadlineMiddleware`` (pure ASGI, inside the admission middleware): the body of an ingest request must
  be complete ``BODY_READ_TIMEOUT_SECONDS`` after its headers. Past it the request is answered **408** with
  ``Connection: close`` and its admission slot is freed.

Both count in ``request_timeouts_total{phase="headers"|"body"}``. Idle keep-alive connections are uvicorn's
own ``timeout_keep_alive`` (``KEEP_ALIVE_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from homesec_producer.admission import INGEST_PATHS
from homesec_producer.errors import BodyTimeoutError
from homesec_producer.metrics import ProducerMetrics


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
    """See the module docstring: 408 for an ingest request whose body is not complete in time."""

    def __init__(self, app: ASGIApp, seconds: float, metrics: ProducerMetrics) -> None:
        self.app, self.seconds, self.metrics = app, seconds, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in INGEST_PATHS:
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        try:
            await self.app(scope, _DeadlineReceive(receive, deadline, self.seconds), send)
        except BodyTimeoutError as exc:
            # The endpoint reads the whole body before it answers: no response has started.
            self.metrics.request_timeouts.labels(phase="body").inc()
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


def header_deadline_protocol(seconds: float, metrics: ProducerMetrics) -> type[HttpToolsProtocol]:
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
                self._arm()  # the first byte of a later request on a keep-alive connection
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
            metrics.request_timeouts.labels(phase="headers").inc()
            if self._partial:
                self.transport.write(_raw_408(seconds))
            self.transport.close()

    return HeaderDeadlineProtocol
