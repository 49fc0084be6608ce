"""A 202 means counted: through the real processor, with crashes, replays from arbitrary checkpoints, storage
and alarms-hub failures and merge budgets, every distinct reading (restarts, hours-late arrivals and re-sends
included) ends up in its home's rollups exactly once, as a simple reference computed here from the readings
says, and every alarm transition is in the alarms hub exactly once."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from homesec_consumer.alarm_outbox import AlarmOutbox
from homesec_consumer.errors import PartitionFencedError
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import InboundEvent
from homesec_consumer.ports import Position
from homesec_consumer.processor import ProcessorConfig, RollupProcessor
from homesec_domain.events import encode_reading
from homesec_domain.fold import FoldConfig, to_ms
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import amendment_doc, day_of, hh_of, merge_day, status_doc, unpack
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from .fakes import MemoryAlarmHub, MemoryCheckpoints, MemoryDeadLetters, MemoryRollupStore

T0 = datetime(2026, 11, 25, 22, 10, tzinfo=UTC)  # the stream crosses midnight: two day blobs per home
CFG = FoldConfig(lateness_ms=120_000, resend_window_ms=300_000)
HOMES = ("h1", "h2", "h3")
SENSORS = (("door-1", SensorType.DOOR), ("smoke-1", SensorType.SMOKE), ("co-1", SensorType.CO))
ALARMING = (SensorType.GLASS_BREAK, SensorType.SMOKE, SensorType.CO)


@st.composite
def sensor_readings(draw: st.DrawFn, home: str, sensor_id: str, kind: SensorType) -> list[Reading]:
    out: list[Reading] = []
    t, seq = draw(st.integers(0, 600)), draw(st.integers(0, 9))
    for k in range(draw(st.integers(0, 14))):
        t += draw(st.integers(1, 1200))
        seq = draw(st.integers(0, 2)) if draw(st.integers(0, 9)) == 0 else seq + 1  # restarts
        if kind is SensorType.DOOR:
            value, state = None, draw(st.sampled_from(["open", "closed"]))
        elif kind is SensorType.SMOKE:
            value, state = None, draw(st.sampled_from(["ok", "ok", "alarm"]))
        else:
            value, state = draw(st.integers(0, 90_000)) / 1000, None
        out.append(Reading(
            reading_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{home}/{sensor_id}/{k}"), home_id=home,
            sensor_id=sensor_id, sensor_type=kind, ts=T0 + timedelta(seconds=t), value=value, state=state,
            seq=seq,
        ))  # fmt: skip
    return out


@st.composite
def workload(draw: st.DrawFn) -> tuple[list[Reading], list[InboundEvent]]:
    readings = [r for h in HOMES for sid, kind in SENSORS for r in draw(sensor_readings(h, sid, kind))]
    arrivals: list[tuple[int, int, Reading]] = []
    for i, r in enumerate(readings):
        first = to_ms(r.ts) + draw(st.sampled_from([0, 2_000, 30_000, 900_000, 7_200_000]))  # some hours late
        arrivals.append((first, i, r))
        for _ in range(draw(st.integers(0, 1))):  # a re-send: same reading, or a fresh ID
            fresh = uuid.uuid5(uuid.NAMESPACE_URL, f"resent/{i}")
            copy = r if draw(st.booleans()) else r.model_copy(update={"reading_id": fresh})
            arrivals.append((first + draw(st.integers(0, CFG.resend_window_ms)), i, copy))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    events = [
        InboundEvent(encode_reading(r), Position(n, str(n * 10)), at) for n, (at, _, r) in enumerate(arrivals)
    ]
    return readings, events


Action = tuple[str, int]
ACTIONS = st.lists(
    st.tuples(st.sampled_from(["batch", "batch", "batch", "flush", "crash", "rewind", "outage"]),
              st.integers(1, 40)),
    min_size=1, max_size=40,
)  # fmt: skip


class Consumer:
    """One consumer process after another over the same store, checkpoints and alarms hub, as crashes would
    have it. The clock moves on by a minute between processes (events are enqueued before each restart)."""

    def __init__(self, store: MemoryRollupStore, checkpoints: MemoryCheckpoints, hub: MemoryAlarmHub) -> None:
        self.store, self.checkpoints, self.hub = store, checkpoints, hub
        self.now = LAST_ENQUEUED
        hub.clock = lambda: self.now
        self.start(max_homes=0)

    def start(self, max_homes: int, rewind_to: int | None = None) -> None:
        self.now += 60
        metrics = ConsumerMetrics.create(CollectorRegistry())
        self.proc = RollupProcessor(
            self.store, dead_letters=MemoryDeadLetters(), checkpoints=self.checkpoints, metrics=metrics,
            clock=lambda: self.now, config=ProcessorConfig(CFG, flush_max_homes=max_homes),
            alarms=AlarmOutbox(self.hub, metrics, lambda: self.now),
        )  # fmt: skip
        at = self.checkpoints.positions.get("0")
        self.proc.open_partition("0", initial=at is None)
        self.next = 0 if at is None else at.sequence_number + 1
        if rewind_to is not None:
            self.next = min(self.next, rewind_to)

    async def receive(self, events: list[InboundEvent], count: int) -> None:
        batch = events[self.next : self.next + count]
        try:
            await self.proc.handle_batch("0", batch)
        except PartitionFencedError:
            self.reopen()
            return
        self.next += len(batch)

    def reopen(self) -> None:
        """What the SDK does after a fenced partition's error: close it, claim it again, restart from the
        checkpoint."""
        self.proc.close_partition("0")
        at = self.checkpoints.positions.get("0")
        self.proc.open_partition("0", initial=at is None)
        self.next = 0 if at is None else at.sequence_number + 1

    async def drain(self, events: list[InboundEvent]) -> None:
        self.hub.fail = self.hub.land_then_fail = False
        while True:
            while self.next < len(events):
                await self.receive(events, 50)
            await self.proc.flush_all(force=True)
            self.now += 60  # past the claim's settling time: held alarms go out
            await self.proc.publish_pending()
            part = self.proc.partitions["0"]
            if not part.fenced and not part.outbox:
                return
            if part.fenced:
                self.reopen()


LAST_ENQUEUED = (T0 + timedelta(days=2)).timestamp()  # after every event's enqueued time


async def run(events: list[InboundEvent], actions: list[Action]) -> tuple[MemoryRollupStore, MemoryAlarmHub]:
    store, checkpoints, hub = MemoryRollupStore(), MemoryCheckpoints(), MemoryAlarmHub()
    consumer = Consumer(store, checkpoints, hub)
    for action, n in actions:
        store.fail_snapshots = hub.fail = hub.land_then_fail = False
        store.fail_days.clear()
        if action == "batch":
            await consumer.receive(events, n)
        elif action == "flush":
            await consumer.proc.flush_all()
        elif action == "outage":  # the snapshot, one home's day merges, or the alarms hub fail for a while
            store.fail_snapshots = n % 4 == 1
            if n % 4 == 2:
                store.fail_days.add(HOMES[n % 3])
            hub.fail = n % 4 == 3
            hub.land_then_fail = n % 4 == 0
            await consumer.receive(events, n)
            await consumer.proc.flush_all()
        else:  # a crash (a restart from the checkpoint) or a replay from an older position
            consumer.start(max_homes=n % 3, rewind_to=n * 7 if action == "rewind" else None)
    store.fail_snapshots = False
    store.fail_days.clear()
    await consumer.drain(events)
    return store, hub


def stat(values: list[int]) -> dict[str, Any] | None:
    if not values:
        return None
    total = sum(values)
    return {"n": len(values), "min": min(values) / 1000, "max": max(values) / 1000,
            "mean": round(total / len(values)) / 1000, "sum": total / 1000}  # fmt: skip


def reference(readings: list[Reading]) -> dict[str, Any]:
    """Per home: every hour's rollup and every sensor's newest reading, from the distinct readings."""
    hours: dict[tuple[str, str], list[Reading]] = defaultdict(list)
    newest: dict[tuple[str, str], Reading] = {}
    for r in readings:
        hours[(r.home_id, r.ts.strftime("%Y-%m-%dT%H:00:00.000Z"))].append(r)
        key = (r.ts, r.seq or 0, r.state or "", r.value if r.value is not None else float("-inf"))
        old = newest.get((r.home_id, r.sensor_id))
        if old is None or key > (old.ts, old.seq or 0, old.state or "", old.value or float("-inf")):
            newest[(r.home_id, r.sensor_id)] = r
    out: dict[str, Any] = {"hours": {}, "sensors": {}}
    for (home, hour), rs in hours.items():
        minutes = [0] * 60
        for r in rs:
            minutes[r.ts.minute] = min(255, minutes[r.ts.minute] + 1)
        co = [round(r.value * 1000) for r in rs if r.sensor_type is SensorType.CO and r.value is not None]
        alarms = [
            r for r in rs if r.state == "alarm" or (r.sensor_type is SensorType.CO and (r.value or 0) >= 50)
        ]
        out["hours"][(home, hour)] = {
            "hour": hour, "total": len(rs), "minutes": minutes,
            "counts": {k.value: n for k in SensorType if (n := sum(r.sensor_type is k for r in rs))},
            "alarms": {k.value: n for k in ALARMING if (n := sum(r.sensor_type is k for r in alarms))},
            "co_ppm": stat(co),
            "temperature_c": None,
        }  # fmt: skip
    for (home, sensor), r in newest.items():
        out["sensors"][(home, sensor)] = (
            r.state,
            r.value,
            r.seq,
            r.ts.isoformat(timespec="milliseconds")[:23],
        )
    return out


def reference_alarms(events: list[InboundEvent]) -> list[str]:
    """Every alarm transition in partition order: a sensor's alarm flag (its newest applied reading's, in
    the fold's "last" order) changes, counting each distinct reading once (its first arrival)."""
    seen: set[object] = set()
    newest: dict[tuple[str, str], tuple[tuple[int, int, str, float], bool]] = {}
    out: list[str] = []
    for event in events:
        r = Reading.model_validate_json(event.body)
        if r.reading_id in seen or (r.home_id, r.sensor_id, r.seq, r.ts) in seen:
            continue
        seen |= {r.reading_id, (r.home_id, r.sensor_id, r.seq, r.ts)}
        key = (to_ms(r.ts), r.seq if r.seq is not None else -1, r.state or "",
               r.value if r.value is not None else float("-inf"))  # fmt: skip
        alarm = r.state == "alarm" or (r.sensor_type is SensorType.CO and (r.value or 0) >= 50)
        old = newest.get((r.home_id, r.sensor_id))
        if old is not None and key <= old[0]:
            continue
        newest[(r.home_id, r.sensor_id)] = (key, alarm)
        if alarm != (old is not None and old[1]):
            kind = "raised" if alarm else "cleared"
            out.append(f"{r.home_id}/{r.sensor_id}/{kind}/{key[0]}/{key[1]}")
    return out


