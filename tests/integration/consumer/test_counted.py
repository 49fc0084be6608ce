"""A 202 means counted, with real processes: Event Hubs emulator, Azurite, consumer processes.

Each test builds a home's readings around an hour boundary two hours ago (well inside the acceptance horizon,
24 h before the enqueued time), publishes them in the order a real fleet would, and compares the rollups in
Blob (open hours in the status blob + day blobs) with a ground truth computed here from the distinct readings.

Against the consumer before 8ad7748 every test here fails (checked with the services of f4cccdc first on
``PYTHONPATH``; at 25df381 the processor counts duplicates without the new ``reason`` label and raises on
every batch): the restarted smoke sensors' readings were dropped or misread as gaps, and readings older than
the home's watermark minus 120 s were dropped as late.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_domain.models import Reading, SensorType

from .harness import (
    HUB,
    Stack,
    Truth,
    ground_truth,
    mismatches,
    production_env,
    publish,
    read_rollups,
    wait_checkpointed_to_end,
    wait_rolled_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MINUTE = timedelta(minutes=1)
LATE = "homesec_consumer_late_readings_total"
DUPLICATES = "homesec_consumer_duplicates_dropped_total"
DEAD_LETTERS = "homesec_consumer_dead_letters_total"
RESTARTS = "homesec_consumer_sensor_restarts_total"
ROLLED_UP = "homesec_consumer_readings_rolled_up_total"


@pytest.fixture
async def stack(emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path) -> AsyncIterator[Stack]:
    yield Stack(emulator, azurite, f"n{uuid.uuid4().hex[:12]}", tmp_path / "logs")


def hour0() -> datetime:
    """The start of the hour two hours ago (H0). The data lies between H0:30 and H1:11, 50 min to 3.5 h ago:
    inside the acceptance horizon, and hour H0 closes once a home's watermark passes H1:02."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def series(
    home: str, sensor_id: str, stype: SensorType, start: datetime, count: int, step: timedelta, seq0: int = 0
) -> list[Reading]:
    """``count`` readings of one sensor every ``step`` from ``start``, sequence numbers from ``seq0``."""
    out = []
    for i in range(count):
        kw: dict[str, Any] = {}
        if stype is SensorType.MOTION:
            kw["state"] = ("motion", "clear")[i % 2]
        elif stype in (SensorType.DOOR, SensorType.WINDOW):
            kw["state"] = ("open", "closed")[i % 2]
        elif stype is SensorType.SMOKE:
            kw["state"], kw["value"] = "ok", 0.0
        else:
            kw["value"] = 20.0 + i % 5
        ts, seq = start + i * step, seq0 + i
        out.append(Reading(reading_id=uuid.uuid4(), home_id=home, sensor_id=sensor_id, sensor_type=stype,
                           ts=ts, seq=seq, **kw))  # fmt: skip
    return out


def by_ts(readings: list[Reading]) -> list[Reading]:
    return sorted(readings, key=lambda r: r.ts)


