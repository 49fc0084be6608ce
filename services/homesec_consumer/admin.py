"""The admin port's app: probes, metrics and the API's documentation, apart from the API port.

``GET /healthz`` (liveness), ``GET /readyz`` (started and Blob storage answers), ``GET /metrics``
(Prometheus; the OpenMetrics format with exemplars when asked for), and ``/docs``, ``/openapi.json``
describing the API port's routes (``api.py``). Never exposed to clients.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

# FastAPI's own OpenTelemetry stays off: the consumer's traces are its batches and flushes.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_admin_app(api: FastAPI, registry: CollectorRegistry, ready: Callable[[], bool]) -> FastAPI:
    """The admin port: ``/healthz``, ``/readyz``, ``/metrics``, and ``/docs``, ``/openapi.json`` describing
    the API port's routes (its bearer scheme: "Try it out" works with a pasted read token)."""
    # /docs serves Swagger UI from the pinned fastapi-offline package, not a CDN.
    admin = FastAPIOffline(title=api.title, description=api.description, telemetry=NO_TELEMETRY)

    @admin.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @admin.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, bool]:
        ok = ready()
        response.status_code = 200 if ok else 503
        return {"ready": ok}

    @admin.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # OpenMetrics (with the latency exemplars) when the scraper asks for it, else the text format
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    admin.openapi = api.openapi  # type: ignore[method-assign]
    return admin
