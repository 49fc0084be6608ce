"""Composition root: ``build_app(settings, publisher=None, clock=..., registry=None)`` -> ``ProducerApps``:
the API app (the ingest port) and the admin app (probes, metrics, docs: the admin port).

Nothing is built at import time. The lifespan connects to Event Hubs in the background (readiness stays
false until the hub's partitions are known), starts the buffer's workers, and on shutdown flushes the
buffer within the grace period and closes the publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from homesec_auth.tokens import TokenAuthority
from homesec_runtime.deadlines import BodyDeadlineMiddleware
from homesec_runtime.process_metrics import register_process_metrics
from homesec_runtime.tracing import Tracing
from prometheus_client import CollectorRegistry

from homesec_producer.admin import NO_TELEMETRY, build_admin_app
from homesec_producer.admission import INGEST_PATHS, Admission, AdmissionMiddleware
from homesec_producer.api import ReadingsEndpoint, build_router, install_openapi_schemas
from homesec_producer.buffer import PartitionedBuffer
from homesec_producer.errors import PublishError
from homesec_producer.idempotency import AckTable
from homesec_producer.ingest import Clock, IngestService, Runtime, time_window
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.observability import NO_TRACES, RequestMiddleware
from homesec_producer.ports import EventPublisher
from homesec_producer.retry import RetryPolicy
from homesec_producer.settings import ProducerSettings

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _authority(settings: ProducerSettings) -> TokenAuthority:
    if settings.auth_keys and settings.auth_accept_legacy_tokens:
        log.warning(
            "AUTH_ACCEPT_LEGACY_TOKENS is on: deprecated hs1. tokens are accepted (docs/producer.md#tokens)"
        )
    return settings.token_authority(
        signing_kid=settings.auth_signing_key_id, accept_legacy=settings.auth_accept_legacy_tokens
    )


def _retry_policy(settings: ProducerSettings, rng: random.Random | None = None) -> RetryPolicy:
    return RetryPolicy(
        max_tries=settings.publish_max_tries,
        initial_seconds=settings.publish_backoff_initial_seconds,
        max_seconds=settings.publish_backoff_max_seconds,
        rng=rng or random.Random(),
    )


async def _connect(settings: ProducerSettings, publisher: EventPublisher, runtime: Runtime) -> None:
    """Fetch the partition ids (retrying with backoff until Event Hubs answers), then start the buffer."""
    policy = _retry_policy(settings)
    tries = 0
    while True:
        tries += 1
        try:
            partition_ids = await publisher.partition_ids()
            break
        except PublishError as exc:
            log.warning("Event Hubs not reachable yet (%s); retrying", exc)
            await asyncio.sleep(policy.delay(min(tries, 10)))
    buffer = PartitionedBuffer(
        publisher,
        partition_ids,
        capacity=settings.buffer_capacity_readings,
        max_batch_events=settings.max_batch_events,
        max_batch_bytes=settings.max_batch_bytes,
        retry=policy,
        metrics=runtime.metrics,
        ack_on_failure=settings.unsafe_ack_on_publish_failure,
        linger=settings.publish_linger_seconds,
        table=AckTable(settings.idempotency_max_readings, settings.idempotency_ttl_seconds, runtime.metrics),
    )
    buffer.start()
    runtime.set_buffer(buffer)
    log.info("ready: %d partitions", len(partition_ids))


def _lifespan(
    settings: ProducerSettings, publisher: EventPublisher | None, runtime: Runtime, traced: _Traced | None
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Connect in the background on startup; on shutdown flush within the grace period, then close."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pub = publisher
        if pub is None:
            from homesec_producer.adapters.eventhub import EventHubsPublisher

            pub = EventHubsPublisher.from_settings(
                settings, runtime.metrics, traces=traced.traces if traced else None
            )
        if traced is not None:
            pub = traced.publisher(pub)
        connect = asyncio.create_task(_connect(settings, pub, runtime), name="connect")
        try:
            yield
        finally:
            connect.cancel()
            await asyncio.gather(connect, return_exceptions=True)
            await runtime.finish()
            await pub.close()

    return lifespan


class _Traced:
    """Tracing on: the producer's spans (``homesec_producer.tracing``, imported only then)."""

    def __init__(self, tracing: Tracing) -> None:
        from homesec_producer import tracing as spans

        self.spans, self.tracing = spans, tracing
        self.traces, self.tracer = spans.install(tracing)

    def publisher(self, inner: EventPublisher) -> EventPublisher:
        return self.spans.TracingPublisher(inner, self.tracer, self.traces)

    def telemetry(self) -> TelemetryConfig:
        return self.spans.telemetry_config(self.tracing)


