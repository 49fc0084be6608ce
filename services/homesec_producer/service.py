"""The ingestion use case without HTTP: authorise, validate, buffer, wait for the acknowledgement.

``Runtime`` holds the process state (ready, draining, the buffer once Event Hubs answered). Every failure
is a ``ProducerError``/``ReadingsRejectedError`` subclass; ``api.py`` maps them to HTTP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from homesec_domain.validation import (
    AcceptedReading,
    ReadingIn,
    TimeWindow,
    check_rules,
    encode_accepted,
    parse_batch,
)

from homesec_producer.auth import TokenAuthority, TokenScope, bearer_token
from homesec_producer.buffer import PartitionedBuffer
from homesec_producer.errors import (
    DeadlineExceededError,
    ProducerError,
    ShuttingDownError,
)
from homesec_producer.metrics import ProducerMetrics

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class NotReadyError(ProducerError):
    """Event Hubs has not answered yet (startup): nothing can be published."""


@dataclass
class Runtime:
    """Mutable process state shared by the routes, the lifespan and the signal handler."""

    metrics: ProducerMetrics
    grace_seconds: float
    delay_seconds: float = 0.0
    buffer: PartitionedBuffer | None = None
    draining: bool = False
    shutdown_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.buffer is not None and not self.draining

    def set_buffer(self, buffer: PartitionedBuffer) -> None:
        self.buffer = buffer
        self.metrics.ready.set(1 if self.ready else 0)

    def mark_draining(self) -> None:
        """Readiness false (safe to call from a signal handler)."""
        self.draining = True
        self.metrics.ready.set(0)

    def begin_shutdown(self) -> None:
        """Readiness false at once; after ``delay_seconds`` refuse new readings and flush (idempotent)."""
        if self.shutdown_task is not None:
            return
        self.mark_draining()
        log.info("shutdown: readiness false, draining within %.1fs", self.grace_seconds)
        self.shutdown_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        await asyncio.sleep(self.delay_seconds)
        if self.buffer is not None:
            budget = max(0.0, self.grace_seconds - self.delay_seconds - 1.0)
            left = await self.buffer.close(budget)
            log.info("shutdown: buffer flushed, %d readings unpublished (their requests got 503)", left)

    async def finish(self) -> None:
        """Lifespan end: make sure the buffer is closed (flushing within the grace period)."""
        self.begin_shutdown()
        if self.shutdown_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.shutdown_task


@dataclass
class IngestService:
    """``ingest(authorization, body)`` returns the acknowledged reading IDs or raises."""

    runtime: Runtime
    authority: TokenAuthority
    window: TimeWindow
    max_readings: int
    deadline_seconds: float
    clock: Clock

    def authorise(self, authorization: str | None) -> TokenScope:
        return self.authority.verify(bearer_token(authorization), self.clock())

    def parse(self, body: bytes) -> list[ReadingIn]:
        readings = parse_batch(body, self.max_readings)
        self.runtime.metrics.readings_received.inc(len(readings))
        return readings

    def admit(self, scope: TokenScope, readings: list[ReadingIn]) -> list[AcceptedReading]:
        """Scope (403), then the rules (422), then encode with IDs."""
        scope.check_homes(r["home_id"] for r in readings)
        check_rules(readings, self.clock(), self.window)
        return [encode_accepted(r) for r in readings]

    async def publish(self, accepted: list[AcceptedReading]) -> list[str]:
        buffer = self.runtime.buffer
        if buffer is None:
            raise NotReadyError("Event Hubs not reachable yet")
        if buffer.closing:
            raise ShuttingDownError("draining")
        ticket = buffer.submit(accepted)
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(ticket.future), self.deadline_seconds)
        except TimeoutError:
            ticket.abandon()
            raise DeadlineExceededError(time.monotonic() - started) from None
        except BaseException:
            ticket.abandon()
            raise
        return [r.reading_id for r in accepted]


def time_window(max_age_seconds: float, max_skew_seconds: float) -> TimeWindow:
    return TimeWindow(timedelta(seconds=max_age_seconds), timedelta(seconds=max_skew_seconds))
