"""``AckTable`` bounds (count, age), its metrics, and the buffer's use of it (join, answer, close)."""

from __future__ import annotations

import asyncio
import random

import pytest
from homesec_domain.validation import AcceptedReading
from homesec_producer.buffer import PartitionedBuffer, Slot
from homesec_producer.errors import ShuttingDownError
from homesec_producer.idempotency import AckTable
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.retry import RetryPolicy
from prometheus_client import CollectorRegistry

from .fakes import FakePublisher


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sent(home: str, n: int, start: int = 0) -> list[AcceptedReading]:
    return [AcceptedReading(f"r-{i}", home, b"{}") for i in range(start, start + n)]


def acked(t: AckTable[object], readings: list[AcceptedReading]) -> list[bool]:
    return [t.is_acknowledged(r.home_id, r.reading_id) for r in readings]


def table(max_entries: int = 10, ttl: float = 60.0) -> tuple[AckTable[object], Clock, CollectorRegistry]:
    registry, clock = CollectorRegistry(), Clock()
    return AckTable(max_entries, ttl, ProducerMetrics.create(registry), clock), clock, registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_count_bound_evicts_the_oldest_first() -> None:
    t, clock, registry = table(max_entries=10)
    t.acknowledge(sent("h", 6))
    clock.now += 1
    t.acknowledge(sent("h", 6, start=6))
    assert len(t) == 10
    assert sum(acked(t, sent("h", 6))) == 4  # two of the first send evicted
    assert all(acked(t, sent("h", 6, start=6)))
    assert sample(registry, "homesec_producer_ack_table_evictions_total", reason="count") == 2
    assert sample(registry, "homesec_producer_ack_table_entries", state="acknowledged") == 10


def test_age_bound_forgets_entries_older_than_the_ttl() -> None:
    t, clock, registry = table(max_entries=100, ttl=60)
    t.acknowledge(sent("h", 3))
    clock.now += 30
    t.acknowledge(sent("h", 2, start=3))
    clock.now += 31  # the first send is 61 s old, the second 31 s
    t.expire()
    assert acked(t, sent("h", 5)) == [False] * 3 + [True] * 2
    assert sample(registry, "homesec_producer_ack_table_evictions_total", reason="age") == 3


def test_a_hit_needs_the_same_home() -> None:
    t, _, _ = table()
    t.acknowledge(sent("home-a", 1))
    assert acked(t, sent("home-a", 1)) == [True]
    assert acked(t, sent("home-b", 1)) == [False]


def test_in_flight_entries_leave_on_ack_or_forget() -> None:
    t, _, registry = table()
    first, second = object(), object()
    t.track("a", first)
    t.track("b", second)
    assert t.in_flight("a") is first
    assert sample(registry, "homesec_producer_ack_table_entries", state="in_flight") == 2
    t.forget("b", first)  # not its slot: stays
    assert t.in_flight("b") is second
    t.acknowledge([AcceptedReading("a", "h", b"{}")])
    t.forget("b", second)
    assert t.in_flight("a") is None and t.in_flight("b") is None
    assert t.is_acknowledged("h", "a") and not t.is_acknowledged("h", "b")


def test_a_reading_acknowledged_again_after_eviction_stays_until_its_own_bound() -> None:
    t, clock, _ = table(max_entries=2, ttl=60)
    t.acknowledge(sent("h", 2))
    t.acknowledge(sent("h", 1, start=2))  # evicts one of the first send
    evicted = next(r for r in sent("h", 2) if not t.is_acknowledged(r.home_id, r.reading_id))
    clock.now += 30
    t.acknowledge([evicted])  # re-sent, published again, acknowledged again
    clock.now += 31  # the first send's generation expires: it must not take the newer entry with it
    t.expire()
    assert t.is_acknowledged(evicted.home_id, evicted.reading_id)


def test_zero_turns_it_off() -> None:
    t, _, _ = table(max_entries=0)
    t.track("a", object())
    t.acknowledge([AcceptedReading("a", "h", b"{}")])
    assert not t.enabled and t.in_flight("a") is None and not t.is_acknowledged("h", "a")


def readings(home: str, n: int) -> list[AcceptedReading]:
    return [AcceptedReading(f"{home}-{i}", home, b'{"x":%d}' % i) for i in range(n)]


def buffer(pub: FakePublisher) -> tuple[PartitionedBuffer, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = ProducerMetrics.create(registry)
    buf = PartitionedBuffer(
        pub, pub.ids, capacity=100, max_batch_events=50, max_batch_bytes=100_000,
        retry=RetryPolicy(3, 0.001, 0.002, random.Random(0)), metrics=metrics,
        table=AckTable[Slot](1000, 300, metrics),
    )  # fmt: skip
    buf.start()
    return buf, registry


async def test_a_joined_reading_is_sent_once_even_when_its_first_request_gave_up() -> None:
    pub = FakePublisher()
    buf, registry = buffer(pub)
    pub.stall.clear()
    first = buf.submit(readings("home-1", 3))
    await asyncio.sleep(0)
    first.abandon()  # deadline: the first client stopped waiting, its readings are being sent
    second = buf.submit(readings("home-1", 3))
    assert buf.depth == 3
    pub.stall.set()
    await asyncio.wait_for(second.future, 2)
    assert pub.ids_published() == [r.reading_id for r in readings("home-1", 3)]
    assert sample(registry, "homesec_producer_resends_total", outcome="joined_in_flight") == 3
    third = buf.submit(readings("home-1", 3))
    assert third.future.done() and third.acknowledged() == [True] * 3
    assert sample(registry, "homesec_producer_resends_total", outcome="acknowledged") == 3
    await buf.close(1)


async def test_readings_nobody_waits_for_are_not_sent_and_not_remembered() -> None:
    pub = FakePublisher()
    buf, _ = buffer(pub)
    pub.stall.clear()
    busy = buf.submit(readings("home-1", 1))  # occupies the partition's one send
    await asyncio.sleep(0)
    queued = buf.submit([AcceptedReading("later", "home-1", b"{}")])
    queued.abandon()
    pub.stall.set()
    await asyncio.wait_for(busy.future, 2)
    await asyncio.sleep(0.01)
    assert "later" not in pub.ids_published()
    again = buf.submit([AcceptedReading("later", "home-1", b"{}")])  # published anew
    await asyncio.wait_for(again.future, 2)
    assert pub.ids_published().count("later") == 1
    await buf.close(1)


async def test_a_closing_buffer_still_answers_acknowledged_readings() -> None:
    pub = FakePublisher()
    buf, _ = buffer(pub)
    await asyncio.wait_for(buf.submit(readings("home-1", 2)).future, 2)
    await buf.close(1)
    assert buf.submit(readings("home-1", 2)).acknowledged() == [True, True]
    with pytest.raises(ShuttingDownError):
        buf.submit(readings("home-1", 3))
    assert buf.known_acknowledged(readings("home-1", 3)) == [True, True, False]
