"""The alarms hub adapter (``EventHubAlarmPublisher``) against a real emulator process: where events land,
what ``published_since`` finds, and failures that end within the timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient
from homesec_consumer.adapters.alarms import CONTENT_TYPE, EventHubAlarmPublisher, build_alarm_publisher
from homesec_consumer.errors import AlarmPublishError
from homesec_consumer.ports import AlarmEvent
from homesec_consumer.settings import ConsumerSettings
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.hub_reader import read_alarms
from homesec_domain.partitioning import partition_for

from tests.integration.transport import TRANSPORTS, service_env

pytestmark = pytest.mark.integration

PARTITION_IDS = [str(i) for i in range(16)]
TIMEOUT_S = 5.0  # the emulator answers a management call in about 0.4 s, a read in about 2 s
# For the tests about what a read finds, not about the timeout: a read takes several times as long as the
# above on a loaded machine.
READ_TIMEOUT_S = 30.0


def settings_for(emulator: EmulatorProcess, **overrides: Any) -> ConsumerSettings:
    """The consumer's settings as a deployment would give them: the telemetry hub's connection string."""
    env: dict[str, Any] = {
        "eventhub_connection_string": emulator.connection_string("telemetry"),
        "alarm_publish_timeout_seconds": TIMEOUT_S,
    }
    return ConsumerSettings(**{**env, **overrides})


def alarm(home: str, n: int, transition: str = "raised") -> AlarmEvent:
    message_id = f"{home}:co-1:{n}:{transition}"
    body = {"schema_version": 1, "message_id": message_id, "home_id": home, "sensor_id": "co-1",
            "sensor_type": "co", "transition": transition, "ts": "2026-12-07T10:00:00.000Z", "seq": n,
            "value": 61.5, "state": None}  # fmt: skip
    return AlarmEvent(message_id=message_id, home_id=home, body=orjson.dumps(body))


Builder = Callable[..., EventHubAlarmPublisher]


@pytest.fixture
async def publishers() -> AsyncIterator[list[EventHubAlarmPublisher]]:
    made: list[EventHubAlarmPublisher] = []
    try:
        yield made
    finally:
        for publisher in made:
            await publisher.close()


def build(made: list[EventHubAlarmPublisher], settings: ConsumerSettings) -> EventHubAlarmPublisher:
    publisher = build_alarm_publisher(settings, credential=None)
    assert publisher is not None
    made.append(publisher)
    return publisher


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_published_events_land_in_the_homes_partition_with_id_type_and_body(
    emulator_factory: Callable[..., EmulatorProcess], publishers: list[EventHubAlarmPublisher], transport: str
) -> None:
    emulator = emulator_factory(websocket=transport == "amqp_websockets")
    extra = {k.lower(): v for k, v in service_env(emulator, transport).items()}
    publisher = build(publishers, settings_for(emulator, **extra))
    events = [alarm("home-00001", 1), alarm("home-00002", 1), alarm("home-00001", 2, "cleared")]
    await publisher.publish(events)
    records = await read_alarms(emulator)
    assert sorted(r.message_id or "" for r in records) == sorted(e.message_id for e in events)
    by_id = {r.message_id: r for r in records}
    for event in events:
        got = by_id[event.message_id]
        assert got.partition_id == partition_for(event.home_id, PARTITION_IDS)
        assert got.partition_key == event.home_id
        assert got.content_type == CONTENT_TYPE
        assert got.body == event.body
    ones = [r for r in records if r.partition_key == "home-00001"]  # one home's events keep their order
    assert [r.message_id for r in ones] == [events[0].message_id, events[2].message_id]
    # nothing went to the telemetry hub the connection string names
    assert all(p["count"] == 0 for p in emulator.stats()["hubs"]["telemetry"]["partitions"].values())


async def test_partition_key_routing_agrees_with_partitioning_for_many_homes(
    emulator: EmulatorProcess, publishers: list[EventHubAlarmPublisher]
) -> None:
    publisher = build(publishers, settings_for(emulator))
    homes = [f"home-{i:06d}" for i in range(0, 4000, 7)] + ["Ünïcode-home", "h", "a-much-longer-home-id-" * 3]
    await publisher.publish([alarm(home, 1) for home in homes])
    records = await read_alarms(emulator)
    assert len(records) == len(homes)
    wrong = [(r.partition_key, r.partition_id) for r in records
             if r.partition_id != partition_for(r.partition_key or "", PARTITION_IDS)]  # fmt: skip
    assert not wrong, wrong[:5]
    assert len({r.partition_id for r in records}) == len(PARTITION_IDS)  # the homes cover every partition


async def test_published_since_finds_what_was_published_since_a_time_and_nothing_older(
    emulator: EmulatorProcess, publishers: list[EventHubAlarmPublisher]
) -> None:
    publisher = build(publishers, settings_for(emulator, alarm_publish_timeout_seconds=READ_TIMEOUT_S))
    home = "home-00042"
    neighbour = next(  # another home in the same partition: its alarms are in the partition read
        h for h in (f"home-{i:05d}" for i in range(100, 10_000))
        if partition_for(h, PARTITION_IDS) == partition_for(home, PARTITION_IDS)
    )  # fmt: skip
    elsewhere = next(
        h for h in (f"home-{i:05d}" for i in range(100, 10_000))
        if partition_for(h, PARTITION_IDS) != partition_for(home, PARTITION_IDS)
    )  # fmt: skip
    old = [alarm(home, 1), alarm(neighbour, 1)]
    await publisher.publish(old)
    assert await publisher.published_since([home], 0) == {e.message_id for e in old}
    await asyncio.sleep(0.05)
    since_ms = int(time.time() * 1000)
    await asyncio.sleep(0.05)
    new = [alarm(home, 2, "cleared"), alarm(neighbour, 2), alarm(elsewhere, 1)]
    await publisher.publish(new)
    found = await publisher.published_since([home], since_ms)
    assert found == {
        new[0].message_id,
        new[1].message_id,
    }  # the partition's events since; not old, not elsewhere
    assert await publisher.published_since([home, elsewhere], since_ms) == {e.message_id for e in new}
    later = int(time.time() * 1000) + 1000
    assert await publisher.published_since([home], later) == set()
    assert await publisher.published_since([], 0) == set()
    untouched = next(h for h in (f"x-{i}" for i in range(1000)) if partition_for(h, PARTITION_IDS) not in
                     {partition_for(x, PARTITION_IDS) for x in (home, elsewhere)})  # fmt: skip
    assert await publisher.published_since([untouched], 0) == set()  # an empty partition: nothing to read


async def test_published_since_includes_an_event_enqueued_at_exactly_since(
    emulator: EmulatorProcess, publishers: list[EventHubAlarmPublisher]
) -> None:
    publisher = build(publishers, settings_for(emulator))
    await publisher.publish([alarm("home-7", 1)])
    (record,) = await read_alarms(emulator)
    assert await publisher.published_since(["home-7"], record.enqueued_ms) == {record.message_id}
    assert await publisher.published_since(["home-7"], record.enqueued_ms + 1) == set()


async def test_published_since_reads_a_partition_over_several_batches(
    emulator: EmulatorProcess, publishers: list[EventHubAlarmPublisher]
) -> None:
    publisher = build(publishers, settings_for(emulator, alarm_publish_timeout_seconds=READ_TIMEOUT_S))
    home = "home-00077"
    await publisher.publish([alarm(home, i) for i in range(700)])  # more than one receive batch (300)
    found = await publisher.published_since([home], 0)
    assert found == {alarm(home, i).message_id for i in range(700)}


async def test_publish_to_a_missing_hub_raises_within_the_timeout(
    emulator: EmulatorProcess, publishers: list[EventHubAlarmPublisher]
) -> None:
    publisher = build(publishers, settings_for(emulator, alarms_eventhub_name="no-such-hub"))
    started = time.monotonic()
    with pytest.raises(AlarmPublishError) as raised:
        await publisher.publish([alarm("home-1", 1)])
    assert time.monotonic() - started < TIMEOUT_S + 2
    assert raised.value.operation == "publish"
    with pytest.raises(AlarmPublishError):
        await publisher.published_since(["home-1"], 0)
    assert time.monotonic() - started < 2 * (TIMEOUT_S + 2)


async def test_publish_and_read_with_the_emulator_stopped_raise_within_the_timeout(
    emulator: EmulatorProcess, publishers: list[EventHubAlarmPublisher]
) -> None:
    publisher = build(publishers, settings_for(emulator))
    await publisher.publish([alarm("home-1", 1)])  # connected once
    emulator.stop()
    for call in (
        lambda: publisher.publish([alarm("home-1", 2)]),
        lambda: publisher.published_since(["home-1"], 0),
    ):
        started = time.monotonic()
        with pytest.raises(AlarmPublishError):
            await call()
        assert time.monotonic() - started < TIMEOUT_S + 2  # not a hang


async def test_a_receive_that_never_delivers_ends_in_the_timeout(
    emulator_factory: Callable[..., EmulatorProcess], publishers: list[EventHubAlarmPublisher]
) -> None:
    """A consumer group the hub lacks: the SDK reopens the refused receiver for ever; the timeout ends it."""
    emulator = emulator_factory(consumer_groups="$Default")
    publisher = build(publishers, settings_for(emulator, consumer_group="rollups"))
    await publisher.publish([alarm("home-1", 1)])
    started = time.monotonic()
    with pytest.raises(AlarmPublishError, match="timed out"):
        await publisher.published_since(["home-1"], 0)
    assert time.monotonic() - started < TIMEOUT_S + 2


async def test_the_alarms_hub_name_overrides_the_connection_strings_entity_path(
    emulator: EmulatorProcess, publishers: list[EventHubAlarmPublisher]
) -> None:
    """A separate alarms connection string (a hub-level rule) is used as is; its EntityPath agrees."""
    settings = settings_for(emulator, alarms_eventhub_connection_string=emulator.connection_string("alarms"))
    publisher = build(publishers, settings)
    await publisher.publish([alarm("home-9", 1)])
    assert [r.message_id for r in await read_alarms(emulator)] == [alarm("home-9", 1).message_id]
    async with EventHubProducerClient.from_connection_string(emulator.connection_string("alarms")) as other:
        await other.send_event(EventData(b"{}"), partition_key="home-9")  # no message ID: not reported
    assert await publisher.published_since(["home-9"], 0) == {alarm("home-9", 1).message_id}
