"""Accelerator ``payload``: a batch's data sections framed by hand when the SDK sends it.

Why: when ``send_batch`` puts a batch on the wire, the SDK's sender link encodes the batch message with its
generic encoder (``_pyamqp._encode.encode_payload``), which wraps every already encoded event in an AMQP
data section through a dictionary-described value: ~2.5 us of pure Python per event (make
bench-producer-payload). A data section is three fixed bytes (described type 0x75), a vbin8/vbin32 length
and the event's bytes; this module writes that directly.

How: ``install`` replaces the name ``encode_payload`` in the SDK's async sender-link module (the one place
the send path calls it) with ``fast_encode_payload(original)``. It takes the fast path only for a
``BatchMessage`` whose events are a list of bytes and that has no delivery annotations, sequence, value or
footer sections (what ``EventDataBatch`` sends); it encodes the other sections (header, annotations,
properties) with the SDK's own function and appends the data sections, in the order the SDK writes them.
Any other message (CBS, the management link, a single event) goes to the SDK's function unchanged.

``load`` runs ``self_check`` at start-up: batches built through the public path (events whose sizes cross
the 8/32-bit length boundary, with and without a partition key on the batch) and messages the fast path must
leave alone are encoded both ways and must give identical bytes. Any difference or error (an SDK release
that moved the function, renamed the module, or changed the framing) keeps the SDK's function: the producer
logs one line and exports ``homesec_producer_accelerated{component="payload"} 0``.
``HOMESEC_PRODUCER_ACCELERATORS=off`` skips the check and the accelerator.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from azure.eventhub import EventData, EventDataBatch
from homesec_runtime.accelerators import Decision, Mode, decide

COMPONENT = "payload"
HOOK_MODULE = "azure.eventhub._pyamqp.aio._sender_async"  # its ``encode_payload`` name is what is replaced
log = logging.getLogger(__name__)

EncodePayload = Callable[[bytearray, Any], Any]
# ``accelerated_encoding.data_section_head`` written inline: a call per event made this loop slower
# (bench/producer_payload.py, one run: 5.7 -> 7.8 us at 12 events per send).
_SMALL = b"\x00\x53\x75\xa0"  # described (smallulong 0x75: data) + vbin8
_LARGE = b"\x00\x53\x75\xb0"  # described (smallulong 0x75: data) + vbin32
_ONE_BYTE = 255
# The SDK's Message tuple positions. Its encoder writes delivery annotations last, after the data: a batch
# that has them takes the SDK's path.
_DELIVERY_ANNOTATIONS, _DATA, _SEQUENCE, _VALUE, _FOOTER = 1, 5, 6, 7, 8


def fast_encode_payload(original: EncodePayload, batch_type: type) -> EncodePayload:
    """``original``'s contract and bytes; batch messages of bytes events framed here."""

    def encode_payload(output: bytearray, payload: Any) -> Any:
        data, kind = payload[_DATA], type(payload)
        if (
            kind is not batch_type
            or type(data) is not list
            or payload[_DELIVERY_ANNOTATIONS]
            or payload[_SEQUENCE] is not None
            or payload[_VALUE] is not None
            or payload[_FOOTER] is not None
        ):
            return original(output, payload)
        start = len(output)
        original(output, payload._replace(data=None))
        for item in data:
            if type(item) is not bytes and type(item) is not bytearray:  # never from EventDataBatch
                del output[start:]
                return original(output, payload)
            size = len(item)
            if size <= _ONE_BYTE:
                output += _SMALL
                output.append(size)
            else:
                output += _LARGE
                output += size.to_bytes(4, "big")
            output += item
        return output

    encode_payload.original = original  # type: ignore[attr-defined]
    return encode_payload


def _sdk_parts() -> tuple[ModuleType, EncodePayload, type, type]:
    """The hook module, the SDK's ``encode_payload``, its ``BatchMessage`` and ``Message`` types."""
    module = importlib.import_module(HOOK_MODULE)
    encode = importlib.import_module("azure.eventhub._pyamqp._encode").encode_payload
    message = importlib.import_module("azure.eventhub._pyamqp.message")
    return module, encode, message.BatchMessage, message.Message


def _samples(batch_type: type, message_type: type) -> list[Any]:
    """Messages to encode both ways: public-path batches, and messages the fast path must pass on."""
    sizes = [0, 1, 200, 250, 251, 252, 255, 256, 300, 70_000]  # event bodies around the vbin8 limit
    batches: list[Any] = []
    for key in (None, "home-000042"):
        batch = EventDataBatch(
            max_size_in_bytes=1_048_576, partition_id=None if key else "3", partition_key=key
        )
        for n, size in enumerate(sizes):
            event = EventData(b"x" * size)
            if n % 2:
                event.properties = {"n": n}
            batch.add(event)
        batches.append(batch._message)
    single = batch_type(data=[b"only"])
    others = [
        message_type(data=[b"a", b"b"]),  # not a batch
        batch_type(data=[b"a"], value=7),  # a section the fast path does not write
        batch_type(data=[b"a"], delivery_annotations={b"x-opt-d": 1}),  # written after the data by the SDK
        batch_type(data=b"raw"),  # data that is not a list
        batch_type(data=[b"a", memoryview(b"b")]),  # an event that is neither bytes nor bytearray
    ]
    return [*batches, single, *others]


def self_check(original: EncodePayload, batch_type: type, message_type: type) -> str | None:
    """``None`` when the fast path writes the same bytes as ``original`` for every sample; else the first."""
    fast = fast_encode_payload(original, batch_type)
    for index, message in enumerate(_samples(batch_type, message_type)):
        theirs, ours = bytearray(), bytearray()
        original(theirs, message)
        fast(ours, message)
        if ours != theirs:
            return (
                f"sample {index} ({type(message).__name__}) encodes differently from the SDK's encode_payload"
            )
    return None


def install(fast: EncodePayload, module: ModuleType) -> Callable[[], None]:
    """Put ``fast`` in place in ``module``; the returned function puts the SDK's function back."""
    before: EncodePayload = module.__dict__["encode_payload"]

    def undo() -> None:
        setattr(module, "encode_payload", before)  # noqa: B010

    setattr(module, "encode_payload", fast)  # noqa: B010
    return undo


def _installed(module: ModuleType, original: EncodePayload) -> bool:
    """``module``'s hook is already this module's fast path around ``original``."""
    return getattr(module.__dict__.get("encode_payload"), "original", None) is original


def load(mode: Mode) -> tuple[Callable[[], None] | None, Decision]:
    """Install the fast path when ``mode`` allows it and the self-check passes; the undo function, or None."""
    parts: list[Any] = []

    def check() -> str | None:
        parts.extend(_sdk_parts())
        module, original, batch_type, message_type = parts
        if _installed(module, original):
            return None  # installed before, by this process: the check passed then
        if module.__dict__.get("encode_payload") is not original:
            return f"{HOOK_MODULE}.encode_payload is not the SDK's encode_payload"
        return self_check(original, batch_type, message_type)

    decision = decide(COMPONENT, mode, check, log)
    if not decision.enabled:
        return None, decision
    module, original, batch_type, _ = parts
    if _installed(module, original):
        return (lambda: None), decision
    return install(fast_encode_payload(original, batch_type), module), decision
