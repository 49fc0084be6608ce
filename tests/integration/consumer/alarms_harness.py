"""Alarm path integration helpers: the alarm transitions expected from readings (computed without fold code),
sending readings, reading the alarms hub and the status API back."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from azure.eventhub.aio import EventHubProducerClient
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.hub_reader import AlarmRecord, read_alarms
from homesec_domain.models import Reading, SensorType

from .harness import ConsumerProcess, base_time, event_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BOUND_S = 2.0  # functional bound (the benchmark measures the distribution)
CO_ALARM_PPM = 50.0
ALARM_SENSORS = (("smoke-1", SensorType.SMOKE), ("co-1", SensorType.CO), ("glass-1", SensorType.GLASS_BREAK))
SENSORS = (*ALARM_SENSORS, ("door-1", SensorType.DOOR))
AT_REST: dict[SensorType, dict[str, Any]] = {
    SensorType.SMOKE: {"state": "ok"}, SensorType.CO: {"value": 0.0}, SensorType.GLASS_BREAK: {"value": 0.0},
}  # fmt: skip


# -- the expected transitions, from the readings alone -------------------------------------------------
def in_alarm(r: Reading) -> bool:
    if r.state == "alarm":
        return True
    if r.value is None:
        return False
    if r.sensor_type is SensorType.CO:
        return r.value >= CO_ALARM_PPM
    return r.sensor_type in (SensorType.SMOKE, SensorType.GLASS_BREAK) and r.value >= 1


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def ts_ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def alarm_doc(r: Reading, raised: bool) -> dict[str, Any]:
    """The alarm event's body (docs/contracts.md#alarm-events) for the transition ``r`` caused."""
    kind = "raised" if raised else "cleared"
    return {
        "schema_version": 1, "message_id": f"{r.home_id}/{r.sensor_id}/{kind}/{ts_ms(r.ts)}/{r.seq}",
        "home_id": r.home_id, "sensor_id": r.sensor_id, "sensor_type": r.sensor_type.value,
        "transition": kind, "ts": iso(r.ts), "seq": r.seq, "value": r.value, "state": r.state,
    }  # fmt: skip


