"""The throttled 1 -> 2 scale-out with SIGTERM of the first producer, with the DEFAULT settings
(30 s request deadline, 25 s shutdown grace, 1-30 s backoff), and clients that retry only 429/503 after
Retry-After (``strict_client``). Before the fix, requests still waiting for Event Hubs when uvicorn's
graceful timeout (23 s) expired got 500 without Retry-After, and their readings were lost: this test run
against the producer of commit 1220dda (PYTHONPATH pointing at its services/homesec_producer) failed with
134 batches answered 500 and 6,700 readings lost; with the fix those requests get 503 + Retry-After at
the 22 s cutoff and are acknowledged by the second producer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.simulator import SimulatorConfig

from .harness import AUTH_KEYS, ProducerProcess, read_hub
from .strict_client import StrictFleet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EmulatorFactory = Callable[..., EmulatorProcess]
GRACE = 25.0  # the default HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS


async def test_sigterm_under_throttling_with_defaults_answers_no_5xx_and_loses_nothing(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    emulator = emulator_factory(throughput_units=1)  # 1,000 events/s: the burst below is throttled
    first = ProducerProcess(emulator, tmp_path, fast=False).start()
    second = ProducerProcess(emulator, tmp_path, fast=False)
    config = SimulatorConfig(
        urls=[], auth_keys=AUTH_KEYS, homes=2000, rate=4000, duration=24, readings_per_request=50,
        homes_per_request=10, resend="batch",
    )  # fmt: skip
    # Clients that resend whole batches (clients unaware of the per-reading answers): they still work, and
    # their extra load keeps the hub saturated long enough for the first producer's flush to run out.
    clients = StrictFleet(config, endpoints=[first.url], workers=256)  # up to 256 batches in flight
    load = asyncio.create_task(clients.run())
    try:
        await asyncio.sleep(2)
        await asyncio.to_thread(second.start)
        clients.endpoints.append(second.url)  # scale-out: the new pod joins the Service
        await asyncio.sleep(1)
        clients.endpoints.remove(first.url)  # the old pod leaves the endpoints, then (preStop) gets SIGTERM
        await asyncio.sleep(0.5)
        sent_at = first.terminate()  # the hub stays saturated by the second producer while the first drains
        code = await asyncio.to_thread(first.proc.wait, GRACE + 10)
        assert time.monotonic() - sent_at < GRACE + 1, "did not exit within the grace period"
        result = await load
    finally:
        load.cancel()  # a no-op once it finished
        await asyncio.gather(load, return_exceptions=True)
        first.stop()
        second.stop()
    summary = result.summary()
    assert code == 0, summary
    assert emulator.stats()["throttled_requests"] > 0, "the burst was not throttled"
    assert set(result.statuses) <= {202, 429, 503}, summary  # no 500, no other 5xx
    assert not result.lost, summary
    assert not result.unfinished, summary
    assert result.errors["shutting_down"] > 0, summary  # requests the first producer could not ack in time
    hub = await read_hub(emulator)
    assert not hub.missing(result.acked), summary
