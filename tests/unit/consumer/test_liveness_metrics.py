"""Liveness metrics with in-memory ports: every labelled counter primed, per-partition series from the claim
(read at scrape time), checkpoint age growing while storage fails, not-durable events, conflicts apart from
storage errors, and storage health."""

from __future__ import annotations

import asyncio

import pytest
from homesec_consumer.adapters.blob import StorageHealth
from homesec_consumer.errors import StoreUnavailableError
from homesec_consumer.metrics import (
    DEAD_LETTER_REASONS,
    DUPLICATE_REASONS,
    HANDLER_STAGES,
    OWNERSHIP_CHANGES,
    ROLLUP_WRITE_RESULTS,
    ConsumerMetrics,
)
from homesec_consumer.ports import Position
from prometheus_client import CollectorRegistry

from .test_processor import events, make, metric


def _series(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == name
    }


def test_every_labelled_counter_is_primed_with_every_value() -> None:
    registry = CollectorRegistry()
    ConsumerMetrics.create(registry)
    p = "homesec_consumer_"
    for name, label, values in [
        ("rollup_writes_total", "result", ROLLUP_WRITE_RESULTS),
        ("snapshot_writes_total", "result", ROLLUP_WRITE_RESULTS),
        ("alarm_transitions_total", "transition", ("raised", "cleared")),
        ("ownership_changes_total", "change", OWNERSHIP_CHANGES),
        ("dead_letters_total", "reason", DEAD_LETTER_REASONS),
        ("duplicates_dropped_total", "reason", DUPLICATE_REASONS),
        ("handler_errors_total", "stage", HANDLER_STAGES),
    ]:
        assert _series(registry, p + name) == {((label, v),): 0.0 for v in values}, name
    assert {"conflict", "error", "ok"} <= set(ROLLUP_WRITE_RESULTS)
    assert {"claimed", "released"} == set(OWNERSHIP_CHANGES)


async def test_a_claimed_partition_has_all_series_at_once_and_loses_them_when_released() -> None:
    proc, _, _, _, registry = make()
    proc.close_partition("0")
    proc.open_partition("3", checkpoint=Position(41, "4100"))
    names = ("partition_lag_events", "checkpoint_age_seconds", "events_not_durable",
             "partition_receive_idle_seconds")  # fmt: skip
    for name in names:
        assert _series(registry, f"homesec_consumer_{name}") == {(("partition", "3"),): 0.0}, name
    proc.note_enqueued("3", 50)  # what the lag refresh reads from the service; nothing received yet
    assert metric(registry, "homesec_consumer_partition_lag_events", partition="3") == 9
    proc.close_partition("3")
    for name in names:
        assert _series(registry, f"homesec_consumer_{name}") == {}, name


async def test_lag_idle_and_not_durable_follow_receiving_and_checkpoints_at_scrape_time() -> None:
    proc, _, _, cps, registry = make()
    clock = proc._clock
    proc.open_partition("0", checkpoint=Position(-1, "-1"))
    proc.note_enqueued("0", 9)
    clock.now += 40  # type: ignore[attr-defined]
    assert metric(registry, "homesec_consumer_partition_receive_idle_seconds", partition="0") == 40
    await proc.handle_batch("0", events([("h1", 0), ("h2", 1), ("h1", 2)]))
    assert metric(registry, "homesec_consumer_partition_receive_idle_seconds", partition="0") == 0
    assert metric(registry, "homesec_consumer_partition_lag_events", partition="0") == 7
    assert metric(registry, "homesec_consumer_events_not_durable", partition="0") == 3
    await proc.flush_all()
    assert cps.positions["0"].sequence_number == 2
    assert metric(registry, "homesec_consumer_events_not_durable", partition="0") == 0
    assert metric(registry, "homesec_consumer_checkpoint_age_seconds", partition="0") == 0


async def test_checkpoint_age_grows_while_storage_fails_and_resets_once_durable() -> None:
    proc, store, _, _, registry = make()
    clock = proc._clock
    proc.open_partition("0", checkpoint=Position(-1, "-1"))
    await proc.handle_batch("0", events([("h1", 0), ("h2", 1)]))
    store.fail_snapshots = True
    for _ in range(4):  # flushes return (no hang), but nothing becomes durable
        clock.now += 30  # type: ignore[attr-defined]
        await proc.flush_all()
    assert metric(registry, "homesec_consumer_checkpoint_age_seconds", partition="0") == 120
    assert metric(registry, "homesec_consumer_events_not_durable", partition="0") == 2
    assert metric(registry, "homesec_consumer_snapshot_writes_total", result="error") == 4
    store.fail_snapshots = False
    await proc.flush_all()
    assert metric(registry, "homesec_consumer_checkpoint_age_seconds", partition="0") == 0
    assert metric(registry, "homesec_consumer_events_not_durable", partition="0") == 0


async def test_an_idle_partition_keeps_a_current_checkpoint() -> None:
    proc, _, _, _, registry = make()
    clock = proc._clock
    proc.open_partition("0", checkpoint=Position(4, "400"))
    for _ in range(3):
        clock.now += 30  # type: ignore[attr-defined]
        await proc.flush_all()
    assert metric(registry, "homesec_consumer_checkpoint_age_seconds", partition="0") == 0


async def test_conflicts_are_counted_apart_from_storage_errors() -> None:
    proc, store, _, _, registry = make()
    await proc.handle_batch("0", events([("h1", 0)]))
    store.blobs["state/0.state"] = (b"{}", '"other"')  # another writer got there first
    await proc.flush_all()
    assert metric(registry, "homesec_consumer_snapshot_writes_total", result="conflict") == 1
    assert metric(registry, "homesec_consumer_snapshot_writes_total", result="error") == 0


async def test_storage_health_times_out_a_hung_call_and_reports_changes() -> None:
    seen: list[bool] = []
    health = StorageHealth(seen.append)
    with pytest.raises(StoreUnavailableError, match="no answer"):
        await health.call("put", asyncio.sleep(10), timeout=0.01)
    assert not health.available and seen == [False]

    async def answer() -> str:
        return "etag"

    assert await health.call("put", answer(), timeout=1) == "etag"
    assert health.available and seen == [False, True]


async def test_homes_in_state_counts_a_restored_partition_before_its_next_event() -> None:
    proc, _, _, _, registry = make()
    await proc.handle_batch("0", events([("h1", 0), ("h2", 1)]))
    await proc.flush_all()
    proc.close_partition("0")  # the SDK reopens the partition (a transport hiccup): no event follows
    proc.open_partition("0", checkpoint=Position(1, "100"))
    assert await proc.load("0")
    assert metric(registry, "homesec_consumer_homes_in_state") == 2
