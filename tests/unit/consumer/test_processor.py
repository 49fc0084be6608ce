"""The processor with in-memory ports: snapshot-then-checkpoint, dead letters, failures, fencing, takeover,
migration from format-2 status blobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from homesec_consumer.errors import PartitionFencedError, SnapshotFormatError
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import InboundEvent
from homesec_consumer.ports import Position
from homesec_consumer.processor import ProcessorConfig, RollupProcessor
from homesec_domain.events import encode_reading
from homesec_domain.fold import FoldConfig, HomeState
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import status_doc, unpack
from prometheus_client import CollectorRegistry

from .fakes import MemoryCheckpoints, MemoryDeadLetters, MemoryRollupStore

T0 = datetime(2026, 11, 25, 9, 50, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp() + 5

    def __call__(self) -> float:
        return self.now


def make(
    store: MemoryRollupStore | None = None, max_homes: int = 0, *, initial: bool = True
) -> tuple[RollupProcessor, MemoryRollupStore, MemoryDeadLetters, MemoryCheckpoints, CollectorRegistry]:
    """A processor owning partition "0" (``initial``: claimed at the initial checkpoint)."""
    store = store or MemoryRollupStore()
    dls, cps, registry = MemoryDeadLetters(), MemoryCheckpoints(), CollectorRegistry()
    proc = RollupProcessor(
        store, dead_letters=dls, checkpoints=cps, metrics=ConsumerMetrics.create(registry),
        config=ProcessorConfig(FoldConfig(lateness_ms=120_000), flush_max_homes=max_homes), clock=Clock(),
    )  # fmt: skip
    proc.open_partition("0", initial=initial)
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


async def test_flush_writes_the_snapshot_then_checkpoints_the_last_event() -> None:
    proc, store, _, cps, registry = make()
    await proc.handle_batch("0", events([("h1", 0), ("h2", 0), ("h1", 1)]))
    assert cps.positions == {} and store.writes == 0
    assert metric(registry, "homesec_consumer_last_batch_timestamp_seconds") == T0.timestamp() + 5
    await proc.flush_all()
    assert cps.positions["0"] == Position(2, "200")
    assert store.status("h1")["sensors"][0]["seq"] == 1 and store.snapshot_writes == 1
    assert metric(registry, "homesec_consumer_readings_rolled_up_total") == 3
    assert metric(registry, "homesec_consumer_snapshot_writes_total", result="ok") == 1
    assert metric(registry, "homesec_consumer_homes_in_state") == 2
    assert store.writes == 1  # one request for the whole partition, not one per home


async def test_status_is_current_before_any_flush() -> None:
    proc, store, _, _, _ = make()
    await proc.handle_batch("0", events([("h1", 0), ("h1", 1)]))
    status = proc.partitions["0"].status("h1")
    assert status is not None and status["sensors"][0]["seq"] == 1 and "state" not in status
    assert proc.partitions["0"].status("nobody") is None and store.writes == 0


async def test_duplicates_are_dropped_and_counted_and_write_nothing() -> None:
    proc, store, _, cps, registry = make()
    batch = events([("h1", 0)])
    await proc.handle_batch("0", batch)
    await proc.flush_all()
    redelivered = [InboundEvent(batch[0].body, Position(1, "100"), batch[0].enqueued_ms)]
    await proc.handle_batch("0", redelivered)
    writes = store.writes
    await proc.flush_all()
    assert store.writes == writes  # nothing changed, nothing written
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


async def test_a_failed_snapshot_holds_the_checkpoint_until_one_succeeds() -> None:
    proc, store, _, cps, registry = make()
    await proc.handle_batch("0", events([("h1", 0)]))
    await proc.flush_all()
    store.fail_snapshots = True
    await proc.handle_batch("0", events([("h2", 1), ("h1", 2)], start_seq=1))
    await proc.flush_all()
    assert cps.positions["0"] == Position(0, "0")
    assert metric(registry, "homesec_consumer_snapshot_writes_total", result="error") == 1
    store.fail_snapshots = False
    await proc.flush_all()
    assert cps.positions["0"] == Position(2, "200")
    assert store.status("h2")["sensors"][0]["seq"] == 1
    assert metric(registry, "homesec_consumer_readings_rolled_up_total") == 3


async def test_merge_budget_defers_day_merges_not_the_checkpoint() -> None:
    proc, store, _, cps, _ = make(max_homes=1)
    await proc.handle_batch("0", events([(h, m) for m in (5, 9, 15) for h in ("h1", "h2")]))
    await proc.flush_all()
    assert cps.positions["0"] == Position(5, "500")  # the snapshot holds both homes' closed hours
    assert [await store.load_day(h, "2026-11-25") is not None for h in ("h1", "h2")] == [True, False]
    await proc.flush_all()
    day = await store.load_day("h2", "2026-11-25")
    assert day is not None and day.doc["hours"]["09"]["counts"] == {"door": 2}


async def test_conflicting_write_fences_the_partition_and_the_next_batch_raises() -> None:
    store = MemoryRollupStore()
    a, _, _, cps_a, _ = make(store)
    await a.handle_batch("0", events([("h1", 0)]))
    await a.flush_all()
    b, _, _, _, _ = make(store, initial=False)
    await a.handle_batch("0", events([("h1", 1)], start_seq=1))
    await b.handle_batch("0", events([("h1", 1)], start_seq=1))  # b took over and loaded the snapshot
    await b.handle_batch("0", events([("h1", 2)], start_seq=2))
    await b.flush_all()
    await a.flush_all()  # a is stale: its conditional write loses
    assert cps_a.positions["0"] == Position(0, "0")
    with pytest.raises(PartitionFencedError):
        await a.handle_batch("0", [])
    assert store.status("h1")["sensors"][0]["seq"] == 2


def blobs(store: MemoryRollupStore) -> dict[str, object]:
    """The durable documents: every home's status in the snapshot, and the day blobs without their merge
    stamps (which record when each entry was flushed)."""
    out: dict[str, object] = {}
    for name, (body, _) in store.blobs.items():
        if "/hourly/" in name:
            doc = orjson.loads(body)
            doc["hours"] = {hh: {k: v for k, v in h.items() if k not in ("rev", "stream")}
                            for hh, h in doc["hours"].items()}  # fmt: skip
            out[name] = doc
    for home_id, packed in store.homes().items():
        state = unpack(home_id, packed)
        state.closed = []  # closed entries merged already (the day blobs) may stay until the next snapshot
        out[home_id] = status_doc(state)
    return out


async def straight(specs: list[tuple[str, int]]) -> MemoryRollupStore:
    """The reference rollups: every event in one batch through a fresh processor, flushed once."""
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
    second, _, _, _, _ = make(store, initial=False)
    for start in (150, 0):  # replay from a checkpoint older than the state, then from the very beginning
        await second.handle_batch("0", evs[start:])
        await second.flush_all()
        assert blobs(store) == blobs(reference)


async def test_closed_hours_move_to_day_documents_and_the_status_view() -> None:
    proc, store, _, _, _ = make()
    await proc.handle_batch("0", events([("h1", 5), ("h1", 9), ("h1", 15)]))  # 09:55, 09:59, 10:05
    await proc.flush_all()
    day = await store.load_day("h1", "2026-11-25")
    assert day is not None and list(day.doc["hours"]) == ["09"]
    assert day.doc["hours"]["09"]["counts"] == {"door": 2}
    view = orjson.loads(store.blobs["homes/h1/status.json"][0])
    assert [h["hour"] for h in view["open_hours"]] == ["2026-11-25T10:00:00.000Z"] and "state" not in view


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


async def test_a_partition_at_its_initial_checkpoint_reads_no_status() -> None:
    proc, store, _, _, _ = make()
    await proc.handle_batch("0", events([("h1", 5), ("h2", 6)]))
    await proc.flush_all()
    assert store.status_reads == 0


async def test_format_2_status_blobs_are_migrated_on_first_read() -> None:
    """A deployment of per-home status blobs (format 2, the packed state inside) and a checkpoint: the first
    owner without a snapshot reads each home's status once, and the snapshot carries on from there."""
    specs = [("h1", 0), ("h2", 1), ("h1", 2), ("h2", 3)]
    reference = await straight(specs)
    store = MemoryRollupStore()
    old, _, _, _, _ = make()
    await old.handle_batch("0", events(specs[:2]))
    for home in ("h1", "h2"):  # what the format-2 consumer left: status blobs with the packed state
        doc = status_doc(old.partitions["0"].state_of(home))
        store.blobs[f"homes/{home}/status.json"] = (orjson.dumps(doc), '"0x0"')
    proc, _, _, _, _ = make(store, initial=False)
    await proc.handle_batch("0", events(specs))  # replayed from the checkpoint before them
    await proc.flush_all()
    assert store.status_reads == 2 and blobs(store) == blobs(reference)
    later, _, _, _, _ = make(store, initial=False)
    await later.handle_batch("0", events([("h3", 4)], start_seq=4))
    assert later.partitions["0"].legacy and store.status_reads == 3  # homes never seen: still looked up


