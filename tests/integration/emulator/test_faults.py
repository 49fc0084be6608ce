"""Throttling, auto-inflate, durability, dropped connections, paused partitions, SAS checks, shutdown."""

from __future__ import annotations

import asyncio
import signal

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import AuthenticationError, ConnectError, EventDataSendError, EventHubError
from homesec_devstack.emulator_process import EmulatorProcess

from tests.conftest import EmulatorFactory
from tests.integration.emulator.helpers import read_all, send_batches

pytestmark = pytest.mark.integration


async def test_throttling_surfaces_server_busy_and_app_retries_succeed(
    emulator_factory: EmulatorFactory,
) -> None:
    emu = emulator_factory(throughput_units=1)
    cs = emu.connection_string()
    # 6,000 events at 1 TU (1,000 events/s): sends are refused with server-busy until the allowance refills.
    throttled = await send_batches(cs, batches=12, size=500, app_retries=60, retry_total=3)
    stats = emu.stats()
    assert throttled > 0
    assert stats["throttled_requests"] >= throttled  # the SDK may resend once on its own before raising
    assert stats["incoming_events"] == 6000
    got = await read_all(cs, expected=6000, timeout=30)
    assert sorted(g.body for g in got) == sorted(f"{b}:{i}" for b in range(12) for i in range(500))


async def test_throttled_send_is_loud_even_with_sdk_retries(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(throughput_units=1)
    with pytest.raises(EventDataSendError, match=r"com\.microsoft:server-busy"):
        await send_batches(emu.connection_string(), batches=6, size=500, retry_total=10)
    # The SDK resends a rejected batch at most once, at once, then raises: nowhere near retry_total=10 tries
    # with back-off. (Two throttles per failing send in isolation; a third when the machine is slow enough
    # for an earlier batch to meet an empty bucket too.)
    assert 1 <= emu.stats()["throttled_requests"] <= 3


async def test_auto_inflate_raises_throughput_units(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(throughput_units=1, auto_inflate_max=4)
    await send_batches(emu.connection_string(), batches=16, size=500, app_retries=60)
    stats = emu.stats()
    assert 1 < stats["throughput_units"] <= 4
    assert stats["incoming_events"] == 8000


async def test_acknowledged_events_survive_a_restart(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory()
    cs = emu.connection_string()
    await send_batches(cs, batches=5, size=100)
    emu.process.send_signal(signal.SIGKILL)  # a crash, not a clean stop
    emu.process.wait(10)
    emu.start()
    got = await read_all(cs, expected=500)
    assert len(got) == 500
    await send_batches(cs, batches=1, size=10)
    props_after = await read_all(cs, expected=510)
    assert len(props_after) == 510
    seqs: dict[str, list[int]] = {}
    for g in props_after:
        seqs.setdefault(g.partition, []).append(g.sequence_number)
    for numbers in seqs.values():  # sequence numbers continue after the restart, no reuse
        assert sorted(numbers) == list(range(len(numbers)))


async def test_sdk_recovers_from_dropped_connections(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    producer = EventHubProducerClient.from_connection_string(cs, retry_total=5, retry_backoff_factor=0.1)
    async with producer:
        await producer.send_event(EventData("before"))
        assert emulator.stats()["connections_open"] >= 1
        emulator.drop_connections()
        await producer.send_event(EventData("after"))
    got = await read_all(cs, expected=2)
    assert sorted(g.body for g in got) == ["after", "before"]
    assert emulator.stats()["connections_total"] >= 2


async def test_paused_partition_holds_acks_and_deliveries(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    emulator.pause_partition("telemetry", "5")
    producer = EventHubProducerClient.from_connection_string(cs, retry_total=0)
    async with producer:
        batch = await producer.create_batch(partition_id="5")
        batch.add(EventData("held"))
        send = asyncio.create_task(producer.send_batch(batch, timeout=30))
        await asyncio.sleep(1.0)
        assert not send.done(), "a paused partition must not acknowledge"
        emulator.resume_partition("telemetry", "5")
        await asyncio.wait_for(send, 10)
    got = await read_all(cs, expected=1)
    assert [(g.partition, g.body) for g in got] == [("5", "held")]


async def test_check_sas_refuses_a_wrong_key(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(check_sas=True)
    bad = EventHubProducerClient.from_connection_string(emu.connection_string(key="d3Jvbmc="), retry_total=0)
    async with bad:
        with pytest.raises((AuthenticationError, ConnectError, EventHubError)):
            await bad.send_event(EventData("nope"))
    good = EventHubProducerClient.from_connection_string(emu.connection_string())
    async with good:
        await good.send_event(EventData("yes"))
    assert emu.stats()["incoming_events"] == 1


async def test_epoch_receiver_steals_the_partition(emulator: EmulatorProcess) -> None:
    cs = emulator.connection_string()
    errors: list[Exception] = []

    async def on_error(ctx: object, exc: Exception) -> None:
        errors.append(exc)

    async def on_event(ctx: object, ev: object) -> None:
        return None

    low = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default")
    high = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default")
    t_low = asyncio.create_task(low.receive(on_event, partition_id="0", owner_level=1, on_error=on_error))
    await asyncio.sleep(1.5)
    t_high = asyncio.create_task(high.receive(on_event, partition_id="0", owner_level=2))
    for _ in range(50):
        if errors:
            break
        await asyncio.sleep(0.1)
    await low.close()
    await high.close()
    for t in (t_low, t_high):
        t.cancel()
    assert errors, "the lower epoch receiver must be detached"
    assert "stolen" in str(errors[0]).lower() or "epoch" in str(errors[0]).lower()


def test_sigterm_shuts_down_cleanly(emulator: EmulatorProcess) -> None:
    emulator.process.send_signal(signal.SIGTERM)
    assert emulator.process.wait(10) == 0
