"""Durable partition logs: an acknowledged event survives a restart of the emulator process.

Each partition is one append-only file of records ``[u32 length][i64 sequence][i64 enqueued ms][payload]``.
The record's byte position in the file is the event's offset. An append is written to the OS (``os.write``)
before the send is acknowledged, so a killed or restarted process keeps it; ``fsync=True`` also survives a
machine crash. A torn record at the tail (a crash mid-write, never acknowledged) is cut off on open.
Everything is also kept in memory for delivery; there is no retention limit (dev/test only).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_REC = struct.Struct(">Iqq")
RECORD_HEADER_SIZE = _REC.size  # an event's offset advances by this plus its payload length


@dataclass(slots=True)
class StoredEvent:
    sequence_number: int
    offset: int
    enqueued_ms: int
    payload: bytes  # the whole AMQP message as delivered (x-opt-* annotations already spliced in)


class PartitionLog:
    """One partition's ordered commit log."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        self.events: list[StoredEvent] = []
        self.size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        pos = 0
        while pos + _REC.size <= len(data):
            length, seq, enq = _REC.unpack_from(data, pos)
            end = pos + _REC.size + length
            if end > len(data):
                break
            self.events.append(StoredEvent(seq, pos, enq, data[pos + _REC.size : end]))
            pos = end
        if pos != len(data):
            os.truncate(self.path, pos)
        self.size = pos

    @property
    def next_sequence_number(self) -> int:
        return self.events[-1].sequence_number + 1 if self.events else 0

    def next_offset(self) -> int:
        return self.size

    def append(self, payloads: list[bytes], enqueued_ms: int) -> list[StoredEvent]:
        """Write a group of events (already carrying their annotations) and return them."""
        buf = bytearray()
        out: list[StoredEvent] = []
        seq = self.next_sequence_number
        pos = self.size
        for payload in payloads:
            out.append(StoredEvent(seq, pos, enqueued_ms, payload))
            buf += _REC.pack(len(payload), seq, enqueued_ms)
            buf += payload
            pos += _REC.size + len(payload)
            seq += 1
        view = memoryview(buf)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)
        self.size = pos
        self.events.extend(out)
        return out

    def index_for_sequence(self, seq: int) -> int:
        """Index of the first event with sequence number >= ``seq``."""
        return self._bisect(lambda e: e.sequence_number, seq)

    def index_for_offset(self, offset: int) -> int:
        return self._bisect(lambda e: e.offset, offset)

    def index_for_time(self, ms: int) -> int:
        return self._bisect(lambda e: e.enqueued_ms, ms)

    def _bisect(self, key: Callable[[StoredEvent], int], value: int) -> int:
        lo, hi = 0, len(self.events)
        while lo < hi:
            mid = (lo + hi) // 2
            if key(self.events[mid]) < value:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def close(self) -> None:
        os.close(self._fd)
