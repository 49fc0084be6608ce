"""The simulator's retries follow the per-reading answer: only ``unacknowledged`` readings are resent.

A stand-in producer on a loopback socket answers the first POST of every batch 503 + Retry-After with its
first half ``acknowledged``, and 202 afterwards; it records every body it gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from homesec_devstack.simulator import SimulatorConfig, run_load

from .helpers import KEY
from .standin import serving


class StandIn:
    def __init__(self) -> None:
        self.bodies: list[list[str]] = []
        self.seen: set[str] = set()

    async def post(self, request: web.Request) -> web.Response:
        ids = [r["reading_id"] for r in orjson.loads(await request.read())["readings"]]
        self.bodies.append(ids)
        if ids[0] in self.seen:
            return web.json_response({"accepted": len(ids), "reading_ids": ids}, status=202)
        self.seen.update(ids)
        half = len(ids) // 2
        doc: dict[str, Any] = {"error": "deadline", "detail": "", "acknowledged": ids[:half],
                               "unacknowledged": ids[half:]}  # fmt: skip
        return web.json_response(doc, status=503, headers={"Retry-After": "0"})


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, str]]:
    fake = StandIn()
    async with serving(fake.post) as url:
        yield fake, url


def resends_of(first: list[str], bodies: list[list[str]]) -> list[list[str]]:
    """The bodies after ``first`` that resend some of its readings (other batches may come in between:
    the load generator does not wait for a batch's retry before it sends the next one)."""
    return [b for b in bodies[1:] if set(b) & set(first)]


def config(url: str, **over: Any) -> SimulatorConfig:
    values: dict[str, Any] = {"urls": [url], "auth_keys": {"k1": KEY}, "homes": 10, "rate": 40,
                              "duration": 0.1, "readings_per_request": 4, "homes_per_request": 2,
                              "retries": 2, "honour_retry_after": True}  # fmt: skip
    values.update(over)
    return SimulatorConfig(**values)


async def test_a_retry_resends_only_the_unacknowledged(stand_in: tuple[StandIn, str]) -> None:
    fake, url = stand_in
    result = await run_load(config(url))
    first = fake.bodies[0]
    assert resends_of(first, fake.bodies) == [first[2:]]
    assert len(result.acked) == result.readings and not result.refused


async def test_old_clients_resend_the_whole_batch(stand_in: tuple[StandIn, str]) -> None:
    fake, url = stand_in
    result = await run_load(config(url, resend="batch"))
    first = fake.bodies[0]
    assert resends_of(first, fake.bodies) == [first]
    assert len(result.acked) == result.readings and not result.refused
