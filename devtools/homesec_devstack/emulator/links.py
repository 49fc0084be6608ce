"""Links of one AMQP connection: what the emulator does with each attached link."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from homesec_devstack.emulator import codec
from homesec_devstack.emulator.broker import Broker, Partition

if TYPE_CHECKING:
    from homesec_devstack.emulator.connection import Session

_SELECTOR = re.compile(
    rb"amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'"
)
RUNTIME_METRIC = b"com.microsoft:enable-receiver-runtime-metric"
EPOCH = b"com.microsoft:epoch"


def start_index(part: Partition, selector: bytes | None) -> int:
    """Where a receiver starts in the partition log for an SDK selector filter (default: the start)."""
    events = part.log.events
    if not selector:
        return 0
    match = _SELECTOR.search(selector)
    if match is None:
        raise ValueError(f"unsupported selector filter {selector!r}")
    kind, op, raw = match.group(1), match.group(2), match.group(3).decode()
    if raw == "-1":
        return 0
    if raw == "@latest":
        return len(events)
    value = int(raw)
    if kind == b"offset":
        idx = part.log.index_for_offset(value)
    elif kind == b"sequence-number":
        idx = part.log.index_for_sequence(value)
    else:
        idx = part.log.index_for_time(value)
        if op == b">":  # enqueued-time: strictly after
            while idx < len(events) and events[idx].enqueued_ms <= value:
                idx += 1
        return idx
    exact = idx < len(events) and (
        events[idx].offset == value if kind == b"offset" else events[idx].sequence_number == value
    )
    return idx + 1 if (op == b">" and exact) else idx


@dataclass(eq=False)
class OutgoingLink:
    """A link on which the emulator sends (client role: receiver). Credit-based flow control."""

    session: Session
    handle: int
    name: bytes
    source: bytes
    delivery_count: int = 0
    credit: int = 0

    def on_flow(self, delivery_count: int | None, link_credit: int | None) -> None:
        if link_credit is not None:
            self.credit = (delivery_count or 0) + link_credit - self.delivery_count
        self.notify()

    def notify(self) -> None:
        """Send what credit allows (reply links send as soon as a reply exists)."""

    def send_payload(self, payload: bytes) -> None:
        self.session.send_transfer(self.handle, payload)
        self.delivery_count += 1
        self.credit -= 1

    def closed(self) -> None:
        """The link or its connection went away."""


@dataclass(eq=False)
class ReplyLink(OutgoingLink):
    """The receive side of ``$cbs`` / ``$management`` request-response."""

    queue: list[bytes] = field(default_factory=list)

    def reply(self, payload: bytes) -> None:
        self.queue.append(payload)
        self.notify()

    def notify(self) -> None:
        while self.queue and self.credit > 0:
            self.send_payload(self.queue.pop(0))


@dataclass(eq=False)
class PartitionReceiver(OutgoingLink):
    """A consumer's receive link on one partition of one consumer group."""

    broker: Broker | None = None
    partition: Partition | None = None
    group: str = ""
    position: int = 0
    epoch: int | None = None
    runtime_metric: bool = False
    on_stolen: Callable[[PartitionReceiver, str], None] | None = None

    def notify(self) -> None:
        part, session = self.partition, self.session
        assert part is not None and self.broker is not None
        if part.paused:
            return
        events = part.log.events
        count = min(self.credit, len(events) - self.position, 256)  # one socket write per chunk
        while count > 0 and session.writable():
            extra = self._runtime_annotations(part) if self.runtime_metric else b""
            chunk = [
                session.transfer_bytes(self.handle, events[i].payload + extra)
                for i in range(self.position, self.position + count)
            ]
            session.conn.write(b"".join(chunk))
            self.position += count
            self.delivery_count += count
            self.credit -= count
            self.broker.stats.outgoing_events += count
            count = min(self.credit, len(events) - self.position, 256)

    @staticmethod
    def _runtime_annotations(part: Partition) -> bytes:
        last = part.log.events[-1]
        return codec.encode_annotations_section(
            0x71,
            {
                b"last_enqueued_sequence_number": codec.typed("long", last.sequence_number),
                b"last_enqueued_offset": codec.typed("string", str(last.offset)),
                b"last_enqueued_time_utc": codec.typed("timestamp", last.enqueued_ms),
                b"runtime_info_retrieval_time_utc": codec.typed("timestamp", int(time.time() * 1000)),
            },
        )

    def steal(self, description: str) -> None:
        if self.on_stolen is not None:
            self.on_stolen(self, description)

    def closed(self) -> None:
        if self.broker is not None and self.partition is not None:
            self.broker.unsubscribe(self.partition.hub, self.group, self.partition.pid, self)


@dataclass(eq=False)
class IncomingLink:
    """A link on which the client sends (client role: sender): ingress, ``$cbs`` or ``$management``."""

    session: Session
    handle: int
    name: bytes
    target: bytes
    kind: str  # "ingress" | "cbs" | "management"
    hub: str = ""
    partition_id: str | None = None
    credit_window: int = 5000
    received: int = 0
    granted_until: int = 0
