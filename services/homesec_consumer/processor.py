"""The per-partition pipeline: restore the partition's snapshot -> the intake (``intake.Intake``: decode,
dead-letter poison and readings outside the acceptance horizon, migrate homes from format-2 status blobs) ->
fold -> publish alarm transitions; and the flush: write the partition's state snapshot, checkpoint the
partition at the position it covers, merge closed hours and late amendments into the day blobs and rewrite
those homes' status views.

SDK-free: the Event Hubs adapter calls ``open_partition``/``handle_batch``/``close_partition``; the flush
loop runs beside it. Batches of one partition are sequential (the SDK guarantees it) and folding is
synchronous, so a flush snapshot never sees half a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from homesec_domain.fold import FoldConfig
from homesec_runtime import logs

from homesec_consumer import snapshot as snapshots
from homesec_consumer.alarm_outbox import AlarmOutbox
from homesec_consumer.errors import PartitionFencedError, RollupConflictError, StoreUnavailableError
from homesec_consumer.intake import Intake
from homesec_consumer.metrics import ConsumerMetrics, PartitionWatch
from homesec_consumer.partition import BatchResult, InboundEvent, PartitionState, Snapshot
from homesec_consumer.ports import NO_SPANS, CheckpointSink, DeadLetterSink, FlushSpans, Position, RollupStore
from homesec_consumer.store_writes import StoreWrites

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    fold: FoldConfig
    flush_max_homes: int = 0
    write_concurrency: int = 32
    # The acceptance horizon, relative to an event's enqueued time (``intake.py``).
    max_age_ms: int = 86_400_000 + 900_000
    max_ahead_ms: int = 300_000 + 900_000


class RollupProcessor:
    def __init__(
        self,
        store: RollupStore,
        *,
        dead_letters: DeadLetterSink,
        checkpoints: CheckpointSink,
        metrics: ConsumerMetrics,
        config: ProcessorConfig,
        clock: Callable[[], float],
        spans: FlushSpans = NO_SPANS,
        alarms: AlarmOutbox | None = None,
    ) -> None:
        self._store = store
        self._spans = spans
        self._checkpoints = checkpoints
        self._metrics = metrics
        self._config = config
        self._clock = clock
        self._alarms = alarms  # None: no alarms hub (transitions are counted and visible, not published)
        self._writes = StoreWrites(store, metrics, config.write_concurrency)
        self._intake = Intake(
            dead_letters, metrics, store, self._writes, max_age_ms=config.max_age_ms,
            max_ahead_ms=config.max_ahead_ms,
        )  # fmt: skip
        self.partitions: dict[str, PartitionState] = {}
        self.accepting = True
        self.watches: dict[str, PartitionWatch] = {}  # what each owned partition's gauges read

    @property
    def co_alarm_ppm(self) -> float:
        return self._config.fold.co_alarm_ppm

    # -- partition lifecycle ---------------------------------------------------------------------
    def open_partition(
        self, partition_id: str, *, initial: bool = False, checkpoint: Position | None = None
    ) -> PartitionState:
        """Start a partition's state; its snapshot is read before its first batch. ``initial``: its
        checkpoint is still the initial one (no snapshot and no checkpoint: every home is new);
        ``checkpoint``: the partition's checkpoint when claimed (None: unknown); its gauges exist from now
        on, read at scrape time."""
        part = PartitionState(partition_id, self._config.fold, self._config.fold.co_alarm_ppm)
        part.initial = initial
        self.partitions[partition_id] = part
        now = self._clock()
        durable = None if checkpoint is None else checkpoint.sequence_number
        watch = self.watches[partition_id] = PartitionWatch(now, now, now, durable)
        self._metrics.watch_partition(partition_id, watch, self._clock)
        self._metrics.partitions_owned.set(len(self.partitions))
        self._metrics.ownership_changes.labels(change="claimed").inc()
        return part

    def close_partition(self, partition_id: str) -> None:
        """Drop the partition's state: whatever is not durable is redone by the next owner."""
        if self.partitions.pop(partition_id, None) is not None:
            self._metrics.ownership_changes.labels(change="released").inc()
        self._metrics.partitions_owned.set(len(self.partitions))
        self.watches.pop(partition_id, None)
        self._metrics.unwatch_partition(partition_id)
        if self._alarms is not None:
            self._alarms.closed(partition_id)
        self._update_homes_gauge()

    def note_enqueued(self, partition_id: str, sequence_number: int) -> None:
        """The service's last enqueued sequence number of an owned partition (for the lag)."""
        if (watch := self.watches.get(partition_id)) is not None:
            watch.note_enqueued(sequence_number)

    def stop_intake(self) -> None:
        """Shutdown: later events are ignored (never checkpointed, so the next owner gets them)."""
        self.accepting = False

    # -- receiving -------------------------------------------------------------------------------
    async def handle_batch(self, partition_id: str, events: Sequence[InboundEvent]) -> None:
        part = self.partitions.get(partition_id) or self.open_partition(partition_id)
        if part.fenced:
            raise PartitionFencedError(partition_id)
        if not self.accepting:
            return
        start = part.current_at = self._clock()
        if not events:
            return
        if not part.loaded:
            await self._restore(part)  # failed at the claim (``load``): an error here closes the partition
        self.watches[partition_id].received_batch(events[0].position, events[-1].position, start)
        self._metrics.events_received.inc(len(events))
        self._metrics.batch_size.observe(len(events))
        result = part.apply(await self._intake.take(part, events))
        self._record_outcomes(result)
        self._update_homes_gauge()
        if result.alarms:
            await self._publish_alarms(part, wait=False)
        done = self._clock()
        self._metrics.batch_processing.observe(max(0.0, done - start))
        self._metrics.last_batch_time.set(done)

    async def load(self, partition_id: str) -> bool:
        """Restore an owned partition's state from its snapshot now (at the claim, so that its status reads,
        pending alarms and unmerged entries do not wait for an event); False when storage failed (counted and
        logged: the next batch, flush or alarm round tries again)."""
        part = self.partitions.get(partition_id)
        if part is None or part.fenced:
            return False
        if not part.loaded:
            try:
                await self._restore(part)
            except Exception as exc:
                log.warning("restoring partition %s failed: %r", partition_id, exc)
                return False
        return True

    async def _restore(self, part: PartitionState) -> None:
        """Read the partition's snapshot. None: a partition still at its initial checkpoint starts empty; one
        that was checkpointed before has format-2 status blobs to migrate from (``legacy``)."""
        try:
            stored = await self._writes.bounded(self._store.load_snapshot(part.partition_id))
        except Exception:
            self._metrics.handler_errors.labels(stage="snapshot_load").inc()
            raise
        if stored is None:
            part.legacy = not part.initial
            if part.legacy:
                log.info("partition %s: no state snapshot; migrating homes from their status blobs",
                         part.partition_id)  # fmt: skip
        else:
            header, homes = snapshots.decode(stored[0])
            part.restore_from(header, homes, stored[1])
        part.loaded = True
        self._update_homes_gauge()
        if self._alarms is not None:
            self._alarms.opened(part)
        else:
            part.outbox.clear()

    async def _publish_alarms(self, part: PartitionState, *, wait: bool = True) -> None:
        if self._alarms is None:
            part.outbox.clear()
        else:
            await self._alarms.send(part, wait=wait)

    def _record_outcomes(self, result: BatchResult) -> None:
        metrics = self._metrics
        metrics.events_processed.inc(result.accepted)
        metrics.duplicates_dropped.labels(reason="resent").inc(result.resent)
        metrics.duplicates_dropped.labels(reason="redelivered").inc(result.redelivered)
        metrics.late_readings.inc(result.late)
        metrics.sequence_gaps.inc(result.gaps)
        metrics.sensor_restarts.inc(result.restarts)
        for alarm in result.alarms:
            kind = "raised" if "/raised/" in alarm.message_id else "cleared"
            metrics.alarm_transitions.labels(transition=kind).inc()

    # -- flushing --------------------------------------------------------------------------------
    async def flush_all(self, *, force: bool = False) -> None:
        self._writes.begin()
        await asyncio.gather(*(self.flush_partition(pid, force=force) for pid in list(self.partitions)))

    async def flush_partition(self, partition_id: str, *, force: bool = False) -> None:
        part = self.partitions.get(partition_id)
        if part is None or not await self.load(partition_id):
            return
        target = part.last
        with logs.bind(partition=partition_id), self._spans.flush(partition_id, part.changed):
            if part.changed or part.stale:
                snap = self._take_snapshot(part)
                if not await self._write_snapshot(part, snap):
                    return
                target = snap.position
            await self._checkpoint(part, target)
            merges = part.merges(0 if force else self._config.flush_max_homes)
            if merges:
                await self._writes.merge_days(part, merges)
            if force and part.stale and not part.fenced:  # leaving: the next owner need not merge them again
                await self._write_snapshot(part, self._take_snapshot(part))

    def _take_snapshot(self, part: PartitionState) -> Snapshot:
        now_ms = int(self._clock() * 1000)
        since = self._alarms.since_for(part, now_ms) if self._alarms is not None else 0
        return part.snapshot(now_ms, since)

    async def _write_snapshot(self, part: PartitionState, snap: Snapshot) -> bool:
        """Write the snapshot; True when it is durable."""
        try:
            etag = await self._writes.bounded(
                self._store.put_snapshot(part.partition_id, snap.body, part.snapshot_etag, part.in_doubt)
            )
        except RollupConflictError as exc:
            log.warning("partition %s fenced: %s", part.partition_id, exc)
            self._metrics.snapshot_writes.labels(result="conflict").inc()
            part.fenced = True
            return False
        except StoreUnavailableError as exc:
            log.warning("state snapshot of partition %s failed: %s", part.partition_id, exc)
            self._metrics.snapshot_writes.labels(result="error").inc()
            part.failed(snap, timed_out=True)
            return False
        part.committed(snap, etag)
        self._metrics.snapshot_writes.labels(result="ok").inc()
        self._metrics.snapshot_bytes.observe(len(snap.body))
        self._metrics.readings_rolled_up.inc(snap.readings)
        if snap.first_enqueued_ms is not None:
            self._metrics.end_to_end_latency.observe(max(0.0, self._clock() - snap.first_enqueued_ms / 1000))
        return True

    async def _checkpoint(self, part: PartitionState, target: Position | None) -> None:
        if part.fenced or self.partitions.get(part.partition_id) is not part:
            return
        watch, last, done = self.watches[part.partition_id], part.last, part.checkpointed
        if target is None or (done is not None and target.sequence_number <= done.sequence_number):
            if last is None or (target is not None and target.sequence_number >= last.sequence_number):
                watch.confirmed = self._clock()  # it covers every event received: the checkpoint is current
            return
        try:
            await self._checkpoints.checkpoint(part.partition_id, target)
        except Exception as exc:  # a checkpoint failure only delays the next one
            log.warning("checkpoint of partition %s failed: %r", part.partition_id, exc)
            self._metrics.handler_errors.labels(stage="checkpoint").inc()
            return
        part.checkpointed = target
        part.checkpoint_time = watch.confirmed = self._clock()
        watch.durable = target.sequence_number
        self._metrics.checkpoints.inc()

    async def run_flush_loop(self, interval: float, stop: asyncio.Event) -> None:
        """Flush every ``interval`` seconds until ``stop`` is set; an error never ends the loop."""
        await self._every(interval, stop, self.flush_all, "flush")

    async def publish_pending(self) -> None:
        """Send the alarms that earlier sends left pending (failed, or restored from a snapshot)."""
        for pid, part in list(self.partitions.items()):
            if await self.load(pid) and part.outbox:
                await self._publish_alarms(part)

    async def run_alarm_loop(self, interval: float, stop: asyncio.Event) -> None:
        """``publish_pending`` every ``interval`` seconds until ``stop`` is set; an error never ends it."""
        await self._every(interval, stop, self.publish_pending, "alarms")

    async def _every(
        self, interval: float, stop: asyncio.Event, op: Callable[[], Awaitable[None]], stage: str
    ) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                return
            try:
                await op()
            except Exception:
                log.exception("%s failed", stage)
                self._metrics.handler_errors.labels(stage=stage).inc()

    def _update_homes_gauge(self) -> None:
        self._metrics.homes_in_state.set(sum(len(p.homes) for p in self.partitions.values()))
