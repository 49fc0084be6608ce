"""The producer's per-request log lines (tracing off): request_id on every line of a request, home IDs and
reading IDs only at DEBUG."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from homesec_producer.compose import build_app
from homesec_runtime import logs
from prometheus_client import CollectorRegistry

from tests.unit.producer.apiclient import token
from tests.unit.producer.fakes import FakePublisher
from tests.unit.producer.helpers import NOW, body, reading, settings


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("homesec_producer.access")
    logger.addHandler(handler)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    apps = build_app(settings(), publisher=FakePublisher(), clock=lambda: NOW, registry=CollectorRegistry())
    app = apps.api
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if apps.runtime.ready:
                break
            import asyncio

            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client:
            yield client


async def _post(http: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json", "x-request-id": "req-7", **token("home-1", "home-2")}
    answer = await http.post(
        "/v1/readings", content=body(reading("home-1"), reading("home-2")), headers=headers
    )
    assert answer.status_code == 202


async def test_debug_lines_carry_the_request_and_its_homes(
    http: httpx.AsyncClient, stream: io.StringIO
) -> None:
    logging.getLogger("homesec_producer.access").setLevel(logging.DEBUG)
    await _post(http)
    accepted, access = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert accepted["level"] == "debug" and accepted["request_id"] == "req-7"
    assert accepted["home_id"] == "home-1,home-2" and accepted["reading_count"] == 2
    assert access["request_id"] == "req-7" and "POST /v1/readings 202" in access["message"]


async def test_nothing_per_request_at_info(http: httpx.AsyncClient, stream: io.StringIO) -> None:
    logging.getLogger("homesec_producer.access").setLevel(logging.INFO)
    await _post(http)
    assert stream.getvalue() == ""
