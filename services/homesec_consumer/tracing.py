"""The consumer's spans (imported only when tracing is on: see ``homesec_runtime.tracing``).

- ``consumer.batch`` (CONSUMER): one per received batch, linked to the producers' message spans (each
  event's ``traceparent``, else ``Diagnostic-Id``, application property: the Azure SDK's names), and a
  child of the first SAMPLED one: sampling follows the producer's decision, so a traced reading stays
  traced to its rollup, and its trace is one trace ID from the POST to the Blob write.
- ``rollup.flush`` (INTERNAL): one per partition flush that writes something, linked to the
  ``consumer.batch`` spans of that partition since its previous flush (at most ``MAX_LINKS``) and a child
  of the first sampled one.
- ``rollup.write_snapshot`` / ``rollup.merge_day`` / ``rollup.write_view`` (CLIENT): one per Blob write,
  children of the flush.

The Azure SDKs' own plugin stays off here: its per-event link extraction (``EventHubs.process``) and its
Blob spans cost CPU on every event and request and add nothing these spans do not say.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from azure.eventhub import EventData
from homesec_runtime.tracing import Tracing
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Tracer

from homesec_consumer.ports import RollupStore, StoredDoc

MAX_LINKS = 128
_TRACEPARENT, _DIAGNOSTIC_ID = b"traceparent", b"Diagnostic-Id"


def producer_context(event: EventData) -> SpanContext | None:
    """The producer's span context stamped on ``event``, if any, from the public ``EventData.properties``
    (received application-property keys are bytes)."""
    props = event.properties
    if not props:
        return None
    value = props.get(_TRACEPARENT) or props.get(_DIAGNOSTIC_ID)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    ctx = trace.get_current_span(propagate.extract({"traceparent": value})).get_span_context()
    return ctx if ctx.is_valid else None


def _parent(contexts: list[SpanContext]) -> Context | None:
    """The context of the first sampled span among ``contexts``, as a parent (None: a root span)."""
    for ctx in contexts:
        if ctx.trace_flags.sampled:
            return trace.set_span_in_context(NonRecordingSpan(ctx))
    return None


class ConsumerSpans:
    """``BatchSpans`` (adapters/eventhub.py) and ``FlushSpans`` (ports.py)."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._batches: dict[str, deque[SpanContext]] = {}

    @contextlib.contextmanager
    def batch(self, partition_id: str, events: Sequence[EventData]) -> Iterator[None]:
        found: dict[int, SpanContext] = {}
        for event in events:
            ctx = producer_context(event)
            if ctx is not None and len(found) < MAX_LINKS:
                found.setdefault(ctx.span_id, ctx)
        producers = list(found.values())
        attributes: dict[str, str | int] = {"messaging.destination.partition.id": partition_id,
                      "messaging.batch.message_count": len(events)}  # fmt: skip
        with self._tracer.start_as_current_span(
            "consumer.batch", context=_parent(producers), kind=SpanKind.CONSUMER,
            links=[Link(ctx) for ctx in producers], attributes=attributes,
        ) as span:  # fmt: skip
            pending = self._batches.setdefault(partition_id, deque(maxlen=MAX_LINKS))
            pending.append(span.get_span_context())
            yield

    @contextlib.contextmanager
    def flush(self, partition_id: str, homes: int) -> Iterator[None]:
        if homes == 0:  # nothing to write: no span
            yield
            return
        pending = list(self._batches.pop(partition_id, ()))
        with self._tracer.start_as_current_span(
            "rollup.flush", context=_parent(pending), links=[Link(ctx) for ctx in pending],
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

    async def load_snapshot(self, partition_id: str) -> tuple[bytes, str] | None:
        return await self._inner.load_snapshot(partition_id)

    async def put_snapshot(
        self, partition_id: str, body: bytes, etag: str | None, in_doubt: tuple[bytes, ...] = ()
    ) -> str:
        with self._tracer.start_as_current_span("rollup.write_snapshot", kind=SpanKind.CLIENT):
            return await self._inner.put_snapshot(partition_id, body, etag, in_doubt)

    async def put_view(self, home_id: str, body: bytes) -> None:
        with self._tracer.start_as_current_span("rollup.write_view", kind=SpanKind.CLIENT):
            await self._inner.put_view(home_id, body)

    async def merge_day(self, home_id: str, day: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
        with self._tracer.start_as_current_span("rollup.merge_day", kind=SpanKind.CLIENT):
            await self._inner.merge_day(home_id, day, entries)

    async def load_day(self, home_id: str, day: str) -> StoredDoc | None:
        return await self._inner.load_day(home_id, day)


def install(tracing: Tracing) -> ConsumerSpans:
    """Tracing on: the consumer's spans (the Azure SDKs' plugin stays off: see the module docstring)."""
    return ConsumerSpans(tracing.tracer)
