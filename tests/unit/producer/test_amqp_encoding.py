"""The fast event encoder must produce exactly what the SDK's public path produces."""

from __future__ import annotations

import uuid

from azure.eventhub import EventDataBatch
from azure.eventhub._pyamqp._encode import encode_payload
from homesec_domain.events import CONTENT_TYPE
from homesec_domain.validation import AcceptedReading
from homesec_producer.adapters.amqp_encoding import EventEncoder, batch_overhead
from homesec_producer.adapters.eventhubs import _event, append_encoded
from hypothesis import given, settings
from hypothesis import strategies as st

ENCODER = EventEncoder(CONTENT_TYPE)
homes = st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", fullmatch=True)


def sdk_batch(readings: list[AcceptedReading]) -> EventDataBatch:
    batch = EventDataBatch(max_size_in_bytes=10_000_000, partition_id="3")
    for reading in readings:
        batch.add(_event(reading))
    return batch


def fast_batch(readings: list[AcceptedReading]) -> EventDataBatch:
    batch = EventDataBatch(max_size_in_bytes=10_000_000, partition_id="3")
    for reading in readings:
        encoded = ENCODER.encode(reading.reading_id, reading.home_id, reading.body)
        append_encoded(batch, encoded, len(encoded) + batch_overhead(len(encoded)))
    return batch


@settings(max_examples=300)
@given(st.lists(st.tuples(homes, st.binary(max_size=1200)), min_size=1, max_size=5))
def test_byte_identical_to_the_sdk(items: list[tuple[str, bytes]]) -> None:
    readings = [AcceptedReading(str(uuid.uuid4()), home, body) for home, body in items]
    ours, theirs = fast_batch(readings), sdk_batch(readings)
    assert [bytes(d) for d in ours._message.data] == [bytes(d) for d in theirs._message.data]
    assert (ours.size_in_bytes, len(ours)) == (theirs.size_in_bytes, len(theirs))
    out_ours, out_theirs = bytearray(), bytearray()
    encode_payload(out_ours, ours._message)
    encode_payload(out_theirs, theirs._message)
    assert out_ours == out_theirs


def test_large_fields_use_the_32_bit_forms() -> None:
    reading = AcceptedReading(str(uuid.uuid4()), "h" * 64, b"x" * 70_000)
    assert fast_batch([reading])._message.data == sdk_batch([reading])._message.data


def test_event_carries_id_content_type_and_partition_key() -> None:
    reading = AcceptedReading("6f1b5a4e-0000-4000-8000-000000000000", "home-9", b"{}")
    event = _event(reading)
    assert event.message_id == reading.reading_id
    assert event.content_type == CONTENT_TYPE
    annotations = event.raw_amqp_message.annotations
    assert annotations is not None
    assert annotations[b"x-opt-partition-key"] == "home-9"
