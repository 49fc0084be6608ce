"""The consumer as real processes against the Event Hubs emulator and Azurite.

Rollups are compared with a ground truth computed in the test from the generated readings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from azure.storage.blob.aio import ContainerClient
from homesec_consumer.cli import progress_line
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_domain.events import encode_reading

from tests.integration.transport import TRANSPORTS, accelerated, websocket_connections

from .harness import (
    GROUP,
    HUB,
    ConsumerProcess,
    Stack,
    checkpoints,
    dataset,
    durable_statuses,
    ground_truth,
    interleave,
    ownership,
    publish,
    publish_raw,
    read_rollups,
    wait_checkpointed_to_end,
    wait_rolled_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EmulatorFactory = Callable[..., EmulatorProcess]


def comparable(blobs: dict[str, bytes]) -> dict[str, Any]:
    """The rollups as a resident sees them: day entries without their merge stamps (which record when each
    entry was flushed), and every home's durable status without the packed state (its closed entries carry
    those stamps too)."""
    out: dict[str, Any] = {}
    for name, body in blobs.items():
        if "/hourly/" in name:
            doc = orjson.loads(body)
            doc["hours"] = {hh: {k: v for k, v in h.items() if k not in ("rev", "stream")}
                            for hh, h in doc["hours"].items()}  # fmt: skip
            out[name] = doc
    for home_id, status in durable_statuses(blobs).items():
        status.pop("state", None)
        out[home_id] = status
    return out


@pytest.fixture(params=TRANSPORTS)
async def stack(
    request: pytest.FixtureRequest, emulator_factory: EmulatorFactory, azurite: AzuriteProcess, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The services over AMQP, then over AMQP over WebSockets (the test data goes in over AMQP)."""
    transport: str = request.param
    emulator = emulator_factory(websocket=transport == "amqp_websockets")
    yield Stack(emulator, azurite, f"c{uuid.uuid4().hex[:12]}", tmp_path / "logs", transport)
    if transport == "amqp_websockets":
        assert websocket_connections(emulator) > 0, "the services did not connect over WebSockets"


async def test_rollups_dead_letters_initial_checkpoints_and_graceful_shutdown(stack: Stack) -> None:
    consumer = stack.consumer("consumer-a")
    with consumer:
        consumer.start()
        assert len(await checkpoints(stack)) == 16  # one per partition before any event (KEDA blobMetadata)
        for component in ("decoder", "fold", "receiver"):  # start-up decisions (also on the oldest SDK)
            got = consumer.metric("homesec_consumer_accelerated", component=component)
            assert got == accelerated("consumer", component), component
        readings = dataset(n_homes=40, minutes=30)
        delivered = interleave(readings, duplicate_fraction=0.05)
        await publish(stack.emulator.connection_string(HUB), delivered)
        poison = [b"\xff not json", orjson.dumps({"schema_version": 2, "home_id": "x"}),
                  orjson.dumps({"schema_version": 1, "home_id": "home-00001"})]  # fmt: skip
        await publish_raw(stack.emulator.connection_string(HUB), poison, partition_key="home-00001")
        truth = ground_truth(readings)
        await wait_rolled_up(stack, truth, timeout=180)
        await wait_checkpointed_to_end(stack, timeout=30)

        async with ContainerClient.from_connection_string(
            stack.azurite.connection_string, stack.containers["DEADLETTER_CONTAINER"]
        ) as dl:
            reasons = sorted([orjson.loads(await (await dl.download_blob(b.name)).readall())["reason"]
                              async for b in dl.list_blobs()])  # fmt: skip
        assert reasons == ["invalid", "schema_version", "undecodable"]
        assert consumer.metric("homesec_consumer_dead_letters_total") == 3
        assert consumer.metric("homesec_consumer_duplicates_dropped_total") >= len(delivered) - len(readings)
        # The status blobs' lost_readings equal the truth (wait_rolled_up); the counter also counts gaps seen
        # between batches and filled by a later out-of-order reading (docs/consumer.md, loss detection).
        assert consumer.metric("homesec_consumer_sequence_gaps_total") >= sum(
            sum(t.lost.values()) for t in truth.values()
        )
        assert consumer.metric("homesec_consumer_readings_rolled_up_total") == len(readings)
        assert consumer.metric("homesec_consumer_partitions_owned") == 16
        assert consumer.metric("homesec_consumer_homes_in_state") == 40

        status = consumer.get("/v1/homes/home-00001/status")
        assert status["lost_readings"] == sum(truth["home-00001"].lost.values())
        history = consumer.get("/v1/homes/home-00001/history?hours=24")
        assert sum(h["total"] for h in history["hours"]) == truth["home-00001"].readings
        line = progress_line([f"http://127.0.0.1:{consumer.admin_port}"])
        assert f"rolled_up={len(readings)} " in line and " lag=0 " in line and "partitions=16" in line

        sent = time.monotonic()
        consumer.proc.send_signal(signal.SIGTERM)
        assert consumer.proc.wait(timeout=20) == 0
        assert time.monotonic() - sent < 15
    owners = await ownership(stack)
    assert len(owners) == 16 and not any(o["owner_id"] for o in owners)  # released on shutdown