async def test_a_status_view_without_state_is_not_taken_for_a_state() -> None:
    store = MemoryRollupStore()
    store.blobs["homes/h1/status.json"] = (orjson.dumps({"home_id": "h1", "sensors": []}), '"0x0"')
    proc, _, _, _, _ = make(store, initial=False)
    await proc.handle_batch("0", events([("h1", 0)]))
    assert proc.partitions["0"].state_of("h1").sensors["door-1"].last_seq == 0


async def test_closed_hours_in_a_snapshot_are_merged_by_the_next_owner() -> None:
    specs = [("h1", 5), ("h1", 9), ("h1", 15)]  # the 09:00 hour closes
    store = MemoryRollupStore()
    first, _, _, _, _ = make(store)
    await first.handle_batch("0", events(specs))
    store.fail_days.add("h1")
    await first.flush_all()  # the snapshot lands (the hour inside), the day merge fails, the owner goes away
    assert await store.load_day("h1", "2026-11-25") is None
    store.fail_days.clear()
    second, _, _, _, _ = make(store, initial=False)
    await second.handle_batch("0", events(specs))  # a replay from the checkpoint: nothing new for the home
    await second.flush_all()
    day = await store.load_day("h1", "2026-11-25")
    assert day is not None and day.doc["hours"]["09"]["counts"] == {"door": 2}


