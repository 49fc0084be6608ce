"""The processor with in-memory ports: write-then-checkpoint, dead letters, failures, fencing, takeover."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from homesec_consumer.errors import PartitionFencedError
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import InboundEvent
from homesec_consumer.ports import Position
from homesec_consumer.processor import ProcessorConfig, RollupProcessor
from homesec_domain.events import encode_reading
from homesec_domain.fold import FoldConfig
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import pack, state_from_status
from prometheus_client import CollectorRegistry

from .fakes import MemoryCheckpoints, MemoryDeadLetters, MemoryRollupStore

T0 = datetime(2026, 11, 25, 9, 50, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp() + 5

    def __call__(self) -> float:
        return self.now


def make(
    store: MemoryRollupStore | None = None, max_homes: int = 0
) -> tuple[RollupProcessor, MemoryRollupStore, MemoryDeadLetters, MemoryCheckpoints, CollectorRegistry]:
    store = store or MemoryRollupStore()
    dls, cps, registry = MemoryDeadLetters(), MemoryCheckpoints(), CollectorRegistry()
    proc = RollupProcessor(
        store, dead_letters=dls, checkpoints=cps, metrics=ConsumerMetrics.create(registry),
        config=ProcessorConfig(FoldConfig(lateness_ms=120_000), flush_max_homes=max_homes), clock=Clock(),
    )  # fmt: skip
    return proc, store, dls, cps, registry


def events(specs: list[tuple[str, int]], start_seq: int = 0) -> list[InboundEvent]:
    """(home, minute) pairs -> one door reading each, as received events with consecutive positions."""
    out = []
    for i, (home, minute) in enumerate(specs):
        r = Reading(
            reading_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{home}/{minute}"), home_id=home, sensor_id="door-1",
            sensor_type=SensorType.DOOR, ts=T0 + timedelta(minutes=minute), state="open", seq=minute,
        )  # fmt: skip
        seq = start_seq + i
        out.append(
            InboundEvent(encode_reading(r), Position(seq, str(seq * 100)), int(r.ts.timestamp() * 1000))
        )
    return out


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


async def test_flush_writes_rollups_then_checkpoints_the_last_event() -> None:
    proc, store, _, cps, registry = make()
    proc.open_partition("0")
    await proc.handle_batch("0", events([("h1", 0), ("h2", 0), ("h1", 1)]))
    assert cps.positions == {} and store.writes == 0
    assert metric(registry, "homesec_consumer_last_batch_timestamp_seconds") == T0.timestamp() + 5
    await proc.flush_all()
    assert cps.positions["0"] == Position(2, "200")
    assert store.status("h1")["sensors"][0]["seq"] == 1
    assert metric(registry, "homesec_consumer_readings_rolled_up_total") == 3
    assert metric(registry, "homesec_consumer_rollup_writes_total", result="ok") == 2
    assert metric(registry, "homesec_consumer_homes_in_state") == 2


async def test_duplicates_are_dropped_and_counted_and_do_not_dirty_the_home() -> None:
    proc, store, _, cps, registry = make()
    batch = events([("h1", 0)])
    await proc.handle_batch("0", batch)
    await proc.flush_all()
    redelivered = [InboundEvent(batch[0].body, Position(1, "100"), batch[0].enqueued_ms)]
    await proc.handle_batch("0", redelivered)
    writes = store.writes
    await proc.flush_all()
    assert store.writes == writes  # nothing dirty, nothing written
    assert cps.positions["0"] == Position(1, "100")  # but the checkpoint moves past the duplicate
    assert metric(registry, "homesec_consumer_duplicates_dropped_total", reason="resent") == 1
    await proc.handle_batch("0", batch)  # the same event again (a replay): skipped by its position
    assert metric(registry, "homesec_consumer_duplicates_dropped_total", reason="redelivered") == 1


async def test_poison_events_are_dead_lettered_with_reason_and_never_block() -> None:
    proc, _, dls, cps, registry = make()
    good = events([("h1", 0)])[0]
    poison = [
        InboundEvent(b"not json", Position(1, "100")),
        InboundEvent(orjson.dumps({"schema_version": 9}), Position(2, "200")),
        InboundEvent(orjson.dumps({"schema_version": 1, "home_id": "h1"}), Position(3, "300")),
    ]
    await proc.handle_batch("0", [good, *poison])
    await proc.flush_all()
    assert sorted(orjson.loads(b)["reason"] for b in dls.items.values()) == [
        "invalid",
        "schema_version",
        "undecodable",
    ]
    assert "0/00000000000000000001.json" in dls.items
    assert cps.positions["0"] == Position(3, "300")
    assert metric(registry, "homesec_consumer_dead_letters_total", reason="undecodable") == 1


async def test_failed_write_holds_the_checkpoint_before_that_home_until_it_succeeds() -> None:
    proc, store, _, cps, registry = make()
    await proc.handle_batch("0", events([("h1", 0)]))
    await proc.flush_all()
    store.fail_writes.add("h2")
    await proc.handle_batch("0", events([("h2", 1), ("h1", 2)], start_seq=1))
    await proc.flush_all()
    assert cps.positions["0"] == Position(0, "0")  # h2's reading (seq 1) is not durable
    assert metric(registry, "homesec_consumer_rollup_writes_total", result="error") == 1
    store.fail_writes.clear()
    await proc.flush_all()
    assert cps.positions["0"] == Position(2, "200")
    assert store.status("h2")["sensors"][0]["seq"] == 1


async def test_flush_budget_defers_homes_and_checkpoints_before_the_oldest_deferred() -> None:
    proc, store, _, cps, _ = make(max_homes=1)
    await proc.handle_batch("0", events([("h1", 0), ("h2", 0), ("h3", 0)]))
    await proc.flush_all()
    assert store.writes == 1 and cps.positions["0"] == Position(0, "0")  # h2 (seq 1) waits
    await proc.flush_all()
    assert cps.positions["0"] == Position(1, "100")  # h3 (seq 2) still waits
    await proc.flush_all()
    assert cps.positions["0"] == Position(2, "200")


async def test_conflicting_write_fences_the_partition_and_the_next_batch_raises() -> None:
    store = MemoryRollupStore()
    a, _, _, cps_a, _ = make(store)
    b, _, _, _, _ = make(store)
    await a.handle_batch("0", events([("h1", 0)]))
    await a.flush_all()
    await a.handle_batch("0", events([("h1", 1)], start_seq=1))
    await b.handle_batch("0", events([("h1", 1)], start_seq=1))  # b took over and loaded h1
    await b.handle_batch("0", events([("h1", 2)], start_seq=2))
    await b.flush_all()
    await a.flush_all()  # a is stale: its conditional write loses
    assert cps_a.positions["0"] == Position(0, "0")
    with pytest.raises(PartitionFencedError):
        await a.handle_batch("0", [])
    assert store.status("h1")["sensors"][0]["seq"] == 2


def blobs(store: MemoryRollupStore) -> dict[str, object]:
    """The stored documents, day entries without their merge stamps (which record when each was flushed)."""
    out: dict[str, object] = {}
    for name, (body, _) in store.blobs.items():
        doc = orjson.loads(body)
        if "/hourly/" in name:
            doc["hours"] = {hh: {k: v for k, v in h.items() if k not in ("rev", "stream")}
                            for hh, h in doc["hours"].items()}  # fmt: skip
        else:  # closed entries stay in the status until its next write (merged already: the day blobs)
            state = state_from_status(doc)
            state.closed = []
            doc["state"] = pack(state)
        out[name] = doc
    return out


async def straight(specs: list[tuple[str, int]]) -> MemoryRollupStore:
    """The reference rollups: every event in one batch through a fresh processor (which reads every home's
    status), flushed once."""
    proc, store, _, _, _ = make()
    await proc.handle_batch("0", events(specs))
    await proc.flush_all()
    return store


async def test_new_owner_replaying_from_an_old_checkpoint_writes_identical_blobs() -> None:
    specs = [(f"h{i % 5}", m) for m in range(0, 200, 3) for i in range(5)]
    reference = await straight(specs)

    store = MemoryRollupStore()
    first, _, _, _, _ = make(store)
    evs = events(specs)
    await first.handle_batch("0", evs[:200])
    await first.flush_all()
    await first.handle_batch("0", evs[200:260])  # crash: these effects were never written
    second, _, _, _, _ = make(store)
    for start in (150, 0):  # replay from a checkpoint older than the state, then from the very beginning
        await second.handle_batch("0", evs[start:])
        await second.flush_all()
        assert blobs(store) == blobs(reference)


async def test_closed_hours_move_to_day_documents() -> None:
    proc, store, _, _, _ = make()
    await proc.handle_batch("0", events([("h1", 5), ("h1", 9), ("h1", 15)]))  # 09:55, 09:59, 10:05
    await proc.flush_all()
    day = await store.load_day("h1", "2026-11-25")
    assert day is not None and list(day.doc["hours"]) == ["09"]
    assert day.doc["hours"]["09"]["counts"] == {"door": 2}
    status = store.status("h1")
    assert [h["hour"] for h in status["open_hours"]] == ["2026-11-25T10:00:00.000Z"]


async def test_after_stop_intake_events_are_ignored_and_not_checkpointed() -> None:
    proc, _, _, cps, _ = make()
    await proc.handle_batch("0", events([("h1", 0)]))
    proc.stop_intake()
    await proc.handle_batch("0", events([("h2", 0)], start_seq=1))
    await proc.flush_all(force=True)
    assert cps.positions["0"] == Position(0, "0")


async def test_close_partition_drops_its_state() -> None:
    proc, _, _, _, registry = make()
    await proc.handle_batch("0", events([("h1", 0)]))
    proc.close_partition("0")
    assert proc.partitions == {}
    assert metric(registry, "homesec_consumer_ownership_changes_total", change="released") == 1
    assert metric(registry, "homesec_consumer_homes_in_state") == 0


async def test_presumed_new_homes_skip_the_status_read_and_reach_the_same_blobs() -> None:
    specs = [("h1", 5), ("h2", 6), ("h1", 9), ("h1", 15), ("h2", 16)]  # both homes' 09:00 hours close
    plain = await straight(specs)

    proc, store, _, cps, _ = make()
    proc.open_partition("0", presume_new=True)
    await proc.handle_batch("0", events(specs))
    await proc.flush_all()
    assert blobs(store) == blobs(plain) and store.status_reads == 0
    # Each home had a closed hour: its status was created (hour inside) before the day merge, as always.
    assert store.writes == plain.writes
    assert cps.positions["0"] == Position(4, "400")


async def test_a_presumed_new_home_that_exists_fences_the_partition_and_the_restart_reads_status() -> None:
    specs = [(f"h{i % 3}", m) for m in range(0, 120, 3) for i in range(3)]
    reference = await straight(specs)

    store = MemoryRollupStore()
    earlier, _, _, _, _ = make(store)  # an earlier owner wrote rollups but crashed before checkpointing
    await earlier.handle_batch("0", events(specs)[:60])
    await earlier.flush_all()
    store.status_reads = 0
    # Since then the first 6 events expired (retention): folded from an empty state, the 09:00 hour is short.
    proc, _, _, cps, _ = make(store)
    proc.open_partition("0", presume_new=True)
    await proc.handle_batch("0", events(specs)[6:])
    await proc.flush_all()
    assert proc.partitions["0"].fenced and "0" not in cps.positions
    with pytest.raises(PartitionFencedError):
        await proc.handle_batch("0", events(specs)[6:7])
    proc.close_partition("0")  # what the SDK does after the error; it restarts from the checkpoint
    assert not proc.open_partition("0", presume_new=True).presume_new
    await proc.handle_batch("0", events(specs)[6:])
    await proc.flush_all()
    assert store.status_reads == 3 and blobs(store) == blobs(reference)


async def test_closed_hours_kept_in_a_created_status_are_written_by_the_next_owner() -> None:
    specs = [("h1", 5), ("h1", 9), ("h1", 15)]  # the 09:00 hour closes
    store = MemoryRollupStore()
    first, _, _, cps, _ = make(store)
    first.open_partition("0", presume_new=True)
    await first.handle_batch("0", events(specs))
    store.fail_days.add("h1")
    await first.flush_all()  # the create lands (the hour inside), the day merge fails, the owner goes away
    assert await store.load_day("h1", "2026-11-25") is None and "0" not in cps.positions
    store.fail_days.clear()
    second, _, _, _, _ = make(store)
    await second.handle_batch("0", events(specs))  # a replay from the checkpoint: nothing new for the home
    await second.flush_all()
    day = await store.load_day("h1", "2026-11-25")
    assert day is not None and day.doc["hours"]["09"]["counts"] == {"door": 2}


async def test_a_timed_out_write_that_landed_later_is_recognised_as_ours_not_a_conflict() -> None:
    """Storage hangs: a status write times out here but the store applies it afterwards (its etag moves on).
    The next write finds that body in the blob: it was this writer's own, so no fencing, nothing lost."""
    proc, store, _, cps, registry = make()
    await proc.handle_batch("0", events([("h1", 0)]))
    await proc.flush_all()
    store.land_then_fail.add("h1")
    await proc.handle_batch("0", events([("h1", 1)], start_seq=1))
    await proc.flush_all()  # landed, reported as a timeout: h1 stays dirty, the checkpoint stays
    assert cps.positions["0"] == Position(0, "0")
    store.land_then_fail.clear()
    await proc.handle_batch("0", events([("h1", 2)], start_seq=2))
    await proc.flush_all()
    assert metric(registry, "homesec_consumer_rollup_writes_total", result="conflict") == 0
    assert not proc.partitions["0"].fenced
    assert cps.positions["0"] == Position(2, "200")
    assert store.status("h1")["sensors"][0]["seq"] == 2
    assert not proc.partitions["0"].in_doubt  # forgotten once a write is known durable


async def test_a_blob_holding_another_writers_body_still_fences_despite_writes_in_doubt() -> None:
    store = MemoryRollupStore()
    a, _, _, _, registry = make(store)
    b, _, _, _, _ = make(store)
    await a.handle_batch("0", events([("h1", 0)]))
    await a.flush_all()
    store.land_then_fail.add("h1")
    await a.handle_batch("0", events([("h1", 1)], start_seq=1))
    await a.flush_all()  # in doubt for a
    store.land_then_fail.clear()
    await b.handle_batch("0", events([("h1", 0), ("h1", 1), ("h1", 3)]))  # b took over, wrote after a
    await b.flush_all()
    await a.handle_batch("0", events([("h1", 2)], start_seq=2))
    await a.flush_all()
    assert metric(registry, "homesec_consumer_rollup_writes_total", result="conflict") == 1
    assert a.partitions["0"].fenced
