"""The bounded, partitioned buffer between HTTP requests and Event Hubs.

A request submits its validated readings and gets a ``Ticket`` (a future resolved once Event Hubs
acknowledged every one of them; ``Ticket.acknowledged()`` says which were, per reading, when it was not).
Readings are routed to their partition with the SDK's partition-key hash of the home ID. One worker per
partition sends batches of readings from many requests and many homes, one send in flight per partition (so
a home's readings stay in order), retrying with backoff.

Resends (``idempotency.AckTable``): a reading this pod acknowledged recently is not queued again (its ticket
counts it as acknowledged at once); one still queued or being sent is joined (one ``Slot`` per distinct
reading, with every ticket waiting for it), so a resent batch publishes only what is new.

Bounded: ``submit`` refuses a request whose new readings do not fit (``BufferFullError``); capacity counts
distinct readings queued and in flight. Nothing is dropped silently: every ticket is either acknowledged or
failed (publish failure, shutdown). A slot none of whose tickets still waits (``abandon``) is not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
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
from homesec_producer.idempotency import AckTable
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.ports import EventPublisher
from homesec_producer.retry import RetryPolicy

log = logging.getLogger(__name__)

# AMQP framing per event beyond the body (message ID, content type, partition key, section headers).
EVENT_OVERHEAD_BYTES = 200


class Ticket:
    """One request's readings in the buffer; ``future`` resolves when all are acknowledged."""

    __slots__ = ("abandoned", "future", "pending", "slots")

    def __init__(self, slots: list[Slot | None], future: asyncio.Future[None]) -> None:
        self.slots = slots  # per reading of the request; None: acknowledged before it was submitted
        self.pending = 0
        self.future = future
        self.abandoned = False

    def ack_one(self) -> None:
        self.pending -= 1
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

    def acknowledged(self) -> list[bool]:
        """Per reading of the request (its order): acknowledged by Event Hubs so far."""
        return [slot is None or slot.acked for slot in self.slots]

    def release(self) -> None:
        """The request is answered: drop its slots. Slots point at their tickets, so until then the two
        form reference cycles, which only the cyclic garbage collector could free (with the request's
        bodies): the request path calls this when it answers, and plain reference counting frees them."""
        self.slots = []


