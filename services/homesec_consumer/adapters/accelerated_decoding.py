"""Accelerator ``decoder``: a received event read straight from the SDK's decoded AMQP message.

Why: the public path (``eventhub.inbound``: ``EventData``'s properties and ``raw_amqp_message``) builds a
datetime per event and walks the annotated message's body generator, about 2.6 us per event; the pyamqp
``Message`` (a named tuple) the SDK keeps on each received event as ``event._message`` gives the same three
things in about 1.3 us. This module is the only place in the consumer that touches ``_pyamqp`` or
``_message``; an event of another shape (several data sections, another body type, missing annotations)
goes through the public path. The ``_pyamqp`` modules are imported on the self-check's first use only: an
SDK without them fails the check (one log line), never the consumer's start.

``load`` runs ``self_check`` at start-up: sample messages (the shapes the consumer meets, and shapes the fast
read must hand back) are encoded with the SDK's AMQP encoder, decoded by the SDK's receive path (the
decoder its receiver runs on each transfer, then ``EventData._from_message``), and read both ways; the
results, and the readings decoded from their bodies, must be identical, and the fast read must actually
take the usual shape. Otherwise the consumer logs one line, exports
``homesec_consumer_accelerated{component="decoder"} 0`` and reads every event through the public path.
``HOMESEC_CONSUMER_ACCELERATORS=off`` skips the check and the accelerator.
"""

from __future__ import annotations

import functools
import importlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from azure.eventhub import EventData
from homesec_domain.errors import InvalidEventError
from homesec_domain.events import decode_reading, encode_reading
from homesec_domain.models import Reading, SensorType
from homesec_runtime.accelerators import Decision, Mode, decide

from homesec_consumer.adapters.eventhub import Decode, inbound
from homesec_consumer.partition import InboundEvent
from homesec_consumer.ports import Position

COMPONENT = "decoder"
log = logging.getLogger(__name__)
_SEQ, _OFFSET, _ENQUEUED = b"x-opt-sequence-number", b"x-opt-offset", b"x-opt-enqueued-time"
T0_MS = 1_795_600_000_000
FastRead = Callable[[EventData], InboundEvent | None]


class _Sdk(NamedTuple):
    """The SDK's private AMQP parts this module uses (``azure.eventhub._pyamqp``)."""

    message: type
    decode_payload: Callable[[memoryview], Any]
    encode_payload: Callable[[bytearray, Any], Any]
    type_key: str
    value_key: str
    types: Any


@functools.cache
def _sdk() -> _Sdk:
    """Imported on first use only: an SDK without them fails the self-check, never this module's import."""
    decode = importlib.import_module("azure.eventhub._pyamqp._decode")
    encode = importlib.import_module("azure.eventhub._pyamqp._encode")
    message = importlib.import_module("azure.eventhub._pyamqp.message")
    types = importlib.import_module("azure.eventhub._pyamqp.types")
    return _Sdk(
        message.Message,
        decode.decode_payload,
        encode.encode_payload,
        types.TYPE,
        types.VALUE,
        types.AMQPTypes,
    )


def reader(message_type: Any) -> FastRead:
    """The fast read of events whose received message is a ``message_type`` (the SDK's pyamqp ``Message``):
    ``None`` for anything else (then the public path reads it)."""

    def read(event: EventData) -> InboundEvent | None:
        message: Any = getattr(event, "_message", None)
        if type(message) is not message_type:
            return None
        data, ann = message.data, message.message_annotations
        if not ann or type(data) is not list or len(data) != 1 or type(data[0]) is not bytes:
            return None
        seq, offset = ann.get(_SEQ), ann.get(_OFFSET)
        if type(seq) is not int or type(offset) is not bytes:
            return None
        enqueued = ann.get(_ENQUEUED)
        return InboundEvent(data[0], Position(seq, offset.decode()), int(enqueued) if enqueued else None)

    return read


def received(event: EventData) -> InboundEvent | None:
    """The event from the pyamqp ``Message`` the SDK keeps on a received event, when it has one data
    section and both position annotations; ``None`` for anything else (then the public path reads it)."""
    return _default_reader()(event)


@functools.cache
def _default_reader() -> FastRead:
    return reader(_sdk().message)


