"""AMQP over WebSocket: the same AMQP byte stream as the TCP listener, carried in binary WebSocket messages.

azure-eventhub (``TransportType.AmqpOverWebsocket``) connects to ``ws[s]://<host>:<port>/$servicebus/websocket``
offering the subprotocol ``AMQPWSB10`` (aiohttp for the async client, websocket-client for the sync one). The
WebSocket framing is aiohttp's; this module only adapts a ``WebSocketResponse`` to the slice of
``asyncio.Transport`` that :class:`~homesec_devstack.emulator.connection.AmqpConnection` uses. AMQP frames may
span or share WebSocket messages in both directions: the connection reassembles its input from a byte buffer,
and output written between two event-loop turns is coalesced into one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import WSMsgType, web

LOG = logging.getLogger("homesec.emulator")
WS_PATH = "/$servicebus/websocket"
SUBPROTOCOL = "AMQPWSB10"
MAX_MESSAGE_SIZE = 4 * 1024 * 1024  # a message holds at most a few AMQP frames of <= 1 MiB + 4 KiB


class MessageSink(Protocol):
    """Where the adapter's output goes: ``aiohttp.web.WebSocketResponse`` in the server, a fake in tests."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self) -> Any: ...


class AmqpStream(Protocol):
    """The ``asyncio.Protocol`` callbacks the adapter drives (``AmqpConnection``)."""

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...


class WebSocketTransport:
    """Writes of one AMQP connection, sent as binary WebSocket messages in order.

    ``write`` never blocks: data is queued and a writer task sends it, one message per batch of queued writes.
    Above the high-water mark the protocol is told to pause writing, below the low one to resume, as an
    asyncio transport does. ``close`` sends what is queued, then the WebSocket close; ``abort`` drops the
    underlying socket at once (the drop-connections fault).
    """

    def __init__(self, sink: MessageSink, protocol: AmqpStream, abort_socket: Callable[[], None]) -> None:
        self._sink = sink
        self._protocol = protocol
        self._abort_socket = abort_socket
        self._pending: list[bytes] = []
        self._size = 0
        self._high = 64 * 1024
        self._low = 16 * 1024
        self._paused = False
        self._closing = False
        self._wake = asyncio.Event()

    # --- the asyncio.Transport slice AmqpConnection uses -------------------------------------------
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self._size

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes) -> None:
        if self._closing or not data:
            return
        self._pending.append(bytes(data))
        self._size += len(data)
        self._wake.set()
        if not self._paused and self._size > self._high:
            self._paused = True
            self._protocol.pause_writing()

    def close(self) -> None:
        """Send what is queued, then close the WebSocket."""
        self._closing = True
        self._wake.set()

    def abort(self) -> None:
        """Drop the connection without a WebSocket close (queued data is lost)."""
        self._closing = True
        self._pending.clear()
        self._size = 0
        self._abort_socket()
        self._wake.set()

    # --- the writer task ---------------------------------------------------------------------------
    async def run_writer(self) -> None:
        """Send queued writes until closed; one WebSocket message per batch of writes."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._send_pending()
            except (ConnectionError, RuntimeError) as exc:  # the peer went away; nothing more can be sent
                LOG.debug("WebSocket send failed: %r", exc)
                self._closing = True
                self._pending.clear()
                return
            if self._closing:
                with contextlib.suppress(Exception):
                    await self._sink.close()
                return

    async def _send_pending(self) -> None:
        while self._pending:
            chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            await self._sink.send_bytes(chunk)
            if self._paused and self._size <= self._low:
                self._paused = False
                self._protocol.resume_writing()


def offers_subprotocol(header: str | None) -> bool:
    """Whether a ``Sec-WebSocket-Protocol`` request header offers ``AMQPWSB10``."""
    return SUBPROTOCOL in {p.strip() for p in (header or "").split(",")}


async def serve_websocket(request: web.Request, make_connection: Callable[[], Any]) -> web.StreamResponse:
    """Upgrade ``request`` and run one AMQP connection over it until either side closes."""
    if not offers_subprotocol(request.headers.get("Sec-WebSocket-Protocol")):
        raise web.HTTPBadRequest(text=f"AMQP over WebSocket needs the subprotocol {SUBPROTOCOL}")
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=MAX_MESSAGE_SIZE)
    await ws.prepare(request)
    conn = make_connection()
    socket = request.transport
    transport = WebSocketTransport(ws, conn, socket.abort if socket is not None else lambda: None)
    conn.connection_made(transport)
    writer = asyncio.create_task(transport.run_writer())
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                conn.data_received(msg.data)
            else:  # AMQP is binary only; a text message is a protocol error
                LOG.warning("closing WebSocket connection: unexpected %s message", msg.type.name)
                transport.abort()
                break
    finally:
        transport.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(writer, 5.0)
        writer.cancel()
        conn.connection_lost(None)
    return ws
