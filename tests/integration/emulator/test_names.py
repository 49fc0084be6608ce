"""Entity fidelity with the unmodified SDK: names in any case, and a refused attach that fails the open."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from homesec_devstack.emulator_process import EmulatorProcess

pytestmark = pytest.mark.integration


async def test_consumer_group_and_hub_names_match_in_any_case(emulator: EmulatorProcess) -> None:
    """Event Hubs matches hub and consumer-group names in any case; the SDK's own tests use `$default`."""
    producer = EventHubProducerClient.from_connection_string(emulator.connection_string(hub="Telemetry"))
    async with producer:
        assert (await producer.get_eventhub_properties())["partition_ids"] == [str(i) for i in range(16)]
        batch = await producer.create_batch(partition_id="3")
        for i in range(5):
            batch.add(EventData(f"e{i}"))
        await producer.send_batch(batch)

    got: list[str] = []
    errors: list[Exception] = []
    done = asyncio.Event()

    async def on_event(_ctx: object, ev: EventData | None) -> None:
        if ev is not None:
            got.append(ev.body_as_str())
            if len(got) == 5:
                done.set()

    async def on_error(_ctx: object, err: Exception) -> None:
        errors.append(err)
        done.set()

    consumer = EventHubConsumerClient.from_connection_string(
        emulator.connection_string(hub="TELEMETRY"), consumer_group="$default", retry_total=0
    )
    async with consumer:
        task = asyncio.create_task(
            consumer.receive(on_event, on_error=on_error, partition_id="3", starting_position="-1")
        )
        try:
            await asyncio.wait_for(done.wait(), 15)
        finally:
            await consumer.close()
            task.cancel()
    assert errors == []
    assert got == [f"e{i}" for i in range(5)]
    assert emulator.stats()["outgoing_events"] == 5


async def test_epoch_receivers_in_differently_cased_groups_are_one_group(emulator: EmulatorProcess) -> None:
    """`$Default` and `$DEFAULT` are one consumer group: a higher epoch in one steals from the other."""
    errors: list[Exception] = []
    stolen = asyncio.Event()

    async def on_event(_ctx: object, _ev: EventData | None) -> None:
        return None

    async def on_error(_ctx: object, err: Exception) -> None:
        errors.append(err)
        stolen.set()

    def consumer(group: str) -> EventHubConsumerClient:
        return EventHubConsumerClient.from_connection_string(
            emulator.connection_string(), consumer_group=group, retry_total=0
        )

    low, high = consumer("$Default"), consumer("$DEFAULT")
    low_task = asyncio.create_task(low.receive(on_event, on_error=on_error, partition_id="0", owner_level=1))
    for _ in range(100):  # the lower epoch must hold the partition before the higher one attaches
        stats = await asyncio.to_thread(emulator.stats)
        if stats["hubs"]["telemetry"]["partitions"]["0"]["receivers"] == 1:
            break
        await asyncio.sleep(0.1)
    high_task = asyncio.create_task(high.receive(on_event, partition_id="0", owner_level=2))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stolen.wait(), 10)
    for client, task in ((low, low_task), (high, high_task)):
        await client.close()
        task.cancel()
    assert errors, "the lower-epoch receiver was not detached"
    assert "amqp:link:stolen" in str(errors[0])
