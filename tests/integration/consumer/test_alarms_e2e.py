"""The consumer's alarm path as real processes against the Event Hubs emulator and Azurite: an alarm is in the
status API and in the alarms hub within 2 s of its reading's acknowledgement, and every transition is in the
alarms hub exactly once across a SIGKILL and a rebalance.

The expected transitions are computed from the readings alone (``alarms_harness.expected_transitions``, no
fold code): per home and sensor, in partition order, each time the newest reading's alarm flag changes."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub.aio import EventHubProducerClient
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.hub_reader import read_alarms
from homesec_domain.models import Reading, SensorType

from tests.integration.producer.harness import operator_token

from .alarms_harness import (
    ALARM_SENSORS,
    AT_REST,
    BOUND_S,
    SENSORS,
    Reads,
    alarm_doc,
    expected_transitions,
    in_alarm,
    once_each,
    owns,
    reading,
    send,
    stream,
    wait_alarms,
    wait_owned,
)
from .harness import HUB, Stack, ground_truth, production_env, wait_checkpointed_to_end, wait_rolled_up
from .test_consumer_pipeline import wait_both_own

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# -- 1. latency with production defaults -----------------------------------------------------------------
async def test_alarm_visible_and_published_within_two_seconds(
    emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path
) -> None:
    stack = Stack(emulator, azurite, f"c{uuid.uuid4().hex[:12]}", tmp_path / "logs")
    homes = [f"home-{i:05d}" for i in range(24)]
    alarm_homes = homes[:4]
    seqs: Counter[tuple[str, str]] = Counter()

    def now_reading(home: str, sensor: tuple[str, SensorType], **kw: Any) -> Reading:
        seqs[(home, sensor[0])] += 1
        return reading(home, sensor, datetime.now(UTC), seqs[(home, sensor[0])], **kw)

    def quiet(home: str) -> list[Reading]:
        rng = random.Random(home)
        return [
            now_reading(home, SENSORS[3], state=rng.choice(["open", "closed"])),
            now_reading(home, ("temp-1", SensorType.TEMPERATURE), value=round(rng.uniform(15, 25), 2)),
        ]

    consumer = stack.consumer("consumer-alarms", **production_env())  # as deployed: nothing shortened
    reads = Reads(operator_token())
    delivered: list[Reading] = []
    try:
        with consumer:
            consumer.start()
            await wait_owned(consumer, 16, timeout=60)
            async with EventHubProducerClient.from_connection_string(emulator.connection_string(HUB)) as p:
                first = [r for h in homes for r in quiet(h)]
                first += [now_reading(h, s, **AT_REST[s[1]]) for h in alarm_homes for s in ALARM_SENSORS]
                await send(p, first)
                delivered += first
                for home in homes:  # every home visible: partitions restored, clients connected
                    deadline = time.monotonic() + 30
                    while (await reads.status(consumer, home)).status_code != 200:
                        assert time.monotonic() < deadline, f"{home} never visible"
                        await asyncio.sleep(0.2)

                stop = asyncio.Event()

                async def background() -> None:  # ordinary readings of every home meanwhile
                    while not stop.is_set():
                        rs = [r for h in homes for r in quiet(h)]
                        await send(p, rs)
                        delivered.extend(rs)
                        await asyncio.sleep(0.3)

                traffic = asyncio.create_task(background())
                steps: list[tuple[str, dict[str, Any]]] = [
                    ("smoke-1", {"state": "alarm"}), ("co-1", {"value": 49.9}), ("co-1", {"value": 50.0}),
                    ("glass-1", {"value": 1.0}), ("smoke-1", {"state": "ok"}), ("co-1", {"value": 12.5}),
                    ("glass-1", {"value": 0.0}), ("co-1", {"value": 77.0}), ("co-1", {"value": 3.0}),
                ]  # fmt: skip
                acked: dict[str, float] = {}
                visible: dict[str, float] = {}
                alarmed = {h: set[str]() for h in alarm_homes}
                for sensor_id, kw in steps:
                    for home in alarm_homes:
                        sensor = next(s for s in ALARM_SENSORS if s[0] == sensor_id)
                        r = now_reading(home, sensor, **kw)
                        was = sensor_id in alarmed[home]
                        await send(p, [r])
                        at = time.time()
                        delivered.append(r)
                        if in_alarm(r) == was:
                            continue  # no transition (CO below the threshold)
                        alarmed[home] ^= {sensor_id}
                        mid = alarm_doc(r, not was)["message_id"]
                        acked[mid] = at
                        while True:
                            resp = await reads.status(consumer, home)
                            body = resp.json()
                            if resp.status_code == 200 and set(body["active_alarms"]) == alarmed[home]:
                                assert body["source"] == "live"
                                visible[mid] = time.time() - at
                                break
                            assert time.time() - at < 10, f"{mid} not visible: {body}"
                            await asyncio.sleep(0.05)
                stop.set()
                await traffic
            expected, active = expected_transitions(delivered)
            assert set(expected) == set(acked) and len(acked) == 4 * 8
            records = await wait_alarms(emulator, set(expected), timeout=30)
            once_each(records, expected)
            published = {
                r.message_id or "": r.enqueued_ms / 1000 - acked[r.message_id or ""] for r in records
            }
            late = {m: round(s, 3) for m, s in visible.items() if s > BOUND_S}
            assert not late, f"alarms visible in the status API later than {BOUND_S} s: {late}"
            late = {m: round(s, 3) for m, s in published.items() if s > BOUND_S}
            assert not late, f"alarms in the alarms hub later than {BOUND_S} s: {late}"
            order = list(acked)  # in publish order: the first pays for the alarms hub's connection
            print(
                "status s:",
                [round(visible[m], 2) for m in order],
                "hub s:",
                [round(published[m], 2) for m in order],
            )
            for home in alarm_homes:
                assert (
                    set((await reads.status(consumer, home)).json()["active_alarms"]) == active[home] == set()
                )
    finally:
        await reads.aclose()


# -- 2. exactly once across a SIGKILL and a rebalance ----------------------------------------------------
async def test_alarms_exactly_once_across_sigkill_and_rebalance(
    emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path
) -> None:
    stack = Stack(emulator, azurite, f"c{uuid.uuid4().hex[:12]}", tmp_path / "logs")
    rounds = stream(n_homes=48, minutes=45, seed=13)
    delivered = [r for rs in rounds for r in rs]
    readings = list({r.reading_id: r for r in delivered}.values())
    truth = ground_truth(readings)
    expected, active = expected_transitions(delivered)
    # The chaos test's settings (harness.FAST_ENV: fast load balancing and ownership expiry), but snapshots
    # every 30 s as deployed, so that A publishes alarms for many seconds after its last snapshot.
    flush = {"FLUSH_INTERVAL_SECONDS": production_env()["FLUSH_INTERVAL_SECONDS"]}
    a, b, c = (stack.consumer(f"consumer-{x}", **flush) for x in "abc")
    reads = Reads(operator_token())
    try:
        with a, b, c:
            await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
            await wait_both_own(a, b)
            async with EventHubProducerClient.from_connection_string(emulator.connection_string(HUB)) as p:

                async def paced() -> None:  # about 70 s: A's first snapshot (30 s flushes) comes well before
                    for rs in rounds:
                        await send(p, rs)
                        await asyncio.sleep(1.5)

                sending = asyncio.create_task(paced())
                # Kill A once it snapshotted some of the stream and just published alarms after that
                # snapshot: the new owners fold those events again and find the same transitions, already in
                # the hub.
                snapshots, at_snapshot = (
                    0.0,
                    0.0,
                )  # A's snapshot count, and its alarms published when it changed
                while True:
                    published = a.metric("homesec_consumer_alarms_published_total")
                    written = a.metric("homesec_consumer_snapshot_writes_total", result="ok")
                    if written != snapshots:
                        snapshots, at_snapshot = written, published
                    elif written > 0 and published > at_snapshot:
                        break  # alarms published since A's last snapshot: they will be folded again
                    assert not sending.done(), (
                        f"A never published alarms after a snapshot: {published, written}"
                    )
                    await asyncio.sleep(0.05)
                found_by_a = a.metric("homesec_consumer_alarm_transitions_total")
                a.proc.kill()  # SIGKILL mid-stream: no flush, no checkpoint, ownership left to expire
                assert not sending.done()
                await asyncio.to_thread(c.start)
                await sending
            await wait_checkpointed_to_end(stack, timeout=120)
            await wait_rolled_up(stack, truth, timeout=60)
            records = await wait_alarms(emulator, set(expected), timeout=60)
            for consumer in (b, c):  # nothing left to send
                deadline = time.monotonic() + 30
                while consumer.metric("homesec_consumer_alarms_pending") > 0:
                    assert time.monotonic() < deadline, "alarms still pending"
                    await asyncio.sleep(0.5)
            records = await read_alarms(emulator)
            refound = sum(x.metric("homesec_consumer_alarm_transitions_total") for x in (b, c)) + found_by_a
            print(f"{len(expected)} transitions, {refound - len(expected):.0f} found again after the kill")
            assert refound > len(expected), "no transition was folded twice: the kill tested nothing"
            once_each(records, expected)

            # Every home's status through B: current; C's homes forwarded there (live) once B's peer directory
            # lists C's claims (it is listed every PEER_REFRESH_INTERVAL_SECONDS; until then: the snapshot).
            forwarded = 0
            for home in sorted(truth):
                deadline = time.monotonic() + 15
                while True:
                    resp = await reads.status(b, home)
                    assert resp.status_code == 200, resp.text
                    body = resp.json()
                    assert set(body["active_alarms"]) == active[home], home
                    if body["source"] == "live" or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
                assert body["source"] == "live", body
                if not owns(b, body["partition"]):
                    assert owns(c, body["partition"])
                    direct = (await reads.status(c, home)).json()
                    assert {k: v for k, v in body.items() if k not in ("as_of", "age_seconds")} == {
                        k: v for k, v in direct.items() if k not in ("as_of", "age_seconds")
                    }
                    forwarded += 1
            assert forwarded > 0
    finally:
        await reads.aclose()
