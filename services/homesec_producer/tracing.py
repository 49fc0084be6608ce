"""The producer's spans (imported only when tracing is on: see ``homesec_runtime.tracing``).

- ``POST /v1/readings`` (SERVER, FastAPI's own telemetry): one per request, a child of the client's
  ``traceparent`` if it sent one (``telemetry_config``).
- ``EventHubs.message`` (PRODUCER, by the Azure SDK's OpenTelemetry plugin): one per event of a SAMPLED
  request, a child of its request's span; the SDK stamps its context on the event (application
  properties ``traceparent`` and ``Diagnostic-Id``), which is what the consumer links to. Events of
  unsampled requests keep the fast encoder and carry no trace context.
- ``eventhubs.publish`` (INTERNAL): one per batch send by a partition worker (readings of many requests),
  a child of the first sampled request among them (so it is sampled with it) and linked to each sampled
  request's span; the SDK's ``EventHubs.send`` (CLIENT) is its child and links the events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from azure.core.settings import settings as azure_settings
from fastapi.telemetry import TelemetryConfig
from homesec_domain.validation import AcceptedReading
from homesec_runtime.tracing import Tracing, remember
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Tracer

from homesec_producer.ports import EventPublisher

MAX_LINKS = 128  # links per publish span (a batch can hold readings of hundreds of requests)


def enable_azure_sdk_tracing() -> None:
    """The Azure SDKs report spans through OpenTelemetry (``azure-core-tracing-opentelemetry``)."""
    azure_settings.tracing_implementation = "opentelemetry"


class RequestTraces:
    """``ReadingTraces`` (observability.py): reading ID -> the trace context of its request, while the
    request waits for its acknowledgement. Only SAMPLED requests are kept: an unsampled request costs
    nothing downstream (its events take the fast encoder, carry no trace context, make no spans)."""

    def __init__(self) -> None:
        self._contexts: dict[str, Context] = {}

    @contextlib.contextmanager
    def carry(self, readings: Sequence[AcceptedReading]) -> Iterator[None]:
        ctx = otel_context.get_current()
        span_ctx = trace.get_current_span(ctx).get_span_context()
        if not (span_ctx.is_valid and span_ctx.trace_flags.sampled):
            yield
            return
        for reading in readings:
            self._contexts[reading.reading_id] = ctx
        try:
            yield
        finally:
            for reading in readings:
                if self._contexts.get(reading.reading_id) is ctx:
                    del self._contexts[reading.reading_id]

    def sampled(self, reading_id: str) -> bool:
        """The reading's request is traced (its event gets the SDK's message span and trace context)."""
        return reading_id in self._contexts

    @contextlib.contextmanager
    def attached(self, reading_id: str) -> Iterator[None]:
        """The reading's request context is current inside the block (the adapter adds the event there)."""
        ctx = self._contexts.get(reading_id)
        if ctx is None:
            yield
            return
        token = otel_context.attach(ctx)
        try:
            yield
        finally:
            otel_context.detach(token)

    def links(self, readings: Sequence[AcceptedReading]) -> tuple[Context | None, list[Link]]:
        """The first traced request's context (the parent of the send: sampling follows it) and one link
        per traced request among ``readings`` (at most ``MAX_LINKS``)."""
        parent: Context | None = None
        seen: dict[int, Link] = {}
        for reading in readings:
            ctx = self._contexts.get(reading.reading_id)
            if ctx is None:
                continue
            parent = parent or ctx
            span_ctx = trace.get_current_span(ctx).get_span_context()
            if span_ctx.span_id not in seen:
                seen[span_ctx.span_id] = Link(span_ctx)
                if len(seen) >= MAX_LINKS:
                    break
        return parent, list(seen.values())


class TracingPublisher:
    """An ``EventPublisher`` that wraps each send in an ``eventhubs.publish`` span (see the module doc)."""

    def __init__(self, inner: EventPublisher, tracer: Tracer, traces: RequestTraces) -> None:
        self._inner = inner
        self._tracer = tracer
        self._traces = traces

    async def partition_ids(self) -> Sequence[str]:
        return await self._inner.partition_ids()

    async def publish(self, partition_id: str, readings: Sequence[AcceptedReading]) -> None:
        attributes: dict[str, str | int] = {"messaging.destination.partition.id": partition_id,
                      "messaging.batch.message_count": len(readings)}  # fmt: skip
        parent, links = self._traces.links(readings)
        with self._tracer.start_as_current_span(
            "eventhubs.publish", context=parent, links=links, attributes=attributes
        ) as span:
            try:
                await self._inner.publish(partition_id, readings)
            finally:
                remember(span)  # the exemplar of publish_duration, observed after this returns

    async def close(self) -> None:
        await self._inner.close()


def telemetry_config(tracing: Tracing) -> TelemetryConfig:
    """FastAPI's native telemetry: the request span only (no OpenTelemetry metrics or logs: Prometheus
    and our JSON logs do that), on this process's provider."""
    return {"tracer_provider": tracing.provider, "tracing": True, "metrics": False, "logs": False,
            "operation_spans": False, "exclude": _probe}  # fmt: skip


def _probe(scope: Any) -> bool:
    """Probes and scrapes make no spans."""
    return scope.get("path") in {"/healthz", "/readyz", "/metrics"}


def install(tracing: Tracing) -> tuple[RequestTraces, Tracer]:
    """Tracing on: the Azure SDK plugin, and the request-to-send context registry."""
    enable_azure_sdk_tracing()
    return RequestTraces(), tracing.tracer
