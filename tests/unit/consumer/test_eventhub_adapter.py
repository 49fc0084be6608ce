"""The Event Hubs adapter's event conversion (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.eventhub import EventData
from azure.eventhub._pyamqp.message import Message
from azure.eventhub.amqp import AmqpAnnotatedMessage
from homesec_consumer.adapters.eventhub import _annotated, event_body, inbound
from homesec_consumer.adapters.eventhub import _received as _fast
from homesec_consumer.partition import InboundEvent
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


def _received(**fields: Any) -> EventData:
    """An event the way the SDK's receiver builds it from a decoded pyamqp message."""
    return EventData._from_message(Message(**fields))


_ANN = {b"x-opt-sequence-number": 7, b"x-opt-offset": b"700", b"x-opt-enqueued-time": 1_795_600_000_123,
        b"x-opt-partition-key": b"home-1"}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "fast"),
    [
        ({"data": [b'{"a": 1}'], "message_annotations": _ANN}, True),
        ({"data": [b'{"a": 1}'], "message_annotations": {**_ANN, b"x-opt-enqueued-time": None}}, True),
        ({"data": [b'{"a":', b" 1}"], "message_annotations": _ANN}, False),  # two data sections
        ({"value": {"k": 1}, "message_annotations": _ANN}, False),
        ({"sequence": [[1, 2]], "message_annotations": _ANN}, False),
        ({"data": [b"x"], "message_annotations": {**_ANN, b"x-opt-offset": "700"}}, False),
        ({"data": [b"x"], "message_annotations": None}, False),
        ({"data": [b"x"], "message_annotations": {b"x-opt-offset": b"1"}}, False),
    ],
)
def test_the_fast_path_agrees_with_the_public_api(fields: dict[str, Any], fast: bool) -> None:
    event = _received(**fields)
    assert (_fast(event) is not None) is fast
    assert inbound(event) == _annotated(event)


def test_the_sdk_keeps_the_received_message_where_the_fast_path_reads_it() -> None:
    # If an SDK upgrade moves it, this fails (the consumer would still work, through the public path).
    event = _received(data=[b"{}"], message_annotations=_ANN)
    assert _fast(event) == InboundEvent(b"{}", Position(7, "700"), 1_795_600_000_123)
    assert (event.sequence_number, event.offset) == (7, "700")
