"""The Event Hubs adapter's event conversion (no network)."""

from __future__ import annotations

from azure.eventhub import EventData
from homesec_consumer.adapters.eventhub import inbound
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
