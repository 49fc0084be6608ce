"""Reads of the consumer's status API need a read token covering the home (or an operator token); the
producer refuses read tokens; every token failure gets one 401 text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from homesec_consumer.api import create_http_app
from homesec_consumer.reads import HomeReads
from homesec_producer.auth import TokenAuthority

from tests.unit.consumer.fakes import MemoryRollupStore
from tests.unit.consumer.test_processor import events, make
from tests.unit.producer.apiclient import JSON, started_api
from tests.unit.producer.fakes import FakePublisher
from tests.unit.producer.helpers import NOW as PRODUCER_NOW
from tests.unit.producer.helpers import body, reading

from .auth_tokens import KID, SECRET, bearer, ingest, legacy, mint, operator, read

UNAUTHORIZED = {"detail": "invalid or missing token"}
REAL_NOW = datetime.now(UTC)
# kid "nope": the producer once answered "unknown key" here and "bad signature" for a known key
UNKNOWN_KID = (
    "eyJhbGciOiJIUzI1NiIsImtpZCI6Im5vcGUifQ.eyJob21lcyI6WyJoMSJdLCJleHAiOjk5OTk5OTk5OTl9."
    "c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXI"
)


@pytest.fixture
async def consumer() -> AsyncIterator[httpx.AsyncClient]:
    proc, store, _, _, _ = make()
    await proc.handle_batch("0", events([("h1", m) for m in range(0, 30, 5)] + [("h2", 1)]))
    await proc.flush_all()
    assert isinstance(store, MemoryRollupStore)
    authority = TokenAuthority({KID: SECRET.encode()})
    reads = HomeReads(proc, store, None)
    reads.partition_ids = ["0"]
    app = create_http_app(reads, store, authority=authority)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client:
        yield client


@pytest.mark.parametrize("path", ["/v1/homes/h1/status", "/v1/homes/h1/history"])
async def test_no_token_is_401(consumer: httpx.AsyncClient, path: str) -> None:
    resp = await consumer.get(path)
    assert resp.status_code == 401 and resp.json() == UNAUTHORIZED
    assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        ingest("h1", now=REAL_NOW),  # a sensor's token cannot read
        mint(["h1"], now=REAL_NOW),  # nor one without aud (an ingest token issued before audiences)
        mint(["h1"], now=REAL_NOW, aud="homesec-other"),
        read("h1", now=REAL_NOW)[:-2],  # bad signature
        read("h1", now=REAL_NOW) + "=",  # not canonical
        mint(["h1"], now=REAL_NOW, aud="homesec-read", exp=10**30),
        "not-a-token",
    ],
)
async def test_tokens_that_cannot_read_get_one_401(consumer: httpx.AsyncClient, token: str) -> None:
    for path in ("/v1/homes/h1/status", "/v1/homes/h1/history"):
        resp = await consumer.get(path, headers=bearer(token))
        assert (resp.status_code, resp.json()) == (401, UNAUTHORIZED), path
        assert resp.headers["www-authenticate"] == "Bearer"


async def test_read_token_for_another_home_is_403(consumer: httpx.AsyncClient) -> None:
    for path in ("/v1/homes/h2/status", "/v1/homes/h2/history"):
        resp = await consumer.get(path, headers=bearer(read("h1", now=REAL_NOW)))
        assert (resp.status_code, resp.json()) == (403, {"detail": "home not in token scope"})


async def test_read_token_reads_its_homes(consumer: httpx.AsyncClient) -> None:
    token = read("h1", "h2", now=REAL_NOW)
    for home in ("h1", "h2"):
        resp = await consumer.get(f"/v1/homes/{home}/status", headers=bearer(token))
        assert resp.status_code == 200 and resp.json()["home_id"] == home


async def test_operator_token_reads_any_home(consumer: httpx.AsyncClient) -> None:
    for home in ("h1", "h2"):
        for path in (f"/v1/homes/{home}/status", f"/v1/homes/{home}/history"):
            assert (await consumer.get(path, headers=bearer(operator(REAL_NOW)))).status_code == 200
    # "operator" means nothing on an ingest token
    resp = await consumer.get("/v1/homes/h1/status", headers=bearer(mint([], now=REAL_NOW, role="operator")))
    assert resp.status_code == 401


async def test_openapi_declares_the_bearer_scheme(consumer: httpx.AsyncClient) -> None:
    app = consumer._transport.app  # type: ignore[attr-defined]
    schema = app.openapi()
    assert schema["components"]["securitySchemes"]["readToken"] == {
        "type": "http", "scheme": "bearer",
        "description": "A read token (aud homesec-read) covering the home, or an operator token",
    }  # fmt: skip
    assert schema["paths"]["/v1/homes/{home_id}/status"]["get"]["security"] == [{"readToken": []}]


# --- the producer ---------------------------------------------------------------------------------------


@pytest.fixture
async def producer() -> AsyncIterator[httpx.AsyncClient]:
    async for api in started_api({"auth_keys": {KID: SECRET}}, FakePublisher()):
        yield api.client


async def _post(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {**JSON, **(bearer(token) if token else {})}
    return await client.post("/v1/readings", content=body(reading("h1")), headers=headers)


async def test_producer_accepts_ingest_tokens(producer: httpx.AsyncClient) -> None:
    assert (await _post(producer, ingest("h1", now=PRODUCER_NOW))).status_code == 202
    assert (await _post(producer, mint(["h1"], now=PRODUCER_NOW))).status_code == 202  # no aud


@pytest.mark.parametrize(
    "token",
    [
        None,
        read("h1", now=PRODUCER_NOW),  # a website's token cannot write
        operator(PRODUCER_NOW),
        mint(["h1"], now=PRODUCER_NOW)[:-2],  # bad signature
        UNKNOWN_KID,
        mint(["h1"], now=PRODUCER_NOW) + "=",
        mint(["h1"], now=PRODUCER_NOW, exp=10**30),
        legacy("h1", int(PRODUCER_NOW.timestamp()) + 3600),  # legacy off by default
        "x" * 5000,
    ],
)
async def test_producer_refuses_with_one_401_text(producer: httpx.AsyncClient, token: str | None) -> None:
    resp = await _post(producer, token)
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized", **UNAUTHORIZED}
    assert resp.headers["www-authenticate"] == "Bearer"
