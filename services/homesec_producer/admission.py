"""Admission of ingest requests: the concurrency limit, and the shutdown cutoff that answers the stragglers.

A pure ASGI middleware in front of ``POST /v1/readings`` (probes and metrics are never limited):

- above ``limit`` requests at once it answers **503 + Retry-After** without reading the body, counted in
  ``shed_total{status="503"}`` and ``readings_rejected_total{reason="shed"}`` (replaces uvicorn's
  ``limit_concurrency``, whose bare 503 had neither);
- ``cut_off()`` (called by the shutdown sequence before uvicorn's own timeout) cancels every request that has
  not started its response and answers it **503 + Retry-After** (``reason="shutting_down"``), and refuses the
  requests that come after. uvicorn would otherwise cancel them itself and answer 500.

The hot path costs a dict insert and delete per request; the task is cancelled only at the cutoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homesec_producer.metrics import ProducerMetrics

INGEST_PATHS = frozenset({"/v1/readings"})


class _Call:
    """One admitted request: whether its response started, and whether the cutoff cancelled it."""

    __slots__ = ("cut", "send_downstream", "started")

    def __init__(self, send: Send) -> None:
        self.send_downstream = send
        self.started = False
        self.cut = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send_downstream(message)


class Admission:
    """The requests in the app (by task), the limit, and whether the shutdown cutoff has passed."""

    def __init__(self, limit: int, metrics: ProducerMetrics, retry_after: int) -> None:
        self.limit = limit
        self.metrics = metrics
        self.retry_after = str(retry_after)
        self.calls: dict[asyncio.Task[Any], _Call] = {}
        self.closed = False
        self.idle: asyncio.Future[None] | None = None  # while settle() waits for the last answer

    def cut_off(self) -> int:
        """Refuse new requests; cancel the admitted ones not yet answering (they answer 503). How many."""
        self.closed = True
        cut = 0
        for task, call in self.calls.items():
            if not call.started and not call.cut:
                call.cut = True
                task.cancel(msg="shutdown cutoff")
                cut += 1
        return cut

    async def settle(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the admitted requests to be answered."""
        if not self.calls:
            return
        self.idle = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle, timeout)
        self.idle = None

    def done(self, task: asyncio.Task[Any]) -> None:
        del self.calls[task]
        if self.idle is not None and not self.calls and not self.idle.done():
            self.idle.set_result(None)

    async def refuse(self, send: Send, reason: str, detail: str) -> None:
        self.metrics.readings_rejected.labels(reason=reason).inc()
        self.metrics.shed.labels(status="503").inc()
        body = orjson.dumps({"error": reason, "detail": detail})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", self.retry_after.encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class AdmissionMiddleware:
    """Pure ASGI middleware applying an ``Admission`` to the ingest route; see the module docstring."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in INGEST_PATHS:
            await self.app(scope, receive, send)
            return
        admission = self.admission
        if admission.closed:
            await admission.refuse(send, "shutting_down", "shutting down")
            return
        if len(admission.calls) >= admission.limit:
            await admission.refuse(send, "shed", f"more than {admission.limit} requests at once")
            return
        task = asyncio.current_task()
        assert task is not None
        call = admission.calls[task] = _Call(send)
        try:
            await self.app(scope, receive, call.send)
        except asyncio.CancelledError:
            if not call.cut:
                raise
            task.uncancel()
            await admission.refuse(send, "shutting_down", "shut down before the readings were acknowledged")
        finally:
            admission.done(task)
