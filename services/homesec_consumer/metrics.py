"""The consumer's Prometheus metrics (names fixed in docs/contracts.md), on an injected registry."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from homesec_auth.errors import FAILURE_REASONS as AUTH_FAILURE_REASONS
from homesec_runtime.deadlines import request_timeouts_counter
from homesec_runtime.tracing import ExemplarHistogram
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from homesec_consumer.ports import Position

# Bounded label values (docs/contracts.md); primed at start so every series exists from the first scrape.
# Why an event was set aside uncounted (in the dead-letter container): poison, or outside the acceptance
# horizon (older than the maximum age, or too far in the future, relative to its enqueued time).
DEAD_LETTER_REASONS = ("undecodable", "schema_version", "invalid", "outside_horizon")
# Why a reading had no effect: ``resent`` = the same reading_id or (sensor_id, seq, ts) again (a client or
# producer retry); ``redelivered`` = an event at or below the home's last applied position (a replay after
# a restart or rebalance).
DUPLICATE_REASONS = ("resent", "redelivered")
HANDLER_STAGES = (
    "partition", "load_balancing", "ownership_watch", "flush", "checkpoint", "startup", "lag_refresh",
    "snapshot_load", "alarms",
)  # fmt: skip
# ``conflict``: a conditional write lost to another writer (fencing, not a storage fault).
ROLLUP_WRITE_RESULTS = ("ok", "error", "conflict")
OWNERSHIP_CHANGES = ("claimed", "released")
# homesec_runtime.accelerators: 1 when in use, 0 for the public path
ACCELERATORS = ("decoder", "fold", "receiver")

_LATENCY_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 300, 600)
_ALARM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60)
_SNAPSHOT_BUCKETS = (1e3, 1e4, 1e5, 1e6, 4e6, 16e6, 64e6)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 300, 500, 1000)


@dataclass(slots=True)
class PartitionWatch:
    """What an owned partition's gauges read at scrape time (sequence numbers; times from the clock)."""

    claimed: float
    progress: float  # when the receiver last delivered an event (the claim time before any)
    confirmed: float  # when the checkpoint last advanced, or covered every event received
    durable: int | None = None  # sequence number the durable checkpoint covers
    received: int | None = None  # last event received
    enqueued: int | None = None  # last event enqueued in the service (receive properties or a refresh)

    def note_enqueued(self, sequence_number: int) -> None:
        if self.enqueued is None or sequence_number > self.enqueued:
            self.enqueued = sequence_number

    def received_batch(self, first: Position, last: Position, now: float) -> None:
        self.progress = now
        self.received = last.sequence_number
        if self.durable is None:  # checkpoint unknown at the claim: count from the first event received
            self.durable = first.sequence_number - 1

    def lag(self) -> float:
        done = self.received if self.received is not None else self.durable
        if self.enqueued is None or done is None:
            return 0.0
        return float(max(0, self.enqueued - done))

    def not_durable(self) -> float:
        if self.received is None or self.durable is None:
            return 0.0
        return float(max(0, self.received - self.durable))


