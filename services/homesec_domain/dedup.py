"""The bounded recent-reading window of one home: duplicate detection and sequence-gap settlement.

A reading stays *pending* while its timestamp is within the lateness bound of the home's watermark
(``ts >= watermark - lateness``). Pending readings are remembered by a 64-bit hash of their ``reading_id``
and by ``(sensor_id, seq)``, so a redelivered reading (same ``reading_id``) or a re-sent one (new id, same
sensor sequence number) is recognised as a duplicate. A reading older than the bound is *late*: it is
dropped whether or not it was seen before, so memory stays bounded by the readings of one lateness window.

When a pending reading falls out of the window it is *settled*: its sequence number joins the sensor's
settled range ``[lo, hi]`` with a count ``n``. Any number missing from a settled range can no longer
arrive (it would be late), so ``hi - lo + 1 - n`` is the number of readings lost for good.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NamedTuple

_MASK64 = (1 << 64) - 1


def id_hash(reading_id: uuid.UUID) -> int:
    """A 64-bit (signed) digest of a UUID; collisions inside one home's window are negligible (~2^-58)."""
    value = (reading_id.int >> 64) ^ (reading_id.int & _MASK64)
    return value - (1 << 64) if value >= (1 << 63) else value


class Pending(NamedTuple):
    """One accepted reading still inside the lateness window (a tuple: ordered for a canonical encoding,
    and cheap to rebuild when a packed state is unpacked)."""

    ts: int  # epoch milliseconds
    sensor_id: str
    seq: int  # -1 when the reading carries no sequence number
    idh: int  # id_hash(reading_id)


@dataclass(slots=True)
class SeqRange:
    """Settled sequence numbers of one sensor: lowest, highest, how many distinct ones arrived."""

    lo: int = -1
    hi: int = -1
    n: int = 0

    def add(self, seq: int) -> None:
        if self.n == 0:
            self.lo = self.hi = seq
        else:
            self.lo = min(self.lo, seq)
            self.hi = max(self.hi, seq)
        self.n += 1

    def contains(self, seq: int) -> bool:
        return self.n > 0 and self.lo <= seq <= self.hi

    @property
    def gaps(self) -> int:
        """Sequence numbers missing for good inside the settled range."""
        return self.hi - self.lo + 1 - self.n if self.n else 0


def is_duplicate(window: list[Pending], idh: int, sensor_id: str, seq: int) -> bool:
    """True when the window holds the same reading id, or the same sensor sequence number."""
    for _, entry_sensor, entry_seq, entry_idh in window:  # unpacked: faster than attribute access
        if entry_idh == idh or (entry_seq == seq and seq >= 0 and entry_sensor == sensor_id):
            return True
    return False


def settle(window: list[Pending], horizon: int, ranges: dict[str, SeqRange]) -> list[Pending]:
    """Move entries older than ``horizon`` (ms) out of the window into ``ranges``; return the new window."""
    for ts, _, _, _ in window:
        if ts < horizon:
            break
    else:
        return window  # nothing to settle (the usual case while the watermark creeps forward)
    keep: list[Pending] = []
    for entry in window:
        if entry.ts >= horizon:
            keep.append(entry)
        elif entry.seq >= 0:
            ranges.setdefault(entry.sensor_id, SeqRange()).add(entry.seq)
    return keep
