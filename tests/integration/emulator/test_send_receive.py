"""The unmodified azure-eventhub SDK against the emulator: send paths, positions, management, sync API."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.aio import EventHubProducerClient as AsyncProducer
from azure.eventhub.exceptions import EventDataSendError
from homesec_devstack.emulator_process import EmulatorProcess

from tests.integration.emulator.helpers import read_all, send_keyed

pytestmark = pytest.mark.integration


async def test_keyed_batches_land_on_one_partition_in_order(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    data = {f"home-{h}": [f"home-{h}:{i}" for i in range(20)] for h in range(40)}
    await send_keyed(cs, data)
    got = await read_all(cs, expected=800)
    assert len(got) == 800
    by_key: dict[str, list[tuple[str, int, str]]] = {}
    for g in got:
        assert g.partition_key is not None
        by_key.setdefault(g.partition_key.decode(), []).append((g.partition, g.sequence_number, g.body))
    assert set(by_key) == set(data)
    for key, rows in by_key.items():
        assert len({p for p, _, _ in rows}) == 1, f"{key} spread over partitions"
        rows.sort(key=lambda r: r[1])
        assert [b for _, _, b in rows] == data[key], f"{key} out of order"
    assert len({g.partition for g in got}) > 8, "40 keys should spread over most of 16 partitions"


async def test_same_key_maps_to_same_partition_as_buffered_producer(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    await send_keyed(cs, {"home-x": ["a"]})
    got_server = await read_all(cs, expected=1)
    errors: list[object] = []

    async def on_error(events: object, pid: object, exc: object) -> None:
        errors.append(exc)

    async def on_success(events: object, pid: object) -> None:
        return None

    producer = AsyncProducer.from_connection_string(
        cs, buffered_mode=True, max_wait_time=0.2, on_error=on_error, on_success=on_success
    )
    async with producer:
        await producer.send_event(EventData("b"), partition_key="home-x")
        await producer.flush()
    got = await read_all(cs, expected=2)
    assert not errors
    assert {g.partition for g in got} == {got_server[0].partition}


async def test_unkeyed_round_robin_and_partition_id(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    producer = AsyncProducer.from_connection_string(cs)
    async with producer:
        for i in range(32):
            await producer.send_event(EventData(f"rr-{i}"))
        batch = await producer.create_batch(partition_id="7")
        for i in range(5):
            batch.add(EventData(f"p7-{i}"))
        await producer.send_batch(batch)
    got = await read_all(cs, expected=37)
    rr = [g for g in got if g.body.startswith("rr-")]
    assert len({g.partition for g in rr}) == 16
    p7 = sorted((g for g in got if g.body.startswith("p7-")), key=lambda g: g.sequence_number)
    assert {g.partition for g in p7} == {"7"}
    assert [g.body for g in p7] == [f"p7-{i}" for i in range(5)]


async def test_management_properties_track_the_log(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    producer = AsyncProducer.from_connection_string(cs)
    async with producer:
        props = await producer.get_eventhub_properties()
        assert props["eventhub_name"] == "telemetry"
        assert props["partition_ids"] == [str(i) for i in range(16)]
        empty = await producer.get_partition_properties("2")
        assert empty["is_empty"] and empty["last_enqueued_sequence_number"] == -1
        batch = await producer.create_batch(partition_id="2")
        for i in range(3):
            batch.add(EventData(f"x{i}"))
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await producer.send_batch(batch)
        part = await producer.get_partition_properties("2")
    got = await read_all(cs, expected=3)
    last = max(got, key=lambda g: g.sequence_number)
    assert part["beginning_sequence_number"] == 0
    assert part["last_enqueued_sequence_number"] == 2 == last.sequence_number
    assert part["last_enqueued_offset"] == last.offset
    assert not part["is_empty"]
    assert part["last_enqueued_time_utc"] >= before


async def test_starting_positions(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    producer = AsyncProducer.from_connection_string(cs)
    async with producer:
        for i in range(10):
            batch = await producer.create_batch(partition_id="0")
            batch.add(EventData(f"e{i}"))
            await producer.send_batch(batch)
            await asyncio.sleep(0.01)
    everything = sorted(await read_all(cs, expected=10), key=lambda g: g.sequence_number)
    assert [g.body for g in everything] == [f"e{i}" for i in range(10)]
    fifth = everything[5]

    async def bodies(position: object, inclusive: bool, expected: int) -> list[str]:
        got = await read_all(cs, expected=expected, timeout=3, partition_id="0",
                             starting_position=position, starting_position_inclusive=inclusive)  # fmt: skip
        return [g.body for g in sorted(got, key=lambda g: g.sequence_number)]

    assert await bodies(5, False, 4) == [f"e{i}" for i in range(6, 10)]
    assert await bodies(5, True, 5) == [f"e{i}" for i in range(5, 10)]
    assert await bodies(fifth.offset, False, 4) == [f"e{i}" for i in range(6, 10)]
    assert await bodies(fifth.offset, True, 5) == [f"e{i}" for i in range(5, 10)]
    assert await bodies(fifth.enqueued_time, True, 5) == [f"e{i}" for i in range(5, 10)]
    assert await bodies("@latest", False, 1) == []


async def test_last_enqueued_event_properties(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    await send_keyed(cs, {"k": [str(i) for i in range(5)]})
    from azure.eventhub.aio import EventHubConsumerClient as AsyncConsumer

    seen: list[dict[str, object] | None] = []
    client = AsyncConsumer.from_connection_string(cs, consumer_group="$Default")

    async def on_event(ctx: object, ev: EventData | None) -> None:
        seen.append(ctx.last_enqueued_event_properties)  # type: ignore[attr-defined]

    async with client:
        task = asyncio.create_task(client.receive(on_event, starting_position="-1",
                                                  track_last_enqueued_event_properties=True))  # fmt: skip
        for _ in range(100):
            if len(seen) >= 5:
                break
            await asyncio.sleep(0.1)
        await client.close()
        task.cancel()
    assert len(seen) == 5
    assert all(s is not None and s["sequence_number"] == 4 for s in seen)


def test_sync_client_round_trip(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    with EventHubProducerClient.from_connection_string(cs) as producer:
        batch = producer.create_batch(partition_key="sync-home")
        batch.add(EventData("sync-1"))
        producer.send_batch(batch)
    got: list[str] = []
    consumer = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default")

    def on_event(ctx: object, ev: EventData | None) -> None:
        if ev is not None:
            got.append(ev.body_as_str())
            consumer.close()

    with consumer:
        consumer.receive(on_event, starting_position="-1")
    assert got == ["sync-1"]


async def test_message_size_limit(emulator: EmulatorProcess) -> None:
    producer = AsyncProducer.from_connection_string(emulator.connection_string(), retry_total=0)
    async with producer:
        batch = await producer.create_batch()
        assert batch.max_size_in_bytes == 1024 * 1024
        with pytest.raises(ValueError, match="size"):
            batch.add(EventData(b"x" * (1024 * 1024 + 1)))
        # Bypass the client-side check: the service itself refuses an oversize message.
        with pytest.raises(EventDataSendError) as info:
            await producer.send_event(EventData(b"x" * (1024 * 1024 + 10)))
        assert "size" in str(info.value).lower()
