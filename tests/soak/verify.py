"""The soak's verifier, independent of the services' own counters: it reads the telemetry hub, the alarms
hub, the durable rollups in Blob and the status API, and compares them with references computed from
what the fleet sent and was acknowledged (the consumer harness' ground truth and expected alarm
transitions, which use no fold code)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from azure.eventhub import EventData
from homesec_devstack.hub_reader import read_events
from homesec_domain.models import Reading, SensorType

from tests.integration.consumer.alarms_harness import expected_transitions, once_each, wait_alarms
from tests.integration.consumer.harness import (
    Truth,
    ground_truth,
    mismatches,
    read_rollups,
    wait_checkpointed_to_end,
)
from tests.integration.producer.harness import operator_token

from .deployment import Deployment
from .fleet import Fleet

HOMES_PER_CHUNK = 250


@dataclass
class Verdict:
    acknowledged: int = 0
    given_up: int = 0
    hub_events: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, not in the hub
    hub_duplicates: int = 0  # acknowledged readings in the hub more than once (the consumer drops them)
    unacknowledged_in_hub: int = 0  # published, never acknowledged (counted by the consumer all the same)
    caught_up: str = ""  # empty when every partition's checkpoint reached its last event
    rollup_homes: int = 0
    rollup_mismatches: list[str] = field(default_factory=list)
    alarms_expected: int = 0
    alarms_in_hub: int = 0
    alarm_problems: list[str] = field(default_factory=list)
    status_problems: list[str] = field(default_factory=list)


async def read_telemetry(d: Deployment) -> tuple[Counter[str], list[Reading]]:
    """Every reading ID in the telemetry hub (with its count) and the smoke readings in hub order."""
    ids: Counter[str] = Counter()
    smoke: list[Reading] = []

    def on_event(pid: str, event: EventData) -> None:
        doc: dict[str, Any] = json.loads(event.body_as_str())
        ids[doc["reading_id"]] += 1
        if doc["sensor_type"] == SensorType.SMOKE.value:
            doc.pop("schema_version", None)
            smoke.append(Reading.model_validate(doc))

    await read_events(d.emulator.connection_string(), on_event, timeout=900)
    return ids, smoke


def reference(fleet: Fleet) -> dict[str, Truth]:
    """The ground truth of every home from its distinct acknowledged readings, a chunk of homes at a time."""
    by_home: dict[int, list[str]] = defaultdict(list)
    for rid, sent in fleet.acked.items():
        by_home[sent.home].append(rid)
    homes = sorted(by_home)
    truth: dict[str, Truth] = {}
    for i in range(0, len(homes), HOMES_PER_CHUNK):
        chunk = [fleet.acked[rid].reading(rid, fleet.prefix) for h in homes[i : i + HOMES_PER_CHUNK]
                 for rid in by_home[h]]  # fmt: skip
        truth.update(ground_truth(chunk))
    return truth


async def check_rollups(d: Deployment, truth: dict[str, Truth], timeout: float) -> list[str]:
    """Differences between the durable rollups in Blob and ``truth``, once they agree or at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        problems = mismatches(await read_rollups(d.stack), truth)
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(10)


async def check_statuses(d: Deployment, homes: list[str], active: dict[str, set[str]]) -> list[str]:
    """Each home's ``active_alarms`` in the status API (a read token) equals the expected alarms."""
    consumer = next(iter(d.consumers.values()))
    problems: list[str] = []
    headers = {"authorization": f"Bearer {operator_token()}"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        for home in homes:
            resp = await http.get(f"http://127.0.0.1:{consumer.port}/v1/homes/{home}/status")
            if resp.status_code != 200:
                problems.append(f"{home}: status {resp.status_code}")
                continue
            got = set(resp.json()["active_alarms"])
            if got != active.get(home, set()):
                problems.append(f"{home}: active alarms {sorted(got)} != {sorted(active.get(home, set()))}")
    return problems


async def verify(d: Deployment, fleet: Fleet, settle_timeout: float = 600) -> Verdict:
    v = Verdict(acknowledged=len(fleet.acked), given_up=fleet.stats.given_up)
    try:
        await wait_checkpointed_to_end(d.stack, settle_timeout)
    except AssertionError as exc:
        v.caught_up = str(exc)[:300]
    ids, smoke = await read_telemetry(d)
    v.hub_events = sum(ids.values())
    v.lost = sorted(rid for rid in fleet.acked if ids[rid] == 0)
    v.hub_duplicates = sum(1 for rid in fleet.acked if ids[rid] > 1)
    v.unacknowledged_in_hub = sum(1 for rid in ids if rid not in fleet.acked)
    truth = reference(fleet)
    v.rollup_homes = len(truth)
    v.rollup_mismatches = await check_rollups(d, truth, timeout=180)
    expected, active = expected_transitions(smoke)
    v.alarms_expected = len(expected)
    records = await wait_alarms(d.emulator, set(expected), timeout=120)
    v.alarms_in_hub = len(records)
    try:
        once_each(records, expected)
    except AssertionError as exc:
        v.alarm_problems.append(str(exc)[:500])
    v.status_problems = await check_statuses(d, sorted(truth), active)
    return v
