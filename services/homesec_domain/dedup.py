"""The re-send window of one home: recognises a reading that a client or the producer sent again.

A reading is a *re-send* of one already applied when it has the same ``reading_id``, or the same
``(sensor_id, seq, ts)`` (a client that re-sends with a fresh ID). Both keys are remembered as 64-bit digests
for every applied reading whose event *arrived* (was enqueued in Event Hubs) within ``resend_window`` of the
home's newest arrival. The window is over arrival time, not event time, because a re-send is a new event
that arrives shortly after the first copy, however old the reading itself is: it covers the producer's and
the sensors' retry horizon, and memory stays bounded by the readings of one window.

Redelivery of the *same event* (a replay from a checkpoint after a restart or a rebalance) is not this
module's business: the fold recognises it exactly by partition position (``HomeState.applied``).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import NamedTuple

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def id_hash(reading_id: uuid.UUID) -> int:
    """A 64-bit (signed) digest of a UUID; collisions inside one home's window are negligible (~2^-58)."""
    return _signed((reading_id.int >> 64) ^ (reading_id.int & _MASK64))


def key_hash(sensor_id: str, seq: int, ts_ms: int) -> int:
    """A stable 64-bit (signed, never 0) digest of ``(sensor_id, seq, ts)``; 0 means "no key" (no seq)."""
    raw = hashlib.blake2b(f"{sensor_id}\x00{seq}\x00{ts_ms}".encode(), digest_size=8).digest()
    return _signed(int.from_bytes(raw, "little")) or 1


class Recent(NamedTuple):
    """One applied reading still inside the re-send window (a tuple: cheap to rebuild when unpacked)."""

    arrived: int  # the event's enqueued time, epoch milliseconds
    idh: int  # id_hash(reading_id)
    keyh: int  # key_hash(sensor_id, seq, ts), 0 when the reading carries no sequence number


def is_resent(window: list[Recent], idh: int, keyh: int) -> bool:
    """True when the window holds the same reading id, or the same ``(sensor_id, seq, ts)``."""
    for _, entry_idh, entry_keyh in window:  # noqa: SIM110 - a plain loop over unpacked tuples is fastest
        if entry_idh == idh or (entry_keyh == keyh and keyh != 0):
            return True
    return False


def trim(window: list[Recent], horizon: int) -> list[Recent]:
    """The entries that arrived at or after ``horizon`` (ms), in their order."""
    for arrived, _, _ in window:
        if arrived < horizon:
            break
    else:
        return window  # nothing to drop (the usual case)
    return [entry for entry in window if entry.arrived >= horizon]
