"""One AMQP 1.0 connection: protocol headers, SASL, sessions, links, transfers and dispositions.

Callback-driven (``asyncio.Protocol``): frames are handled in arrival order without per-link tasks. Outgoing
event transfers stop when the socket's write buffer is full and resume when it drains.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.eventhub._pyamqp.endpoints import Source, Target
from azure.eventhub._pyamqp.error import AMQPError
from azure.eventhub._pyamqp.outcomes import Accepted, Rejected

from homesec_devstack.emulator import codec
from homesec_devstack.emulator.broker import MAX_MESSAGE_SIZE, UNAUTHORIZED, Broker, Failure
from homesec_devstack.emulator.links import IncomingLink, OutgoingLink, PartitionReceiver
from homesec_devstack.emulator.routing import RouteError, attach_incoming, attach_outgoing

P = codec.P
LOG = logging.getLogger("homesec.emulator")
MAX_FRAME_SIZE = 1024 * 1024 + 4096
_SIZE = struct.Struct(">I")


@dataclass(eq=False)
class Session:
    conn: AmqpConnection
    channel: int
    next_outgoing_id: int = 0
    links_in: dict[int, IncomingLink] = field(default_factory=dict)
    links_out: dict[int, OutgoingLink] = field(default_factory=dict)
    partial: dict[int, tuple[int, int, bool, bytearray]] = field(default_factory=dict)

    def writable(self) -> bool:
        return self.conn.writable

    def send_transfer(self, handle: int, payload: bytes) -> None:
        self.conn.write(self.transfer_bytes(handle, payload))

    def transfer_bytes(self, handle: int, payload: bytes) -> bytes:
        """Encode one settled delivery (and use up its delivery id) without writing it."""
        frames = codec.transfer_frames(
            self.channel, handle, self.next_outgoing_id, payload, self.conn.remote_max_frame
        )
        self.next_outgoing_id = (self.next_outgoing_id + 1) & 0xFFFFFFFF
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def send(self, performative: Any) -> None:
        self.conn.write(codec.frame_bytes(self.channel, performative))

    def reply_link(self, source: bytes) -> OutgoingLink | None:
        return next((lnk for lnk in self.links_out.values() if lnk.source == source), None)

    def detach(self, handle: int, failure: Failure | None, outgoing: bool) -> None:
        link = (self.links_out if outgoing else self.links_in).pop(handle, None)
        if isinstance(link, OutgoingLink):
            link.closed()
        error = AMQPError(condition=failure.condition, description=failure.description) if failure else None
        self.send(P.DetachFrame(handle=handle, closed=True, error=error))

    def close_all(self) -> None:
        for link in self.links_out.values():
            link.closed()
        self.links_out.clear()
        self.links_in.clear()


class AmqpConnection(asyncio.Protocol):
    def __init__(self, server: Any) -> None:
        self.server = server
        self.broker: Broker = server.broker
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.state = "header"  # header -> sasl -> header -> frames
        self.sessions: dict[int, Session] = {}
        self.remote_max_frame = 64 * 1024
        self.writable = True
        self.authorized = server.sas_keys is None
        self._heartbeat: asyncio.Task[None] | None = None

    # --- transport callbacks -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        transport.set_write_buffer_limits(high=4 * 1024 * 1024)  # type: ignore[attr-defined]
        self.server.connections.add(self)
        self.broker.stats.connections_total += 1
        self.broker.stats.connections_open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.broker.stats.connections_open -= 1
        if self._heartbeat:
            self._heartbeat.cancel()
        for session in self.sessions.values():
            session.close_all()
        self.sessions.clear()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        for session in list(self.sessions.values()):
            for link in list(session.links_out.values()):
                link.notify()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._drain_buffer()
        except Exception:
            LOG.exception("protocol error; closing connection")
            self.abort()

    def _drain_buffer(self) -> None:
        buf = self.buffer
        pos = 0
        while True:
            if self.state == "header":
                if len(buf) - pos < 8:
                    break
                self._on_header(bytes(buf[pos : pos + 8]))
                pos += 8
                continue
            if len(buf) - pos < 8:
                break
            size = _SIZE.unpack_from(buf, pos)[0]
            if len(buf) - pos < size:
                break
            doff = buf[pos + 4] * 4
            channel = int.from_bytes(buf[pos + 6 : pos + 8], "big")
            body = memoryview(bytes(buf[pos + doff : pos + size]))
            pos += size
            if body:
                self._on_frame(channel, *codec.decode_frame(body))
        del buf[:pos]

    # --- negotiation -------------------------------------------------------------------------------
    def _on_header(self, header: bytes) -> None:
        if header == codec.SASL_HEADER:
            self.write(codec.SASL_HEADER)
            mechanisms = P.SASLMechanism(sasl_server_mechanisms=[b"ANONYMOUS", b"PLAIN", b"MSSBCBS"])
            self.write(codec.frame_bytes(0, mechanisms, codec.FRAME_SASL))
            self.state = "sasl"
        elif header == codec.AMQP_HEADER:
            self.write(codec.AMQP_HEADER)
            self.state = "frames"
        else:
            self.write(codec.AMQP_HEADER)
            self.abort()

    def _on_frame(self, channel: int, code: int, fields: list[Any]) -> None:
        handler = self._HANDLERS.get(code)
        if handler is None:
            LOG.warning("ignoring frame 0x%x", code)
            return
        handler(self, channel, fields)

    def _sasl_init(self, channel: int, fields: list[Any]) -> None:
        self.write(codec.frame_bytes(0, P.SASLOutcome(code=0, additional_data=None), codec.FRAME_SASL))
        self.state = "header"

    def _open(self, channel: int, fields: list[Any]) -> None:
        self.remote_max_frame = max(512, min(int(fields[2] or MAX_FRAME_SIZE), MAX_FRAME_SIZE))
        self.write(codec.frame_bytes(0, P.OpenFrame(
            container_id="homesec-eventhubs-emulator", hostname=None, max_frame_size=MAX_FRAME_SIZE,
            channel_max=65535, idle_timeout=None, outgoing_locales=None, incoming_locales=None,
            offered_capabilities=None, desired_capabilities=None, properties=None,
        )))  # fmt: skip
        if fields[4]:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(float(fields[4]) / 2000))

    async def _beat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.write(codec.frame_bytes(0, None))

    def _close(self, channel: int, fields: list[Any]) -> None:
        self.write(codec.frame_bytes(0, P.CloseFrame(error=None)))
        if self.transport is not None:
            self.transport.close()

    def _begin(self, channel: int, fields: list[Any]) -> None:
        self.sessions[channel] = Session(self, channel)
        self.write(codec.frame_bytes(channel, P.BeginFrame(
            remote_channel=channel, next_outgoing_id=0, incoming_window=2**31 - 1, outgoing_window=2**31 - 1,
            handle_max=4095, offered_capabilities=None, desired_capabilities=None, properties=None,
        )))  # fmt: skip

    def _end(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions.pop(channel, None)
        if session:
            session.close_all()
        self.write(codec.frame_bytes(channel, P.EndFrame(error=None)))

    # --- links -------------------------------------------------------------------------------------
    def _attach(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions[channel]
        name, handle, client_is_receiver = fields[0], fields[1], bool(fields[2])
        source, target = fields[5] or [None], fields[6] or [None]
        link: IncomingLink | OutgoingLink | None = None
        failure: Failure | None = None
        try:
            if client_is_receiver:
                link = attach_outgoing(self, session, handle, name, source, fields[12], fields[13])
            else:
                link = attach_incoming(self, session, handle, name, target[0] or b"")
        except RouteError as exc:
            failure = exc.failure
        # A refused attach answers with a null terminus on our side (the source when we would send, the
        # target when we would receive), then a detach carrying the error (AMQP 1.0 2.6.3, as Event Hubs
        # does). pyamqp fails the link open only on a null terminus; an echoed one looks like success.
        refused = failure is not None or link is None
        reply = P.AttachFrame(
            name=name, handle=handle, role=not client_is_receiver, send_settle_mode=fields[3],
            rcv_settle_mode=fields[4],
            source=None if refused and client_is_receiver else Source(address=source[0]),  # type: ignore[call-arg]
            target=None if refused and not client_is_receiver else Target(address=target[0]),  # type: ignore[call-arg]
            unsettled=None, incomplete_unsettled=None,
            initial_delivery_count=0 if client_is_receiver else None,
            max_message_size=MAX_MESSAGE_SIZE, offered_capabilities=(fields[12] or None) if client_is_receiver
            else None, desired_capabilities=None, properties=None,
        )  # fmt: skip
        session.send(reply)
        if failure is not None or link is None:
            session.detach(handle, failure, outgoing=client_is_receiver)
            return
        if isinstance(link, IncomingLink):
            session.links_in[handle] = link
            self._grant(session, link)
        else:
            session.links_out[handle] = link

    def _grant(self, session: Session, link: IncomingLink) -> None:
        session.send(P.FlowFrame(
            next_incoming_id=0, incoming_window=2**31 - 1, next_outgoing_id=session.next_outgoing_id,
            outgoing_window=2**31 - 1, handle=link.handle, delivery_count=link.received,
            link_credit=link.credit_window, available=None, drain=None, echo=None, properties=None,
        ))  # fmt: skip
        link.granted_until = link.received + link.credit_window

    def _flow(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions.get(channel)
        handle = fields[4]
        if session is None or handle is None:
            return
        link = session.links_out.get(handle)
        if link is None:
            return
        link.on_flow(fields[5], fields[6])
        if fields[8] and link.credit > 0:  # drain: use up the credit
            link.delivery_count += link.credit
            link.credit = 0
        if fields[8] or fields[9]:
            session.send(P.FlowFrame(
                next_incoming_id=0, incoming_window=2**31 - 1, next_outgoing_id=session.next_outgoing_id,
                outgoing_window=2**31 - 1, handle=handle, delivery_count=link.delivery_count,
                link_credit=link.credit, available=None, drain=fields[8], echo=False, properties=None,
            ))  # fmt: skip

    def _detach(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions.get(channel)
        if session is None:
            return
        handle = fields[0]
        outgoing = handle in session.links_out
        if outgoing or handle in session.links_in:
            session.detach(handle, None, outgoing=outgoing)

    def steal(self, session: Session, link: PartitionReceiver, description: str) -> None:
        if session.links_out.get(link.handle) is link:
            session.detach(link.handle, Failure(b"amqp:link:stolen", description), outgoing=True)

    # --- transfers ---------------------------------------------------------------------------------
    def _transfer(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions[channel]
        handle, more, payload = fields[0], bool(fields[5]), fields[-1]
        partial = session.partial.get(handle)
        if partial is None:
            partial = (fields[1], fields[3] or 0, bool(fields[4]), bytearray())
            session.partial[handle] = partial
        partial[3].extend(payload)
        if more:
            return
        del session.partial[handle]
        delivery_id, fmt, settled, data = partial
        link = session.links_in.get(handle)
        if link is None:
            return
        link.received += 1
        if link.granted_until - link.received < link.credit_window // 2:
            self._grant(session, link)
        self.server.dispatch(
            self, session, link, bytes(data), fmt, self._settler(session, delivery_id, settled)
        )

    def _settler(self, session: Session, delivery_id: int, settled: bool) -> Callable[[Failure | None], None]:
        def done(failure: Failure | None) -> None:
            if settled:
                return
            state = (
                Accepted()
                if failure is None
                else Rejected(error=AMQPError(condition=failure.condition, description=failure.description))
            )
            session.send(P.DispositionFrame(
                role=True, first=delivery_id, last=None, settled=True, state=state, batchable=None
            ))  # fmt: skip

        return done

    def _disposition(self, channel: int, fields: list[Any]) -> None:
        """Our transfers are pre-settled: nothing to do."""

    def require_auth(self) -> None:
        if not self.authorized:
            raise RouteError(Failure(UNAUTHORIZED, "Unauthorized access: put a valid token on $cbs first."))

    _HANDLERS: dict[int, Callable[[AmqpConnection, int, list[Any]], None]] = {
        0x10: _open, 0x11: _begin, 0x12: _attach, 0x13: _flow, 0x14: _transfer, 0x15: _disposition,
        0x16: _detach, 0x17: _end, 0x18: _close, 0x41: _sasl_init,
    }  # fmt: skip
