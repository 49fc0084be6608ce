"""TLS listeners (amqps, wss), CBS refusing a missing hub with 404, and hubs created at run time."""

from __future__ import annotations

import asyncio
import urllib.error
from typing import Any

import pytest
from azure.eventhub import EventData, TransportType
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import AuthenticationError, ConnectError
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import free_port

from tests.conftest import EmulatorFactory
from tests.integration.emulator.helpers import read_all
from tests.waits import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_emulator(emulator_factory: EmulatorFactory) -> EmulatorProcess:
    return emulator_factory(tls=True, wss_port=free_port())


def _tls_kwargs(emu: EmulatorProcess, websocket: bool = False) -> dict[str, Any]:
    port = emu.wss_port if websocket else emu.tls_port
    return {
        "custom_endpoint_address": f"sb://localhost:{port}",
        "transport_type": TransportType.AmqpOverWebsocket if websocket else TransportType.Amqp,
        "connection_verify": str(emu.tls_ca),
    }


@pytest.mark.parametrize("websocket", [False, True], ids=["amqps", "wss"])
async def test_send_and_receive_over_tls(tls_emulator: EmulatorProcess, websocket: bool) -> None:
    emu = tls_emulator
    cs, kw = emu.tls_connection_string(), _tls_kwargs(emu, websocket)
    producer = EventHubProducerClient.from_connection_string(cs, **kw)
    async with producer:
        batch = await producer.create_batch(partition_key="home-1")
        for i in range(20):
            batch.add(EventData(f"tls-{i}-" + "y" * 3000))
        await producer.send_batch(batch)
    got = await read_all(cs, expected=20, client_kw=kw)
    assert sorted(g.body for g in got) == sorted(f"tls-{i}-" + "y" * 3000 for i in range(20))
    assert (emu.stats()["websocket_connections_total"] >= 2) is websocket
    assert emu.tls_ca.read_text().startswith("-----BEGIN CERTIFICATE-----")


async def test_tls_refused_when_the_client_does_not_trust_the_ca(tls_emulator: EmulatorProcess) -> None:
    kw = _tls_kwargs(tls_emulator)
    kw.pop("connection_verify")  # the system's CAs only
    producer = EventHubProducerClient.from_connection_string(
        tls_emulator.tls_connection_string(), retry_total=0, **kw
    )
    async with producer:
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await producer.create_batch()
    assert tls_emulator.stats()["incoming_events"] == 0


def test_certificate_is_kept_across_restarts(tls_emulator: EmulatorProcess) -> None:
    before = tls_emulator.tls_ca.read_bytes()
    tls_emulator.restart()
    assert tls_emulator.tls_ca.read_bytes() == before


async def test_put_token_for_a_missing_hub_is_refused_with_404(emulator: EmulatorProcess) -> None:
    """As Event Hubs: the SDK sees the missing hub at CBS and raises AuthenticationError (a ConnectError)."""
    cs = emulator.connection_string(hub="nosuchhub")
    producer = EventHubProducerClient.from_connection_string(cs, retry_total=0)
    async with producer:
        with pytest.raises(AuthenticationError) as refused:
            await producer.create_batch(partition_id="0")
    assert "404" in str(refused.value)
    assert "nosuchhub' could not be found" in str(refused.value)
    errors: list[Exception] = []

    async def on_error(ctx: object, exc: Exception) -> None:
        errors.append(exc)

    async def on_event(ctx: object, ev: object) -> None:
        return None

    consumer = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default", retry_total=0)
    task = asyncio.create_task(consumer.receive(on_event, partition_id="0", on_error=on_error))
    try:
        await eventually(lambda: bool(errors), 10, "the receiver's error")
    finally:
        await consumer.close()
        task.cancel()
    assert isinstance(errors[0], AuthenticationError)


async def test_hub_created_at_run_time_serves_sdk_clients(emulator: EmulatorProcess) -> None:
    created = emulator.create_hub("Runtime-Hub_1", partitions=2)
    assert created == {"name": "Runtime-Hub_1", "partition_ids": ["0", "1"]}
    cs = emulator.connection_string(hub="runtime-hub_1")  # any case, as every hub name
    producer = EventHubProducerClient.from_connection_string(cs)
    async with producer:
        assert await producer.get_partition_ids() == ["0", "1"]
        await producer.send_event(EventData("on a new hub"), partition_id="1")
    got = await read_all(cs, expected=1)
    assert [(g.partition, g.body) for g in got] == [("1", "on a new hub")]
    assert emulator.stats()["hubs"]["Runtime-Hub_1"]["partitions"]["1"]["count"] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "TELEMETRY", "partitions": 2}, 409),  # exists (names are case-insensitive)
        ({"name": "bad/name", "partitions": 2}, 400),
        ({"name": "ok", "partitions": 0}, 400),
        ({"name": "ok", "partitions": 1025}, 400),
        ({"partitions": 2}, 400),
    ],
)
def test_hub_creation_refuses_bad_requests(
    emulator: EmulatorProcess, body: dict[str, Any], status: int
) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.admin("POST", "/hubs", body)
    assert refused.value.code == status
    assert set(emulator.stats()["hubs"]) == {"telemetry", "alarms"}
