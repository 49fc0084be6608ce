from __future__ import annotations

import asyncio
import random

import pytest
from homesec_domain.partitioning import partition_for
from homesec_domain.validation import AcceptedReading
from homesec_producer.buffer import PartitionedBuffer
from homesec_producer.errors import (
    BufferFullError,
    ConnectionLostError,
    PublishFailedError,
    PublishRejectedError,
    ShuttingDownError,
    ThrottledError,
)
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.retry import RetryPolicy
from prometheus_client import CollectorRegistry

from .fakes import FakePublisher


def readings(home: str, n: int, start: int = 0) -> list[AcceptedReading]:
    return [AcceptedReading(f"{home}-{i}", home, b'{"x":%d}' % i) for i in range(start, start + n)]


class Harness:
    def __init__(
        self,
        *,
        capacity: int = 1000,
        max_tries: int = 3,
        max_events: int = 100,
        ack_on_failure: bool = False,
        linger: float = 0.0,
    ) -> None:
        retry = RetryPolicy(max_tries, 0.001, 0.002, random.Random(0))
        self.registry = CollectorRegistry()
        self.metrics = ProducerMetrics.create(self.registry)
        self.pub = FakePublisher(partitions=4)
        self.buffer = PartitionedBuffer(
            self.pub, self.pub.ids, capacity=capacity, max_batch_events=max_events, max_batch_bytes=100_000,
            retry=retry, metrics=self.metrics, ack_on_failure=ack_on_failure, linger=linger,
        )  # fmt: skip
        self.buffer.start()

    def value(self, name: str, **labels: str) -> float:
        got = self.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got


async def test_batches_many_homes_per_partition_in_order() -> None:
    h = Harness()
    h.pub.stall.clear()  # let requests pile up so a send takes many of them
    tickets = [h.buffer.submit(readings(f"home-{k}", 3)) for k in range(40)]
    assert h.buffer.depth == 120
    h.pub.stall.set()
    await asyncio.wait_for(asyncio.gather(*(t.future for t in tickets)), 5)
    assert sorted(h.pub.ids_published()) == sorted(f"home-{k}-{i}" for k in range(40) for i in range(3))
    assert len(h.pub.calls) < 40  # batched across homes, not one send per request
    for pid, reading in h.pub.published:
        assert partition_for(reading.home_id, h.pub.ids) == pid
    for k in range(40):  # per-home order kept
        mine = [r.reading_id for _, r in h.pub.published if r.home_id == f"home-{k}"]
        assert mine == [f"home-{k}-{i}" for i in range(3)]
    assert h.pub.max_in_flight_per_partition == 1
    assert h.buffer.depth == 0
    assert h.value("homesec_producer_buffer_readings") == 0
    await h.buffer.close(1)


async def test_batch_limits_are_respected() -> None:
    h = Harness(max_events=7)
    h.pub.stall.clear()
    ticket = h.buffer.submit(readings("home-1", 50))
    h.pub.stall.set()
    await asyncio.wait_for(ticket.future, 5)
    assert max(n for _, n in h.pub.calls) <= 7
    await h.buffer.close(1)


async def test_full_buffer_refuses_the_whole_request() -> None:
    h = Harness(capacity=10)
    h.pub.stall.clear()
    h.buffer.submit(readings("home-1", 8))
    with pytest.raises(BufferFullError) as info:
        h.buffer.submit(readings("home-2", 3))
    assert (info.value.requested, info.value.free) == (3, 2)
    assert h.buffer.depth == 8
    h.pub.stall.set()
    await h.buffer.close(1)


async def test_throttling_is_retried_and_counted() -> None:
    h = Harness(max_tries=5)
    h.pub.failures = [ThrottledError("busy"), ThrottledError("busy"), ConnectionLostError("reset")]
    ticket = h.buffer.submit(readings("home-1", 5))
    await asyncio.wait_for(ticket.future, 5)
    assert len(h.pub.published) == 5
    assert h.value("homesec_producer_publish_throttled_total") == 2
    assert h.value("homesec_producer_publish_retries_total", reason="throttled") == 2
    assert h.value("homesec_producer_publish_retries_total", reason="connection") == 1
    assert h.value("homesec_producer_publish_duration_seconds_count") == 1
    await h.buffer.close(1)


async def test_gives_up_after_max_tries_and_fails_the_request() -> None:
    h = Harness(max_tries=3)
    h.pub.failures = [ThrottledError("busy")] * 3
    ticket = h.buffer.submit(readings("home-1", 2))
    with pytest.raises(PublishFailedError):
        await asyncio.wait_for(ticket.future, 5)
    assert h.pub.published == []
    assert h.value("homesec_producer_publish_failures_total", reason="throttled") == 1
    # the worker survived: the next request goes through
    await asyncio.wait_for(h.buffer.submit(readings("home-1", 1)).future, 5)
    await h.buffer.close(1)