@dataclass(frozen=True)
class ProducerApps:
    """``api``: the ingest port's app (``POST /v1/readings``; its lifespan runs the service); ``admin``: the
    admin port's (``admin.py``); ``runtime``: for the signal handler; ``metrics``: for the HTTP server."""

    api: FastAPI
    admin: FastAPI
    runtime: Runtime
    metrics: ProducerMetrics


def build_app(
    settings: ProducerSettings,
    publisher: EventPublisher | None = None,
    clock: Clock = utc_now,
    registry: CollectorRegistry | None = None,
    tracing: Tracing | None = None,
) -> ProducerApps:
    """The producer's two ASGI apps. ``tracing``: on (``homesec_runtime.tracing.start_tracing``) or ``None``,
    off."""
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    metrics = ProducerMetrics.create(registry)
    register_process_metrics(registry)
    admission = Admission(settings.max_concurrent_requests, metrics, settings.retry_after_seconds)
    runtime = Runtime(metrics, settings.shutdown_plan(), admission)
    service = IngestService(
        runtime=runtime,
        authority=_authority(settings),
        window=time_window(settings.max_reading_age_seconds, settings.max_clock_skew_seconds),
        max_readings=settings.max_readings_per_request,
        deadline_seconds=settings.request_deadline_seconds,
        clock=clock,
    )
    traced = _Traced(tracing) if tracing is not None else None
    if settings.unsafe_ack_on_publish_failure:
        log.error("UNSAFE_ACK_ON_PUBLISH_FAILURE is set: failed sends are acknowledged (test harness only)")
    api = FastAPI(
        title="homesec producer",
        version="1",
        description="Ingests sensor readings and publishes them to Event Hubs (home ID = partition key).",
        lifespan=_lifespan(settings, publisher, runtime, traced),
        docs_url=None,  # the docs are on the admin port
        redoc_url=None,
        openapi_url=None,
        # FastAPI's own OpenTelemetry: off, or (tracing on) the request span around every middleware
        telemetry=traced.telemetry() if traced else NO_TELEMETRY,
        # The admin port's /docs "Try it out" sends to the API port.
        servers=[{"url": f"http://{{host}}:{settings.port}", "description": "the API port",
                  "variables": {"host": {"default": "127.0.0.1", "description": "the producer's host"}}}],
    )  # fmt: skip
    endpoint = ReadingsEndpoint(
        service,
        settings.max_body_bytes,
        settings.retry_after_seconds,
        traces=traced.traces if traced else NO_TRACES,
    )
    api.include_router(build_router(endpoint))
    # Inside admission: a body that does not arrive in time is answered 408 and its slot freed.
    api.add_middleware(
        BodyDeadlineMiddleware, seconds=settings.body_read_timeout_seconds, timeouts=metrics.request_timeouts,
        paths=INGEST_PATHS,
    )  # fmt: skip
    api.add_middleware(AdmissionMiddleware, admission=admission)
    # Outermost: every log line of the request has its ID, and the admission refusals are counted too.
    api.add_middleware(RequestMiddleware, metrics=metrics)
    install_openapi_schemas(api)
    api.state.runtime = runtime
    return ProducerApps(api, build_admin_app(api, runtime, registry), runtime, metrics)
