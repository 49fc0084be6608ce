"""The Event Hubs adapter's public event conversion and namespace (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.amqp import AmqpAnnotatedMessage
from homesec_consumer.adapters.clients import eventhub_namespace
from homesec_consumer.adapters.eventhub import event_body, inbound
from homesec_consumer.ports import Position
from homesec_consumer.settings import ConsumerSettings
from pydantic import SecretStr


def test_inbound_reads_position_and_enqueued_time_from_the_public_properties() -> None:
    event = EventData(b'{"a": 1}')
    event.raw_amqp_message.annotations = {
        b"x-opt-sequence-number": 42, b"x-opt-offset": b"4200", b"x-opt-enqueued-time": 1_795_600_000_123,
    }  # fmt: skip
    got = inbound(event)
    assert got.body == b'{"a": 1}'
    assert got.position == Position(42, "4200")
    assert got.enqueued_ms == 1_795_600_000_123
    assert event.enqueued_time == datetime.fromtimestamp(1_795_600_000.123, UTC)


@pytest.mark.parametrize("ms", [0, 1, 999, 1_000, 1_795_600_000_001, 1_795_600_000_999, 4_102_444_800_007])
def test_enqueued_milliseconds_survive_the_sdks_datetime(ms: int) -> None:
    event = EventData(b"{}")
    event.raw_amqp_message.annotations = {b"x-opt-sequence-number": 1, b"x-opt-offset": b"1",
                                          b"x-opt-enqueued-time": ms}  # fmt: skip
    assert inbound(event).enqueued_ms == (ms or None)  # the SDK reads 0 as no time


def test_an_event_without_annotations_has_a_zero_position() -> None:
    assert inbound(EventData(b"x")).position == Position(0, "")


def _with_message(message: AmqpAnnotatedMessage) -> EventData:
    event = EventData(b"")
    event._raw_amqp_message = message  # what the SDK does for a received message
    return event


def test_event_body_joins_data_sections_and_keeps_other_bodies_as_poison() -> None:
    assert event_body(_with_message(AmqpAnnotatedMessage(data_body=[b'{"a":', b" 1}"]))) == b'{"a": 1}'
    assert event_body(EventData("text body")) == b"text body"
    assert event_body(_with_message(AmqpAnnotatedMessage(value_body={"k": 1}))) == repr({"k": 1}).encode()


def test_event_body_of_a_sequence_body_is_its_repr() -> None:
    assert event_body(_with_message(AmqpAnnotatedMessage(sequence_body=[1, 2]))) == b"[[1, 2]]"


CONN = "Endpoint=sb://{host}/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=telemetry"


@pytest.mark.parametrize("host", ["127.0.0.1:5672", "ns.servicebus.windows.net", "localhost"])
async def test_the_namespace_is_the_one_the_sdk_keys_checkpoints_by(host: str) -> None:
    conn = CONN.format(host=host)
    settings = ConsumerSettings(eventhub_connection_string=SecretStr(conn))
    client = EventHubConsumerClient.from_connection_string(conn, consumer_group="$Default")
    try:
        # The SDK's processor keys ownership and checkpoints by this (EventProcessor._namespace).
        assert eventhub_namespace(settings) == host == client._address.hostname
    finally:
        await client.close()
    assert eventhub_namespace(ConsumerSettings(eventhub_fully_qualified_namespace=host)) == host
