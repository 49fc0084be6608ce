"""The consumer's spans (imported only when tracing is on: see ``homesec_domain.tracing``).

- ``EventHubs.process`` (CONSUMER, by the Azure SDK's OpenTelemetry plugin) around each batch callback.
- ``consumer.batch`` (CONSUMER): its child, one per received batch, linked to the producers' message
  spans (each event's ``traceparent``, else ``Diagnostic-Id``, application property).
- ``rollup.flush`` (INTERNAL): one per partition flush that writes something, linked to the
  ``consumer.batch`` spans of that partition since its previous flush (at most ``MAX_LINKS``).
- ``rollup.write_status`` / ``rollup.merge_day`` (CLIENT): one per Blob write, children of the flush;
  the Blob SDK's own spans (``BlobClient.upload_blob`` ...) are their children.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from azure.core.settings import settings as azure_settings
from azure.eventhub import EventData
from homesec_domain.tracing import Tracing
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Tracer

from homesec_consumer.ports import RollupStore, StoredDoc

MAX_LINKS = 128
_TRACEPARENT, _DIAGNOSTIC_ID = b"traceparent", b"Diagnostic-Id"


def enable_azure_sdk_tracing() -> None:
    """The Azure SDKs report spans through OpenTelemetry (``azure-core-tracing-opentelemetry``)."""
    azure_settings.tracing_implementation = "opentelemetry"


def producer_context(event: EventData) -> SpanContext | None:
    """The producer's span context stamped on ``event`` (public ``EventData.properties``), if any."""
    props = event.properties or {}
    value = props.get(_TRACEPARENT) or props.get(_DIAGNOSTIC_ID)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    ctx = trace.get_current_span(propagate.extract({"traceparent": value})).get_span_context()
    return ctx if ctx.is_valid else None


class ConsumerSpans:
    """``BatchSpans`` (adapters/eventhub.py) and ``FlushSpans`` (ports.py)."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._batches: dict[str, deque[SpanContext]] = {}

    @contextlib.contextmanager
    def batch(self, partition_id: str, events: Sequence[EventData]) -> Iterator[None]:
        links: dict[int, Link] = {}
        for event in events:
            ctx = producer_context(event)
            if ctx is not None and len(links) < MAX_LINKS:
                links.setdefault(ctx.span_id, Link(ctx))
        attributes: dict[str, str | int] = {"messaging.destination.partition.id": partition_id,
                      "messaging.batch.message_count": len(events)}  # fmt: skip
        with self._tracer.start_as_current_span(
            "consumer.batch", kind=SpanKind.CONSUMER, links=list(links.values()), attributes=attributes
        ) as span:
            pending = self._batches.setdefault(partition_id, deque(maxlen=MAX_LINKS))
            pending.append(span.get_span_context())
            yield

    @contextlib.contextmanager
    def flush(self, partition_id: str, homes: int) -> Iterator[None]:
        if homes == 0:  # nothing to write: no span
            yield
            return
        pending = self._batches.pop(partition_id, ())
        with self._tracer.start_as_current_span(
            "rollup.flush", links=[Link(ctx) for ctx in pending],
            attributes={"messaging.destination.partition.id": partition_id, "homesec.homes": homes},
        ):  # fmt: skip
            yield


class TracingStore:
    """A ``RollupStore`` whose writes are spans (children of the current flush)."""

    def __init__(self, inner: RollupStore, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def load_status(self, home_id: str) -> StoredDoc | None:
        return await self._inner.load_status(home_id)

    async def put_status(self, home_id: str, body: bytes, etag: str | None) -> str:
        with self._tracer.start_as_current_span("rollup.write_status", kind=SpanKind.CLIENT):
            return await self._inner.put_status(home_id, body, etag)

    async def merge_day(self, home_id: str, day: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
        with self._tracer.start_as_current_span("rollup.merge_day", kind=SpanKind.CLIENT):
            await self._inner.merge_day(home_id, day, entries)

    async def load_day(self, home_id: str, day: str) -> StoredDoc | None:
        return await self._inner.load_day(home_id, day)


def install(tracing: Tracing) -> ConsumerSpans:
    """Tracing on: the Azure SDK plugin and the consumer's spans."""
    enable_azure_sdk_tracing()
    return ConsumerSpans(tracing.tracer)
