"""Filling an ``EventDataBatch`` through the SDK's public API: the producer's default path.

Each reading becomes an ``EventData`` with the body, ``reading_id`` as message ID, the codec's content type,
and the home ID as its partition-key annotation (``x-opt-partition-key``), so consumers see the same
``partition_key`` as with key-based sends. ``EventDataBatch.add`` encodes it and refuses it (``ValueError``)
when the batch would grow past ``max_size_in_bytes``. ``accelerated_encoding`` produces the same batches
faster, and is used only when its start-up self-check proves that against this module.
"""

from __future__ import annotations

from collections.abc import Callable

from azure.eventhub import EventData, EventDataBatch
from homesec_domain.events import CONTENT_TYPE
from homesec_domain.validation import AcceptedReading

PARTITION_KEY_ANNOTATION = b"x-opt-partition-key"

# Adds a reading to a batch; False when the batch has no room left for it (the batch is unchanged).
AddToBatch = Callable[[EventDataBatch, AcceptedReading], bool]


def event_data(reading: AcceptedReading) -> EventData:
    event = EventData(reading.body)
    event.message_id = reading.reading_id
    event.content_type = CONTENT_TYPE
    annotations = event.raw_amqp_message.annotations
    if annotations is None:
        event.raw_amqp_message.annotations = annotations = {}
    annotations[PARTITION_KEY_ANNOTATION] = reading.home_id
    return event


def add_public(batch: EventDataBatch, reading: AcceptedReading) -> bool:
    """``EventDataBatch.add``; False when it does not fit."""
    try:
        batch.add(event_data(reading))
    except ValueError:
        return False
    return True
