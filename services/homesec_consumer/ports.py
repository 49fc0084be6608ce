"""Ports of the consumer: small protocols the processor depends on, implemented by thin SDK adapters
(``homesec_consumer.adapters``) and by in-memory fakes in the unit tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
    """Where rollups live (Blob in production).

    ``put_status`` is durable when it returns. It is conditional: ``etag=None`` creates the blob and fails
    if it exists, otherwise the blob must still have ``etag``; a lost condition raises
    ``RollupConflictError``. Writing the same name and content again changes nothing (idempotent).
    ``in_doubt`` are bodies this writer sent earlier whose outcome it never learnt (a timeout): if the blob
    holds one of them, that write landed after all, so the condition is checked against the blob's current
    etag instead (one more attempt) rather than reported as another writer's.
    ``merge_day`` adds closed entries (``("HH", amendment_doc)``: closed hours and late amendments, in stamp
    order) to a home's day document (read-modify-write with etags, retried on conflict); an entry whose stamp
    the hour already carries is a no-op, so a retried or replayed merge is idempotent.
    Other failures raise ``StoreUnavailableError``.
    """

    async def load_status(self, home_id: str) -> StoredDoc | None: ...

    async def put_status(
        self, home_id: str, body: bytes, etag: str | None, in_doubt: tuple[bytes, ...] = ()
    ) -> str: ...

    async def merge_day(self, home_id: str, day: str, entries: list[tuple[str, dict[str, Any]]]) -> None: ...

    async def load_day(self, home_id: str, day: str) -> StoredDoc | None: ...


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

    ``flush(partition_id, homes)`` wraps one partition's flush of ``homes`` dirty homes: a span linked to
    the batches received since the partition's previous flush, current while its writes run.
    """

    def flush(self, partition_id: str, homes: int) -> contextlib.AbstractContextManager[None]: ...


class _NoSpans:
    @contextlib.contextmanager
    def flush(self, partition_id: str, homes: int) -> Iterator[None]:
        yield


NO_SPANS: FlushSpans = _NoSpans()
