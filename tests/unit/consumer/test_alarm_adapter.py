"""``EventHubAlarmPublisher.publish`` over an in-memory producer (batches per home, order, failures, the
timeout) and ``build_alarm_publisher`` from the settings (the SDK clients are built, never connected)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import ConnectError
from homesec_consumer.adapters.alarms import CONTENT_TYPE, EventHubAlarmPublisher, build_alarm_publisher
from homesec_consumer.errors import AlarmPublishError, ConfigurationError
from homesec_consumer.ports import AlarmEvent
from homesec_consumer.settings import ConsumerSettings
from pydantic import SecretStr

CONN = (
    "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=dmFsdWU=;"
    "UseDevelopmentEmulator=true;EntityPath=telemetry"
)


class FakeBatch:
    """Holds up to ``capacity`` events, then refuses with ``ValueError`` like ``EventDataBatch.add``."""

    def __init__(self, partition_key: str, capacity: int) -> None:
        self.partition_key = partition_key
        self.capacity = capacity
        self.events: list[EventData] = []

    def add(self, event: EventData) -> None:
        if len(self.events) >= self.capacity or len(event.body_as_str()) > 1000:
            raise ValueError("EventDataBatch has reached its size limit")
        self.events.append(event)

    def __len__(self) -> int:
        return len(self.events)


class FakeProducer:
    """The part of ``EventHubProducerClient`` the publisher uses; records what each send carried."""

    def __init__(self, capacity: int = 3, fail: BaseException | None = None, hang: bool = False) -> None:
        self.capacity, self.fail, self.hang = capacity, fail, hang
        self.sent: list[tuple[str, list[tuple[str | None, str | None, bytes]]]] = []
        self.closed = False

    async def create_batch(self, *, partition_key: str) -> FakeBatch:
        return FakeBatch(partition_key, self.capacity)

    async def send_batch(self, batch: FakeBatch, *, timeout: float) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail is not None:
            raise self.fail
        contents = [(e.message_id, e.content_type, e.body_as_str().encode()) for e in batch.events]
        self.sent.append((batch.partition_key, contents))

    async def close(self) -> None:
        self.closed = True


def publisher(producer: FakeProducer, timeout: float = 5.0) -> EventHubAlarmPublisher:
    def no_reader() -> EventHubConsumerClient:
        raise AssertionError("publish never reads")

    return EventHubAlarmPublisher(cast(EventHubProducerClient, producer), no_reader, timeout_seconds=timeout)


def alarm(home: str, n: int) -> AlarmEvent:
    return AlarmEvent(message_id=f"{home}:{n}", home_id=home, body=f'{{"n":{n}}}'.encode())


async def test_each_home_is_sent_with_its_key_in_order_in_batches_that_fit() -> None:
    producer = FakeProducer(capacity=3)
    events = [alarm("h1", 1), alarm("h2", 1), alarm("h1", 2), alarm("h1", 3), alarm("h1", 4), alarm("h2", 2)]
    await publisher(producer).publish(events)
    assert [(key, [mid for mid, _, _ in contents]) for key, contents in producer.sent] == [
        ("h1", ["h1:1", "h1:2", "h1:3"]),
        ("h1", ["h1:4"]),
        ("h2", ["h2:1", "h2:2"]),
    ]
    sent = [item for _, contents in producer.sent for item in contents]
    assert all(content_type == CONTENT_TYPE for _, content_type, _ in sent)
    assert sorted(body for _, _, body in sent) == sorted(e.body for e in events)


async def test_nothing_to_publish_sends_nothing() -> None:
    producer = FakeProducer()
    await publisher(producer).publish([])
    assert producer.sent == []


async def test_an_event_too_large_for_an_empty_batch_is_an_error_not_a_drop() -> None:
    producer = FakeProducer()
    big = AlarmEvent(message_id="big", home_id="h1", body=b"x" * 2000)
    with pytest.raises(AlarmPublishError, match="big exceeds the batch size"):
        await publisher(producer).publish([alarm("h1", 1), big])


@pytest.mark.parametrize("error", [ConnectError("connection refused"), OSError("reset"), ValueError("bad")])
async def test_sdk_failures_raise_alarm_publish_error(error: Exception) -> None:
    with pytest.raises(AlarmPublishError) as raised:
        await publisher(FakeProducer(fail=error)).publish([alarm("h1", 1)])
    assert raised.value.operation == "publish" and type(error).__name__ in raised.value.detail
    assert raised.value.__cause__ is error


async def test_a_send_that_hangs_ends_in_the_timeout() -> None:
    async with asyncio.timeout(30):  # bounds a failing run only: without the timeout the send never ends
        with pytest.raises(AlarmPublishError, match="timed out"):
            await publisher(FakeProducer(hang=True), timeout=0.2).publish([alarm("h1", 1)])


async def test_published_since_without_homes_reads_nothing() -> None:
    assert await publisher(FakeProducer()).published_since([], 0) == set()


async def test_close_closes_the_producer() -> None:
    producer = FakeProducer()
    await publisher(producer).close()
    assert producer.closed


# -- the builder -------------------------------------------------------------------------------------
def test_an_empty_hub_name_turns_alarm_publishing_off() -> None:
    settings = ConsumerSettings(eventhub_connection_string=SecretStr(CONN), alarms_eventhub_name="")
    assert build_alarm_publisher(settings, credential=None) is None


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = ConsumerSettings()
    assert (defaults.alarms_eventhub_name, defaults.alarm_publish_timeout_seconds) == ("alarms", 10.0)
    monkeypatch.setenv("HOMESEC_CONSUMER_ALARMS_EVENTHUB_NAME", "")
    monkeypatch.setenv("HOMESEC_CONSUMER_ALARM_PUBLISH_TIMEOUT_SECONDS", "2.5")
    configured = ConsumerSettings()
    assert (configured.alarms_eventhub_name, configured.alarm_publish_timeout_seconds) == ("", 2.5)


async def test_the_connection_string_targets_the_alarms_hub_not_its_entity_path() -> None:
    settings = ConsumerSettings(eventhub_connection_string=SecretStr(CONN))
    built = build_alarm_publisher(settings, credential=None)
    assert built is not None
    producer: Any = built._producer  # the SDK client, built but never connected
    reader: Any = built._open_reader()
    assert producer.eventhub_name == "alarms" and reader.eventhub_name == "alarms"
    assert reader._consumer_group == "rollups"  # read back in the consumer's own group
    await reader.close()
    await built.close()


async def test_namespace_and_credential_without_a_connection_string() -> None:
    from azure.core.credentials import AccessToken

    class Credential:
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("token", int(time.time()) + 3600)

    settings = ConsumerSettings(eventhub_fully_qualified_namespace="ns.servicebus.windows.net")
    built = build_alarm_publisher(settings, credential=Credential())
    assert built is not None
    producer: Any = built._producer
    assert producer.eventhub_name == "alarms"
    assert producer._address.hostname == "ns.servicebus.windows.net"
    await built.close()


def test_no_event_hubs_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        build_alarm_publisher(ConsumerSettings(), credential=None)
