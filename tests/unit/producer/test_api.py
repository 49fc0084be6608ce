from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from homesec_producer.errors import PublishRejectedError

from tests.waits import eventually

from .apiclient import JSON, Api, started_api, token
from .fakes import FakePublisher
from .helpers import body, reading


async def test_accepts_and_returns_ids_after_ack(api: Api) -> None:
    resp = await api.post(body(reading(seq=1), reading(seq=2)), token("home-1"))
    assert resp.status_code == 202, resp.text
    doc = resp.json()
    assert doc["accepted"] == 2
    assert doc["reading_ids"] == api.pub.ids_published()
    assert api.metric("homesec_producer_readings_acknowledged_total") == 2
    assert (
        api.metric("homesec_producer_http_requests_total", route="/v1/readings", method="POST", status="202")
        == 1
    )


async def test_gateway_token_posts_for_its_homes(api: Api) -> None:
    resp = await api.post(body(reading("a"), reading("b")), token("a", "b", "c"))
    assert resp.status_code == 202


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"authorization": "Bearer nope"}, 401), ({"authorization": "Basic x"}, 401)],
)
async def test_unauthenticated(api: Api, headers: dict[str, str], status: int) -> None:
    resp = await api.post(body(reading()), headers)
    assert resp.status_code == status
    assert resp.headers["www-authenticate"] == "Bearer"
    assert api.pub.published == []


async def test_token_for_home_a_cannot_post_for_home_b(api: Api) -> None:
    resp = await api.post(body(reading("home-a"), reading("home-b")), token("home-a"))
    assert resp.status_code == 403
    assert resp.json()["homes"] == ["home-b"]
    assert api.pub.published == []
    assert api.metric("homesec_producer_readings_rejected_total", reason="auth") == 2


async def test_validation_rejects_whole_batch_with_item_detail(api: Api) -> None:
    resp = await api.post(body(reading(), reading(value="x", state=None)), token("home-1"))
    assert resp.status_code == 422
    assert [(i["index"], i["field"]) for i in resp.json()["items"]] == [(1, "value")]
    assert api.pub.published == []


@pytest.mark.parametrize("raw", [b"{", b"\xff", b"not json"])
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    resp = await api.post(raw, token("home-1"))
    assert resp.status_code == 400


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_content_type_is_checked(api: Api, ctype: str) -> None:
    resp = await api.client.post(
        "/v1/readings", content=body(reading()), headers={"content-type": ctype, **token("home-1")}
    )
    assert resp.status_code == 415
    assert api.pub.published == []


async def test_charset_parameter_is_fine(api: Api) -> None:
    headers = {"content-type": "application/json; charset=utf-8", **token("home-1")}
    resp = await api.client.post("/v1/readings", content=body(reading()), headers=headers)
    assert resp.status_code == 202


@pytest.mark.parametrize("api", [{"max_body_bytes": 2048}], indirect=True)
async def test_body_size_is_limited(api: Api) -> None:
    big = body(*[reading(seq=i) for i in range(40)])
    resp = await api.post(big, token("home-1"))
    assert resp.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while streaming
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    resp = await api.client.post("/v1/readings", content=chunks(), headers={**JSON, **token("home-1")})
    assert resp.status_code == 413
    assert api.pub.published == []
    assert api.metric("homesec_producer_readings_rejected_total", reason="too_large") == 2


@pytest.mark.parametrize("api", [{"buffer_capacity_readings": 3}], indirect=True)
async def test_full_buffer_is_429_with_retry_after(api: Api) -> None:
    api.pub.stall.clear()
    first = asyncio.create_task(api.post(body(reading(seq=1), reading(seq=2)), token("home-1")))
    await eventually(lambda: any(api.pub.in_flight.values()), 5, "the request's send stalled")
    resp = await api.post(body(reading(seq=3), reading(seq=4)), token("home-1"))
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "1"
    api.pub.stall.set()
    assert (await first).status_code == 202
    assert api.metric("homesec_producer_shed_total", status="429") == 1


@pytest.mark.parametrize("api", [{"request_deadline_seconds": 0.2, "retry_after_seconds": 7}], indirect=True)
async def test_event_hubs_stalled_past_deadline_is_503(api: Api) -> None:
    api.pub.stall.clear()
    resp = await api.post(body(reading()), token("home-1"))
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "7"
    assert resp.json()["error"] == "deadline"
    assert api.metric("homesec_producer_readings_rejected_total", reason="deadline") == 1
    api.pub.stall.set()


async def test_publish_failure_is_503_never_202(api: Api) -> None:
    api.pub.failures = [PublishRejectedError("no")]
    resp = await api.post(body(reading()), token("home-1"))
    assert resp.status_code == 503
    assert resp.json()["error"] == "publish_failed"


async def test_probes_and_metrics(api: Api) -> None:
    assert (await api.admin.get("/healthz")).status_code == 200
    assert (await api.admin.get("/readyz")).status_code == 200
    text = (await api.admin.get("/metrics")).text
    for name in ("homesec_producer_ready 1.0", "homesec_producer_buffer_capacity_readings 50000.0",
                 'homesec_producer_readings_rejected_total{reason="shed"} 0.0'):  # fmt: skip
        assert name in text
    assert (await api.client.get("/nope")).status_code == 404
    assert api.metric("homesec_producer_http_requests_total", route="other", method="GET", status="404") == 1
    # The API port serves only the API: probes, metrics and docs are on the admin port.
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"):
        assert (await api.client.get(path)).status_code == 404, path


async def test_openapi_documents_the_body(api: Api) -> None:
    doc = (await api.admin.get("/openapi.json")).json()
    assert set(doc["paths"]) == {"/v1/readings"}
    op = doc["paths"]["/v1/readings"]["post"]
    assert {"202", "401", "403", "408", "413", "415", "422", "429", "503"} <= set(op["responses"])
    schema = doc["components"]["schemas"]["ReadingBatchIn"]
    assert schema["properties"]["readings"]["maxItems"] == 500
    assert "ReadingIn" in doc["components"]["schemas"]


async def test_draining_flips_readiness_and_refuses_new_readings(api: Api) -> None:
    api.runtime.begin_shutdown()
    assert (await api.admin.get("/readyz")).status_code == 503
    assert api.metric("homesec_producer_ready") == 0
    await asyncio.sleep(0.05)
    resp = await api.post(body(reading()), token("home-1"))
    assert resp.status_code == 503
    assert resp.json()["error"] == "shutting_down"


async def test_not_ready_until_event_hubs_answers() -> None:
    pub = FakePublisher()
    pub.unreachable = 2
    async for api in started_api({}, pub):
        assert api.runtime.ready  # connected after two failed attempts
        assert pub.unreachable == 0


async def test_in_flight_request_finishes_during_shutdown() -> None:
    pub = FakePublisher()
    async for api in started_api({}, pub):
        pub.stall.clear()
        pending = asyncio.create_task(api.post(body(reading()), token("home-1")))
        await eventually(lambda: any(pub.in_flight.values()), 5, "the request's send stalled")
        api.runtime.begin_shutdown()
        asyncio.get_running_loop().call_later(0.1, pub.stall.set)
        resp = await pending
        assert resp.status_code == 202
        assert len(pub.published) == 1
    assert pub.closed
