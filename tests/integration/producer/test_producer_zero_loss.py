"""Zero loss under throttling, scale-out with SIGTERM, and an emulator restart; plus the negative control.

Each test drives real producer processes with the simulator over loopback and reads the hub back with
the SDK. "Acknowledged" = the reading's request got 202.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import http_status
from homesec_devstack.simulator import RETRYABLE, LoadResult, SimulatorConfig, run_load

from tests.integration.transport import TRANSPORTS, accelerated, websocket_connections
from tests.waits import eventually

from .harness import AUTH_KEYS, ProducerProcess, read_hub

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EmulatorFactory = Callable[..., EmulatorProcess]


def load(
    urls: list[str], rate: float, duration: float, retries: int = 0, homes: int = 2000
) -> SimulatorConfig:
    return SimulatorConfig(
        urls=urls, auth_keys=AUTH_KEYS, homes=homes, rate=rate, duration=duration, readings_per_request=50,
        homes_per_request=10, concurrency=64, retries=retries, retry_backoff=0.3, request_timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_throttled_at_one_tu_every_ack_is_in_the_hub_exactly_once(
    emulator_factory: EmulatorFactory, tmp_path: Path, transport: str
) -> None:
    emulator = emulator_factory(throughput_units=1, websocket=transport == "amqp_websockets")
    env = {"REQUEST_DEADLINE_SECONDS": "6"}
    producer = ProducerProcess(emulator, tmp_path, env=env, transport=transport).start()
    try:
        result = await run_load(load([producer.url], rate=4000, duration=3))  # 4x the 1 TU ingress limit
        throttled = producer.metric("homesec_producer_publish_throttled_total")
        encoder = producer.metric('homesec_producer_accelerated{component="encoder"}')
        payload = producer.metric('homesec_producer_accelerated{component="payload"}')
    finally:
        producer.stop()
    assert emulator.stats()["throttled_requests"] > 0 and throttled > 0, "the burst was not throttled"
    assert result.acked, result.summary()
    assert not result.non_retryable, result.summary()  # every other reading got 429/503
    assert set(result.refused.values()) <= RETRYABLE
    hub = await read_hub(emulator)
    assert not hub.missing(result.acked)
    assert not hub.duplicated(result.acked)
    assert (websocket_connections(emulator) > 0) is (transport == "amqp_websockets")
    assert encoder == accelerated("producer", "encoder")
    assert payload == accelerated("producer", "payload")


async def _scale_out_burst(
    emulator: EmulatorProcess, tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[LoadResult, int]:
    """The source document's 1 -> 2 pods: A takes the burst, B starts mid-burst, A gets SIGTERM."""
    first = ProducerProcess(emulator, tmp_path, env=env).start()
    second = ProducerProcess(emulator, tmp_path, env=env)
    try:
        burst = asyncio.create_task(run_load(load([first.url, second.url], rate=3000, duration=8, retries=6)))
        await asyncio.sleep(2)
        await asyncio.to_thread(second.start)
        await asyncio.sleep(1)
        sent_at = first.terminate()
        # Readiness turns false at once: the admin port answers 503 while the process drains.
        readyz = f"{first.admin_url}/readyz"
        await eventually(lambda: http_status(readyz) == 503, 10, "readiness false (503) while draining")
        code = await asyncio.to_thread(first.proc.wait, 30)
        assert time.monotonic() - sent_at < 15 + 1, "did not exit within the grace period"
        result = await burst
    finally:
        first.stop()
        second.stop()
    return result, code


async def test_scale_out_under_burst_loses_nothing(emulator_factory: EmulatorFactory, tmp_path: Path) -> None:
    emulator = emulator_factory(throughput_units=1)
    result, code = await _scale_out_burst(emulator, tmp_path)
    assert code == 0
    assert result.acked, result.summary()
    assert emulator.stats()["throttled_requests"] > 0, "the burst was not throttled"
    hub = await read_hub(emulator)
    assert not hub.missing(result.acked), result.summary()


async def test_scale_out_with_retries_off_shows_the_loss(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """Negative control: the same harness with retries off and failures swallowed (the documented bug)."""
    emulator = emulator_factory(throughput_units=1)
    result, _ = await _scale_out_burst(
        emulator, tmp_path, {"PUBLISH_MAX_TRIES": "1", "UNSAFE_ACK_ON_PUBLISH_FAILURE": "true"}
    )
    hub = await read_hub(emulator)
    lost = hub.missing(result.acked)
    assert lost, "the harness failed to detect loss: it could not fail"


async def test_emulator_restart_mid_load_loses_no_acknowledged_reading(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    emulator = emulator_factory()
    producer = ProducerProcess(emulator, tmp_path).start()
    try:
        task = asyncio.create_task(run_load(load([producer.url], rate=2000, duration=8, retries=3)))
        await asyncio.sleep(3)
        await asyncio.to_thread(emulator.restart)
        result = await task
        retries = producer.metric("homesec_producer_publish_retries_total")
    finally:
        producer.stop()
    assert result.acked, result.summary()
    assert retries > 0, "the restart did not disturb publishing"
    hub = await read_hub(emulator)
    assert not hub.missing(result.acked), result.summary()
