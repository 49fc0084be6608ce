"""The read-only HTTP app over an in-memory rollup store filled by the real processor."""

from __future__ import annotations

import httpx
from homesec_consumer.http import create_admin_app, create_http_app
from prometheus_client import CollectorRegistry

from .fakes import MemoryRollupStore
from .test_processor import events, make


async def filled_store() -> tuple[MemoryRollupStore, CollectorRegistry]:
    proc, store, _, _, registry = make()
    # 09:50 + minutes: readings from 09:50 to 11:10 -> hours 09 and 10 closed, 11 open.
    await proc.handle_batch("0", events([("h1", m) for m in range(0, 81, 5)]))
    await proc.flush_all()
    return store, registry


async def test_status_history_probes_and_metrics() -> None:
    store, registry = await filled_store()
    ready = {"ok": False}
    app = create_http_app(store)
    admin = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_admin_app(registry, lambda: ready["ok"])),
        base_url="http://a",
    )
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
        admin,
    ):
        status = (await client.get("/v1/homes/h1/status")).json()
        assert status["home_id"] == "h1" and "state" not in status
        assert status["sensors"][0]["state"] == "open"
        history = (await client.get("/v1/homes/h1/history", params={"hours": 3})).json()
        assert [h["hour"][11:13] for h in history["hours"]] == ["09", "10", "11"]
        assert sum(h["total"] for h in history["hours"]) == 17
        one = (await client.get("/v1/homes/h1/history", params={"hours": 1})).json()
        assert [h["hour"][11:13] for h in one["hours"]] == ["11"]
        assert (await client.get("/v1/homes/nobody/status")).status_code == 404
        assert (await client.get("/v1/homes/..%2f/status")).status_code == 404
        assert (await admin.get("/readyz")).status_code == 503
        ready["ok"] = True
        assert (await admin.get("/readyz")).status_code == 200
        assert (await admin.get("/healthz")).status_code == 200
        body = (await admin.get("/metrics")).text
        assert "homesec_consumer_readings_rolled_up_total 17.0" in body
        # The API port serves only the read path; the admin port no home.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 404, path
        assert (await admin.get("/v1/homes/h1/status")).status_code == 404


async def test_history_timestamps_all_use_z() -> None:
    store, _ = await filled_store()
    app = create_http_app(store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        history = (await client.get("/v1/homes/h1/history", params={"hours": 3})).json()
    hours = [h["hour"] for h in history["hours"]]
    # One format throughout, the rollup documents' own (homesec_domain.rollup.iso_ms): "...T09:00:00.000Z".
    assert (history["from"], history["to"]) == (hours[0], hours[-1])
    assert all(s.endswith(".000Z") for s in [history["from"], history["to"], *hours])
