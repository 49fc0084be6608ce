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

from homesec_auth.tokens import INGEST_AUDIENCE, TokenAuthority, TokenScope
from homesec_domain.validation import (
    AcceptedReading,
    ReadingIn,
    TimeWindow,
    check_rules,
    encode_accepted,
    parse_batch,
)

from homesec_producer.admission import Admission
from homesec_producer.buffer import PartitionedBuffer, Ticket
from homesec_producer.errors import (
    BufferFullError,
    DeadlineExceededError,
    NotAcknowledgedError,
    ProducerError,
    ShuttingDownError,
)
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.shutdown import ShutdownPlan

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class NotReadyError(ProducerError):
    """Event Hubs has not answered yet (startup): nothing can be published."""


@dataclass
class Runtime:
    """Mutable process state shared by the routes, the lifespan and the signal handler."""

    metrics: ProducerMetrics
    plan: ShutdownPlan
    admission: Admission
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
        """Readiness false at once; then the timeline of ``shutdown.ShutdownPlan`` (idempotent)."""
        if self.shutdown_task is not None:
            return
        self.mark_draining()
        log.info(
            "shutdown: readiness false, every request answered within %.1fs",
            self.plan.delay + self.plan.cutoff,
        )
        self.shutdown_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Flush until ``plan.flush`` (the rest fail: 503); at ``plan.cutoff`` the stragglers get 503."""
        plan = self.plan
        await asyncio.sleep(plan.delay)
        started = asyncio.get_running_loop().time()
        if self.buffer is not None:
            left = await self.buffer.close(plan.flush)
            log.info("shutdown: buffer closed, %d readings unpublished (their requests get 503)", left)
        elapsed = asyncio.get_running_loop().time() - started
        await self.admission.settle(max(0.0, plan.cutoff - elapsed))
        cut = self.admission.cut_off()
        if cut:
            log.warning("shutdown: %d requests still unanswered at the cutoff get 503", cut)

    async def finish(self) -> None:
        """Lifespan end: make sure the buffer is closed and every request answered."""
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
        return self.authority.authenticate(authorization, self.clock(), INGEST_AUDIENCE)

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
        """The reading IDs, once Event Hubs acknowledged every reading (now or before: a resend).

        Raises ``NotAcknowledgedError`` (wrapping the cause) with the per-reading outcome otherwise.
        """
        buffer = self.runtime.buffer
        if buffer is None:
            raise _outcome(NotReadyError("Event Hubs not reachable yet"), accepted, [False] * len(accepted))
        try:
            ticket = buffer.submit(accepted)
        except (BufferFullError, ShuttingDownError) as exc:
            raise _outcome(exc, accepted, buffer.known_acknowledged(accepted)) from None
        try:
            return await self._wait(ticket, accepted)
        finally:
            ticket.release()

    async def _wait(self, ticket: Ticket, accepted: list[AcceptedReading]) -> list[str]:
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(ticket.future), self.deadline_seconds)
        except TimeoutError:
            ticket.abandon()
            error: ProducerError = DeadlineExceededError(time.monotonic() - started)
        except ProducerError as exc:
            ticket.abandon()
            error = exc
        except BaseException:
            ticket.abandon()
            raise
        else:
            return [r.reading_id for r in accepted]
        acked = ticket.acknowledged()
        if all(acked):  # the last acknowledgement came as the wait ended
            return [r.reading_id for r in accepted]
        raise _outcome(error, accepted, acked)


def _outcome(
    cause: ProducerError, accepted: list[AcceptedReading], acked: list[bool]
) -> NotAcknowledgedError:
    """The error to raise, with the per-reading outcome (a caller checks ``all(acked)`` first)."""
    yes = [r.reading_id for r, ok in zip(accepted, acked, strict=True) if ok]
    no = [r.reading_id for r, ok in zip(accepted, acked, strict=True) if not ok]
    return NotAcknowledgedError(cause, yes, no)


def time_window(max_age_seconds: float, max_skew_seconds: float) -> TimeWindow:
    return TimeWindow(timedelta(seconds=max_age_seconds), timedelta(seconds=max_skew_seconds))