def decoder(fast: FastRead = received, public: Decode = inbound) -> Decode:
    """``fast``, else ``public``."""

    def decode(event: EventData) -> InboundEvent:
        return fast(event) or public(event)

    return decode


def _typed(kind: str, value: Any) -> dict[Any, Any]:
    sdk = _sdk()
    return {sdk.type_key: kind, sdk.value_key: value}


def _annotations(seq: int, offset: str, enqueued_ms: int | None) -> dict[Any, Any]:
    AMQPTypes = _sdk().types  # noqa: N806 - the SDK's enum
    ann: dict[Any, Any] = {
        _SEQ: _typed(AMQPTypes.long, seq),
        _OFFSET: _typed(AMQPTypes.string, offset),
        b"x-opt-partition-key": _typed(AMQPTypes.string, "home-000001"),
    }
    if enqueued_ms is not None:
        ann[_ENQUEUED] = _typed(AMQPTypes.timestamp, enqueued_ms)
    return ann


def _body(n: int) -> bytes:
    reading = Reading(
        reading_id=uuid.UUID(int=n), home_id="home-000001", sensor_id=f"door-{n}",
        sensor_type=SensorType.DOOR, ts=datetime(2026, 11, 25, 9, 40, n, tzinfo=UTC), state="open", seq=n,
    )  # fmt: skip
    return encode_reading(reading)


def sample_messages() -> list[tuple[Any, bool]]:
    """(message as sent by Event Hubs, whether the fast read must take it)."""
    _PyamqpMessage, AMQPTypes = _sdk().message, _sdk().types  # noqa: N806 - the SDK's names
    usual = [
        (_PyamqpMessage(data=[_body(n)], message_annotations=_annotations(n, str(n * 512), T0_MS + n)), True)
        for n in range(5)
    ]
    large = _PyamqpMessage(
        data=[_body(7) + b" " * 70_000], message_annotations=_annotations(2**40, "9" * 20, None)
    )
    return [
        *usual,
        (large, True),
        (_PyamqpMessage(data=[b"not json"], message_annotations=_annotations(8, "4096", 1)), True),
        (_PyamqpMessage(data=[b'{"a":', b" 1}"], message_annotations=_annotations(9, "4608", 2)), False),
        (
            _PyamqpMessage(
                value=_typed(AMQPTypes.string, "text"), message_annotations=_annotations(10, "5120", 3)
            ),
            False,
        ),
        (_PyamqpMessage(data=[b"x"]), False),
    ]


def as_received(message: Any) -> EventData:
    """The event the SDK's receiver hands over for ``message``: its wire bytes through the receive path."""
    sdk, wire = _sdk(), bytearray()
    sdk.encode_payload(wire, message)
    return EventData._from_message(sdk.decode_payload(memoryview(bytes(wire))))


def _reading(event: InboundEvent) -> Reading | str:
    try:
        return decode_reading(event.body)
    except InvalidEventError as exc:
        return f"poison: {exc.reason}"


def self_check(fast: FastRead = received, public: Decode = inbound) -> str | None:
    """``None`` when ``decoder(fast, public)`` reads the samples exactly as ``public`` does, taking the fast
    read where it must; else the first difference."""
    accelerated = decoder(fast, public)
    for n, (message, usual) in enumerate(sample_messages()):
        event = as_received(message)
        ours, theirs = accelerated(event), public(event)
        if ours != theirs:
            return f"sample {n} reads {ours!r:.120} instead of {theirs!r:.120}"
        if _reading(ours) != _reading(theirs):
            return f"sample {n} decodes to another reading"
        if usual and fast(event) is None:
            return f"sample {n}: the received message is not where the accelerator reads it"
    return None


def load(mode: Mode, fast: FastRead | None = None) -> tuple[Decode, Decision]:
    """The accelerated decoder when ``mode`` allows it and the self-check passes; else the public one.
    ``fast``: the read to check (default: ``reader`` of the SDK's pyamqp ``Message``)."""
    chosen: list[FastRead] = []

    def check() -> str | None:
        chosen.append(fast or _default_reader())  # an SDK without its pyamqp modules raises here
        return self_check(chosen[0])

    decision = decide(COMPONENT, mode, check, log)
    return (decoder(chosen[0]) if decision.enabled else inbound), decision
