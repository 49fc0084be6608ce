"""The Event Hubs adapter's event conversion (no network)."""

from __future__ import annotations

from azure.eventhub import EventData
from azure.eventhub.amqp import AmqpAnnotatedMessage
from homesec_consumer.adapters.eventhub import event_body, inbound
from homesec_consumer.ports import Position


def test_inbound_reads_position_and_enqueued_time_from_annotations() -> None:
    event = EventData(b'{"a": 1}')
    event.raw_amqp_message.annotations = {
        b"x-opt-sequence-number": 42, b"x-opt-offset": b"4200", b"x-opt-enqueued-time": 1_795_600_000_123,
    }  # fmt: skip
    got = inbound(event)
    assert got.body == b'{"a": 1}'
    assert got.position == Position(42, "4200")
    assert got.enqueued_ms == 1_795_600_000_123
    assert got.position.sequence_number == event.sequence_number and got.position.offset == event.offset


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
