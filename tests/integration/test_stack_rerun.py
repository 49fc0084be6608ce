"""``make run`` twice on the same data: the second run's readings are rolled up.

``make run`` keeps its state in ``--data-dir`` (``.cache/stack``): the emulator's partition logs and Azurite's
blobs (checkpoints, rollups). Each run starts from fresh data unless ``--keep-data``, which the second run
here passes. A second run starts the simulator again, whose sensors number their readings from 1 again, with
newer timestamps: the consumer must count them as a sensor restart, not drop them as sequence numbers already
seen or settled (then the second run's "rolled up" stays near 0 while the producer acknowledges thousands,
and this test fails on ``rolled up == acknowledged`` and on the Blob totals).

The test drives ``homesec_devstack.stack.Stack`` (what ``make run`` runs) twice over one data directory and
the same ports: the checkpoint store names the namespace by the emulator's host:port, as a user's two
``make run`` on the default ports would. Between start and stop it stops the simulator, waits for the consumer
to roll up everything the producer acknowledged (``make run``'s own drain), and sums the rollups in Blob.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from azure.storage.blob.aio import ContainerClient
from homesec_consumer import snapshot
from homesec_devstack import progress
from homesec_devstack.procs import free_port
from homesec_devstack.stack import Stack, parse_args
from homesec_domain.rollup import amendment_doc, day_of, hh_of, merge_day, unpack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLLED_UP = progress.ROLLED_UP


@dataclass
class Run:
    acknowledged: int
    consumer: dict[str, float]  # this run's consumer metrics (folded over labels)
    blob_total: int  # readings counted in all homes' rollups (open hours + day blobs)
    homes: int


async def blob_totals(connection_string: str) -> tuple[int, int]:
    """(readings counted in every home's durable state and day blobs, homes in the state snapshots): the
    snapshots' open hours, their closed entries not merged yet, and the day blobs."""
    blobs: dict[str, bytes] = {}
    async with ContainerClient.from_connection_string(connection_string, "rollups") as container:
        async for blob in container.list_blobs():
            if blob.name.startswith("state/") or "/hourly/" in blob.name:
                blobs[blob.name] = bytes(await (await container.download_blob(blob.name)).readall())
    days = {name: orjson.loads(body) for name, body in blobs.items() if "/hourly/" in name}
    total = sum(h["total"] for doc in days.values() for h in doc["hours"].values())
    homes = 0
    for name, body in blobs.items():
        if not name.startswith("state/"):
            continue
        for home_id, packed in snapshot.decode(body)[1].items():
            homes += 1
            state = unpack(home_id, packed)
            total += sum(sum(h.counts) for h in state.hours.values())
            for h in state.closed:  # counted once: unless its day blob holds it already
                day = days.get(f"homes/{home_id}/hourly/{day_of(h.hour)}.json")
                entry = [(hh_of(h.hour), amendment_doc(h))]
                if day is None or merge_day(day, home_id, day_of(h.hour), entry) != day:
                    total += sum(h.counts)
    return total, homes


def run_stack(argv: list[str], seconds: float, catch_up: float = 45.0) -> Run:
    """One ``make run``: start the stack, let the simulator send for ``seconds``, stop it, wait until the
    consumer has rolled up what the producer acknowledged (at most ``catch_up`` s), read Blob, stop all."""
    stack = Stack(parse_args(argv))
    try:
        stack.start()
        time.sleep(seconds)
        stack.stop_simulator()  # SIGTERM: it finishes its requests in flight
        counts, _ = progress.drain(stack.counts, catch_up)
        time.sleep(1.0)  # nothing more may come (a double count would show here)
        consumer = progress.scrape(stack.consumer_admin_url)
        assert stack.azurite is not None
        total, homes = asyncio.run(blob_totals(stack.azurite.connection_string))
        return Run(counts.acknowledged, consumer, total, homes)
    finally:
        stack.stop()


def test_make_run_twice_on_the_same_data_rolls_up_the_second_run(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(7)]
    argv = ["--homes", "200", "--rate", "300", "--data-dir", str(tmp_path), "--amqp-port", ports[0],
            "--admin-port", ports[1], "--blob-port", ports[2], "--producer-port", ports[3],
            "--consumer-port", ports[4], "--producer-admin-port", ports[5],
            "--consumer-admin-port", ports[6]]  # fmt: skip
    first = run_stack(argv, seconds=10)
    assert first.acknowledged > 1000
    assert first.consumer[ROLLED_UP] == first.acknowledged
    assert first.blob_total == first.acknowledged

    second = run_stack([*argv, "--keep-data"], seconds=10)  # a run starts from fresh data unless asked
    assert second.acknowledged > 1000
    rolled_up = second.consumer[ROLLED_UP]
    assert rolled_up == second.acknowledged, f"second run: {rolled_up:.0f} of {second.acknowledged} rolled up"
    assert second.blob_total == first.acknowledged + second.acknowledged
    assert second.homes == 200
    assert second.consumer["homesec_consumer_sensor_restarts_total"] > 0  # the simulator's seqs started at 1
    assert second.consumer.get("homesec_consumer_dead_letters_total", 0) == 0
    assert second.consumer.get("homesec_consumer_duplicates_dropped_total", 0) == 0
    assert second.consumer.get("homesec_consumer_late_readings_total", 0) == 0
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == "", "the stack left processes running"
