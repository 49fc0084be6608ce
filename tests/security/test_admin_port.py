"""The API ports serve only the API: probes, metrics and docs are on the admin ports, apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from homesec_consumer.admin import create_admin_app

from tests.unit.consumer.test_api import app_for
from tests.unit.consumer.test_processor import make
from tests.unit.producer.apiclient import Api, started_api
from tests.unit.producer.fakes import FakePublisher

ADMIN_PATHS = ("/healthz", "/readyz", "/metrics")


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for started in started_api({}, FakePublisher()):
        yield started


async def test_producer_admin_surface_is_only_on_the_admin_port(api: Api) -> None:
    for path in (*ADMIN_PATHS, "/docs", "/redoc", "/openapi.json"):
        assert (await api.client.get(path)).status_code == 404, path
        assert (await api.admin.get(path)).status_code == 200, path
    assert (await api.admin.post("/v1/readings", content=b"{}")).status_code == 404  # no ingest there


async def test_consumer_admin_surface_is_only_on_the_admin_port() -> None:
    proc, store, _, _, registry = make()
    app = app_for(proc, store)
    api = httpx.ASGITransport(app=app)
    admin = httpx.ASGITransport(app=create_admin_app(app, registry, lambda: True))
    async with (
        httpx.AsyncClient(transport=api, base_url="http://c") as client,
        httpx.AsyncClient(transport=admin, base_url="http://a") as admin_client,
    ):
        for path in ADMIN_PATHS:
            assert (await client.get(path)).status_code == 404, path
            assert (await admin_client.get(path)).status_code == 200, path
        assert (await admin_client.get("/v1/homes/h1/status")).status_code == 404
