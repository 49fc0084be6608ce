"""The consumer's two small HTTP apps: the resident read path (``create_http_app``, the API port) and the
probes and metrics (``create_admin_app``, the admin port, never exposed to clients)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.telemetry import TelemetryConfig
from homesec_domain.models import is_home_id
from homesec_domain.rollup import iso_ms
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from homesec_consumer.errors import StoreUnavailableError
from homesec_consumer.ports import RollupStore


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC)


async def home_status(store: RollupStore, home_id: str) -> dict[str, Any]:
    """The status document without the embedded fold state (one blob read)."""
    if not is_home_id(home_id):
        raise HTTPException(status_code=404, detail="unknown home")
    try:
        stored = await store.load_status(home_id)
    except StoreUnavailableError as exc:
        raise HTTPException(status_code=503, detail="rollup store unavailable") from exc
    if stored is None:
        raise HTTPException(status_code=404, detail="unknown home")
    return {k: v for k, v in stored.doc.items() if k != "state"}


_STAMP_FIELDS = ("rev", "stream")  # a day entry's merge bookkeeping (homesec_domain.rollup.merge_day)


async def home_history(store: RollupStore, home_id: str, hours: int) -> dict[str, Any]:
    """Hourly rollups of the last ``hours`` hours up to the home's watermark: the status blob plus one
    day blob per UTC day the range touches (2 reads for 24 hours)."""
    status = await home_status(store, home_id)
    if status.get("watermark") is None:
        return {"home_id": home_id, "hours": []}
    end = _parse(status["watermark"]).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    by_hour = {h["hour"]: h for h in status["open_hours"]}
    day = start.date()
    while day <= end.date():
        try:
            stored = await store.load_day(home_id, day.isoformat())
        except StoreUnavailableError as exc:
            raise HTTPException(status_code=503, detail="rollup store unavailable") from exc
        for doc in stored.doc["hours"].values() if stored else []:
            by_hour.setdefault(doc["hour"], {k: v for k, v in doc.items() if k not in _STAMP_FIELDS})
        day += timedelta(days=1)
    keep = [by_hour[h] for h in sorted(by_hour) if start <= _parse(h) <= end]
    span = {"from": iso_ms(int(start.timestamp()) * 1000), "to": iso_ms(int(end.timestamp()) * 1000)}
    return {"home_id": home_id, **span, "hours": keep}  # "...T09:00:00.000Z", as the hour documents


# FastAPI's own OpenTelemetry stays off: the consumer's traces are its batches and flushes.
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_http_app(store: RollupStore) -> FastAPI:
    """The API port: ``GET /v1/homes/{home_id}/status`` and ``/history``, nothing else."""
    app = FastAPI(
        title="homesec consumer", docs_url=None, redoc_url=None, openapi_url=None, telemetry=_NO_TELEMETRY
    )

    @app.get("/v1/homes/{home_id}/status")
    async def status(home_id: str) -> dict[str, Any]:
        return await home_status(store, home_id)

    @app.get("/v1/homes/{home_id}/history")
    async def history(home_id: str, hours: int = Query(24, ge=1, le=168)) -> dict[str, Any]:
        return await home_history(store, home_id, hours)

    return app


def create_admin_app(registry: CollectorRegistry, ready: Callable[[], bool]) -> FastAPI:
    """The admin port: ``/healthz``, ``/readyz`` and ``/metrics``."""
    app = FastAPI(
        title="homesec consumer admin",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=_NO_TELEMETRY,
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, bool]:
        ok = ready()
        response.status_code = 200 if ok else 503
        return {"ready": ok}

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        # OpenMetrics (with the latency exemplars) when the scraper asks for it, else the text format
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    return app
