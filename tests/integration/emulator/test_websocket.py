"""AMQP over WebSocket (``--ws-port``): the unmodified SDK, async and sync, over ``ws://.../$servicebus/websocket``."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub._pyamqp._decode import decode_frame
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.aio import EventHubProducerClient as AsyncProducer
from azure.eventhub.exceptions import EventDataSendError
from homesec_devstack.emulator import codec
from homesec_devstack.emulator.websocket import SUBPROTOCOL, WS_PATH
from homesec_devstack.emulator_process import EmulatorProcess

from tests.conftest import EmulatorFactory
from tests.integration.emulator.helpers import read_all, send_batches
from tests.waits import eventually

pytestmark = pytest.mark.integration


def _tcp_amqp_connections(emu: EmulatorProcess) -> int:
    """AMQP connections that did not come over WebSocket (the start-up port probe is one)."""
    stats = emu.stats()
    return int(stats["connections_total"]) - int(stats["websocket_connections_total"])


@pytest.fixture
def ws_emulator(emulator_factory: EmulatorFactory) -> EmulatorProcess:
    return emulator_factory(websocket=True)


async def test_async_producer_and_consumer_over_websocket(ws_emulator: EmulatorProcess) -> None:
    emu, kw = ws_emulator, ws_emulator.websocket_kwargs()
    tcp_before = _tcp_amqp_connections(emu)
    producer = AsyncProducer.from_connection_string(emu.connection_string(), **kw)
    bodies = [f"ws-{i}-" + "x" * 5000 for i in range(300)]  # ~1.5 MB: several batches, multi-frame transfers
    async with producer:
        for key in ("home-1", "home-2", "home-3"):
            batch = await producer.create_batch(partition_key=key)
            for body in bodies[:100]:
                batch.add(EventData(f"{key}:{body}"))
            await producer.send_batch(batch)
        props = await producer.get_eventhub_properties()
    assert len(props["partition_ids"]) == 16
    got = await read_all(emu.connection_string(), expected=300, client_kw=kw)
    assert sorted(g.body for g in got) == sorted(f"{k}:{b}" for k in ("home-1", "home-2", "home-3")
                                                 for b in bodies[:100])  # fmt: skip
    assert len({g.partition for g in got if g.partition_key == b"home-1"}) == 1
    stats = emu.stats()
    assert stats["websocket_connections_total"] >= 2  # the producer's and the consumer's at least
    assert _tcp_amqp_connections(emu) == tcp_before, "the SDK must not have used the TCP listener"


def test_sync_producer_over_websocket(ws_emulator: EmulatorProcess) -> None:
    """The sync client's WebSocket transport is websocket-client, not aiohttp."""
    emu, kw = ws_emulator, ws_emulator.websocket_kwargs()
    tcp_before = _tcp_amqp_connections(emu)
    with EventHubProducerClient.from_connection_string(emu.connection_string(), **kw) as producer:
        batch = producer.create_batch(partition_id="3")
        for i in range(50):
            batch.add(EventData(f"sync-{i}"))
        producer.send_batch(batch)
        producer.send_event(EventData("single"), partition_key="home-9")
    assert emu.stats()["incoming_events"] == 51
    assert emu.stats()["hubs"]["telemetry"]["partitions"]["3"]["count"] >= 50
    got = asyncio.run(read_all(emu.connection_string(), expected=51, client_kw=kw))
    assert sorted(g.body for g in got) == sorted([f"sync-{i}" for i in range(50)] + ["single"])
    assert _tcp_amqp_connections(emu) == tcp_before


