"""The bounded, partitioned buffer between HTTP requests and Event Hubs.

A request submits its validated readings and gets a ``Ticket`` (a future resolved once Event Hubs
acknowledged every one of them). Readings are routed to their partition with the SDK's partition-key hash
of the home ID. One worker per partition sends batches of readings from many requests and many homes, one
send in flight per partition (so a home's readings stay in order), retrying with backoff.

Bounded: ``submit`` refuses a request whose readings do not fit (``BufferFullError``); capacity counts
readings queued and in flight. Nothing is dropped silently: every ticket is either acknowledged or failed
(publish failure, shutdown). Readings of a ticket whose client already gave up (``abandon``) are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence

from homesec_domain.partitioning import partition_for
from homesec_domain.validation import AcceptedReading

from homesec_producer.errors import (
    BufferFullError,
    PublishError,
    PublishFailedError,
    ShuttingDownError,
    ThrottledError,
)
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.ports import EventPublisher
from homesec_producer.retry import RetryPolicy

log = logging.getLogger(__name__)

# AMQP framing per event beyond the body (message ID, content type, partition key, section headers).
EVENT_OVERHEAD_BYTES = 200


class Ticket:
    """One request's readings in the buffer; ``future`` resolves when all are acknowledged."""

    __slots__ = ("abandoned", "future", "pending")

    def __init__(self, count: int, future: asyncio.Future[None]) -> None:
        self.pending = count
        self.future = future
        self.abandoned = False

    def ack(self, count: int) -> None:
        self.pending -= count
        if self.pending <= 0 and not self.future.done():
            self.future.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done() and not self.abandoned:
            self.future.set_exception(exc)
        self.abandoned = True

    def abandon(self) -> None:
        """The client stopped waiting (deadline): its unsent readings need not be sent."""
        self.abandoned = True
        if self.future.done() and not self.future.cancelled():
            self.future.exception()  # mark retrieved


Item = tuple[AcceptedReading, Ticket]


class PartitionedBuffer:
    """Per-partition queues and workers; see the module docstring."""

    def __init__(
        self,
        publisher: EventPublisher,
        partition_ids: Sequence[str],
        *,
        capacity: int,
        max_batch_events: int,
        max_batch_bytes: int,
        retry: RetryPolicy,
        metrics: ProducerMetrics,
        ack_on_failure: bool = False,
        linger: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._publisher = publisher
        self._ids = list(partition_ids)
        self._capacity = capacity
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._retry = retry
        self._metrics = metrics
        self._ack_on_failure = ack_on_failure
        self._sleep = sleep
        self._linger = linger
        self._queues: dict[str, deque[Item]] = {pid: deque() for pid in self._ids}
        self._wake: dict[str, asyncio.Event] = {pid: asyncio.Event() for pid in self._ids}
        self._workers: list[asyncio.Task[None]] = []
        self._depth = 0
        self._empty = asyncio.Event()
        self._empty.set()
        self._closing = False
        metrics.buffer_capacity.set(capacity)
        metrics.buffer_readings.set(0)

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def closing(self) -> bool:
        return self._closing

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._run(pid), name=f"publish-{pid}") for pid in self._ids]

    def submit(self, readings: Sequence[AcceptedReading]) -> Ticket:
        """Queue all of ``readings`` or none (``BufferFullError``, ``ShuttingDownError``)."""
        if self._closing:
            raise ShuttingDownError("draining")
        free = self._capacity - self._depth
        if len(readings) > free:
            raise BufferFullError(len(readings), free)
        ticket = Ticket(len(readings), asyncio.get_running_loop().create_future())
        for reading in readings:
            pid = partition_for(reading.home_id, self._ids)
            self._queues[pid].append((reading, ticket))
            self._wake[pid].set()
        self._add_depth(len(readings))
        return ticket

    def _add_depth(self, delta: int) -> None:
        self._depth += delta
        self._metrics.buffer_readings.set(self._depth)
        if self._depth == 0:
            self._empty.set()
        else:
            self._empty.clear()

    async def _run(self, pid: str) -> None:
        queue, wake = self._queues[pid], self._wake[pid]
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            if self._linger > 0 and len(queue) < self._max_events and not self._closing:
                await asyncio.sleep(self._linger)  # let a batch fill: fewer, larger sends
            items = self._take(queue)
            if not items:
                continue
            try:
                await self._send(pid, items)
            except asyncio.CancelledError:
                self._fail_all(items, ShuttingDownError("shut down while publishing"))
                raise
            finally:
                self._add_depth(-len(items))

    def _take(self, queue: deque[Item]) -> list[Item]:
        items: list[Item] = []
        size = skipped = 0
        while queue and len(items) < self._max_events:
            reading, ticket = queue[0]
            if ticket.abandoned:
                queue.popleft()
                skipped += 1
                continue
            cost = len(reading.body) + EVENT_OVERHEAD_BYTES
            if items and size + cost > self._max_bytes:
                break
            items.append(queue.popleft())
            size += cost
        if skipped:
            self._add_depth(-skipped)
        return items

    async def _send(self, pid: str, items: list[Item]) -> None:
        started = time.monotonic()
        tries = 0
        try:
            while items:
                tries += 1
                self._metrics.publish_batch_size.observe(len(items))
                try:
                    await self._publisher.publish(pid, [reading for reading, _ in items])
                except Exception as exc:  # a publisher bug must not kill the worker
                    error = exc if isinstance(exc, PublishError) else PublishError(repr(exc))
                    if not await self._after_failure(error, tries):
                        self._settle_failed(items, error)
                        return
                    items = [item for item in items if not item[1].abandoned]
                else:
                    self._settle_ok(items)
                    return
        finally:
            self._metrics.publish_duration.observe(time.monotonic() - started)

    async def _after_failure(self, error: PublishError, tries: int) -> bool:
        """Count the failure; wait and return True when it should be retried."""
        if isinstance(error, ThrottledError):
            self._metrics.publish_throttled.inc()
        if not (error.retryable and self._retry.should_retry(tries)):
            self._metrics.publish_failures.labels(reason=error.reason).inc()
            return False
        self._metrics.publish_retries.labels(reason=error.reason).inc()
        log.info("publish failed (%s), retry %d after backoff", error, tries)
        await self._sleep(self._retry.delay(tries))
        return True

    @staticmethod
    def _per_ticket(items: Sequence[Item]) -> Counter[Ticket]:
        return Counter(ticket for _, ticket in items)

    def _settle_ok(self, items: Sequence[Item]) -> None:
        for ticket, count in self._per_ticket(items).items():
            ticket.ack(count)

    def _settle_failed(self, items: Sequence[Item], error: PublishError) -> None:
        if self._ack_on_failure:
            log.error("UNSAFE: %d readings lost (%s) but acknowledged", len(items), error)
            self._settle_ok(items)
            return
        log.warning("publish of %d readings failed for good: %s", len(items), error)
        self._fail_all(items, PublishFailedError(error))

    def _fail_all(self, items: Sequence[Item], error: BaseException) -> None:
        for ticket in self._per_ticket(items):
            ticket.fail(error)

    async def close(self, timeout: float) -> int:
        """Refuse new readings, flush what is queued for up to ``timeout`` seconds, stop the workers.

        Returns how many readings were still unpublished (their tickets are failed, never acknowledged).
        """
        self._closing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), timeout)
        unpublished = self._depth
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        left = [item for queue in self._queues.values() for item in queue]
        self._fail_all(left, ShuttingDownError("shut down before publishing"))
        for queue in self._queues.values():
            queue.clear()
        self._add_depth(-self._depth)
        return unpublished
