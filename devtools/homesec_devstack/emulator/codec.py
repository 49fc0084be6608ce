"""AMQP 1.0 codec for the emulator, built on the azure-eventhub SDK's own pure-Python codec.

The SDK's ``_pyamqp`` modules are private, so the emulator pins the exact SDK version it was written against
(``PINNED_SDK_VERSION``) and refuses to start with another one; ``tests/unit/devstack/test_codec.py`` breaks
loudly when the installed SDK changes. Hot paths (event transfers, annotation splicing) are hand-encoded here.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from azure.eventhub._pyamqp import _decode, _encode, performatives
from azure.eventhub._pyamqp.types import TYPE, VALUE, AMQPTypes
from azure.eventhub._version import VERSION as SDK_VERSION

PINNED_SDK_VERSION = "5.15.1"
if SDK_VERSION != PINNED_SDK_VERSION:  # pragma: no cover - guarded by a unit test
    raise ImportError(
        f"the emulator's codec is pinned to azure-eventhub=={PINNED_SDK_VERSION}, found {SDK_VERSION}: "
        "re-check devtools/homesec_devstack/emulator/codec.py against the new SDK before bumping the pin"
    )

decode_frame = _decode.decode_frame
decode_payload = _decode.decode_payload
encode_payload = _encode.encode_payload
encode_value = _encode.encode_value
P = performatives

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
FRAME_AMQP = 0
FRAME_SASL = 1
BATCH_FORMAT = 0x80013700

_U32 = struct.Struct(">I")
_FRAME_HEADER = struct.Struct(">IBBH")


def frame_bytes(channel: int, performative: NamedTuple | None, frame_type: int = FRAME_AMQP) -> bytes:
    """Encode one whole frame (header + performative [+ transfer payload])."""
    if performative is None:
        return _FRAME_HEADER.pack(8, 2, frame_type, channel)
    body = bytearray()
    _encode.encode_value(body, _encode.describe_performative(performative))
    if isinstance(performative, P.TransferFrame) and performative.payload is not None:
        body += performative.payload
    return _FRAME_HEADER.pack(len(body) + 8, 2, frame_type, channel) + bytes(body)


def _uint(value: int) -> bytes:
    if value == 0:
        return b"\x43"
    if value < 256:
        return b"\x52" + bytes((value,))
    return b"\x70" + _U32.pack(value)


def transfer_frames(
    channel: int, handle: int, delivery_id: int, payload: bytes, max_frame_size: int
) -> list[bytes]:
    """Hand-encoded settled transfer frame(s) for one delivery, split to ``max_frame_size``."""
    # The SDK's decoder puts the payload after the last field and reads it at index 11: encode all 11 fields.
    tag = _U32.pack(delivery_id & 0xFFFFFFFF)
    head = _uint(handle) + _uint(delivery_id) + b"\xa0\x04" + tag + b"\x43\x41"  # format 0, settled true
    tail = b"\x40" * 5  # rcv-settle-mode, state, resume, aborted, batchable
    room = max_frame_size - 8 - 40 - len(head)
    frames = []
    for start in range(0, max(len(payload), 1), room):
        chunk = payload[start : start + room]
        more = b"\x41" if start + room < len(payload) else b"\x42"
        fields = head + more + tail
        perf = b"\x00\x53\x14\xc0" + bytes((len(fields) + 1, 11)) + fields
        frames.append(_FRAME_HEADER.pack(8 + len(perf) + len(chunk), 2, 0, channel) + perf + chunk)
    return frames


# --- section splicing (no full decode of the event on the hot path) -------------------------------------

_FIXED = {0x40: 0, 0x41: 0, 0x42: 0, 0x43: 0, 0x44: 0, 0x45: 0, 0x50: 1, 0x51: 1, 0x52: 1, 0x53: 1, 0x54: 1,
          0x55: 1, 0x56: 1, 0x60: 2, 0x61: 2, 0x70: 4, 0x71: 4, 0x72: 4, 0x73: 4, 0x80: 8, 0x81: 8, 0x82: 8,
          0x83: 8, 0x84: 8, 0x94: 16, 0x98: 16}  # fmt: skip


def skip_value(buf: bytes | memoryview, pos: int) -> int:
    """Return the position just after the AMQP value that starts at ``pos``."""
    ctor = buf[pos]
    pos += 1
    if ctor == 0x00:  # described: descriptor, then value
        return skip_value(buf, skip_value(buf, pos))
    size = _FIXED.get(ctor)
    if size is not None:
        return pos + size
    if ctor in (0xA0, 0xA1, 0xA3, 0xC0, 0xC1, 0xE0):
        return pos + 1 + buf[pos]
    if ctor in (0xB0, 0xB1, 0xB3, 0xD0, 0xD1, 0xF0):
        return pos + 4 + int(_U32.unpack_from(buf, pos)[0])
    raise ValueError(f"unknown AMQP constructor 0x{ctor:02x}")


def sections(payload: bytes | memoryview) -> list[tuple[int, int, int]]:
    """Top-level message sections as ``(descriptor code, start, end)``."""
    out = []
    pos, end = 0, len(payload)
    while pos < end:
        if payload[pos] != 0x00 or payload[pos + 1] != 0x53:
            raise ValueError("message section must be a described type with a small-ulong descriptor")
        code = payload[pos + 2]
        nxt = skip_value(payload, pos + 3)
        out.append((code, pos, nxt))
        pos = nxt
    return out


def decode_section_value(payload: bytes | memoryview, start: int) -> Any:
    """Decode the value of the section that starts at ``start``."""
    view = memoryview(payload)[start + 3 :]
    return _decode._DECODE_BY_CONSTRUCTOR[view[0]](view[1:])[1]


def encode_annotations_section(code: int, values: dict[bytes, Any]) -> bytes:
    """A message-/delivery-annotations section (``code`` 0x72 / 0x71) from symbol keys to typed values."""
    out = bytearray()
    typed_values: dict[str | bytes, Any] = {k: v for k, v in values.items()}
    encode_value(
        out,
        {
            TYPE: AMQPTypes.described,
            VALUE: ({TYPE: AMQPTypes.ulong, VALUE: code}, _encode.encode_annotations(typed_values)),
        },
    )
    return bytes(out)


def typed(kind: str, value: Any) -> dict[str, Any]:
    return {TYPE: getattr(AMQPTypes, kind), VALUE: value}


def with_message_annotations(payload: bytes, extra: dict[bytes, Any]) -> tuple[bytes, dict[bytes, Any]]:
    """Return ``payload`` with ``extra`` merged into its message annotations, and those annotations."""
    secs = sections(payload)
    existing: dict[bytes, Any] = {}
    ma = next((s for s in secs if s[0] == 0x72), None)
    if ma is not None:
        existing = decode_section_value(payload, ma[1]) or {}
    merged: dict[bytes, Any] = {**{k: v for k, v in existing.items() if k not in extra}, **extra}
    section = encode_annotations_section(0x72, merged)
    if ma is not None:
        return payload[: ma[1]] + section + payload[ma[2] :], merged
    insert_at = next((s[1] for s in secs if s[0] not in (0x70, 0x71)), len(payload))
    return payload[:insert_at] + section + payload[insert_at:], merged


_LONG = struct.Struct(">q")
_SEQ_KEY = b"\xa3\x15x-opt-sequence-number"
_OFFSET_KEY = b"\xa3\x0cx-opt-offset"
_ENQ_KEY = b"\xa3\x13x-opt-enqueued-time"
_PKEY_KEY = b"\xa3\x13x-opt-partition-key"
_BROKER_KEYS = frozenset((b"x-opt-sequence-number", b"x-opt-offset", b"x-opt-enqueued-time"))


def _str_bytes(raw: bytes) -> bytes:
    return (b"\xa1" + bytes((len(raw),)) if len(raw) <= 255 else b"\xb1" + _U32.pack(len(raw))) + raw


def _map_section(entries: list[bytes], pairs: int) -> bytes:
    """A message-annotations section from encoded key/value entries (map8 when it fits, like the SDK)."""
    body = b"".join(entries)
    count = pairs * 2
    if count <= 255 and len(body) < 255:
        return b"\x00\x53\x72\xc1" + bytes((len(body) + 1, count)) + body
    return b"\x00\x53\x72\xd1" + _U32.pack(len(body) + 4) + _U32.pack(count) + body


def _kept_entries(payload: bytes, start: int, dropped: frozenset[bytes]) -> tuple[list[bytes], int]:
    """The encoded entries of the annotations map at ``start`` (a section) whose symbol key is not in
    ``dropped``, as they are (no decode/re-encode), and how many."""
    pos = start + 3
    ctor = payload[pos]
    if ctor == 0x40:  # null annotations
        return [], 0
    if ctor == 0xC1:
        pos, count = pos + 3, payload[pos + 2]
    elif ctor == 0xD1:
        pos, count = pos + 9, int(_U32.unpack_from(payload, pos + 5)[0])
    else:
        raise ValueError(f"message annotations must be a map, found 0x{ctor:02x}")
    kept: list[bytes] = []
    for _ in range(count // 2):
        value_at = skip_value(payload, pos)
        end = skip_value(payload, value_at)
        key_ctor = payload[pos]
        key = bytes(payload[pos + 2 : value_at]) if key_ctor == 0xA3 else b""
        if key_ctor != 0xA3 or key not in dropped:
            kept.append(bytes(payload[pos:end]))
        pos = end
    return kept, len(kept)


def stamp_event(
    payload: bytes, sequence_number: int, offset: int, enqueued_ms: int, key: bytes | None
) -> bytes:
    """``payload`` with the broker's annotations (sequence number, offset, enqueued time, partition key)
    merged into its message annotations: the encoding ``with_message_annotations`` gives for the same values
    (byte-identical for a message without annotations; tested), hand-encoded for the hot path."""
    entries = [
        _SEQ_KEY + (b"\x55" + _LONG.pack(sequence_number)[-1:] if -128 <= sequence_number <= 127
                    else b"\x81" + _LONG.pack(sequence_number)),
        _OFFSET_KEY + _str_bytes(str(offset).encode()),
        _ENQ_KEY + b"\x83" + _LONG.pack(enqueued_ms),
    ]  # fmt: skip
    dropped = _BROKER_KEYS
    if key is not None:
        entries.append(_PKEY_KEY + _str_bytes(key.decode("utf-8", "replace").encode()))
        dropped = _BROKER_KEYS | {b"x-opt-partition-key"}
    secs = sections(payload)
    ma = next((s for s in secs if s[0] == 0x72), None)
    if ma is None:
        insert_at = next((s[1] for s in secs if s[0] not in (0x70, 0x71)), len(payload))
        return payload[:insert_at] + _map_section(entries, len(entries)) + payload[insert_at:]
    kept, count = _kept_entries(payload, ma[1], dropped)
    section = _map_section(kept + entries, count + len(entries))
    return payload[: ma[1]] + section + payload[ma[2] :]


def batch_bodies(payload: bytes) -> list[bytes]:
    """The Data sections of a batch message (format 0x80013700): each is one whole encoded message."""
    out: list[bytes] = []
    for code, start, _end in sections(payload):
        if code == 0x75:
            out.append(bytes(decode_section_value(payload, start)))
    return out
