"""Shutdown timeline (503 + Retry-After before uvicorn's own timeout, never 500), the concurrency limit,
and a batch that repeats a reading_id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from homesec_producer.compose import build_app
from homesec_producer.runner import BACKSTOP_FACTOR, server_config
from homesec_producer.shutdown import ShutdownPlan
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from tests.waits import eventually

from .apiclient import Api, started_api, token
from .fakes import FakePublisher
from .helpers import body, reading, settings


def test_default_plan_answers_every_request_before_uvicorn_gives_up() -> None:
    s = settings(shutdown_grace_seconds=25, shutdown_delay_seconds=0, request_deadline_seconds=30)
    plan = s.shutdown_plan()
    assert plan.flush < plan.cutoff < plan.server_timeout
    assert plan.delay + plan.server_timeout < plan.grace
    assert plan.server_timeout == 23  # what uvicorn got before; the app now answers first (at 22 s)
    config = server_config(s, build_app(s, publisher=FakePublisher(), registry=CollectorRegistry()))
    assert config.timeout_graceful_shutdown == plan.server_timeout
    assert config.limit_concurrency == BACKSTOP_FACTOR * s.max_concurrent_requests


@pytest.mark.parametrize(("grace", "delay"), [(25, 0), (4.5, 0), (30, 5), (60, 10.5), (9.9, 5)])
def test_plan_orders_the_steps_within_the_grace(grace: float, delay: float) -> None:
    plan = ShutdownPlan.derive(grace, delay)
    assert 1 <= plan.flush < plan.cutoff < plan.server_timeout
    assert delay + plan.server_timeout + 1 <= grace


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"shutdown_grace_seconds": 4}, r"SHUTDOWN_GRACE_SECONDS \(4\) leaves no time.*at least 4.5"),
        (
            {"shutdown_grace_seconds": 10, "shutdown_delay_seconds": 6},
            r"at least 10.5 with HOMESEC_PRODUCER_SHUTDOWN_DELAY_SECONDS = 6",
        ),
        (
            {"shutdown_grace_seconds": 30, "termination_grace_seconds": 30},
            r"must be below HOMESEC_PRODUCER_TERMINATION_GRACE_SECONDS \(30",
        ),
    ],
)
def test_settings_that_cannot_answer_in_time_are_refused(over: dict[str, float], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        settings(**over)
    settings(shutdown_grace_seconds=30, termination_grace_seconds=40)


@pytest.fixture
async def stalled() -> AsyncIterator[Api]:
    """Grace 5 s: flush ends 1.5 s, cutoff 2 s, uvicorn's timeout 3 s after SIGTERM."""
    pub = FakePublisher()
    async for api in started_api({"shutdown_grace_seconds": 5, "retry_after_seconds": 3}, pub):
        pub.stall.clear()
        yield api
        pub.stall.set()


async def test_request_waiting_for_acks_at_shutdown_gets_503_before_the_server_timeout(stalled: Api) -> None:
    pending = asyncio.create_task(stalled.post(body(reading()), token("home-1")))
    await eventually(lambda: any(stalled.pub.in_flight.values()), 5, "the request's send stalled")
    loop = asyncio.get_running_loop()
    began = loop.time()
    stalled.runtime.begin_shutdown()
    resp = await pending
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "3"
    assert resp.json()["error"] == "shutting_down"
    assert loop.time() - began < stalled.runtime.plan.cutoff
    assert stalled.metric("homesec_producer_readings_rejected_total", reason="shutting_down") == 1
    assert stalled.pub.published == []


async def test_request_still_reading_its_body_at_the_cutoff_gets_503(stalled: Api) -> None:
    hold = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"readings": ['
        await hold.wait()  # the client stops sending
        yield b"]}"

    pending = asyncio.create_task(stalled.client.post(
        "/v1/readings", content=slow_body(), headers={"content-type": "application/json", **token("home-1")}
    ))  # fmt: skip
    await eventually(
        lambda: stalled.metric("homesec_producer_http_requests_in_flight") == 1,
        5,
        "the request is reading its body",
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    stalled.runtime.begin_shutdown()
    resp = await pending
    elapsed = loop.time() - began
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "3"
    plan = stalled.runtime.plan
    assert plan.cutoff - 0.1 < elapsed < plan.server_timeout
    assert stalled.metric("homesec_producer_shed_total", status="503") == 1
    labels = {"route": "/v1/readings", "method": "POST", "status": "503"}
    assert stalled.metric("homesec_producer_http_requests_total", **labels) == 1
    after = await stalled.post(body(reading()), token("home-1"))  # past the cutoff: refused at once
    assert after.status_code == 503 and after.headers["retry-after"] == "3"
    hold.set()


@pytest.mark.parametrize("api", [{"max_concurrent_requests": 2, "retry_after_seconds": 4}], indirect=True)
async def test_over_the_concurrency_limit_is_503_with_retry_after_and_counted(api: Api) -> None:
    api.pub.stall.clear()
    first = [asyncio.create_task(api.post(body(reading(seq=i)), token("home-1"))) for i in range(2)]
    await eventually(
        lambda: api.metric("homesec_producer_http_requests_in_flight") == 2, 5, "both requests in progress"
    )
    resp = await api.post(body(reading(seq=9)), token("home-1"))
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "4"
    assert resp.json()["error"] == "shed"
    assert (await api.admin.get("/readyz")).status_code == 200  # probes are never limited
    api.pub.stall.set()
    assert [(await t).status_code for t in first] == [202, 202]
    assert (await api.post(body(reading(seq=9)), token("home-1"))).status_code == 202
    assert api.metric("homesec_producer_shed_total", status="503") == 1
    assert api.metric("homesec_producer_readings_rejected_total", reason="shed") == 1
    labels = {"route": "/v1/readings", "method": "POST", "status": "503"}
    assert api.metric("homesec_producer_http_requests_total", **labels) == 1


async def test_a_batch_repeating_a_reading_id_is_422_and_nothing_is_published(api: Api) -> None:
    rid = str(uuid.uuid4())
    batch = body(reading(reading_id=rid, state="open"), reading(), reading(reading_id=rid, state="closed"))
    resp = await api.post(batch, token("home-1"))
    assert resp.status_code == 422
    items = resp.json()["items"]
    assert [(i["index"], i["field"], i["error"]) for i in items] == [
        (0, "reading_id", "duplicate"), (2, "reading_id", "duplicate")
    ]  # fmt: skip
    await asyncio.sleep(0.05)
    assert api.pub.published == []
    assert api.metric("homesec_producer_readings_rejected_total", reason="validation") == 3
