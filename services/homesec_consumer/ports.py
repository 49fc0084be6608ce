"""Ports of the consumer: small protocols the processor depends on, implemented by thin SDK adapters
(``homesec_consumer.adapters``) and by in-memory fakes in the unit tests."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class Position(NamedTuple):
    """A place in a partition: the event with this sequence number and offset (a tuple: one is built per
    received event)."""

    sequence_number: int
    offset: str


@dataclass(frozen=True, slots=True)
class StoredDoc:
    """A JSON document read from the store with the etag it had."""

    doc: dict[str, Any]
    etag: str


class RollupStore(Protocol):
    """Where state and rollups live (Blob in production).

    ``put_snapshot`` writes a partition's state snapshot (``homesec_consumer.snapshot``) and is durable when
    it returns. It is conditional: ``etag=None`` creates the blob and fails if it exists, otherwise the blob
    must still have ``etag``; a lost condition raises ``RollupConflictError`` (fencing). Writing the same
    content again changes nothing (idempotent). ``in_doubt`` are SHA-256 digests of bodies this writer sent
    earlier whose outcome it never learnt (a timeout): if the blob holds one of them, that write landed after
    all, so the condition is checked against the blob's current etag instead rather than reported as another
    writer's.
    ``load_snapshot`` returns the body and its etag, or None.
    ``merge_day`` adds closed entries (``("HH", amendment_doc)``: closed hours and late amendments, in stamp
    order) to a home's day document (read-modify-write with etags, retried on conflict); an entry whose stamp
    the hour already carries is a no-op, so a retried or replayed merge is idempotent.
    ``put_view`` overwrites a home's status blob (a view for direct Blob readers, no state: last writer wins).
    ``load_status`` reads a home's status blob (format-2 status blobs hold the packed state to migrate).
    Other failures raise ``StoreUnavailableError``.
    """

    async def load_snapshot(self, partition_id: str) -> tuple[bytes, str] | None: ...

    async def put_snapshot(
        self, partition_id: str, body: bytes, etag: str | None, in_doubt: tuple[bytes, ...] = ()
    ) -> str: ...

    async def load_status(self, home_id: str) -> StoredDoc | None: ...

    async def put_view(self, home_id: str, body: bytes) -> None: ...

    async def merge_day(self, home_id: str, day: str, entries: list[tuple[str, dict[str, Any]]]) -> None: ...

    async def load_day(self, home_id: str, day: str) -> StoredDoc | None: ...


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One alarm transition (a sensor's alarm raised or cleared) as published to the ``alarms`` hub.

    ``message_id`` is deterministic per transition (the same transition found again after a replay has the
    same ID); ``home_id`` is the partition key; ``body`` the JSON document (homesec_domain.alarms);
    ``enqueued_ms`` the enqueued time of the reading that caused it (for the latency metric)."""

    message_id: str
    home_id: str
    body: bytes
    enqueued_ms: int | None = None


class AlarmPublisher(Protocol):
    """The ``alarms`` event hub (a notification service or monitoring centre subscribes to it).

    ``publish`` returns once the hub has acknowledged every event: they are durable. Each event is sent with
    its ``home_id`` as partition key and its ``message_id`` as the AMQP message ID. At-least-once on its own:
    when it raises ``AlarmPublishError`` some of the events may have landed anyway (a timeout).
    ``published_since(home_ids, since_ms)`` returns the message IDs of the alarm events enqueued at or after
    ``since_ms`` (epoch milliseconds) in the hub partitions those homes' keys map to, up to the last event
    enqueued when the call began. With it an owner that takes a partition over (or whose send timed out)
    learns what was already published, so that each transition is in the hub exactly once.
    """

    async def publish(self, events: Sequence[AlarmEvent]) -> None: ...

    async def published_since(self, home_ids: Collection[str], since_ms: int) -> set[str]: ...


class DeadLetterSink(Protocol):
    """Poison events, one blob per event named by partition and sequence number.

    ``put`` is durable when it returns and idempotent (a replayed poison event rewrites the same blob).
    """

    async def put(self, name: str, body: bytes) -> None: ...


class CheckpointSink(Protocol):
    """Records how far a partition's effects are durable. At-least-once: after a crash, processing
    restarts after the last recorded position, so everything after it is redone (idempotently)."""

    async def checkpoint(self, partition_id: str, position: Position) -> None: ...


class FlushSpans(Protocol):
    """Tracing of the flush (``homesec_consumer.tracing`` when tracing is on; ``NO_SPANS`` otherwise).

    ``flush(partition_id, readings)`` wraps one partition's flush of ``readings`` readings applied since the
    last one: a span linked to the batches received since then, current while its writes run.
    """

    def flush(self, partition_id: str, readings: int) -> contextlib.AbstractContextManager[None]: ...


class _NoSpans:
    @contextlib.contextmanager
    def flush(self, partition_id: str, readings: int) -> Iterator[None]:
        yield


NO_SPANS: FlushSpans = _NoSpans()