async def test_non_retryable_error_fails_at_once() -> None:
    h = Harness(max_tries=5)
    h.pub.failures = [PublishRejectedError("too big")]
    with pytest.raises(PublishFailedError):
        await asyncio.wait_for(h.buffer.submit(readings("home-1", 1)).future, 5)
    assert len(h.pub.calls) == 1
    await h.buffer.close(1)


async def test_a_publisher_bug_does_not_kill_the_worker() -> None:
    h = Harness(max_tries=2)
    h.pub.failures = [RuntimeError("bug")]
    await asyncio.wait_for(h.buffer.submit(readings("home-1", 1)).future, 5)
    assert h.value("homesec_producer_publish_retries_total", reason="other") == 1
    await h.buffer.close(1)


async def test_abandoned_requests_are_not_sent() -> None:
    h = Harness()
    h.pub.stall.clear()
    first = h.buffer.submit(readings("home-1", 1))
    await asyncio.sleep(0.01)  # the worker is now stalled on `first`
    gone = h.buffer.submit(readings("home-1", 2, start=1))
    kept = h.buffer.submit(readings("home-1", 1, start=3))
    gone.abandon()
    h.pub.stall.set()
    await asyncio.wait_for(asyncio.gather(first.future, kept.future), 5)
    assert h.pub.ids_published() == ["home-1-0", "home-1-3"]
    assert h.buffer.depth == 0
    await h.buffer.close(1)


async def test_close_flushes_then_refuses() -> None:
    h = Harness()
    h.pub.stall.clear()
    ticket = h.buffer.submit(readings("home-1", 4))
    asyncio.get_running_loop().call_later(0.05, h.pub.stall.set)
    assert await h.buffer.close(2) == 0
    assert ticket.future.done() and ticket.future.exception() is None
    assert len(h.pub.published) == 4
    with pytest.raises(ShuttingDownError):
        h.buffer.submit(readings("home-1", 1))


async def test_close_timeout_fails_what_is_left_never_acks_it() -> None:
    h = Harness()
    h.pub.stall.clear()
    inflight = h.buffer.submit(readings("home-1", 2))
    await asyncio.sleep(0.01)
    queued = h.buffer.submit(readings("home-1", 3, start=2))
    assert await h.buffer.close(0.05) == 5
    for ticket in (inflight, queued):
        assert isinstance(ticket.future.exception(), ShuttingDownError)
    assert h.pub.published == []
    assert h.value("homesec_producer_buffer_readings") == 0


async def test_unsafe_mode_acknowledges_lost_readings() -> None:
    """The negative control used by the integration harness: failures are acked (silent loss)."""
    h = Harness(max_tries=1, ack_on_failure=True)
    h.pub.failures = [ThrottledError("busy")]
    await asyncio.wait_for(h.buffer.submit(readings("home-1", 2)).future, 5)
    assert h.pub.published == []
    await h.buffer.close(1)


async def test_linger_counts_from_the_oldest_queued_reading_not_from_the_send() -> None:
    """A reading that already waited ``linger`` behind a slow send goes out as soon as that send is done."""
    h = Harness(linger=0.3)
    pid = partition_for("home-1", h.pub.ids)
    h.pub.hold(pid)
    first = h.buffer.submit(readings("home-1", 1))
    await asyncio.sleep(0.35)  # its linger is over: its send is under way, and not acknowledged
    second = h.buffer.submit(readings("home-1", 1, start=1))
    await asyncio.sleep(0.45)  # the second reading has now waited longer than the linger
    loop = asyncio.get_running_loop()
    h.pub.release(pid)
    released = loop.time()
    await asyncio.wait_for(first.future, 5)
    await asyncio.wait_for(second.future, 5)
    assert loop.time() - released < 0.2  # sent at once, not after a second linger
    assert [n for p, n in h.pub.calls if p == pid] == [1, 1]
    await h.buffer.close(1)


async def test_linger_lets_a_batch_fill() -> None:
    h = Harness(linger=0.05)
    first = h.buffer.submit(readings("home-1", 1))
    await asyncio.sleep(0.01)
    second = h.buffer.submit(readings("home-1", 1, start=1))
    await asyncio.wait_for(asyncio.gather(first.future, second.future), 5)
    assert h.pub.calls == [(partition_for("home-1", h.pub.ids), 2)]
    await h.buffer.close(1)