class Slot:
    """One distinct reading queued or in flight, and the tickets waiting for it (``joined``: resends)."""

    __slots__ = ("acked", "joined", "reading", "ticket")

    def __init__(self, reading: AcceptedReading, ticket: Ticket) -> None:
        self.reading = reading
        self.ticket = ticket  # the request that queued it
        self.joined: list[Ticket] | None = None  # requests that re-sent it while it was in flight
        self.acked = False

    def join(self, ticket: Ticket) -> None:
        if self.joined is None:
            self.joined = [ticket]
        else:
            self.joined.append(ticket)

    def wanted(self) -> bool:
        """Some ticket still waits for it (else it need not be sent)."""
        if not self.ticket.abandoned:
            return True
        return self.joined is not None and any(not t.abandoned for t in self.joined)

    def settle(self) -> None:
        """Acknowledged: tell every waiting ticket."""
        self.acked = True
        ticket = self.ticket
        ticket.pending -= 1  # ``ticket.ack_one()``, inline: once per reading
        if not ticket.pending and not ticket.future.done():
            ticket.future.set_result(None)
        if self.joined is not None:
            for ticket in self.joined:
                ticket.ack_one()

    def fail(self, error: BaseException) -> None:
        self.ticket.fail(error)
        if self.joined is not None:
            for ticket in self.joined:
                ticket.fail(error)


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
        table: AckTable[Slot] | None = None,
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
        self._table: AckTable[Slot] = table if table is not None else AckTable(0, 1.0, metrics)
        self._queues: dict[str, deque[Slot]] = {pid: deque() for pid in self._ids}
        self._wake: dict[str, asyncio.Event] = {pid: asyncio.Event() for pid in self._ids}
        self._since: dict[str, float] = dict.fromkeys(self._ids, 0.0)  # loop time the queue became non-empty
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
        """Queue the readings not yet acknowledged or in flight (all of those or none); join the others.

        Raises ``BufferFullError`` or ``ShuttingDownError`` when new readings cannot be queued.
        """
        free = self._capacity - self._depth
        if self._closing or len(readings) > free:
            fresh = self._count_fresh(readings)
            if fresh and self._closing:
                raise ShuttingDownError("draining")
            if fresh > free:
                raise BufferFullError(fresh, free)
        table, queues, wake, ids = self._table, self._queues, self._wake, self._ids
        acked_home, in_flight, track = table.acknowledged_home, table.in_flight, table.track
        slots: list[Slot | None] = []
        loop, since = asyncio.get_running_loop(), self._since
        ticket = Ticket(slots, loop.create_future())
        fresh = joined = 0
        for reading in readings:
            rid, home = reading.reading_id, reading.home_id
            if acked_home(rid) == home:
                slots.append(None)
                continue
            slot = in_flight(rid)
            if slot is None or slot.reading.home_id != home:
                slot = Slot(reading, ticket)
                track(rid, slot)
                pid = partition_for(home, ids)
                queue = queues[pid]
                if not queue:
                    since[pid] = loop.time()
                    wake[pid].set()
                queue.append(slot)
                fresh += 1
            else:
                slot.join(ticket)
                joined += 1
            slots.append(slot)
        ticket.pending = fresh + joined
        self._count_resends(len(slots) - ticket.pending, joined)
        if fresh:
            self._add_depth(fresh)
        if not ticket.pending:
            ticket.future.set_result(None)
        return ticket

    def _count_fresh(self, readings: Sequence[AcceptedReading]) -> int:
        """How many distinct readings of ``readings`` are neither acknowledged nor in flight."""
        fresh = {(r.home_id, r.reading_id) for r in readings if not self._known(r)}
        return len(fresh)

    def _known(self, reading: AcceptedReading) -> bool:
        """Acknowledged, or in flight, in this pod."""
        if self._table.is_acknowledged(reading.home_id, reading.reading_id):
            return True
        slot = self._table.in_flight(reading.reading_id)
        return slot is not None and slot.reading.home_id == reading.home_id

    def known_acknowledged(self, readings: Sequence[AcceptedReading]) -> list[bool]:
        """Per reading: acknowledged by this pod recently (the table's answer, without queueing anything)."""
        table = self._table
        return [table.is_acknowledged(r.home_id, r.reading_id) for r in readings]

    def _count_resends(self, acknowledged: int, joined: int) -> None:
        if acknowledged:
            self._metrics.resends.labels(outcome="acknowledged").inc(acknowledged)
        if joined:
            self._metrics.resends.labels(outcome="joined_in_flight").inc(joined)

    def _add_depth(self, delta: int) -> None:
        self._depth += delta
        self._metrics.buffer_readings.set(self._depth)
        if self._depth == 0:
            self._empty.set()
        else:
            self._empty.clear()

    async def _run(self, pid: str) -> None:
        queue, wake, loop = self._queues[pid], self._wake[pid], asyncio.get_running_loop()
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            if self._linger > 0 and len(queue) < self._max_events and not self._closing:
                # Let a batch fill (fewer, larger sends), up to ``linger`` after its oldest reading was
                # queued: a reading that already waited for the previous send waits no longer.
                delay = self._since[pid] + self._linger - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            items = self._take(queue)
            if queue:
                self._since[pid] = loop.time()  # the rest waits from now at most
            if not items:
                continue
            try:
                await self._send(pid, items)
            except asyncio.CancelledError:
                self._fail_all(items, ShuttingDownError("shut down while publishing"))
                raise
            finally:
                self._add_depth(-len(items))

    def _take(self, queue: deque[Slot]) -> list[Slot]:
        items: list[Slot] = []
        size = skipped = 0
        while queue and len(items) < self._max_events:
            slot = queue[0]
            if slot.ticket.abandoned and not slot.wanted():
                queue.popleft()
                self._table.forget(slot.reading.reading_id, slot)
                skipped += 1
                continue
            cost = len(slot.reading.body) + EVENT_OVERHEAD_BYTES
            if items and size + cost > self._max_bytes:
                break
            items.append(queue.popleft())
            size += cost
        if skipped:
            self._add_depth(-skipped)
        return items

    async def _send(self, pid: str, items: list[Slot]) -> None:
        started = time.monotonic()
        tries = 0
        try:
            while items:
                tries += 1
                self._metrics.publish_batch_size.observe(len(items))
                try:
                    await self._publisher.publish(pid, [slot.reading for slot in items])
                except Exception as exc:  # a publisher bug must not kill the worker
                    error = exc if isinstance(exc, PublishError) else PublishError(repr(exc))
                    if not await self._after_failure(error, tries):
                        self._settle_failed(items, error)
                        return
                    items = self._still_wanted(items)
                else:
                    self._settle_ok(items)
                    return
        finally:
            self._metrics.publish_duration.observe(time.monotonic() - started)

    def _still_wanted(self, items: list[Slot]) -> list[Slot]:
        """Before a retry: drop the slots no ticket waits for any more."""
        kept = []
        for slot in items:
            if slot.wanted():
                kept.append(slot)
            else:
                self._table.forget(slot.reading.reading_id, slot)
        return kept

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

    def _settle_ok(self, items: Sequence[Slot]) -> None:
        for slot in items:
            slot.settle()
        self._table.acknowledge([slot.reading for slot in items])

    def _settle_failed(self, items: Sequence[Slot], error: PublishError) -> None:
        if self._ack_on_failure:
            log.error("UNSAFE: %d readings lost (%s) but acknowledged", len(items), error)
            self._settle_ok(items)
            return
        log.warning("publish of %d readings failed for good: %s", len(items), error)
        self._fail_all(items, PublishFailedError(error))

    def _fail_all(self, items: Sequence[Slot], error: BaseException) -> None:
        for slot in items:
            self._table.forget(slot.reading.reading_id, slot)
            slot.fail(error)

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