async def test_throttled_send_over_websocket(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(websocket=True, throughput_units=1)
    cs, kw = emu.connection_string(), emu.websocket_kwargs()
    # Batches of ~960 KB against 1 TU's 1 MB/s: the second batch meets a near-empty byte allowance however
    # slowly a loaded machine builds them (500 small events a batch needed more than 1,000 events/s).
    with pytest.raises(EventDataSendError, match=r"com\.microsoft:server-busy"):
        await send_batches(cs, batches=6, size=120, body_bytes=8000, **kw)
    throttled = await send_batches(cs, batches=6, size=120, body_bytes=8000, app_retries=60, **kw)
    assert throttled > 0
    assert emu.stats()["throttled_requests"] >= throttled + 1


async def test_sdk_reconnects_over_websocket_after_dropped_connections(ws_emulator: EmulatorProcess) -> None:
    emu, cs, kw = ws_emulator, ws_emulator.connection_string(), ws_emulator.websocket_kwargs()
    received: list[str] = []

    async def on_event(ctx: object, ev: EventData | None) -> None:
        if ev is not None:
            received.append(ev.body_as_str())

    consumer = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default", **kw)
    receiving = asyncio.create_task(consumer.receive(on_event, partition_id="0", starting_position="-1"))
    producer = AsyncProducer.from_connection_string(cs, retry_total=5, retry_backoff_factor=0.1, **kw)
    try:
        async with producer:
            await producer.send_event(EventData("before"), partition_id="0")
            await eventually(lambda: received == ["before"], 15, "the event sent before the drop")
            ws_before = emu.stats()["websocket_connections_total"]
            emu.drop_connections()
            await eventually(lambda: emu.stats()["connections_open"] == 0, 15, "connections dropped")
            await producer.send_event(EventData("after"), partition_id="0")
            await eventually(lambda: received == ["before", "after"], 30, "the event sent after the drop")
    finally:
        await consumer.close()
        receiving.cancel()
    assert emu.stats()["websocket_connections_total"] >= ws_before + 2  # both clients reconnected


async def test_frames_split_and_joined_across_websocket_messages(ws_emulator: EmulatorProcess) -> None:
    """The WebSocket carries a byte stream: message boundaries need not match AMQP frame boundaries."""
    url = f"ws://127.0.0.1:{ws_emulator.ws_port}{WS_PATH}"
    init = codec.P.SASLInit(mechanism=b"ANONYMOUS", initial_response=b"", hostname="127.0.0.1")
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=[SUBPROTOCOL]) as ws:
        assert ws.protocol == SUBPROTOCOL
        for piece in (codec.SASL_HEADER[:3], codec.SASL_HEADER[3:]):  # one 8-byte header in two messages
            await ws.send_bytes(piece)
        reader = _WsReader(ws)
        assert await reader.read(8) == codec.SASL_HEADER
        assert (await reader.frame())[0] == 0x40  # sasl-mechanisms
        # sasl-init, the AMQP header and open in one message
        open_frame = codec.P.OpenFrame(
            container_id="raw-ws", hostname="127.0.0.1", max_frame_size=65536, channel_max=8,
            idle_timeout=None, outgoing_locales=None, incoming_locales=None, offered_capabilities=None,
            desired_capabilities=None, properties=None,
        )  # fmt: skip
        sasl_init = codec.frame_bytes(0, init, codec.FRAME_SASL)
        await ws.send_bytes(sasl_init + codec.AMQP_HEADER + codec.frame_bytes(0, open_frame))
        assert await reader.frame() == (0x44, [0, None])  # sasl-outcome ok
        assert await reader.read(8) == codec.AMQP_HEADER
        code, fields = await reader.frame()
        assert (code, fields[0]) == (0x10, b"homesec-eventhubs-emulator")


class _WsReader:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.buf = ws, b""

    async def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += await asyncio.wait_for(self.ws.receive_bytes(), 5)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def frame(self) -> tuple[int, list[object]]:
        header = await self.read(8)
        body = await self.read(int.from_bytes(header[:4], "big") - 8)
        code, fields = decode_frame(memoryview(body))
        return code, list(fields)


@pytest.mark.parametrize(
    ("path", "protocols", "status"),
    [(WS_PATH, [], 400), (WS_PATH, ["chat"], 400), ("/other", [SUBPROTOCOL], 404)],
)
async def test_upgrade_refused_without_subprotocol_or_on_another_path(
    ws_emulator: EmulatorProcess, path: str, protocols: list[str], status: int
) -> None:
    url = f"ws://127.0.0.1:{ws_emulator.ws_port}{path}"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, protocols=protocols)
    assert refused.value.status == status
    assert ws_emulator.stats()["websocket_connections_total"] == 0


def test_websocket_is_off_unless_asked(emulator: EmulatorProcess) -> None:
    assert emulator.ws_port is None
    with pytest.raises(RuntimeError, match="websocket=True"):
        emulator.websocket_kwargs()