async def test_a_timed_out_snapshot_that_landed_later_is_recognised_as_ours_not_a_conflict() -> None:
    """Storage hangs: a snapshot write times out here but the store applies it afterwards (its etag moves
    on). The next write finds that body in the blob: it was this writer's own, so no fencing."""
    proc, store, _, cps, registry = make()
    await proc.handle_batch("0", events([("h1", 0)]))
    await proc.flush_all()
    store.land_then_fail = True
    await proc.handle_batch("0", events([("h1", 1)], start_seq=1))
    await proc.flush_all()  # landed, reported as a timeout: the checkpoint stays
    assert cps.positions["0"] == Position(0, "0")
    store.land_then_fail = False
    await proc.handle_batch("0", events([("h1", 2)], start_seq=2))
    await proc.flush_all()
    assert metric(registry, "homesec_consumer_snapshot_writes_total", result="conflict") == 0
    assert not proc.partitions["0"].fenced
    assert cps.positions["0"] == Position(2, "200")
    assert store.status("h1")["sensors"][0]["seq"] == 2
    assert not proc.partitions["0"].in_doubt  # forgotten once a write is known durable


async def test_a_blob_holding_another_writers_body_still_fences_despite_writes_in_doubt() -> None:
    store = MemoryRollupStore()
    a, _, _, _, registry = make(store)
    await a.handle_batch("0", events([("h1", 0)]))
    await a.flush_all()
    b, _, _, _, _ = make(store, initial=False)
    store.land_then_fail = True
    await a.handle_batch("0", events([("h1", 1)], start_seq=1))
    await a.flush_all()  # in doubt for a
    store.land_then_fail = False
    await b.handle_batch("0", events([("h1", 0), ("h1", 1), ("h1", 3)]))  # b took over, wrote after a
    await b.flush_all()
    await a.handle_batch("0", events([("h1", 2)], start_seq=2))
    await a.flush_all()
    assert metric(registry, "homesec_consumer_snapshot_writes_total", result="conflict") == 1
    assert a.partitions["0"].fenced


async def test_a_snapshot_not_in_format_3_is_refused_with_a_clear_error() -> None:
    store = MemoryRollupStore()
    store.blobs["state/0.state"] = (b"{}", '"0x1"')
    proc, _, _, _, _ = make(store, initial=False)
    with pytest.raises(SnapshotFormatError, match="not a format-3 state snapshot"):
        await proc.handle_batch("0", events([("h1", 0)]))


def test_home_state_round_trips_through_a_snapshot() -> None:
    from homesec_consumer import snapshot

    header = snapshot.SnapshotHeader("3", Position(7, "70"), 1234, True, ["h1"], [])
    homes = {"h1": b"x" * 300, "h-\u00e9": b""}
    assert snapshot.decode(snapshot.encode(header, homes)) == (header, homes)
    with pytest.raises(SnapshotFormatError, match="corrupt"):
        snapshot.decode(snapshot.encode(header, homes)[:-5])
    assert HomeState("h1").home_id == "h1"
