"""One owned partition's in-memory state: packed per-home fold states, what is not yet durable, and the
position a checkpoint may safely record.

Every home lives in exactly one partition (partition key = home ID), so per-partition state plus the
partition's checkpoint is consistent. Each home's state records the position of the last event folded for it
(``HomeState.applied``), so an event redelivered after a restart or rebalance is skipped exactly.

A home is *dirty* from its first applied reading after the last durable write; ``Dirty.before`` is the
partition position just before that reading. The checkpoint may advance to the smallest ``before`` of the
homes still dirty (or to the last event when none is): every event up to there has its effect durable, or
had no effect (duplicate, redelivered, dead-lettered).

Flushing a home is two steps. First its status blob, whose packed state still holds the home's closed hours
and late amendments, each stamped with the home's position (``SnapItem.closed``): from then on they are
durable. Then they are merged into the day blobs, where a stamp already present changes nothing, and only
then do they leave the state (``merged``). A crash in between leaves them in the status, from which the next
owner merges them again, idempotently.

A home *presumed* new (installed without reading its status blob, see ``RollupProcessor.open_partition``) is
``unverified`` until its create-only status write succeeds; if the blob exists after all, that write fails
and the partition is fenced before any day blob is touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson
from homesec_domain.fold import FoldConfig, HomeState, HourAgg, Outcome, fold, to_ms
from homesec_domain.models import Reading
from homesec_domain.rollup import pack, status_doc, unpack

from homesec_consumer.ports import Position


class InboundEvent(NamedTuple):
    """What the processor needs of a received event (the adapter builds one per event from ``EventData``)."""

    body: bytes
    position: Position
    enqueued_ms: int | None = None


@dataclass(slots=True)
class Dirty:
    before: Position | None  # None: the position before is unknown (first event after start)
    first_enqueued_ms: int | None
    readings: int = 0


@dataclass(frozen=True, slots=True)
class SnapItem:
    home_id: str
    body: bytes  # the status document
    etag: str | None
    closed: list[HourAgg]  # stamped closed entries the status holds, to merge into day blobs after it
    dirty: Dirty
    in_doubt: tuple[bytes, ...] = ()  # earlier status bodies whose writes timed out (they may have landed)


@dataclass(slots=True)
class Snapshot:
    items: list[SnapItem]
    target: Position | None  # where to checkpoint once every item is durable


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0  # applied (late ones included)
    late: int = 0  # applied to an hour already closed
    resent: int = 0  # duplicates: re-sent readings
    redelivered: int = 0  # duplicates: events at or below their home's applied position
    gaps: int = 0  # newly missing sequence numbers
    restarts: int = 0  # sensors whose sequence numbers started again


IN_DOUBT_LIMIT = 4
_LATE, _DUPLICATE, _REDELIVERED = Outcome.LATE, Outcome.DUPLICATE, Outcome.REDELIVERED


def _join(etag: str | None, packed: bytes) -> bytes:
    raw = (etag or "").encode()
    return bytes([len(raw)]) + raw + packed


def _split(stored: bytes) -> tuple[str | None, bytes]:
    size = stored[0]
    return (stored[1 : 1 + size].decode() or None), stored[1 + size :]


def older(a: Position | None, b: Position | None) -> Position | None:
    if a is None or b is None:
        return None
    return a if a.sequence_number <= b.sequence_number else b


def stream_of(partition_id: str) -> int:
    """The fold's stream number of a partition (Event Hubs partition IDs are "0", "1", ...); -1 (no
    redelivery detection by position) for any other ID."""
    return int(partition_id) if partition_id.isdigit() and len(partition_id) < 6 else -1


@dataclass(slots=True)
class PartitionState:
    partition_id: str
    config: FoldConfig
    co_alarm_ppm: float = 50.0
    homes: dict[str, bytes] = field(default_factory=dict)  # etag-prefixed packed HomeState
    dirty: dict[str, Dirty] = field(default_factory=dict)
    last: Position | None = None
    checkpointed: Position | None = None
    checkpoint_time: float | None = None
    fenced: bool = False
    presume_new: bool = False  # homes not in memory are new (no status read); see RollupProcessor
    unverified: set[str] = field(default_factory=set)  # presumed new, not yet created in the store
    in_doubt: dict[str, tuple[bytes, ...]] = field(default_factory=dict)  # see ``doubt``
    stream: int = field(init=False)

    def __post_init__(self) -> None:
        self.stream = stream_of(self.partition_id)

    def missing(self, home_ids: set[str]) -> list[str]:
        return sorted(h for h in home_ids if h not in self.homes)

    def install(self, state: HomeState, etag: str | None, *, presumed: bool = False) -> None:
        """A home's state as loaded from the store (or new; ``presumed``: new without having looked)."""
        self.homes[state.home_id] = _join(etag, pack(state))
        if presumed:
            self.unverified.add(state.home_id)
        elif state.closed and state.home_id not in self.dirty:
            # Closed entries the status holds and an earlier owner may not have merged: merge them again.
            self.dirty[state.home_id] = Dirty(self.last, None)

    def state_of(self, home_id: str) -> HomeState:
        return unpack(home_id, _split(self.homes[home_id])[1])

    def apply(self, items: Sequence[tuple[InboundEvent, Reading | None]]) -> BatchResult:
        """Fold a batch in partition order; ``None`` readings were dead-lettered and only advance."""
        work: dict[str, HomeState] = {}
        gaps_before: dict[str, int] = {}
        accepted = late = resent = redelivered = 0
        last, config, dirty, stream = self.last, self.config, self.dirty, self.stream
        for event, reading in items:
            before, last = last, event.position
            if reading is None:
                continue
            home_id = reading.home_id
            home = work.get(home_id)
            if home is None:
                home = work[home_id] = self.state_of(home_id)
                gaps_before[home_id] = home.gaps
            arrived = event.enqueued_ms if event.enqueued_ms is not None else to_ms(reading.ts)
            outcome = fold(home, reading, config, stream, last.sequence_number, arrived)
            if outcome is _DUPLICATE:
                resent += 1
            elif outcome is _REDELIVERED:
                redelivered += 1
            else:
                accepted += 1
                late += outcome is _LATE
                mark = dirty.get(home_id)
                if mark is None:
                    mark = dirty[home_id] = Dirty(before, event.enqueued_ms)
                mark.readings += 1
        self.last = last
        result = BatchResult(accepted, late, resent, redelivered)
        for home_id, home in work.items():
            result.gaps += max(0, home.gaps - gaps_before[home_id])
            result.restarts += home.restarts
            self.homes[home_id] = _join(_split(self.homes[home_id])[0], pack(home))
        return result

    def snapshot(self, limit: int = 0) -> Snapshot:
        """Take the dirty homes (oldest first, at most ``limit`` unless 0) out for writing; their closed
        entries are stamped now, so the status about to be written holds them as they will be merged."""
        order = sorted(
            self.dirty.items(), key=lambda kv: -1 if kv[1].before is None else kv[1].before.sequence_number
        )
        chosen = order[:limit] if limit else order
        items: list[SnapItem] = []
        for home_id, mark in chosen:
            etag, packed = _split(self.homes[home_id])
            state = unpack(home_id, packed)
            closed = state.stamp_closed()
            if closed:
                self.homes[home_id] = _join(etag, pack(state))
            body = self._status_body(state)
            items.append(SnapItem(home_id, body, etag, closed, mark, self.in_doubt.get(home_id, ())))
            del self.dirty[home_id]
        target = self.last
        for mark in self.dirty.values():
            target = older(target, mark.before)
        return Snapshot(items, target)

    def _status_body(self, state: HomeState) -> bytes:
        return orjson.dumps(status_doc(state, self.co_alarm_ppm), option=orjson.OPT_SORT_KEYS)

    def commit(self, item: SnapItem, etag: str) -> None:
        """The item's status is durable: remember its new etag."""
        self.homes[item.home_id] = _join(etag, _split(self.homes[item.home_id])[1])
        self.unverified.discard(item.home_id)
        self.in_doubt.pop(item.home_id, None)

    def doubt(self, item: SnapItem) -> None:
        """The item's status write timed out: the store may apply it later, moving the etag on. Its body is
        kept (the last ``IN_DOUBT_LIMIT`` per home), so the next write recognises it as its own; beyond
        that, a landed write reads as another writer's and fences the partition (safe, only slower)."""
        self.in_doubt[item.home_id] = (*self.in_doubt.get(item.home_id, ()), item.body)[-IN_DOUBT_LIMIT:]

    def merged(self, item: SnapItem) -> None:
        """The item's closed entries are in their day blobs: they leave the state."""
        etag, packed = _split(self.homes[item.home_id])
        state = unpack(item.home_id, packed)
        done = {(h.hour, h.rev, h.stream) for h in item.closed}
        state.closed = [h for h in state.closed if (h.hour, h.rev, h.stream) not in done]
        self.homes[item.home_id] = _join(etag, pack(state))

    def restore(self, item: SnapItem) -> None:
        """The write failed: the home is dirty again, from its older position."""
        mark = self.dirty.get(item.home_id)
        if mark is None:
            self.dirty[item.home_id] = item.dirty
            return
        enq = [t for t in (mark.first_enqueued_ms, item.dirty.first_enqueued_ms) if t is not None]
        self.dirty[item.home_id] = Dirty(
            older(item.dirty.before, mark.before),
            min(enq) if enq else None,
            mark.readings + item.dirty.readings,
        )
