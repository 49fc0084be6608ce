"""The read-only HTTP app over the real processor's state and an in-memory rollup store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from homesec_auth.tokens import READ_AUDIENCE, TokenAuthority
from homesec_consumer.admin import create_admin_app
from homesec_consumer.api import create_http_app
from homesec_consumer.processor import RollupProcessor
from homesec_consumer.reads import HomeReads
from prometheus_client import CollectorRegistry

from .fakes import MemoryRollupStore
from .test_processor import events, make

AUTHORITY = TokenAuthority({"k1": b"k" * 40})
# An operator read token (reads any home); tests/security covers the other audiences and scopes.
READ = {
    "authorization": "Bearer "
    + AUTHORITY.issue(
        "op", [], datetime.now(UTC) + timedelta(hours=1), audience=READ_AUDIENCE, role="operator"
    )
}


async def filled_store() -> tuple[RollupProcessor, MemoryRollupStore, CollectorRegistry]:
    proc, store, _, _, registry = make()
    # 09:50 + minutes: readings from 09:50 to 11:10 -> hours 09 and 10 closed, 11 open.
    await proc.handle_batch("0", events([("h1", m) for m in range(0, 81, 5)]))
    await proc.flush_all()
    return proc, store, registry


def app_for(
    proc: RollupProcessor, store: MemoryRollupStore, registry: CollectorRegistry | None = None
) -> FastAPI:
    """The consumer's API app over one pod owning partition "0" of a one-partition hub."""
    reads = HomeReads(proc, store, None)
    reads.partition_ids = ["0"]
    return create_http_app(reads, store, authority=AUTHORITY)


async def test_status_history_probes_and_metrics() -> None:
    proc, store, registry = await filled_store()
    ready = {"ok": False}
    app = app_for(proc, store, registry)
    admin = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_admin_app(app, registry, lambda: ready["ok"])),
        base_url="http://a",
    )
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=READ
        ) as client,
        admin,
    ):
        status = (await client.get("/v1/homes/h1/status")).json()
        assert status["home_id"] == "h1" and "state" not in status
        assert status["source"] == "live" and status["partition"] == "0" and status["age_seconds"] >= 0
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
        # The admin port documents the API port's routes and their bearer scheme ("Try it out").
        schema = (await admin.get("/openapi.json")).json()
        assert "/v1/homes/{home_id}/status" in schema["paths"]
        assert any(v.get("scheme") == "bearer" for v in schema["components"]["securitySchemes"].values())
        assert (await admin.get("/docs")).status_code == 200
        assert schema["servers"][0]["url"] == "http://{host}:8081"  # "Try it out" reaches the API port


async def test_history_timestamps_all_use_z() -> None:
    app = app_for(*await filled_store())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=READ
    ) as client:
        history = (await client.get("/v1/homes/h1/history", params={"hours": 3})).json()
    hours = [h["hour"] for h in history["hours"]]
    # One format throughout, the rollup documents' own (homesec_domain.rollup.iso_ms): "...T09:00:00.000Z".
    assert (history["from"], history["to"]) == (hours[0], hours[-1])
    assert all(s.endswith(".000Z") for s in [history["from"], history["to"], *hours])


async def test_a_partition_owned_elsewhere_is_read_from_its_last_snapshot() -> None:
    proc, store, _ = await filled_store()
    await proc.handle_batch("0", events([("h1", 85)], start_seq=17))  # not durable yet
    live = HomeReads(proc, store, None)
    live.partition_ids = ["0"]
    assert (await live.status("h1", None, forwarded=False)).body["watermark"] == "2026-11-25T11:15:00.000Z"
    proc.close_partition("0")  # a rebalance: this pod no longer owns it, and nobody answers yet
    answer = await live.status("h1", None, forwarded=False)
    assert answer.status == 200 and answer.body["source"] == "snapshot"
    assert answer.body["watermark"] == "2026-11-25T11:10:00.000Z"  # the durable state, and it says so
    assert (await live.status("h1", None, forwarded=True)).status == 421  # a forwarded read is not forwarded
    assert (await live.status("nobody", None, forwarded=False)).status == 404


async def test_a_home_not_seen_since_a_migration_is_read_from_its_format_2_status_blob() -> None:
    store = MemoryRollupStore()
    store.blobs["homes/h9/status.json"] = (b'{"home_id": "h9", "sensors": [], "state": "AAAA"}', '"0x1"')
    proc, _, _, _, _ = make(store, initial=False)  # a checkpoint, no snapshot: a format-2 deployment
    await proc.handle_batch("0", events([("h1", 0)]))
    reads = HomeReads(proc, store, None)
    reads.partition_ids = ["0"]
    answer = await reads.status("h9", None, forwarded=False)
    assert answer.status == 200 and answer.body == {"home_id": "h9", "sensors": [], "source": "view",
                                                    "partition": "0"}  # fmt: skip
    assert (await reads.status("h1", None, forwarded=False)).body["source"] == "live"