@dataclass(frozen=True, slots=True)
class ConsumerMetrics:
    events_received: Counter
    events_processed: Counter
    readings_rolled_up: Counter
    duplicates_dropped: Counter
    late_readings: Counter
    dead_letters: Counter
    handler_errors: Counter
    batch_size: Histogram
    batch_processing: Histogram
    end_to_end_latency: Histogram
    partition_lag: Gauge
    partitions_owned: Gauge
    ownership_changes: Counter
    partitions_unowned: Gauge
    sequence_gaps: Counter
    sensor_restarts: Counter
    checkpoint_age: Gauge
    events_not_durable: Gauge
    receive_idle: Gauge
    storage_available: Gauge
    checkpoints: Counter
    rollup_writes: Counter
    homes_in_state: Gauge
    last_batch_time: Gauge
    ready: Gauge
    accelerated: Gauge
    alarm_transitions: Counter
    alarms_published: Counter
    alarm_publish_errors: Counter
    alarm_latency: Histogram
    alarms_pending: Gauge
    snapshot_writes: Counter
    snapshot_bytes: Histogram
    auth_failures: Counter
    request_timeouts: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ConsumerMetrics:
        p = "homesec_consumer_"
        metrics = cls(
            events_received=Counter(
                f"{p}events_received", "Events received from Event Hubs", registry=registry
            ),
            events_processed=Counter(f"{p}events_processed", "Events folded into state", registry=registry),
            readings_rolled_up=Counter(
                f"{p}readings_rolled_up", "Readings whose effect is durable in Blob", registry=registry
            ),
            duplicates_dropped=Counter(
                f"{p}duplicates_dropped",
                "Readings with no effect because already applied: resent (same reading_id or sensor, seq "
                "and ts) or redelivered (event at or below the home's last applied position)",
                ["reason"],
                registry=registry,
            ),
            late_readings=Counter(
                f"{p}late_readings",
                "Readings applied to an hour that had already closed (amended into its day blob); not a loss",
                registry=registry,
            ),
            dead_letters=Counter(
                f"{p}dead_letters",
                "Events set aside uncounted in the dead-letter container (poison or outside the horizon)",
                ["reason"],
                registry=registry,
            ),
            handler_errors=Counter(
                f"{p}handler_errors", "Errors in the handler", ["stage"], registry=registry
            ),
            batch_size=Histogram(
                f"{p}batch_size", "Events per received batch", buckets=_BATCH_BUCKETS, registry=registry
            ),
            batch_processing=Histogram(
                f"{p}batch_processing_seconds", "Time to process one batch", registry=registry
            ),
            alarm_transitions=Counter(
                f"{p}alarm_transitions",
                "Sensor alarms raised or cleared, as found while folding",
                ["transition"],
                registry=registry,
            ),
            alarms_published=Counter(
                f"{p}alarms_published", "Alarm events acknowledged by the alarms hub", registry=registry
            ),
            alarm_publish_errors=Counter(
                f"{p}alarm_publish_errors",
                "Failed sends to the alarms hub (the alarms stay pending and are sent again)",
                registry=registry,
            ),
            alarm_latency=ExemplarHistogram(
                f"{p}alarm_latency_seconds",
                "Enqueued time of the reading that raised or cleared an alarm to its alarm event "
                "acknowledged by the alarms hub",
                buckets=_ALARM_BUCKETS,
                registry=registry,
            ),
            alarms_pending=Gauge(
                f"{p}alarms_pending",
                "Alarm events waiting for the alarms hub's acknowledgement",
                registry=registry,
            ),
            snapshot_writes=Counter(
                f"{p}snapshot_writes",
                "Partition state snapshot writes by result (ok, error, conflict)",
                ["result"],
                registry=registry,
            ),
            snapshot_bytes=Histogram(
                f"{p}snapshot_bytes",
                "Size of a written partition state snapshot",
                buckets=_SNAPSHOT_BUCKETS,
                registry=registry,
            ),
            end_to_end_latency=ExemplarHistogram(
                f"{p}end_to_end_latency_seconds",
                "Enqueued time to rollup durable",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            partition_lag=Gauge(
                f"{p}partition_lag_events",
                "Last enqueued minus last processed sequence number",
                ["partition"],
                registry=registry,
            ),
            partitions_owned=Gauge(f"{p}partitions_owned", "Partitions owned by this pod", registry=registry),
            ownership_changes=Counter(
                f"{p}ownership_changes", "Partitions claimed or released", ["change"], registry=registry
            ),
            partitions_unowned=Gauge(
                f"{p}partitions_unowned", "Partitions without a live owner in the store", registry=registry
            ),
            sequence_gaps=Counter(
                f"{p}sequence_gaps", "Per-sensor sequence numbers lost for good", registry=registry
            ),
            sensor_restarts=Counter(
                f"{p}sensor_restarts",
                "Sensors whose sequence numbers started again (reboot, battery swap, replacement)",
                registry=registry,
            ),
            checkpoint_age=Gauge(
                f"{p}checkpoint_age_seconds",
                "Seconds since the partition's checkpoint last covered every event received (computed at "
                "scrape time; from the claim on)",
                ["partition"],
                registry=registry,
            ),
            events_not_durable=Gauge(
                f"{p}events_not_durable",
                "Events received but not yet covered by a durable checkpoint",
                ["partition"],
                registry=registry,
            ),
            receive_idle=Gauge(
                f"{p}partition_receive_idle_seconds",
                "Seconds since the partition last delivered an event to this pod (since the claim if none)",
                ["partition"],
                registry=registry,
            ),
            storage_available=Gauge(
                f"{p}storage_available", "1 while Blob storage answers, 0 while it fails", registry=registry
            ),
            checkpoints=Counter(f"{p}checkpoints", "Checkpoints written", registry=registry),
            rollup_writes=Counter(f"{p}rollup_writes", "Rollup blob writes", ["result"], registry=registry),
            homes_in_state=Gauge(f"{p}homes_in_state", "Homes held in memory", registry=registry),
            last_batch_time=Gauge(
                f"{p}last_batch_timestamp_seconds", "Unix time the last batch was folded", registry=registry
            ),
            ready=Gauge(f"{p}ready", "1 when ready (started, and Blob storage answers)", registry=registry),
            accelerated=Gauge(
                f"{p}accelerated",
                "1 when the accelerator runs (its start-up self-check passed), 0 for the public path",
                ["component"],
                registry=registry,
            ),
            auth_failures=Counter(
                f"{p}auth_failures",
                "Status/history reads refused with 401/403 by the token check, by reason",
                ["reason"],
                registry=registry,
            ),
            request_timeouts=request_timeouts_counter(p, registry),  # the API port's slow clients
        )
        metrics.prime()
        return metrics

    def watch_partition(self, pid: str, watch: PartitionWatch, clock: Callable[[], float]) -> None:
        """Give a claimed partition its lag, checkpoint age, not-durable and idle series, read at scrape."""
        self.partition_lag.labels(partition=pid).set_function(watch.lag)
        self.events_not_durable.labels(partition=pid).set_function(watch.not_durable)
        self.checkpoint_age.labels(partition=pid).set_function(lambda: max(0.0, clock() - watch.confirmed))
        self.receive_idle.labels(partition=pid).set_function(lambda: max(0.0, clock() - watch.progress))

    def unwatch_partition(self, pid: str) -> None:
        for gauge in (self.partition_lag, self.events_not_durable, self.checkpoint_age, self.receive_idle):
            with contextlib.suppress(KeyError):
                gauge.remove(pid)

    def prime(self) -> None:
        """Create every labelled child so dashboards and alerts see zeros, not missing series."""
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason=reason)
        for reason in DUPLICATE_REASONS:
            self.duplicates_dropped.labels(reason=reason)
        for stage in HANDLER_STAGES:
            self.handler_errors.labels(stage=stage)
        for result in ROLLUP_WRITE_RESULTS:
            self.rollup_writes.labels(result=result)
        for change in OWNERSHIP_CHANGES:
            self.ownership_changes.labels(change=change)
        for kind in ("raised", "cleared"):
            self.alarm_transitions.labels(transition=kind)
        for result in ROLLUP_WRITE_RESULTS:
            self.snapshot_writes.labels(result=result)
        for component in ACCELERATORS:
            self.accelerated.labels(component=component).set(0)
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason=reason)
        self.storage_available.set(1)
