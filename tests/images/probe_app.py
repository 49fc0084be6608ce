"""A tiny service run INSIDE the images (bind-mounted read-only at /probe) to prove their runtime stack.

It uses what the real services use (FastAPI on uvicorn with uvloop and httptools, prometheus_client with an
injected registry, orjson, the Azure SDKs' import paths, cryptography) and serves ``/healthz`` and
``/metrics`` on ``127.0.0.1:<argv[1]>``. It needs nothing of the project, so it runs before the services do.
"""

from __future__ import annotations

import sys

import azure.eventhub.aio
import azure.identity.aio
import azure.storage.blob.aio
import cryptography.hazmat.primitives.hashes
import orjson
import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

LOADED = (
    azure.eventhub.aio,
    azure.identity.aio,
    azure.storage.blob.aio,
    cryptography.hazmat.primitives.hashes,
)


def build_app(registry: CollectorRegistry) -> FastAPI:
    hits = Counter("probe_healthz_requests_total", "GET /healthz answered.", registry=registry)
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> Response:
        hits.inc()
        return Response(orjson.dumps({"status": "ok"}), media_type="application/json")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def main() -> None:
    app = build_app(CollectorRegistry())
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools", log_level="info"
    )


if __name__ == "__main__":
    main()