def expected_transitions(
    delivered: Sequence[Reading],
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    """Alarm documents by message ID, and each home's sensors in alarm at the end. ``delivered`` is in
    partition order for each home (a home's readings are sent in this order, to one partition)."""
    newest: dict[tuple[str, str], Reading] = {}
    out: dict[str, dict[str, Any]] = {}
    for r in delivered:
        key = (r.home_id, r.sensor_id)
        cur = newest.get(key)
        if cur is not None and (r.ts, r.seq or 0) <= (cur.ts, cur.seq or 0):
            continue  # a re-sent or late reading: the newest stays
        newest[key] = r
        if in_alarm(r) != (cur is not None and in_alarm(cur)):
            doc = alarm_doc(r, in_alarm(r))
            out[doc["message_id"]] = doc
    active: dict[str, set[str]] = {}
    for (home, sensor), r in newest.items():
        active.setdefault(home, set())
        if in_alarm(r):
            active[home].add(sensor)
    return out, active


# -- producing, reading ----------------------------------------------------------------------------------
async def send(producer: EventHubProducerClient, readings: Sequence[Reading]) -> None:
    """One batch per home (partition key = home ID), the homes concurrently, each home's in order."""
    by_home: dict[str, list[Reading]] = {}
    for r in readings:
        by_home.setdefault(r.home_id, []).append(r)

    async def one(home: str, rs: list[Reading]) -> None:
        batch = await producer.create_batch(partition_key=home)
        for r in rs:
            batch.add(event_of(r))
        await producer.send_batch(batch)

    await asyncio.gather(*(one(h, rs) for h, rs in by_home.items()))


def reading(home: str, sensor: tuple[str, SensorType], ts: datetime, seq: int, **kw: Any) -> Reading:
    rid = uuid.uuid5(uuid.NAMESPACE_URL, f"{home}/{sensor[0]}/{seq}/{ts.isoformat()}")
    return Reading(reading_id=rid, home_id=home, sensor_id=sensor[0], sensor_type=sensor[1], ts=ts, seq=seq,
                   **kw)  # fmt: skip


async def wait_owned(consumer: ConsumerProcess, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while consumer.metric("homesec_consumer_partitions_owned") < count:
        assert time.monotonic() < deadline, "the consumer did not claim every partition"
        await asyncio.sleep(0.5)


async def wait_alarms(emulator: EmulatorProcess, want: set[str], timeout: float) -> list[AlarmRecord]:
    """The alarms hub's events once every wanted message ID is there (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        records = await read_alarms(emulator)
        if want <= {r.message_id for r in records} or time.monotonic() > deadline:
            return records
        await asyncio.sleep(1.0)


def once_each(records: list[AlarmRecord], expected: dict[str, dict[str, Any]]) -> None:
    """Every expected transition is in the hub exactly once, with its documented body, and nothing else."""
    counts = Counter(r.message_id or "" for r in records)
    duplicated = sorted(m for m, n in counts.items() if n > 1)
    missing = sorted(set(expected) - set(counts))
    unexpected = sorted(m for m in counts if m not in expected)
    twice = [(r.message_id, r.partition_id, r.sequence_number, r.enqueued_ms) for r in records
             if r.message_id in duplicated[:5]]  # fmt: skip
    assert not duplicated, f"{len(duplicated)} alarm(s) published more than once, e.g. {twice}"
    assert not missing, f"{len(missing)} of {len(expected)} alarm(s) missing, e.g. {missing[:5]}"
    assert not unexpected, f"unexpected alarm events, e.g. {unexpected[:5]}"
    for r in records:
        doc = expected[r.message_id or ""]
        assert r.doc() == doc and r.partition_key == doc["home_id"] and r.content_type == "application/json"


class Reads:
    """Status reads with an operator token, without blocking the event loop."""

    def __init__(self, token: str) -> None:
        self._http = httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=5)

    async def status(self, consumer: ConsumerProcess, home: str) -> httpx.Response:
        return await self._http.get(f"http://127.0.0.1:{consumer.port}/v1/homes/{home}/status")

    async def aclose(self) -> None:
        await self._http.aclose()


def stream(n_homes: int, minutes: int, seed: int) -> list[list[Reading]]:
    """Rounds of readings: every sensor of every home once a minute, alarm sensors flipping often; a few
    readings are re-sent in the next round or delivered a round late (out of order)."""
    rng = random.Random(seed)
    t0 = base_time()
    rounds: list[list[Reading]] = [[] for _ in range(minutes + 1)]
    for h in range(n_homes):
        home = f"home-{h:05d}"
        smoke = False
        for m in range(minutes):
            for sensor in SENSORS:
                ts = t0 + timedelta(minutes=m, seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))
                kind = sensor[1]
                if kind is SensorType.SMOKE:
                    smoke = smoke != (rng.random() < 0.3)
                    kw: dict[str, Any] = {"state": "alarm" if smoke else "ok"}
                elif kind is SensorType.CO:
                    kw = {"value": round(rng.uniform(0, 80), 2)}
                elif kind is SensorType.GLASS_BREAK:
                    kw = {"value": 1.0 if rng.random() < 0.15 else 0.0}
                else:
                    kw = {"state": rng.choice(["open", "closed"])}
                r = reading(home, sensor, ts, m, **kw)
                chance = rng.random()
                rounds[m + (chance < 0.04)].append(r)  # late by a round
                if chance > 0.97:
                    rounds[m + 1].append(r)  # re-sent
    return rounds


def owns(consumer: ConsumerProcess, partition_id: str) -> bool:
    """Whether the consumer exports the partition's gauges (it owns it)."""
    with httpx.Client(timeout=5) as http:
        text = http.get(f"http://127.0.0.1:{consumer.admin_port}/metrics").text
    return f'homesec_consumer_partition_lag_events{{partition="{partition_id}"}}' in text
