"""Request context for logs and traces, with or without tracing.

``RequestMiddleware`` (pure ASGI, always on, outermost) binds ``request_id`` to every log record of a
request: the client's ``X-Request-ID`` when it is a sane token (at most 128 characters of
``[A-Za-z0-9._:-]``), else a new random one; the response echoes it in ``X-Request-ID``. The same wrapper
counts the request (``http_requests_total{route,method,status}``, its duration, the in-flight gauge; by route
template, refusals before routing included): one wrapper of ``send`` per request, not two.
``ReadingTraces`` is the port between the readings endpoint and the tracing adapter: the endpoint lets each
accepted reading carry its request's trace context to the Event Hubs send (``NO_TRACES`` when tracing is off:
no OpenTelemetry at all).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Protocol

from homesec_domain.validation import AcceptedReading
from homesec_runtime import logs
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homesec_producer.admission import INGEST_PATHS
from homesec_producer.metrics import ProducerMetrics

log = logging.getLogger("homesec_producer.access")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class ReadingTraces(Protocol):
    """Carries the trace context of a request to the send of its readings (tracing on only)."""

    def carry(self, readings: Sequence[AcceptedReading]) -> contextlib.AbstractContextManager[None]:
        """While the block runs (the request waits for its acknowledgement), a send of one of these
        readings can find the request's trace context by reading ID."""
        ...


class _NoTraces:
    @contextlib.contextmanager
    def carry(self, readings: Sequence[AcceptedReading]) -> Iterator[None]:
        yield


NO_TRACES: ReadingTraces = _NoTraces()


def debug_accepted(readings: Sequence[AcceptedReading]) -> None:
    """DEBUG only: the request's reading IDs and home IDs (never at INFO: a home ID is never in bulk logs)."""
    if log.isEnabledFor(logging.DEBUG):
        homes = ",".join(sorted({r.home_id for r in readings}))
        ids = ",".join(r.reading_id for r in readings[:20])
        log.debug("accepted readings %s", ids, extra={"reading_count": len(readings), "home_id": homes})


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` if sane, else a new one (32 hex digits)."""
    for name, value in scope.get("headers") or ():
        if name == REQUEST_ID_HEADER and _SANE_ID.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RequestMiddleware:
    """See the module docstring; also a DEBUG line per request (method, path, status, duration)."""

    def __init__(self, app: ASGIApp, metrics: ProducerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        status = 500
        started = time.monotonic()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid.encode())]
            await send(message)

        metrics = self.metrics
        metrics.http_in_flight.inc()
        with logs.bind(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.monotonic() - started
                metrics.http_in_flight.dec()
                route = getattr(scope.get("route"), "path", None) or _known(scope["path"])
                metrics.http_requests.labels(route=route, method=scope["method"], status=str(status)).inc()
                metrics.http_duration.labels(route=route).observe(elapsed)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %s %d in %.1f ms", scope["method"], scope["path"], status, elapsed * 1000)


def _known(path: str) -> str:
    """The route label of a request answered before routing (admission refusals), else ``other``."""
    return path if path in INGEST_PATHS else "other"
