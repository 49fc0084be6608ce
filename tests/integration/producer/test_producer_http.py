"""The producer as a real process against the emulator: HTTP contract, nothing published from 4xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_producer.auth import TokenAuthority

from .harness import AUTH_KEYS, ProducerProcess, read_hub

pytestmark = pytest.mark.integration

AUTH = TokenAuthority({k: v.encode() for k, v in AUTH_KEYS.items()})


def bearer(*homes: str) -> dict[str, str]:
    token = AUTH.issue("it", homes, datetime.now(UTC) + timedelta(hours=1))
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


def reading(home: str, **over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "reading_id": str(uuid.uuid4()), "home_id": home, "sensor_id": "door-1", "sensor_type": "door",
        "ts": datetime.now(UTC).isoformat(), "state": "open", "seq": 1,
    }  # fmt: skip
    doc.update(over)
    return doc


@pytest.fixture
def producer(emulator: EmulatorProcess, tmp_path: Path) -> Iterator[ProducerProcess]:
    proc = ProducerProcess(emulator, tmp_path, env={"MAX_BODY_BYTES": "4096"}).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_rejected_requests_publish_nothing_and_good_ones_are_in_the_hub(
    producer: ProducerProcess, emulator: EmulatorProcess
) -> None:
    url = f"{producer.url}/v1/readings"
    good = [reading("home-a"), reading("home-a", sensor_id="temp-1", sensor_type="temperature", value=21.5)]
    with httpx.Client(timeout=30) as http:
        cases = [
            (http.post(url, json={"readings": good}), 401),
            (http.post(url, json={"readings": good}, headers={"authorization": "Bearer x.y.z"}), 401),
            (http.post(url, json={"readings": [*good, reading("home-b")]}, headers=bearer("home-a")), 403),
            (
                http.post(
                    url,
                    content=json.dumps({"readings": good}),
                    headers={**bearer("home-a"), "content-type": "text/plain"},
                ),
                415,
            ),
            (http.post(url, content=b"{not json", headers=bearer("home-a")), 400),
            (
                http.post(
                    url, json={"readings": [*good, reading("home-a", value="hot")]}, headers=bearer("home-a")
                ),
                422,
            ),
            (
                http.post(
                    url, json={"readings": [reading("home-a") for _ in range(40)]}, headers=bearer("home-a")
                ),
                413,
            ),
        ]
        for resp, status in cases:
            assert resp.status_code == status, resp.text
        assert emulator.stats()["incoming_events"] == 0
        ok = http.post(url, json={"readings": good}, headers=bearer("home-a", "home-b"))
        assert ok.status_code == 202, ok.text
        assert ok.json()["reading_ids"] == [r["reading_id"] for r in good]
        without_ids = [{k: v for k, v in r.items() if k != "reading_id"} for r in good]
        first = http.post(url, json={"readings": without_ids}, headers=bearer("home-a")).json()["reading_ids"]
        again = http.post(url, json={"readings": without_ids}, headers=bearer("home-a")).json()["reading_ids"]
        assert first == again  # server-assigned IDs are deterministic: a retry dedupes downstream
    import asyncio

    hub = asyncio.run(read_hub(emulator))
    assert set(hub.ids) == {r["reading_id"] for r in good} | set(first)
    assert len(hub.homes_by_partition) == 1  # one home -> one partition
    assert producer.metric("homesec_producer_readings_acknowledged_total") == 6
