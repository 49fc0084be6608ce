"""One owned partition's in-memory state: packed per-home fold states, what is not yet durable, and the
position a checkpoint may safely record.

Every home lives in exactly one partition (partition key = home ID), so per-partition state plus the
partition's checkpoint is consistent. A home is *dirty* from its first accepted reading after the last
durable write; ``Dirty.before`` is the partition position just before that reading. The checkpoint may
advance to the smallest ``before`` of the homes still dirty (or to the last event when none is): every
event up to there has its effect durable, or had no effect (duplicate, late, dead-lettered).

A home *presumed* new (installed without reading its status blob, see ``RollupProcessor.open_partition``) is
``unverified`` until its create-only status write succeeds. When such a home already has closed hours, that
create goes first, with the closed hours still in the state the status embeds (``SnapItem.create_first``);
only then are the day blobs merged and the status rewritten without them. So a day blob never receives hours
folded from a wrong (empty) base state, and a crash in between leaves the hours in the status, from which
the next owner (replaying from the unchanged checkpoint) writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson
from homesec_domain.fold import FoldConfig, HomeState, HourAgg, Outcome, fold
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
    closed: list[HourAgg]
    dirty: Dirty
    create_first: bytes | None = None  # an unverified home's status with its closed hours, created first


@dataclass(slots=True)
class Snapshot:
    items: list[SnapItem]
    target: Position | None  # where to checkpoint once every item is durable


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    gaps: int = 0  # newly settled lost readings


_ACCEPTED, _DUPLICATE = Outcome.ACCEPTED, Outcome.DUPLICATE


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

    def missing(self, home_ids: set[str]) -> list[str]:
        return sorted(h for h in home_ids if h not in self.homes)

    def install(self, state: HomeState, etag: str | None, *, presumed: bool = False) -> None:
        """A home's state as loaded from the store (or new; ``presumed``: new without having looked)."""
        self.homes[state.home_id] = _join(etag, pack(state))
        if presumed:
            self.unverified.add(state.home_id)
        elif state.closed and state.home_id not in self.dirty:
            # Closed hours a first write kept in the status (its owner stopped before the next flush).
            self.dirty[state.home_id] = Dirty(self.last, None)

    def state_of(self, home_id: str) -> HomeState:
        return unpack(home_id, _split(self.homes[home_id])[1])

    def apply(self, items: Sequence[tuple[InboundEvent, Reading | None]]) -> BatchResult:
        """Fold a batch in partition order; ``None`` readings were dead-lettered and only advance."""
        work: dict[str, HomeState] = {}
        gaps_before: dict[str, int] = {}
        result = BatchResult()
        accepted = duplicates = late = 0
        last, config, dirty = self.last, self.config, self.dirty
        for event, reading in items:
            before, last = last, event.position
            if reading is None:
                continue
            home_id = reading.home_id
            home = work.get(home_id)
            if home is None:
                home = work[home_id] = self.state_of(home_id)
                gaps_before[home_id] = home.gaps
            outcome = fold(home, reading, config)
            if outcome is _ACCEPTED:
                accepted += 1
                mark = dirty.get(home_id)
                if mark is None:
                    mark = dirty[home_id] = Dirty(before, event.enqueued_ms)
                mark.readings += 1
            elif outcome is _DUPLICATE:
                duplicates += 1
            else:
                late += 1
        self.last = last
        result.accepted, result.duplicates, result.late = accepted, duplicates, late
        for home_id, home in work.items():
            result.gaps += max(0, home.gaps - gaps_before[home_id])
            self.homes[home_id] = _join(_split(self.homes[home_id])[0], pack(home))
        return result

    def snapshot(self, limit: int = 0) -> Snapshot:
        """Take the dirty homes (oldest first, at most ``limit`` unless 0) out for writing."""
        order = sorted(
            self.dirty.items(), key=lambda kv: -1 if kv[1].before is None else kv[1].before.sequence_number
        )
        chosen = order[:limit] if limit else order
        items: list[SnapItem] = []
        for home_id, mark in chosen:
            etag, packed = _split(self.homes[home_id])
            state = unpack(home_id, packed)
            create_first = None
            if home_id in self.unverified and state.closed:
                create_first = self._status_body(state)
            closed = state.drain_closed()
            body = self._status_body(state)
            items.append(SnapItem(home_id, body, etag, closed, mark, create_first))
            del self.dirty[home_id]
        target = self.last
        for mark in self.dirty.values():
            target = older(target, mark.before)
        return Snapshot(items, target)

    def _status_body(self, state: HomeState) -> bytes:
        return orjson.dumps(status_doc(state, self.co_alarm_ppm), option=orjson.OPT_SORT_KEYS)

    def commit(self, item: SnapItem, etag: str) -> None:
        """The item is durable: remember the new etag and forget the closed hours it persisted."""
        state = self.state_of(item.home_id)
        written = {h.hour for h in item.closed}
        state.closed = [h for h in state.closed if h.hour not in written]
        self.homes[item.home_id] = _join(etag, pack(state))
        self.unverified.discard(item.home_id)

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
