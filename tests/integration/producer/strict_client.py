"""A sensor fleet that retries exactly as docs/producer.md says, and nothing more.

429 and 503 are retried after the answer's ``Retry-After``, with the same reading IDs: only the readings
the answer listed as ``unacknowledged`` (the ``acknowledged`` ones count as acknowledged), or the whole
batch with ``config.resend == "batch"`` (clients written before per-reading answers). Every other answer,
a 429/503 without ``Retry-After``, a connection error or a timeout ends the batch as a **loss**. Requests
go to the endpoints currently in ``endpoints`` (round robin), which the test edits the way Kubernetes
edits a Service's endpoints (a pod leaves them before it gets SIGTERM: the chart's preStop). Batches come
from the simulator's ``Fleet`` (gateways of several homes, client-chosen reading IDs).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from homesec_devstack.simulator import Answer, Fleet, SimulatorConfig, encode

RETRY_ON = frozenset({429, 503})


@dataclass
class StrictResult:
    acked: set[str] = field(default_factory=set)
    lost: dict[str, str] = field(default_factory=dict)  # reading ID -> why (status or error)
    unfinished: set[str] = field(default_factory=set)  # still retrying when the time ran out
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # the "error" of refusals (e.g. shutting_down)
    batches: int = 0

    def summary(self) -> dict[str, object]:
        return {"batches": self.batches, "acked": len(self.acked), "lost": len(self.lost),
                "unfinished": len(self.unfinished), "statuses": dict(sorted(self.statuses.items())),
                "errors": dict(self.errors),
                "lost_because": dict(Counter(self.lost.values()))}  # fmt: skip


@dataclass
class StrictFleet:
    """``run()`` sends batches from ``workers`` gateways at about ``rate`` readings/s for ``duration`` s."""

    config: SimulatorConfig
    endpoints: list[str]
    workers: int = 48
    give_up_after: float = 75.0  # seconds from the start: then stop retrying (unfinished, not lost)
    result: StrictResult = field(default_factory=StrictResult)
    _turn: int = 0

    async def run(self) -> StrictResult:
        fleet = Fleet(self.config)
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=self.workers)
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(*(self._worker(session, fleet, started) for _ in range(self.workers)))
        return self.result

    async def _worker(self, session: aiohttp.ClientSession, fleet: Fleet, started: float) -> None:
        interval = self.workers * self.config.readings_per_request / self.config.rate
        while time.monotonic() - started < self.config.duration:
            began = time.monotonic()
            readings, token = fleet.batch()
            self.result.batches += 1
            await self._deliver(session, readings, token, started)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))

    def _next_endpoint(self) -> str:
        self._turn += 1
        return self.endpoints[self._turn % len(self.endpoints)]

    async def _deliver(
        self, session: aiohttp.ClientSession, readings: list[dict[str, Any]], token: str, started: float
    ) -> None:
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        body, ids = encode(readings), [r["reading_id"] for r in readings]
        while time.monotonic() - started < self.give_up_after:
            url = f"{self._next_endpoint()}/v1/readings"
            try:
                async with session.post(url, data=body, headers=headers) as r:
                    answer = await r.read()
                    status, retry_after = r.status, r.headers.get("Retry-After")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self._lose(ids, type(exc).__name__)
                return
            self.result.statuses[status] += 1
            if status == 202:
                self.result.acked.update(ids)
                return
            self.result.errors[_error_of(answer)] += 1
            if status not in RETRY_ON or retry_after is None or not retry_after.isdigit():
                self._lose(ids, f"{status} retry-after={retry_after}")
                return
            listed = Answer.parse(status, {}, answer)
            if self.config.resend == "unacknowledged" and listed.unacknowledged is not None:
                self.result.acked.update(listed.acknowledged or [])
                pending = set(listed.unacknowledged)
                readings = [r for r in readings if r["reading_id"] in pending]
                body, ids = encode(readings), [r["reading_id"] for r in readings]
            await asyncio.sleep(int(retry_after))
        self.result.unfinished.update(ids)

    def _lose(self, ids: list[str], why: str) -> None:
        for rid in ids:
            self.result.lost[rid] = why


def _error_of(answer: bytes) -> str:
    try:
        return str(json.loads(answer)["error"])
    except (ValueError, KeyError, TypeError):
        return "?"
