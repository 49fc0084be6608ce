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
import struct
import uuid
from dataclasses import dataclass, field

_MASK64 = (1 << 64) - 1
_SEQ_TS = struct.Struct("<qq")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def id_hash(reading_id: uuid.UUID) -> int:
    """A 64-bit (signed) digest of a UUID; collisions inside one home's window are negligible (~2^-58)."""
    return _signed((reading_id.int >> 64) ^ (reading_id.int & _MASK64))


def key_hash(sensor_id: str, seq: int, ts_ms: int) -> int:
    """A stable 64-bit (signed, never 0) digest of ``(sensor_id, seq, ts)``; 0 means "no key" (no seq)."""
    raw = hashlib.blake2b(_SEQ_TS.pack(seq, ts_ms) + sensor_id.encode(), digest_size=8).digest()
    return _signed(int.from_bytes(raw, "little")) or 1


@dataclass(slots=True)
class Window:
    """The applied readings still inside the re-send window, as three parallel lists (so that membership is
    a C-level ``in`` and packing is one array conversion per list), in arrival order."""

    arrived: list[int] = field(default_factory=list)  # the event's enqueued time, epoch milliseconds
    ids: list[int] = field(default_factory=list)  # id_hash(reading_id)
    keys: list[int] = field(default_factory=list)  # key_hash(sensor_id, seq, ts); 0 when there is no seq

    def __len__(self) -> int:
        return len(self.ids)

    def holds(self, idh: int, keyh: int) -> bool:
        """True when the window holds the same reading id, or the same ``(sensor_id, seq, ts)``."""
        return idh in self.ids or (keyh != 0 and keyh in self.keys)

    def add(self, arrived: int, idh: int, keyh: int) -> None:
        self.arrived.append(arrived)
        self.ids.append(idh)
        self.keys.append(keyh)

    def trim(self, horizon: int) -> None:
        """Forget the entries that arrived before ``horizon`` (ms); the others keep their order."""
        arrived = self.arrived
        if not arrived or min(arrived) >= horizon:
            return  # nothing to drop (the usual case)
        keep = [i for i, at in enumerate(arrived) if at >= horizon]
        self.arrived = [arrived[i] for i in keep]
        self.ids = [self.ids[i] for i in keep]
        self.keys = [self.keys[i] for i in keep]
