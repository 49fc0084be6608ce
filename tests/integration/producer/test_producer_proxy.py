"""Event Hubs traffic through an HTTP proxy (``TRANSPORT=amqp_websockets`` + ``EVENTHUB_HTTP_PROXY``): the
producer's sends and the consumer's receives go through the proxy to the emulator's WebSocket listener."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess

from tests.integration.consumer.harness import Stack
from tests.integration.http_proxy import LoopbackProxy
from tests.integration.transport import websocket_connections

from .harness import ProducerProcess, read_hub
from .test_producer_http import bearer

pytestmark = pytest.mark.integration


async def test_both_services_reach_event_hubs_through_an_http_proxy(
    emulator_factory: Callable[..., EmulatorProcess], azurite: AzuriteProcess, tmp_path: Path
) -> None:
    emulator = emulator_factory(websocket=True)
    async with LoopbackProxy() as proxy:
        proxy_env = {"TRANSPORT": "amqp_websockets", "EVENTHUB_HTTP_PROXY": f"http://127.0.0.1:{proxy.port}"}
        producer = ProducerProcess(emulator, tmp_path, env=proxy_env, transport="amqp_websockets")
        stack = Stack(emulator, azurite, f"p{uuid.uuid4().hex[:12]}", tmp_path / "logs", "amqp_websockets")
        consumer = stack.consumer("consumer-proxy", **proxy_env)
        try:
            await asyncio.to_thread(producer.start)
            await asyncio.to_thread(consumer.start)
            doc = {
                "reading_id": str(uuid.uuid4()), "home_id": "home-p", "sensor_id": "door-1",
                "sensor_type": "door", "ts": datetime.now(UTC).isoformat(), "state": "open", "seq": 1,
            }  # fmt: skip
            async with httpx.AsyncClient(timeout=30) as http:
                answer = await http.post(f"{producer.url}/v1/readings", json={"readings": [doc]},
                                         headers=bearer("home-p"))  # fmt: skip
            assert answer.status_code == 202, answer.text
            deadline = asyncio.get_running_loop().time() + 60
            while consumer.metric("homesec_consumer_events_received_total") < 1:
                assert asyncio.get_running_loop().time() < deadline, "the consumer received nothing"
                await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(consumer.proc.stop, 20)
            await asyncio.to_thread(producer.stop)
    hub = await read_hub(emulator)
    assert hub.ids[str(doc["reading_id"])] == 1
    assert len(proxy.tunnels) >= 2, proxy.tunnels  # at least one connection per service
    assert websocket_connections(emulator) >= len(proxy.tunnels)