async def test_end_to_end_through_the_producer_and_restart_from_an_old_checkpoint(stack: Stack) -> None:
    from homesec_producer.auth import TokenAuthority

    from tests.integration.producer.harness import AUTH_KEYS, ProducerProcess

    readings = dataset(n_homes=60, minutes=30, seed=11)
    truth = ground_truth(readings)
    authority = TokenAuthority({k: v.encode() for k, v in AUTH_KEYS.items()})
    token = authority.issue("it", truth.keys(), datetime.now(UTC) + timedelta(hours=1))
    producer = ProducerProcess(stack.emulator, stack.log_dir, transport=stack.transport)
    consumer = stack.consumer("consumer-e2e")
    with contextlib.ExitStack() as procs:
        procs.callback(producer.stop)
        procs.enter_context(consumer)
        producer.start()
        consumer.start()
        delivered = interleave(readings, duplicate_fraction=0.03)
        async with httpx.AsyncClient(
            base_url=producer.url, headers={"authorization": f"Bearer {token}"}
        ) as http:
            for i in range(0, len(delivered), 400):
                chunk = [json.loads(encode_reading(r))
                         for r in delivered[i : i + 400]]  # fmt: skip
                copies: dict[str, int] = {}
                requests: list[list[Any]] = []  # a request may not repeat a reading_id: the n-th copy
                for doc in chunk:  # of a reading goes in the n-th request (a client's re-send)
                    doc.pop("schema_version")
                    n = copies[doc["reading_id"]] = copies.get(doc["reading_id"], -1) + 1
                    if n == len(requests):
                        requests.append([])
                    requests[n].append(doc)
                for docs in requests:
                    resp = await http.post("/v1/readings", json={"readings": docs}, timeout=30)
                    assert resp.status_code == 202, resp.text
        t0 = time.monotonic()
        first = await wait_rolled_up(stack, truth, timeout=180)
        await wait_checkpointed_to_end(stack, timeout=30)
        print(f"rolled up {len(readings)} readings in {time.monotonic() - t0:.1f} s after posting")
        consumer.proc.stop(grace=20)

    # Rewind every checkpoint to the start and delete a third of the homes' status views: the replay finds
    # every event at or below its home's position in the snapshots, and the durable rollups stay the same.
    async with stack.checkpoint_store() as store:
        for pid in await checkpoints(stack):
            await store.update_checkpoint({"fully_qualified_namespace": stack.namespace, "eventhub_name": HUB,
                                           "consumer_group": GROUP, "partition_id": pid, "offset": "-1",
                                           "sequence_number": -1})  # fmt: skip
    async with stack.rollups() as container:
        for name in sorted(first):
            if name.endswith("/status.json") and int(name.split("/")[1].split("-")[1]) % 3 == 0:
                await container.delete_blob(name)
    again = stack.consumer("consumer-e2e-restart")
    with again:
        again.start()
        await wait_checkpointed_to_end(stack, timeout=120)
        await wait_rolled_up(stack, truth, timeout=60)
        assert comparable(await read_rollups(stack)) == comparable(first)


async def wait_both_own(a: ConsumerProcess, b: ConsumerProcess, timeout: float = 90) -> None:
    """Until the two consumers share all 16 partitions, each owning at least a quarter."""
    deadline = time.monotonic() + timeout
    while True:
        owned = a.metric("homesec_consumer_partitions_owned"), b.metric("homesec_consumer_partitions_owned")
        if sum(owned) == 16 and min(owned) >= 4:
            return
        assert time.monotonic() < deadline, f"partitions not shared: {owned}"
        await asyncio.sleep(0.5)


async def test_chaos_sigkill_one_consumer_add_another(stack: Stack) -> None:
    readings = dataset(n_homes=64, minutes=30, seed=5)
    truth = ground_truth(readings)
    delivered = interleave(readings, duplicate_fraction=0.05)
    conn = stack.emulator.connection_string(HUB)
    a, b, c = stack.consumer("consumer-a"), stack.consumer("consumer-b"), stack.consumer("consumer-c")
    with a, b, c:
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        await wait_both_own(a, b)  # else B may fold the whole first third before A owns anything
        third = len(delivered) // 3
        await publish(conn, delivered[:third])
        deadline = time.monotonic() + 60
        while a.metric("homesec_consumer_readings_rolled_up_total") == 0:  # A has durable work to lose
            assert time.monotonic() < deadline, "consumer A never rolled anything up"
            await asyncio.sleep(0.5)
        sending = asyncio.create_task(publish(conn, delivered[third:], pace=0.02))
        await asyncio.sleep(1.0)
        assert a.metric("homesec_consumer_partitions_owned") > 0
        a.proc.kill()  # SIGKILL mid-stream: no flush, no checkpoint, ownership left to expire
        await asyncio.to_thread(c.start)
        await sending
        await wait_rolled_up(stack, truth, timeout=240)
        await wait_checkpointed_to_end(stack, timeout=60)

        deadline = time.monotonic() + 60
        while True:  # rebalanced: every partition owned by exactly one live consumer, none by A
            owned = {"b": b.metric("homesec_consumer_partitions_owned"),
                     "c": c.metric("homesec_consumer_partitions_owned")}  # fmt: skip
            owners = await ownership(stack)
            live_ids = {o["owner_id"] for o in owners if time.time() - float(o["last_modified_time"]) < 8}
            if (
                sum(owned.values()) == 16
                and min(owned.values()) > 0
                and len(owners) == 16
                and len(live_ids) == 2
            ):
                break
            assert time.monotonic() < deadline, f"not rebalanced: {owned}, owner ids {live_ids}"
            await asyncio.sleep(1.0)
        rolled = b.metric("homesec_consumer_readings_rolled_up_total") + c.metric(
            "homesec_consumer_readings_rolled_up_total"
        )
        assert rolled <= len(readings)  # B and C never count a reading twice between them
        # No double counts and no gaps: the blobs equal the ground truth, lost readings included (checked by
        # wait_rolled_up). The gap counter counts what each process saw: a partition replayed after a
        # takeover or a fenced snapshot counts its gaps again, so only its movement is checked here.
        assert (
            b.metric("homesec_consumer_sequence_gaps_total")
            + c.metric("homesec_consumer_sequence_gaps_total")
            > 0
        )
