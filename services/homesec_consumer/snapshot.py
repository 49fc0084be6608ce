"""A partition's state snapshot: every home's packed fold state in one blob, with the position it covers.

The consumer keeps its fold state durable per partition, not per home: one blob per partition, rewritten
every flush interval when anything changed (docs/consumer.md#state-snapshots). Layout (format 3):

- ``MAGIC`` (8 bytes), then a 4-byte little-endian header length and the header, a JSON object:
  ``format`` (3), ``partition``, ``sequence_number`` and ``offset`` (the last event the snapshot covers, or
  null), ``taken_ms`` (when it was taken, epoch ms), ``legacy`` (homes absent from the snapshot may still
  have a format-2 status blob to migrate from), ``closing`` (homes with closed entries not yet merged into
  day blobs),
  ``alarms`` (alarm events not yet acknowledged by the alarms hub: ``message_id``, ``home_id``, ``body``,
  ``enqueued_ms``, ``first_attempt_ms``), ``alarms_since_ms`` (no alarm of an event after the snapshot's
  position can have reached the alarms hub before this time: ``homesec_consumer.alarm_outbox``);
- one record per home: a 2-byte home ID length, the ID (UTF-8), a 4-byte state length and the packed state
  (``homesec_domain.rollup.pack``: packed state format 3; ``unpack`` also reads the previous version's
  format 2, so the records of a snapshot written before format 3 are migrated on read).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from homesec_consumer.errors import SnapshotFormatError
from homesec_consumer.ports import Position

MAGIC = b"HSSTATE3"
FORMAT = 3
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class PendingAlarm:
    """An alarm event not yet acknowledged by the alarms hub. ``first_attempt_ms``: when it was first sent
    (None: never), the earliest moment it can have landed."""

    message_id: str
    home_id: str
    body: bytes
    enqueued_ms: int | None
    first_attempt_ms: int | None = None

    def doc(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id, "home_id": self.home_id, "body": self.body.decode(),
            "enqueued_ms": self.enqueued_ms, "first_attempt_ms": self.first_attempt_ms,
        }  # fmt: skip

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PendingAlarm:
        return cls(
            str(doc["message_id"]), str(doc["home_id"]), str(doc["body"]).encode(),
            doc.get("enqueued_ms"), doc.get("first_attempt_ms"),
        )  # fmt: skip


@dataclass(slots=True)
class SnapshotHeader:
    partition: str
    position: Position | None
    taken_ms: int
    legacy: bool = False
    closing: list[str] = field(default_factory=list)
    alarms: list[PendingAlarm] = field(default_factory=list)
    alarms_since_ms: int = 0


def encode(header: SnapshotHeader, homes: dict[str, bytes]) -> bytes:
    pos = header.position
    head = orjson.dumps({
        "format": FORMAT, "partition": header.partition,
        "sequence_number": None if pos is None else pos.sequence_number,
        "offset": None if pos is None else pos.offset, "taken_ms": header.taken_ms,
        "legacy": header.legacy, "closing": header.closing, "alarms": [a.doc() for a in header.alarms],
        "alarms_since_ms": header.alarms_since_ms,
    })  # fmt: skip
    parts = [MAGIC, _U32.pack(len(head)), head]
    append, u16, u32 = parts.append, _U16.pack, _U32.pack
    for home_id, packed in homes.items():
        raw = home_id.encode()
        append(u16(len(raw)) + raw + u32(len(packed)))
        append(packed)
    return b"".join(parts)


def decode(body: bytes) -> tuple[SnapshotHeader, dict[str, bytes]]:
    """The header and the homes; ``SnapshotFormatError`` for anything that is not a format-3 snapshot."""
    if body[: len(MAGIC)] != MAGIC:
        raise SnapshotFormatError(f"not a format-{FORMAT} state snapshot (magic {body[:8]!r})")
    try:
        return _decode(body)
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise SnapshotFormatError(f"corrupt state snapshot: {exc!r}") from None


def _decode(body: bytes) -> tuple[SnapshotHeader, dict[str, bytes]]:
    at = len(MAGIC)
    (size,) = _U32.unpack_from(body, at)
    doc = orjson.loads(body[at + 4 : at + 4 + size])
    if doc.get("format") != FORMAT:
        raise ValueError(f"format {doc.get('format')!r}")
    seq = doc["sequence_number"]
    header = SnapshotHeader(
        str(doc["partition"]), None if seq is None else Position(int(seq), str(doc["offset"])),
        int(doc["taken_ms"]), bool(doc["legacy"]), [str(h) for h in doc["closing"]],
        [PendingAlarm.from_doc(a) for a in doc["alarms"]], int(doc["alarms_since_ms"]),
    )  # fmt: skip
    homes: dict[str, bytes] = {}
    at += 4 + size
    end = len(body)
    while at < end:
        (n,) = _U16.unpack_from(body, at)
        home_id = body[at + 2 : at + 2 + n].decode()
        at += 2 + n
        (m,) = _U32.unpack_from(body, at)
        if at + 4 + m > end:
            raise ValueError("truncated record")
        homes[home_id] = body[at + 4 : at + 4 + m]
        at += 4 + m
    return header, homes
