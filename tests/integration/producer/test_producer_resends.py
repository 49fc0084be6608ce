"""A resend of a partly acknowledged batch publishes nothing twice (real producer, real emulator).

One partition of the emulator is paused (it holds its acknowledgements), so a batch spanning several homes
is partly acknowledged when the request's deadline passes: 503 + Retry-After listing ``acknowledged`` and
``unacknowledged``. An old client then resends the WHOLE batch while the held send is still pending; the
partition is resumed. Every reading must be in the hub exactly once: the acknowledged ones were answered
from the pod's memory, the held ones joined the pending send. With the memory turned off (the behaviour
before it, ``IDEMPOTENCY_MAX_READINGS=0``) the same steps put copies in the hub: the check can fail.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_domain.partitioning import partition_for
from homesec_producer.auth import TokenAuthority

from .harness import AUTH_KEYS, ProducerProcess, read_hub

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = [str(i) for i in range(16)]  # the default emulator fixture's hub
HELD_HOME = "home-001"
HELD = partition_for(HELD_HOME, PARTITIONS)
OTHERS = [h for h in (f"home-{i:03d}" for i in range(2, 40)) if partition_for(h, PARTITIONS) != HELD][:4]
HOMES = [HELD_HOME, *OTHERS]
# The deadline passes while the held send waits; the send's own try timeout (30 s, the default) does not,
# so the held send is never retried (a timed-out try has an unknown outcome: its retry may duplicate).
ENV = {"REQUEST_DEADLINE_SECONDS": "5"}


def batch() -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat()
    return [
        {"reading_id": str(uuid.uuid4()), "home_id": home, "sensor_id": f"door-{i}", "sensor_type": "door",
         "ts": now, "state": "open", "seq": i}
        for home in HOMES
        for i in range(4)
    ]  # fmt: skip


def headers() -> dict[str, str]:
    authority = TokenAuthority({k: v.encode() for k, v in AUTH_KEYS.items()})
    token = authority.issue("it", HOMES, datetime.now(UTC) + timedelta(hours=1))
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


@pytest.mark.parametrize("remember", [True, False], ids=["table", "table_off"])
async def test_whole_batch_resend_after_a_partial_ack_publishes_nothing_twice(
    emulator: EmulatorProcess, tmp_path: Path, remember: bool
) -> None:
    env = ENV if remember else {**ENV, "IDEMPOTENCY_MAX_READINGS": "0"}
    producer = ProducerProcess(emulator, tmp_path, env=env, fast=False).start()
    readings = batch()
    body = json.dumps({"readings": readings}).encode()
    held_ids = [str(r["reading_id"]) for r in readings if r["home_id"] == HELD_HOME]
    other_ids = [str(r["reading_id"]) for r in readings if r["home_id"] != HELD_HOME]
    emulator.pause_partition("telemetry", HELD)
    try:
        async with httpx.AsyncClient(base_url=producer.url, timeout=60) as client:
            first = await client.post("/v1/readings", content=body, headers=headers())
            assert first.status_code == 503, first.text
            assert first.headers["retry-after"] == "2"
            assert first.json()["acknowledged"] == other_ids
            assert first.json()["unacknowledged"] == held_ids
            resend = asyncio.create_task(client.post("/v1/readings", content=body, headers=headers()))
            await asyncio.sleep(1)
            emulator.resume_partition("telemetry", HELD)
            second = await resend
        assert second.status_code == 202, second.text
        acknowledged_again = producer.metric('homesec_producer_resends_total{outcome="acknowledged"}')
        joined = producer.metric('homesec_producer_resends_total{outcome="joined_in_flight"}')
    finally:
        producer.stop()
    hub = await read_hub(emulator)
    copies = {rid: hub.ids[rid] for rid in held_ids + other_ids}
    assert not hub.missing(set(copies)), copies
    if remember:
        assert set(copies.values()) == {1}, copies
        assert (acknowledged_again, joined) == (len(other_ids), len(held_ids))
    else:  # negative control: the acknowledged readings were published again, the held ones twice
        assert sum(copies.values()) == 2 * len(copies), copies
