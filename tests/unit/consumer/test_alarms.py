"""The alarm path with in-memory ports: transitions found while folding, visible at once, published to the
alarms hub once each across failures, ambiguous sends, crashes and takeovers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import orjson
from homesec_consumer.alarm_outbox import AlarmOutbox
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import InboundEvent
from homesec_consumer.ports import Position
from homesec_consumer.processor import ProcessorConfig, RollupProcessor
from homesec_domain.events import encode_reading
from homesec_domain.fold import FoldConfig
from homesec_domain.models import Reading, SensorType
from prometheus_client import CollectorRegistry

from .fakes import Clock, MemoryAlarmHub, MemoryCheckpoints, MemoryDeadLetters, MemoryRollupStore

T0 = datetime(2026, 11, 25, 9, 50, tzinfo=UTC)


def smoke(home: str, minute: int, state: str, seq: int) -> InboundEvent:
    r = Reading(
        reading_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{home}/{minute}/{state}"), home_id=home,
        sensor_id="smoke-1", sensor_type=SensorType.SMOKE, ts=T0 + timedelta(minutes=minute), state=state,
        seq=minute,
    )  # fmt: skip
    return InboundEvent(encode_reading(r), Position(seq, str(seq * 100)), int(r.ts.timestamp() * 1000))


def co(home: str, minute: int, ppm: float, seq: int) -> InboundEvent:
    r = Reading(
        reading_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{home}/co/{minute}"), home_id=home, sensor_id="co-1",
        sensor_type=SensorType.CO, ts=T0 + timedelta(minutes=minute), value=ppm, seq=minute,
    )  # fmt: skip
    return InboundEvent(encode_reading(r), Position(seq, str(seq * 100)), int(r.ts.timestamp() * 1000))


STREAM = [
    smoke("h1", 0, "ok", 0), smoke("h1", 1, "alarm", 1), co("h2", 1, 12.0, 2), smoke("h1", 2, "alarm", 3),
    co("h2", 3, 80.0, 4), smoke("h1", 4, "ok", 5), co("h2", 5, 20.0, 6), smoke("h1", 6, "alarm", 7),
]  # fmt: skip
EXPECTED = [
    "h1/smoke-1/raised/1795600260000/1", "h2/co-1/raised/1795600380000/3",
    "h1/smoke-1/cleared/1795600440000/4", "h2/co-1/cleared/1795600500000/5",
    "h1/smoke-1/raised/1795600560000/6",
]  # fmt: skip


class Owner:
    """One consumer process owning partition "0" over a shared store, checkpoints and alarms hub."""

    def __init__(
        self, store: MemoryRollupStore, cps: MemoryCheckpoints, hub: MemoryAlarmHub, clock: Clock,
        others_alive: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:  # fmt: skip
        self.registry = CollectorRegistry()
        metrics = ConsumerMetrics.create(self.registry)
        self.outbox = AlarmOutbox(hub, metrics, clock, others_alive=others_alive)
        self.proc = RollupProcessor(
            store, dead_letters=MemoryDeadLetters(), checkpoints=cps, metrics=metrics, clock=clock,
            config=ProcessorConfig(FoldConfig()), alarms=self.outbox,
        )  # fmt: skip
        at = cps.positions.get("0")
        self.proc.open_partition("0", initial=at is None)
        self.next = 0 if at is None else at.sequence_number + 1

    async def receive(self, count: int) -> None:
        await self.proc.handle_batch("0", STREAM[self.next : self.next + count])
        self.next += count

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels or None) or 0.0


def parts() -> tuple[MemoryRollupStore, MemoryCheckpoints, MemoryAlarmHub, Clock]:
    clock = Clock(T0.timestamp() + 1)
    return MemoryRollupStore(), MemoryCheckpoints(), MemoryAlarmHub(clock), clock


async def test_each_transition_is_published_once_in_order_with_its_document() -> None:
    store, cps, hub, clock = parts()
    owner = Owner(store, cps, hub, clock)
    for _ in STREAM:
        await owner.receive(1)
    assert hub.ids() == EXPECTED
    doc = orjson.loads(hub.events[1][1].body)
    assert doc == {
        "schema_version": 1, "message_id": EXPECTED[1], "home_id": "h2", "sensor_id": "co-1",
        "sensor_type": "co", "transition": "raised", "ts": "2026-11-25T09:53:00.000Z", "seq": 3,
        "value": 80.0, "state": None,
    }  # fmt: skip
    assert hub.events[1][1].home_id == "h2"
    assert owner.metric("homesec_consumer_alarm_transitions_total", transition="raised") == 3
    assert owner.metric("homesec_consumer_alarms_published_total") == 5
    assert owner.metric("homesec_consumer_alarm_latency_seconds_count") == 5


async def test_an_alarm_is_visible_in_the_status_before_any_flush() -> None:
    store, cps, hub, clock = parts()
    owner = Owner(store, cps, hub, clock)
    await owner.receive(2)
    status = owner.proc.partitions["0"].status("h1")
    assert status is not None and status["active_alarms"] == ["smoke-1"] and store.writes == 0


async def test_a_crash_after_publishing_does_not_publish_again_on_replay() -> None:
    store, cps, hub, clock = parts()
    first = Owner(store, cps, hub, clock)
    await first.receive(3)
    await first.proc.flush_all()  # durable up to event 2
    await first.receive(3)  # publishes two more transitions, then the process dies before a snapshot
    assert len(hub.ids()) == 3
    clock.now += 600
    lookups = hub.lookups
    second = Owner(store, cps, hub, clock)  # replays events 3.. from the checkpoint
    await second.proc.load("0")  # the claim: its snapshot restored
    clock.now += 20  # past the claim's settling time (the previous owner's sends)
    while second.next < len(STREAM):
        await second.receive(2)
    assert hub.ids() == EXPECTED and hub.lookups - lookups == 2  # once for each home with a transition


async def test_a_takeover_from_the_initial_checkpoint_looks_up_everything() -> None:
    store, cps, hub, clock = parts()
    first = Owner(store, cps, hub, clock)
    await first.receive(5)  # no snapshot, no checkpoint: the next owner replays all of it
    clock.now += 600
    second = Owner(store, cps, hub, clock)
    await second.proc.load("0")  # the claim: its snapshot restored
    clock.now += 20  # past the claim's settling time (the previous owner's sends)
    while second.next < len(STREAM):
        await second.receive(3)
    assert hub.ids() == EXPECTED


async def test_a_failed_send_stays_pending_in_the_snapshot_and_is_sent_once_later() -> None:
    store, cps, hub, clock = parts()
    first = Owner(store, cps, hub, clock)
    hub.fail = True
    await first.receive(2)
    assert hub.ids() == [] and first.metric("homesec_consumer_alarm_publish_errors_total") == 1
    await first.proc.flush_all()  # the pending alarm is durable in the snapshot; the checkpoint moves
    assert cps.positions["0"] == Position(1, "100")
    hub.fail = False
    second = Owner(store, cps, hub, clock)  # the first died; the second starts after the alarm's event
    await second.proc.load("0")  # the claim: its snapshot restored
    clock.now += 20  # past the claim's settling time (the previous owner's sends)
    await second.receive(1)  # restores the snapshot, pending alarm included; no new transition
    assert hub.ids() == []
    await second.proc.publish_pending()  # what the alarm loop does every second
    assert hub.ids() == EXPECTED[:1]
    assert second.metric("homesec_consumer_alarms_pending") == 0


async def test_a_send_that_timed_out_but_landed_is_not_sent_twice() -> None:
    store, cps, hub, clock = parts()
    owner = Owner(store, cps, hub, clock)
    hub.land_then_fail = True
    await owner.receive(2)
    hub.land_then_fail = False
    assert hub.ids() == EXPECTED[:1] and owner.proc.partitions["0"].outbox
    await owner.outbox.send(owner.proc.partitions["0"])  # the retry looks the home up first
    assert hub.ids() == EXPECTED[:1] and not owner.proc.partitions["0"].outbox
    await owner.receive(6)
    assert hub.ids() == EXPECTED


async def test_alarms_of_events_after_the_claim_need_no_look_up() -> None:
    store, cps, hub, clock = parts()
    clock.now -= 3600  # the partition was claimed an hour before these events were enqueued
    owner = Owner(store, cps, hub, clock)
    await owner.receive(1)
    clock.now += 3600
    for _ in STREAM[1:]:
        await owner.receive(1)
    assert hub.ids() == EXPECTED and hub.lookups == 0


async def test_the_retry_loop_sends_what_failed() -> None:
    store, cps, hub, clock = parts()
    owner = Owner(store, cps, hub, clock)
    hub.fail = True
    await owner.receive(2)
    hub.fail = False
    stop = asyncio.Event()
    task = asyncio.create_task(owner.proc.run_alarm_loop(0.01, stop))
    for _ in range(500):
        if hub.ids():
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert hub.ids() == EXPECTED[:1]


async def test_alarms_folded_while_a_look_up_is_in_flight_are_checked_against_the_hub() -> None:
    """A new owner's retry looks up a restored pending alarm's home; meanwhile a batch folds again an event
    whose alarm the previous owner published: that alarm must be looked up too, not published again."""
    store, cps, hub, clock = parts()
    first = Owner(store, cps, hub, clock)
    hub.fail = True
    await first.receive(2)  # h1 raised: the send fails, the alarm stays pending
    await first.proc.flush_all()  # durable with the pending alarm; checkpoint after event 1
    hub.fail = False
    await first.receive(3)  # publishes h1's alarm and h2's (event 4), then dies before a snapshot
    assert hub.ids() == EXPECTED[:2]
    clock.now += 600
    second = Owner(store, cps, hub, clock)  # restores h1's alarm as pending; replays events 2..
    await second.proc.load("0")  # the claim: its snapshot restored
    clock.now += 20  # past the claim's settling time (the previous owner's sends)
    hub.slow = asyncio.Event()
    retry = asyncio.create_task(second.proc.publish_pending())  # the alarm loop: looks h1 up
    await asyncio.wait_for(hub.reading.wait(), 5)
    await asyncio.wait_for(second.receive(3), 5)  # folds event 4 again: h2's alarm, left to the send
    assert any(a.home_id == "h2" for a in second.proc.partitions["0"].outbox)
    assert hub.ids() == EXPECTED[:2] and not retry.done()
    hub.slow.set()
    await retry  # the send under way looks h2 up too before publishing
    assert not second.proc.partitions["0"].outbox
    while second.next < len(STREAM):
        await second.receive(2)
    assert hub.ids() == EXPECTED


async def test_a_batch_does_not_wait_for_a_send_under_way_whose_holder_sends_its_alarms() -> None:
    store, cps, hub, clock = parts()
    owner = Owner(store, cps, hub, clock)
    await owner.receive(2)  # h1 raised and published
    hub.fail = True
    await owner.receive(3)  # h2 raised: the send fails, pending
    hub.fail, hub.slow = False, asyncio.Event()
    retry = asyncio.create_task(owner.proc.publish_pending())  # looks h2 up (its send may have landed)
    await asyncio.wait_for(hub.reading.wait(), 5)
    await asyncio.wait_for(owner.receive(1), 5)  # h1 cleared meanwhile: the batch returns at once
    assert hub.ids() == EXPECTED[:1]
    hub.slow.set()
    await retry
    assert hub.ids() == EXPECTED[:3] and not owner.proc.partitions["0"].outbox


async def test_a_closed_partition_publishes_nothing_more() -> None:
    """A pod that lost the partition (closed: the new owner's receiver took it over) starts no send for it,
    even one whose look-up was in flight at the close."""
    store, cps, hub, clock = parts()
    owner = Owner(store, cps, hub, clock)
    hub.fail = True
    await owner.receive(2)  # h1 raised: the send fails, pending
    hub.fail, hub.slow = False, asyncio.Event()
    retry = asyncio.create_task(owner.proc.publish_pending())
    await asyncio.wait_for(hub.reading.wait(), 5)
    owner.proc.close_partition("0")
    hub.slow.set()
    await retry
    await owner.proc.publish_pending()
    assert hub.ids() == []


async def test_a_live_previous_owner_still_sending_publishes_no_duplicate() -> None:
    """B takes the partition while A, still alive, has not sent the alarm it folded: B holds that home's
    alarms until the claim has settled, then finds A's send in the hub."""
    store, cps, hub, clock = parts()
    clock.now += 600
    a = Owner(store, cps, hub, clock)
    b = Owner(store, cps, hub, clock)  # claims at the same moment; nothing durable yet
    await b.receive(2)  # B folds the raise first: held, A may be sending it
    assert hub.ids() == [] and b.proc.partitions["0"].outbox
    await a.receive(2)  # A, not yet detached, publishes it
    clock.now += 20
    await b.proc.publish_pending()
    assert hub.ids() == EXPECTED[:1]  # once


async def test_alone_a_new_owner_reads_back_at_once() -> None:
    """No other pod alive at the claim (the peer directory): nobody else can be sending, so replayed alarms
    are looked up and published without the settling wait."""
    store, cps, hub, clock = parts()
    first = Owner(store, cps, hub, clock)
    await first.receive(5)  # h1's and h2's raises published; no snapshot
    asked = 0

    async def alone() -> bool:
        nonlocal asked
        asked += 1
        return False

    clock.now += 600
    second = Owner(store, cps, hub, clock, others_alive=alone)  # replays everything
    await second.proc.load("0")
    while second.next < len(STREAM):
        await second.receive(2)
    assert hub.ids() == EXPECTED and asked == 1
