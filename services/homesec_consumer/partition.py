"""One owned partition's in-memory state: packed per-home fold states, what is not yet durable, the alarm
transitions not yet acknowledged, and the position a checkpoint may safely record.

Every home lives in exactly one partition (partition key = home ID), so per-partition state plus the
partition's checkpoint is consistent. Each home's state records the position of the last event folded for it
(``HomeState.applied``), so an event redelivered after a restart or rebalance is skipped exactly.

The state is durable per partition: a snapshot (``homesec_consumer.snapshot``) of every home at the
partition's last position, written conditionally on the previous snapshot's etag (fencing). Once it is
durable the checkpoint may move to that position. Closed hours and late amendments are stamped with their
home's position when a snapshot is taken and stay in the state, so the snapshot holds them; they are then
merged into the day blobs, where a stamp already present changes nothing, and only then leave the state
(``merged``). A crash in between leaves them in the snapshot, from which the next owner merges them again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from homesec_domain.alarms import AlarmTransition, transition
from homesec_domain.fold import NO_CHANGE, RAISED, FoldConfig, HomeState, HourAgg, Outcome, fold, to_ms
from homesec_domain.models import Reading
from homesec_domain.rollup import pack, status_doc, unpack

from homesec_consumer.ports import Position
from homesec_consumer.snapshot import PendingAlarm, SnapshotHeader, encode


class InboundEvent(NamedTuple):
    """What the processor needs of a received event (the adapter builds one per event from ``EventData``)."""

    body: bytes
    position: Position
    enqueued_ms: int | None = None


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0  # applied (late ones included)
    late: int = 0  # applied to an hour already closed
    resent: int = 0  # duplicates: re-sent readings
    redelivered: int = 0  # duplicates: events at or below their home's applied position
    gaps: int = 0  # newly missing sequence numbers
    restarts: int = 0  # sensors whose sequence numbers started again
    alarms: list[PendingAlarm] = field(default_factory=list)  # alarm transitions, in partition order


@dataclass(frozen=True, slots=True)
class Merge:
    home_id: str
    closed: list[HourAgg]  # stamped closed entries, in merge order


@dataclass(slots=True)
class Snapshot:
    body: bytes
    position: Position | None  # where to checkpoint once the snapshot is durable
    taken_ms: int
    readings: int  # readings applied since the previous snapshot (now durable with this one)
    first_enqueued_ms: int | None  # the oldest of them


IN_DOUBT_LIMIT = 4
_LATE, _DUPLICATE, _REDELIVERED = Outcome.LATE, Outcome.DUPLICATE, Outcome.REDELIVERED


def older(a: Position | None, b: Position | None) -> Position | None:
    if a is None or b is None:
        return None
    return a if a.sequence_number <= b.sequence_number else b


def stream_of(partition_id: str) -> int:
    """The fold's stream number of a partition (Event Hubs partition IDs are "0", "1", ...); -1 (no
    redelivery detection by position) for any other ID."""
    return int(partition_id) if partition_id.isdigit() and len(partition_id) < 6 else -1


def digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


@dataclass(slots=True)
class PartitionState:
    partition_id: str
    config: FoldConfig
    co_alarm_ppm: float = 50.0
    homes: dict[str, bytes] = field(default_factory=dict)  # packed HomeState
    closing: set[str] = field(default_factory=set)  # homes with closed entries not yet merged
    outbox: list[PendingAlarm] = field(default_factory=list)  # alarm events not yet acknowledged
    last: Position | None = None
    last_enqueued_ms: int | None = None  # the enqueued time of ``last``
    alarms_since_ms: int = 0  # of the restored snapshot (see ``homesec_consumer.alarm_outbox``)
    checkpointed: Position | None = None
    checkpoint_time: float | None = None
    fenced: bool = False
    initial: bool = False  # the checkpoint was the initial one when claimed
    loaded: bool = False  # the snapshot (if any) was read
    legacy: bool = False  # homes not in memory may have a format-2 status blob: read it (migration)
    snapshot_etag: str | None = None  # the durable snapshot's etag (None: none yet, create-only)
    snapshot_taken_ms: int | None = None  # when the durable snapshot was taken
    in_doubt: tuple[bytes, ...] = ()  # digests of snapshot writes that timed out (they may have landed)
    changed: int = 0  # readings applied since the last snapshot
    stale: bool = False  # merged entries left the state since the last snapshot (which still holds them)
    changed_first_ms: int | None = None
    current_at: float | None = None  # when the partition last delivered a batch (or an empty wait)
    stream: int = field(init=False)

    def __post_init__(self) -> None:
        self.stream = stream_of(self.partition_id)

    def missing(self, home_ids: set[str]) -> list[str]:
        return sorted(h for h in home_ids if h not in self.homes)

    def restore_from(self, header: SnapshotHeader, homes: dict[str, bytes], etag: str) -> None:
        """The partition's durable snapshot, read when the partition is claimed."""
        self.homes = homes
        self.closing = {h for h in header.closing if h in homes}
        self.outbox = list(header.alarms)
        self.legacy = header.legacy
        self.snapshot_etag, self.snapshot_taken_ms = etag, header.taken_ms
        self.alarms_since_ms = header.alarms_since_ms

    def install(self, state: HomeState) -> None:
        """A home's state as migrated from its format-2 status blob (or new)."""
        self.homes[state.home_id] = pack(state)
        if state.closed:
            self.closing.add(state.home_id)

    def state_of(self, home_id: str) -> HomeState:
        return unpack(home_id, self.homes[home_id])

    def status(self, home_id: str) -> dict[str, Any] | None:
        """The home's current status document (without the packed state), or None if unknown here."""
        packed = self.homes.get(home_id)
        if packed is None:
            return None
        doc = status_doc(unpack(home_id, packed), self.co_alarm_ppm)
        del doc["state"]
        return doc

    def apply(self, items: Sequence[tuple[InboundEvent, Reading | None]]) -> BatchResult:
        """Fold a batch in partition order; ``None`` readings were dead-lettered and only advance."""
        work: dict[str, HomeState] = {}
        gaps_before: dict[str, int] = {}
        result = BatchResult()
        last, config, stream = self.last, self.config, self.stream
        if items:
            self.last_enqueued_ms = items[-1][0].enqueued_ms
        for event, reading in items:
            last = event.position
            if reading is None:
                continue
            home_id = reading.home_id
            home = work.get(home_id)
            if home is None:
                packed = self.homes.get(home_id)  # absent: a new home (or migrated by the caller already)
                home = work[home_id] = HomeState(home_id) if packed is None else unpack(home_id, packed)
                gaps_before[home_id] = home.gaps
            arrived = event.enqueued_ms if event.enqueued_ms is not None else to_ms(reading.ts)
            outcome = fold(home, reading, config, stream, last.sequence_number, arrived)
            if outcome is _DUPLICATE:
                result.resent += 1
            elif outcome is _REDELIVERED:
                result.redelivered += 1
            else:
                result.accepted += 1
                result.late += outcome is _LATE
                change = home.alarm_change
                if change != NO_CHANGE:
                    sensor = home.sensors[reading.sensor_id]
                    found = transition(home_id, reading.sensor_id, sensor, change == RAISED)
                    self._alarm(result, found, event)
                if self.changed_first_ms is None:
                    self.changed_first_ms = event.enqueued_ms
        self.last = last
        self.changed += result.accepted
        for home_id, home in work.items():
            result.gaps += max(0, home.gaps - gaps_before[home_id])
            result.restarts += home.restarts
            self.homes[home_id] = pack(home)
            if home.closed:
                self.closing.add(home_id)
        return result

    def _alarm(self, result: BatchResult, found: AlarmTransition, event: InboundEvent) -> None:
        pending = PendingAlarm(found.message_id, found.home_id, found.body(), event.enqueued_ms)
        result.alarms.append(pending)
        self.outbox.append(pending)

    def snapshot(self, taken_ms: int, alarms_since_ms: int = 0) -> Snapshot:
        """Every home at the last position, closed entries stamped now (they stay until ``merged``)."""
        for home_id in self.closing:
            state = unpack(home_id, self.homes[home_id])
            if any(h.rev < 0 for h in state.closed):
                state.stamp_closed()
                self.homes[home_id] = pack(state)
        header = SnapshotHeader(
            self.partition_id, self.last, taken_ms, self.legacy, sorted(self.closing), list(self.outbox),
            alarms_since_ms,
        )  # fmt: skip
        snap = Snapshot(encode(header, self.homes), self.last, taken_ms, self.changed, self.changed_first_ms)
        self.changed, self.changed_first_ms, self.stale = 0, None, False
        return snap

    def merges(self, limit: int = 0) -> list[Merge]:
        """The homes' stamped closed entries to merge into day blobs (at most ``limit`` homes unless 0)."""
        out: list[Merge] = []
        for home_id in sorted(self.closing):
            closed = [h for h in unpack(home_id, self.homes[home_id]).closed if h.rev >= 0]
            if closed:
                out.append(Merge(home_id, sorted(closed, key=lambda h: (h.hour, h.rev))))
                if limit and len(out) >= limit:
                    break
        return out

    def committed(self, snap: Snapshot, etag: str) -> None:
        """The snapshot is durable."""
        self.snapshot_etag, self.snapshot_taken_ms, self.in_doubt = etag, snap.taken_ms, ()

    def failed(self, snap: Snapshot, timed_out: bool) -> None:
        """The snapshot write failed: its readings wait for the next one. After a timeout the write may still
        land: its digest is kept (the last ``IN_DOUBT_LIMIT``) so the next write recognises it as its own."""
        self.changed += snap.readings
        self.stale = True
        if snap.first_enqueued_ms is not None:
            self.changed_first_ms = min(
                snap.first_enqueued_ms, self.changed_first_ms or snap.first_enqueued_ms
            )
        if timed_out:
            self.in_doubt = (*self.in_doubt, digest(snap.body))[-IN_DOUBT_LIMIT:]

    def merged(self, item: Merge) -> HomeState:
        """The item's closed entries are in their day blobs: they leave the state (returned)."""
        state = unpack(item.home_id, self.homes[item.home_id])
        done = {(h.hour, h.rev, h.stream) for h in item.closed}
        state.closed = [h for h in state.closed if (h.hour, h.rev, h.stream) not in done]
        self.homes[item.home_id] = pack(state)
        self.stale = True
        if not state.closed:
            self.closing.discard(item.home_id)
        return state

    def acknowledged(self, message_ids: set[str]) -> None:
        """These alarm events are in the alarms hub."""
        self.outbox = [a for a in self.outbox if a.message_id not in message_ids]
