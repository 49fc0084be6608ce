"""Accelerator ``encoder``: events encoded by hand instead of by the SDK, appended to the SDK's batch.

Why: the SDK spends ~45 us of pure Python per event (``EventData`` + ``EventDataBatch.add`` encode each
event twice through the generic encoder); ``EventEncoder`` encodes our one fixed shape in a few microseconds.
The shape: message annotations ``{x-opt-partition-key: home_id}``, properties (message ID, content type),
one data section (the body). ``append_encoded`` then does what ``EventDataBatch.add`` does after encoding,
through the batch's private fields: the only place in the producer that touches SDK internals. The SDK's
private AMQP encoder (``azure.eventhub._pyamqp``) is imported by the self-check only: an SDK without it
fails the check and the producer starts on the public path.

``load`` runs ``self_check`` at start-up: the same readings (short and long fields, every width the encoder
chooses between) go into one batch through the public path (``batching.add_public``) and into another
through this module, until each is full; the encoded batches (every event's bytes and the whole batch
message) and their sizes and counts must be identical. Any difference, or any error (an SDK release that
renamed a field), disables the accelerator: the producer logs one line, exports
``homesec_producer_accelerated{component="encoder"} 0`` and publishes through the public path.
``HOMESEC_PRODUCER_ACCELERATORS=off`` skips the check and the accelerator.
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from azure.core.settings import settings as azure_settings
from azure.eventhub import EventDataBatch
from homesec_domain.events import CONTENT_TYPE
from homesec_domain.validation import AcceptedReading
from homesec_runtime.accelerators import Decision, Mode, decide

from homesec_producer.adapters.batching import AddToBatch, add_public

COMPONENT = "encoder"
log = logging.getLogger(__name__)

_PARTITION_KEY = b"\xa3\x13x-opt-partition-key"  # sym8 "x-opt-partition-key"
_MESSAGE_ANNOTATIONS = b"\x00\x53\x72"
_PROPERTIES = b"\x00\x53\x73"
_DATA = b"\x00\x53\x75"
_NULL = b"\x40"
_PROPERTY_COUNT = 13  # message-id ... reply-to-group-id; the SDK writes every field, nulls included
_ONE_BYTE = 255


def _variable(small: int, large: int, raw: bytes) -> bytes:
    """str8/str32, sym8/sym32, vbin8/vbin32: the smallest width, as the SDK chooses it."""
    if len(raw) <= _ONE_BYTE:
        return bytes((small, len(raw))) + raw
    return bytes((large,)) + struct.pack(">L", len(raw)) + raw


def data_section_head(size: int) -> bytes:
    """The head of a data section of ``size`` bytes: the described type (0x75), then vbin8/vbin32."""
    if size <= _ONE_BYTE:
        return _DATA + bytes((0xA0, size))
    return _DATA + b"\xb0" + struct.pack(">L", size)


def _compound(small: int, large: int, count: int, encoded: bytes) -> bytes:
    """list8/list32, map8/map32 (size counts the count field too)."""
    if count <= _ONE_BYTE and len(encoded) < _ONE_BYTE:
        return bytes((small, len(encoded) + 1, count)) + encoded
    return bytes((large,)) + struct.pack(">LL", len(encoded) + 4, count) + encoded


class EventEncoder:
    """Encodes events that share one content type; ``encode`` is the per-event hot path.

    The message-annotations section depends only on the partition key (the home): the last
    ``ANNOTATIONS_CACHED`` keys' sections are kept (a request carries a few readings of each of its homes).
    """

    ANNOTATIONS_CACHED = 4096

    def __init__(self, content_type: str) -> None:
        nulls_before_type = _NULL * 5  # user-id, to, subject, reply-to, correlation-id
        nulls_after_type = _NULL * (_PROPERTY_COUNT - 7)
        # The properties list after the message ID: the same for every event.
        self._after_id = (
            nulls_before_type + _variable(0xA3, 0xB3, content_type.encode("ascii")) + nulls_after_type
        )
        self._annotations: dict[str, bytes] = {}

    def _annotations_of(self, partition_key: str) -> bytes:
        section = self._annotations.get(partition_key)
        if section is None:
            if len(self._annotations) >= self.ANNOTATIONS_CACHED:
                self._annotations.clear()
            annotations = _PARTITION_KEY + _variable(0xA1, 0xB1, partition_key.encode())
            section = _MESSAGE_ANNOTATIONS + _compound(0xC1, 0xD1, 2, annotations)
            self._annotations[partition_key] = section
        return section

    def encode(self, message_id: str, partition_key: str, body: bytes) -> bytes:
        raw_id, after_id = message_id.encode(), self._after_id
        listed = 2 + len(raw_id) + len(after_id)  # the properties list's items, a short message ID
        if listed < _ONE_BYTE:  # the common case in one join: list8 of a str8 ID and the fixed fields
            head = _PROPERTIES + bytes((0xC0, listed + 1, _PROPERTY_COUNT, 0xA1, len(raw_id)))
            properties = b"".join((head, raw_id, after_id))
        else:
            items = _variable(0xA1, 0xB1, raw_id) + after_id
            properties = _PROPERTIES + _compound(0xC0, 0xD0, _PROPERTY_COUNT, items)
        head = data_section_head(len(body))
        return b"".join((self._annotations_of(partition_key), properties, head, body))


def batch_overhead(encoded_size: int) -> int:
    """Bytes a batch adds around one encoded event (the SDK's ``_BATCH_MESSAGE_OVERHEAD_COST``)."""
    return 5 if encoded_size < 256 else 8


class Encoder(Protocol):
    def encode(self, message_id: str, partition_key: str, body: bytes) -> bytes: ...


def append_encoded(batch: EventDataBatch, encoded: bytes, cost: int) -> None:
    """Add an already encoded event to ``batch``, as ``EventDataBatch.add`` does after encoding."""
    batch._message.data.append(encoded)
    batch._size += cost
    batch._count += 1


def adder(encoder: Encoder) -> AddToBatch:
    """``batching.add_public``'s contract (False: no room, batch unchanged), events encoded by ``encoder``."""

    def add(batch: EventDataBatch, reading: AcceptedReading) -> bool:
        encoded = encoder.encode(reading.reading_id, reading.home_id, reading.body)
        cost = len(encoded) + batch_overhead(len(encoded))
        if batch._size + cost > batch.max_size_in_bytes:
            return False
        append_encoded(batch, encoded, cost)
        return True

    return add


def sample_readings() -> list[AcceptedReading]:
    """Readings whose fields cross every width boundary the encoder chooses between (8/32-bit lengths)."""
    homes = ["h", "home-000001", "H" * 64, "x" * 255, "y" * 256]
    bodies = [
        b"",
        b"{}",
        b'{"schema_version":1,"value":21.5}',
        b"b" * 200,
        b"c" * 255,
        b"d" * 256,
        b"e" * 70_000,
    ]
    ids = [str(uuid.UUID(int=n * 7919)) for n in range(len(homes) * len(bodies))]
    return [AcceptedReading(ids.pop(), home, body) for home in homes for body in bodies]


def _fill(add: AddToBatch, readings: list[AcceptedReading], max_size: int) -> EventDataBatch:
    batch = EventDataBatch(max_size_in_bytes=max_size, partition_id="0")
    for reading in readings:
        if not add(batch, reading):
            break
    return batch


def _encoded(batch: EventDataBatch) -> tuple[list[bytes], bytes, int, int]:
    """The batch as the SDK puts it on the wire: its private AMQP encoder, imported here only (an SDK
    without it fails the self-check, never the import of this module)."""
    from azure.eventhub._pyamqp._encode import encode_payload

    whole = bytearray()
    encode_payload(whole, batch._message)
    return [bytes(d) for d in batch._message.data], bytes(whole), batch.size_in_bytes, len(batch)


@contextmanager
def _sdk_tracing_off() -> Iterator[None]:
    """The Azure SDK's tracing plugin off for a while: with it on, ``EventDataBatch.add`` stamps each event's
    trace context (a sampled request's events take that path on purpose: ``eventhub.py``), which the
    comparison must not see."""
    setting = azure_settings.tracing_implementation
    before = setting()
    setting.set_value(None)
    try:
        yield
    finally:
        if before is None:
            setting.unset_value()
        else:
            setting.set_value(before)


def self_check(encoder: Encoder, public: AddToBatch = add_public) -> str | None:
    """``None`` when ``encoder`` builds the same batches as ``public``; else the first difference."""
    readings = sample_readings()
    for max_size in (1_048_576, 4_096, 300):  # room for all, and batches that fill up mid-way
        with _sdk_tracing_off():
            theirs = _encoded(_fill(public, readings, max_size))
        ours = _encoded(_fill(adder(encoder), readings, max_size))
        for what, a, b in zip(
            ("event bytes", "batch message bytes", "size_in_bytes", "event count"), ours, theirs, strict=True
        ):
            if a != b:
                return f"{what} differ from EventDataBatch.add's (batches of at most {max_size} bytes)"
    return None


def load(
    mode: Mode, make_encoder: Callable[[], Encoder] = lambda: EventEncoder(CONTENT_TYPE)
) -> tuple[AddToBatch | None, Decision]:
    """The accelerated ``add`` when ``mode`` allows it and the self-check passes; else ``None``."""
    encoder = make_encoder()
    decision = decide(COMPONENT, mode, lambda: self_check(encoder), log)
    return (adder(encoder) if decision.enabled else None), decision
