"""Outages as real processes: a partition paused in the emulator (its receiver gets nothing while events
wait) and Blob storage hung mid-load (Azurite SIGSTOPped). The consumer's series must show both while
they last, and nothing may be lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from azure.eventhub.aio import EventHubProducerClient
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import http_status

from tests import waits

from .harness import HUB, ConsumerProcess, Stack, dataset, event_of, ground_truth, publish, wait_rolled_up

pytestmark = pytest.mark.integration


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[AzuriteProcess]:
    """An Azurite of this test's own: it gets SIGSTOPped."""
    with AzuriteProcess(tmp_path / "azurite", log_dir=tmp_path / "logs") as proc:
        yield proc


@pytest.fixture
async def stack(emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path) -> AsyncIterator[Stack]:
    yield Stack(emulator, azurite, f"o{uuid.uuid4().hex[:12]}", tmp_path / "logs")


async def eventually(check: Callable[[], bool], timeout: float, what: str, consumer: ConsumerProcess) -> None:
    await waits.eventually(check, timeout, what, detail=consumer.proc.log_tail, interval=0.1)


def per_partition(consumer: ConsumerProcess, name: str) -> dict[str, float]:
    return {pid: consumer.metric(name, partition=pid) for pid in map(str, range(16))}


async def test_paused_partition_has_lag_from_the_service_and_an_idle_receiver(stack: Stack) -> None:
    readings = dataset(n_homes=1, minutes=10)
    async with EventHubProducerClient.from_connection_string(stack.emulator.connection_string(HUB)) as prod:
        batch = await prod.create_batch(partition_id="5")
        for r in readings:
            batch.add(event_of(r))
        await prod.send_batch(batch)
    stack.emulator.pause_partition(HUB, "5")  # stored, but never delivered while paused
    consumer = stack.consumer("consumer-paused", LAG_REFRESH_INTERVAL_SECONDS="1")
    with consumer:
        consumer.start()
        owned = "homesec_consumer_partitions_owned"
        await eventually(lambda: consumer.metric(owned) == 16, 20, "all partitions claimed", consumer)
        for name in ("partition_lag_events", "checkpoint_age_seconds", "events_not_durable",
                     "partition_receive_idle_seconds"):  # fmt: skip
            series = _labels(consumer, f"homesec_consumer_{name}")
            assert series == {str(p) for p in range(16)}, name  # every claimed partition, before any event
        lag = "homesec_consumer_partition_lag_events"
        await eventually(lambda: consumer.metric(lag, partition="5") == len(readings), 15, "lag", consumer)
        assert sum(v for p, v in per_partition(consumer, lag).items() if p != "5") == 0
        idle = "homesec_consumer_partition_receive_idle_seconds"
        first = consumer.metric(idle, partition="5")
        await asyncio.sleep(2)
        assert consumer.metric(idle, partition="5") >= first + 1.5  # nothing arrives, events wait
        stack.emulator.resume_partition(HUB, "5")
        await eventually(lambda: consumer.metric(lag, partition="5") == 0, 15, "lag after resume", consumer)
        assert consumer.metric(idle, partition="5") < 5


def _labels(consumer: ConsumerProcess, name: str) -> set[str]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{consumer.admin_port}/metrics", timeout=5) as resp:
        lines = resp.read().decode().splitlines()
    return {line.split('partition="')[1].split('"')[0] for line in lines if line.startswith(name + "{")}


async def test_hung_blob_storage_shows_in_readiness_not_durable_and_checkpoint_age(
    emulator: EmulatorProcess, own_azurite: AzuriteProcess, tmp_path: Path
) -> None:
    stack = Stack(emulator, own_azurite, f"h{uuid.uuid4().hex[:12]}", tmp_path / "logs")
    conn = emulator.connection_string(HUB)
    readings = dataset(n_homes=30, minutes=12)
    first, second = readings[: len(readings) // 2], readings[len(readings) // 2 :]
    consumer = stack.consumer(
        "consumer-blob-hang", FLUSH_INTERVAL_SECONDS="2", BLOB_REQUEST_TIMEOUT_SECONDS="1",
        OWNERSHIP_EXPIRATION_SECONDS="60",
    )  # fmt: skip
    group = own_azurite._proc.pid if own_azurite._proc else 0
    with consumer, _continued(group):
        consumer.start()
        await publish(conn, first)
        not_durable = "homesec_consumer_events_not_durable"
        await eventually(lambda: consumer.metric("homesec_consumer_readings_rolled_up_total") > 0, 30,
                         "first rollups", consumer)  # fmt: skip
        os.killpg(group, signal.SIGSTOP)  # storage hangs: connections open, nothing answers
        await publish(conn, second)
        url = f"http://127.0.0.1:{consumer.admin_port}"
        await eventually(lambda: http_status(f"{url}/readyz") == 503, 20, "not ready", consumer)
        assert http_status(f"{url}/healthz") == 200
        assert consumer.metric("homesec_consumer_storage_available") == 0
        await eventually(lambda: consumer.metric(not_durable) > 0, 10, "not durable", consumer)
        age = "homesec_consumer_checkpoint_age_seconds"
        before = max(per_partition(consumer, age).values())
        await asyncio.sleep(3)
        assert max(per_partition(consumer, age).values()) >= before + 2  # grows at scrape time
        # Readiness can drop on a checkpoint or ownership call first; the flush's writes fail one flush
        # interval plus their own timeout after the hang, so wait for them rather than sample once.
        writes = "homesec_consumer_snapshot_writes_total"
        await eventually(lambda: consumer.metric(writes, result="error") > 0, 10, "write errors", consumer)
        os.killpg(group, signal.SIGCONT)
        await eventually(lambda: http_status(f"{url}/readyz") == 200, 20, "ready again", consumer)
        await wait_rolled_up(stack, ground_truth(readings), timeout=45)  # nothing lost
        await eventually(lambda: consumer.metric(not_durable) == 0, 20, "all durable", consumer)
        assert consumer.metric(writes, result="conflict") == 0  # its own writes that landed late: no fencing


@contextlib.contextmanager
def _continued(group: int) -> Iterator[None]:
    """Whatever happens, the paused Azurite is continued (so its fixture can stop it)."""
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGCONT)