def observed(store: MemoryRollupStore) -> dict[str, Any]:
    out: dict[str, Any] = {"hours": {}, "sensors": {}}
    days = {name: orjson.loads(body) for name, (body, _) in store.blobs.items() if "/hourly/" in name}
    docs = list(days.values())
    for home_id, packed in store.homes().items():
        state = unpack(home_id, packed)
        for h in state.closed:  # a snapshot may still hold entries merged after it was written
            day = days.get(f"homes/{home_id}/hourly/{day_of(h.hour)}.json")
            entry = [(hh_of(h.hour), amendment_doc(h))]
            assert day is not None and merge_day(day, home_id, day_of(h.hour), entry) == day, "unmerged"
        state.closed = []
        docs.append(status_doc(state))
    for doc in docs:
        home = doc["home_id"]
        found = doc["hours"].values() if "hours" in doc else doc["open_hours"]
        for h in found:
            assert (home, h["hour"]) not in out["hours"], "an hour both open and closed"
            out["hours"][(home, h["hour"])] = {k: v for k, v in h.items() if k not in ("rev", "stream")}
        for s in doc.get("sensors", []):
            out["sensors"][(home, s["sensor_id"])] = (s["state"], s["value"], s["seq"], s["last_seen"][:23])
        if "state" in doc:
            assert doc["active_alarms"] == sorted(s["sensor_id"] for s in doc["sensors"] if s["alarm"])
    return out


@settings(max_examples=60, deadline=None)
@given(workload(), ACTIONS)
async def test_every_acknowledged_reading_counts_exactly_once(
    work: tuple[list[Reading], list[InboundEvent]], actions: list[Action]
) -> None:
    readings, events = work
    store, hub = await run(events, actions)
    assert observed(store) == reference(readings)
    assert sorted(hub.ids()) == sorted(reference_alarms(events))  # each exactly once
