"""The admin port's app: probes, metrics and the API's documentation, apart from the ingest port.

``GET /healthz`` (liveness), ``GET /readyz`` (can publish, not draining), ``GET /metrics`` (Prometheus; the
OpenMetrics format with exemplars when asked for), and ``/docs``, ``/redoc``, ``/openapi.json`` describing
the API port's ``POST /v1/readings``. Served on ``ADMIN_HOST:ADMIN_PORT`` (kubelet probes, Prometheus,
operators); the ingest port serves only the API, so none of this is reachable through the ingress.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from homesec_producer.ingest import Runtime

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def _json(status: int, text: bytes) -> Response:
    return Response(text, status_code=status, media_type="application/json")


def build_admin_app(api: FastAPI, runtime: Runtime, registry: CollectorRegistry) -> FastAPI:
    """The admin app; its ``/openapi.json`` is ``api``'s schema (the ingest routes)."""
    # /docs and /redoc serve Swagger UI and ReDoc from the pinned fastapi-offline package, not a CDN.
    admin = FastAPIOffline(
        title=api.title, version=api.version, description=api.description, telemetry=NO_TELEMETRY
    )

    async def healthz() -> Response:
        return _json(200, b'{"status":"ok"}')

    async def readyz() -> Response:
        if runtime.ready:
            return _json(200, b'{"status":"ready"}')
        return _json(503, b'{"status":"draining"}' if runtime.draining else b'{"status":"starting"}')

    async def metrics(request: Request) -> Response:
        # OpenMetrics (with the latency exemplars) when the scraper asks for it, else the text format
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    admin.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    admin.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)
    admin.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    admin.openapi = api.openapi  # type: ignore[method-assign]
    return admin
