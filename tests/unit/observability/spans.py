"""Helpers over finished spans (the SDK's ``ReadableSpan``), shared by the tracing tests."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Span


def ids(span: ReadableSpan | Span) -> tuple[int, int]:
    """``(trace_id, span_id)``."""
    ctx = span.get_span_context()
    assert ctx is not None
    return ctx.trace_id, ctx.span_id


def by_name(spans: Iterable[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def linked_to(span: ReadableSpan, target: ReadableSpan | Span) -> bool:
    """``span`` has a link to ``target``'s span context."""
    wanted = ids(target)
    return any((link.context.trace_id, link.context.span_id) == wanted for link in span.links)