def hour_key(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:00:00.000Z")


async def settle(stack: Stack, truth: dict[str, Truth], timeout: float) -> dict[str, bytes]:
    """Until the rollups equal ``truth`` and every event is checkpointed (so every published event, re-sends
    included, has been folded and its effect is durable); then the rollups must still equal ``truth``."""
    await wait_rolled_up(stack, truth, timeout=timeout)
    await wait_checkpointed_to_end(stack, timeout=timeout)
    blobs = await read_rollups(stack)
    assert mismatches(blobs, truth) == []
    return blobs


# -- 1. a smoke sensor restarts, then alarms --------------------------------------------------------------
def smoke_home(home: str, first_seq: int, h0: datetime) -> tuple[list[Reading], list[Reading]]:
    """A home whose smoke sensor reports ``first_seq``.. ``ok`` once a minute from H0:55:30 to H1:05:30, then
    reboots: seq 1 ``ok`` at H1:06:30, seq 2..6 ``alarm`` until H1:11:30; its motion sensor reports from H0:50
    to H1:11. Returns (the smoke readings after the reboot, all readings in time order)."""
    motion = series(home, "motion-1", SensorType.MOTION, h0 + 50 * MINUTE, 22, MINUTE)
    before = series(home, "smoke-1", SensorType.SMOKE, h0 + timedelta(minutes=55, seconds=30), 11, MINUTE,
                    first_seq)  # fmt: skip
    after = [
        Reading(reading_id=uuid.uuid4(), home_id=home, sensor_id="smoke-1", sensor_type=SensorType.SMOKE,
                ts=before[-1].ts + (1 + i) * MINUTE, seq=1 + i, state="alarm" if i else "ok",
                value=1.0 if i else 0.0)
        for i in range(6)
    ]  # fmt: skip
    return after, by_ts(motion + before + after)


async def test_smoke_sensor_restarts_then_alarms(stack: Stack) -> None:
    """Home A's smoke sensor reports seq 100..110 ``ok``, home B's seq 1..11; both reboot (seq 1 ``ok``, then
    2..6 ``alarm``, newer timestamps). Before 8ad7748, B's new readings were dropped as "late" (their numbers
    were already settled): B's status showed ``ok`` with no active alarm; A's settled range became 1..110
    and its status reported ~96 lost readings."""
    h0 = hour0()
    a_after, a = smoke_home("home-smoke-a", 100, h0)
    b_after, b = smoke_home("home-smoke-b", 1, h0)
    readings = a + b
    truth = ground_truth(readings)
    for home in ("home-smoke-a", "home-smoke-b"):
        truth[home].lost["smoke-1"] = 0  # one run before the reboot, one after: no number is missing
    b_before = [r for r in b if r.sensor_id == "smoke-1" and r.state == "ok" and r.seq == 11]
    resends = [
        a_after[1].model_copy(update={"reading_id": uuid.uuid4()}),  # the first alarm, fresh ID, same seq/ts
        b_after[0],  # the first reading after the reboot, same reading_id
        b_before[0].model_copy(update={"reading_id": uuid.uuid4()}),  # the last one before it, fresh ID
    ]

    consumer = stack.consumer("consumer-smoke")
    with consumer:
        consumer.start()
        await publish(stack.emulator.connection_string(HUB), readings + resends)
        await settle(stack, truth, timeout=60)

        for home, after, own in (("home-smoke-a", a_after, a), ("home-smoke-b", b_after, b)):
            status = consumer.get(f"/v1/homes/{home}/status")
            sensor = next(s for s in status["sensors"] if s["sensor_id"] == "smoke-1")
            assert (sensor["state"], sensor["seq"], sensor["alarm"]) == ("alarm", 6, True), (home, sensor)
            last = after[-1].ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            assert sensor["last_seen"] == last
            assert status["active_alarms"] == ["smoke-1"], home
            assert status["lost_readings"] == 0, home
            history = consumer.get(f"/v1/homes/{home}/history?hours=24")
            hours = {h["hour"]: h for h in history["hours"]}
            assert sum(h["total"] for h in hours.values()) == len(own)
            assert hours[hour_key(after[-1].ts)]["alarms"] == {"smoke": 5}
            # A closed hour, served from the day blob.
            assert hours[hour_key(h0)]["counts"] == {"motion": 10, "smoke": 5}

        assert consumer.metric(RESTARTS) == 2
        assert consumer.metric(LATE) == 0  # nothing arrived for a closed hour
        assert consumer.metric(DUPLICATES, reason="resent") == len(resends)
        assert consumer.metric(DUPLICATES, reason="redelivered") == 0
        assert consumer.metric(DEAD_LETTERS) == 0
        assert consumer.metric(ROLLED_UP) == len(readings)


# -- 2. a door sensor's 10-minute backlog arrives after the home's live readings ---------------------------
async def test_door_backlog_amends_closed_hours_with_production_settings(stack: Stack) -> None:
    """The motion sensor reports live for 20 minutes across H1:00 (hour H0 closes at H1:02); the door sensor
    was offline from H0:45 to H0:55 and uploads its backlog afterwards. Home A's backlog arrives after the
    first flush wrote hour H0 into the day blob (an amendment of a stored entry); home B's right behind its
    live readings (an amendment of the closed hour still in memory). Production settings: 30 s flushes."""
    h0 = hour0()
    a, b = "home-backlog-a", "home-backlog-b"
    live: dict[str, list[Reading]] = {}
    backlog: dict[str, list[Reading]] = {}
    for home in (a, b):
        motion = series(home, "motion-1", SensorType.MOTION, h0 + 45 * MINUTE, 30, timedelta(seconds=40))
        door = series(home, "door-1", SensorType.DOOR, h0 + 40 * MINUTE, 5, MINUTE)  # H0:40..H0:44, seq 0..4
        live[home] = by_ts(motion + door)  # motion up to H1:04:20
        backlog[home] = series(home, "door-1", SensorType.DOOR, h0 + timedelta(minutes=45, seconds=10), 20,
                               timedelta(seconds=30), seq0=5)  # fmt: skip  # H0:45:10..H0:54:40
    conn = stack.emulator.connection_string(HUB)
    day_blob, hh = f"homes/{a}/hourly/{h0:%Y-%m-%d}.json", f"{h0:%H}"

    consumer = stack.consumer("consumer-defaults", **production_env())
    with consumer:
        consumer.start()
        await publish(conn, live[a] + live[b])
        await publish(conn, backlog[b])
        first = await wait_rolled_up(stack, ground_truth(live[a] + live[b] + backlog[b]), timeout=80)
        stored = orjson.loads(first[day_blob])["hours"][hh]
        assert stored["counts"] == {"door": 5, "motion": 23}  # H0 closed and written without A's backlog

        await publish(conn, backlog[a])  # for an hour already in the day blob
        everything = live[a] + live[b] + backlog[a] + backlog[b]
        blobs = await settle(stack, ground_truth(everything), timeout=80)
        amended = orjson.loads(blobs[day_blob])["hours"][hh]
        assert amended["counts"] == {"door": 25, "motion": 23}
        in_h0 = [r for r in live[a] + backlog[a] if r.ts < h0 + timedelta(hours=1)]
        assert amended["minutes"] == [sum(r.ts.minute == m for r in in_h0) for m in range(60)]
        assert amended["rev"] > stored["rev"]

        assert consumer.metric(LATE) == len(backlog[a]) + len(backlog[b])
        assert consumer.metric(ROLLED_UP) == len(everything)
        assert consumer.metric(DEAD_LETTERS) == 0
        assert consumer.metric(DUPLICATES) == 0
        for home in (a, b):  # the door's current state is its backlog's newest reading, no gap
            sensors = consumer.get(f"/v1/homes/{home}/status")["sensors"]
            door_now = next(s for s in sensors if s["sensor_id"] == "door-1")
            assert (door_now["seq"], door_now["lost_readings"]) == (24, 0)


# -- 3. re-sends of late readings after a consumer SIGKILL ------------------------------------------------
async def test_resent_late_readings_after_sigkill_count_once(stack: Stack) -> None:
    """Live readings and late backlogs; consumer A flushes the first part, gets more (including another late
    backlog) and is SIGKILLed; then gateways re-send the late readings, some with the same reading_id, some
    with a fresh one and the same (sensor, seq, ts). Consumer B replays from A's checkpoints: every reading
    counts once, and every re-send is a duplicate."""
    h0 = hour0()
    homes = [f"home-resend-{i}" for i in range(6)]
    live1: list[Reading] = []
    late1: list[Reading] = []
    phase2: list[Reading] = []
    late2: list[Reading] = []
    step = timedelta(seconds=30)
    for home in homes:
        motion = series(home, "motion-1", SensorType.MOTION, h0 + 50 * MINUTE, 41, step)  # H0:50..H1:10
        door = series(home, "door-1", SensorType.DOOR, h0 + 40 * MINUTE, 5, MINUTE)
        live1 += by_ts(motion[:31] + door)  # up to H1:05: H0 is closed
        # The door's backlog (H0:45..H0:54:30) and the window sensor's (H0:30..H0:39:30), for closed hour H0.
        late1 += series(home, "door-1", SensorType.DOOR, h0 + 45 * MINUTE, 20, step, seq0=5)
        late = series(home, "window-1", SensorType.WINDOW, h0 + 30 * MINUTE, 20, step)
        late2 += late
        phase2 += motion[31:] + late
    # Two thirds of the late readings are re-sent: half with the same reading_id, half with a fresh one and
    # the same (sensor, seq, ts).
    resends = []
    for i, r in enumerate(late1 + late2):
        if i % 3 == 0:
            resends.append(r)
        elif i % 3 == 1:
            resends.append(r.model_copy(update={"reading_id": uuid.uuid4()}))
    conn = stack.emulator.connection_string(HUB)

    a, b = stack.consumer("consumer-a"), stack.consumer("consumer-b")
    with a, b:
        a.start()
        await publish(conn, live1)
        await publish(conn, late1)
        await wait_rolled_up(stack, ground_truth(live1 + late1), timeout=60)
        assert a.metric(LATE) == len(late1)
        await publish(conn, phase2)
        await asyncio.sleep(0.5)  # A folds some of it, and may flush some
        a.proc.kill()  # no flush, no checkpoint, ownership left to expire
        await publish(conn, resends)
        b.start()
        everything = live1 + late1 + phase2
        await settle(stack, ground_truth(everything), timeout=90)

        assert b.metric(DUPLICATES, reason="resent") == len(resends)
        assert b.metric(DEAD_LETTERS) == 0
        assert b.metric(ROLLED_UP) <= len(phase2)  # B never re-counts what A made durable
