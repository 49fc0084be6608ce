"""The API port's app: the resident read path (``create_http_app``: the live fold state, forwarded to the
owning pod, or the last durable state, ``reads.HomeReads``). The probes, metrics and the API's documentation
are the admin port's app (``admin.py``), never exposed to clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from homesec_auth.tokens import TokenAuthority
from homesec_domain.models import is_home_id
from homesec_domain.rollup import iso_ms
from homesec_runtime.openapi import markdown_descriptions
from prometheus_client import Counter

from homesec_consumer import api_docs
from homesec_consumer.admin import NO_TELEMETRY
from homesec_consumer.errors import StoreUnavailableError
from homesec_consumer.ports import RollupStore
from homesec_consumer.read_auth import read_access
from homesec_consumer.reads import Forwarded, HomeReads

FORWARDED_HEADER = "x-homesec-forwarded"  # a read forwarded by another consumer pod (answered, not forwarded)


def api_servers(port: int) -> list[dict[str, Any]]:
    """The OpenAPI ``servers`` of the API port, so that the admin port's /docs "Try it out" reaches it."""
    host = {"default": "127.0.0.1", "description": "the consumer's host (a port-forward: 127.0.0.1)"}
    return [{"url": f"http://{{host}}:{port}", "description": "the API port", "variables": {"host": host}}]


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC)


async def home_status(reads: HomeReads, home_id: str, request: Request) -> Forwarded:
    """The status document (``reads.HomeReads``), or the error to answer."""
    if not is_home_id(home_id):
        return Forwarded(404, {"detail": "unknown home"})
    forwarded = FORWARDED_HEADER in request.headers
    try:
        return await reads.status(home_id, request.headers.get("authorization"), forwarded=forwarded)
    except StoreUnavailableError:
        return Forwarded(503, {"detail": "rollup store unavailable"})


_STAMP_FIELDS = ("rev", "stream")  # a day entry's merge bookkeeping (homesec_domain.rollup.merge_day)


async def home_history(
    reads: HomeReads, store: RollupStore, home_id: str, hours: int, request: Request
) -> dict[str, Any]:
    """Hourly rollups of the last ``hours`` hours up to the home's watermark: the status (open hours) plus
    one day blob per UTC day the range touches (2 reads for 24 hours)."""
    answer = await home_status(reads, home_id, request)
    if answer.status != 200:
        raise HTTPException(status_code=answer.status, detail=answer.body.get("detail"))
    status = answer.body
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


def create_http_app(
    reads: HomeReads,
    store: RollupStore,
    *,
    authority: TokenAuthority,
    auth_failures: Counter | None = None,
    port: int = 8081,
) -> FastAPI:
    """The API port (``port``): ``GET /v1/homes/{home_id}/status`` and ``/history``, nothing else; both need
    a read token (``read_auth``) verified by ``authority``."""
    can_read = [Depends(read_access(authority, auth_failures))]
    app = FastAPI(
        title="homesec consumer", description="Residents' status and history reads.", docs_url=None,
        redoc_url=None, openapi_url=None, telemetry=NO_TELEMETRY, servers=api_servers(port),
    )  # fmt: skip

    @app.get(
        "/v1/homes/{home_id}/status", dependencies=can_read, response_model=None,
        responses=api_docs.STATUS_RESPONSES, summary="A home's status",
        description=api_docs.STATUS_DESCRIPTION,
    )  # fmt: skip
    async def status(home_id: str, request: Request) -> JSONResponse:
        answer = await home_status(reads, home_id, request)
        return JSONResponse(answer.body, status_code=answer.status)

    @app.get(
        "/v1/homes/{home_id}/history", dependencies=can_read, response_model=None,
        responses=api_docs.HISTORY_RESPONSES, summary="A home's hourly rollups",
        description=api_docs.HISTORY_DESCRIPTION,
    )  # fmt: skip
    async def history(
        home_id: str, request: Request,
        hours: int = Query(24, ge=1, le=168, description="How many hours back from the newest reading."),
    ) -> dict[str, Any]:  # fmt: skip
        return await home_history(reads, store, home_id, hours, request)

    install_markdown(app)
    return app


def install_markdown(app: FastAPI) -> None:
    """The app's OpenAPI document with every description in plain Markdown (``homesec_runtime.openapi``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = markdown_descriptions(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
