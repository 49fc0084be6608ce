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
from array import array
from dataclasses import dataclass, field
from itertools import accumulate, pairwise

_MASK64 = (1 << 64) - 1
_SEQ_TS = struct.Struct("<qq")
_U16_MAX = 0xFFFF


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def id_hash(reading_id: uuid.UUID) -> int:
    """A 64-bit (signed) digest of a UUID; collisions inside one home's window are negligible (~2^-58)."""
    return _signed((reading_id.int >> 64) ^ (reading_id.int & _MASK64))


def key_hash(sensor_id: str, seq: int, ts_ms: int) -> int:
    """A stable 64-bit (signed, never 0) digest of ``(sensor_id, seq, ts)``; 0 means "no key" (no seq)."""
    raw = hashlib.blake2b(_SEQ_TS.pack(seq, ts_ms) + sensor_id.encode(), digest_size=8).digest()
    return _signed(int.from_bytes(raw, "little")) or 1


@dataclass(slots=True, eq=False)
class Window:
    """The applied readings still inside the re-send window, in arrival order, held in the packed state's own
    form so that a home's state unpacks and packs by copying bytes: the id and key digests as little-endian
    i64 in two byte arrays (membership is an aligned byte search), the arrivals as u16 steps from the oldest
    one (``first``; ``last`` is the newest), or, once a step does not fit (out of order, or more than 65.5 s
    apart), as a list of epoch milliseconds (``wide``)."""

    first: int = 0  # the oldest entry's arrival (steps form)
    last: int = 0  # the newest entry's arrival (steps form)
    steps: bytearray = field(default_factory=bytearray)  # u16 each, one fewer than the entries (steps form)
    wide: list[int] | None = None  # every entry's arrival, when the steps form cannot hold them
    ids: bytearray = field(default_factory=bytearray)  # id_hash(reading_id)
    keys: bytearray = field(default_factory=bytearray)  # key_hash(sensor_id, seq, ts); 0 when there is no seq

    @staticmethod
    def of(arrived: list[int], ids: list[int], keys: list[int]) -> Window:
        """A window of these entries (parallel lists, in arrival order)."""
        return Window.packed(arrived, array("q", ids).tobytes(), array("q", keys).tobytes())

    @staticmethod
    def packed(arrived: list[int], ids: bytes, keys: bytes) -> Window:
        """A window from its arrivals and its digests as packed (i64 each)."""
        window = Window(ids=bytearray(ids), keys=bytearray(keys))
        if arrived:
            steps = [b - a for a, b in pairwise(arrived)]
            if all(0 <= step <= _U16_MAX for step in steps):
                window.first, window.last = arrived[0], arrived[-1]
                window.steps = bytearray(array("H", steps).tobytes())
            else:
                window.wide = list(arrived)
        return window

    @staticmethod
    def stepped(first: int, steps: bytes, ids: bytes, keys: bytes) -> Window:
        """A window from its oldest arrival, the u16 steps after it and its digests as packed."""
        last = first + sum(array("H", steps)) if ids else 0
        return Window(first if ids else 0, last, bytearray(steps), None, bytearray(ids), bytearray(keys))

    @property
    def arrived(self) -> list[int]:
        """Each entry's arrival, epoch milliseconds."""
        if self.wide is not None:
            return list(self.wide)
        if not self.ids:
            return []
        return list(accumulate(array("H", self.steps), initial=self.first))

    def __len__(self) -> int:
        return len(self.ids) >> 3

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Window):
            return NotImplemented
        return self.ids == other.ids and self.keys == other.keys and self.arrived == other.arrived

    def __repr__(self) -> str:
        ids, keys = array("q", self.ids).tolist(), array("q", self.keys).tolist()
        return f"Window(arrived={self.arrived!r}, ids={ids!r}, keys={keys!r})"

    def holds(self, idh: int, keyh: int) -> bool:
        """True when the window holds the same reading id, or the same ``(sensor_id, seq, ts)``."""
        return _has(self.ids, idh) or (keyh != 0 and _has(self.keys, keyh))

    def add(self, arrived: int, idh: int, keyh: int) -> None:
        self._arrive(arrived)
        self.ids += idh.to_bytes(8, "little", signed=True)
        self.keys += keyh.to_bytes(8, "little", signed=True)

    def _arrive(self, at: int) -> None:
        """Record the arrival of a new entry (``add``: before its digests)."""
        if self.wide is not None:
            self.wide.append(at)
        elif not self.ids:
            self.first = self.last = at
        elif 0 <= at - self.last <= _U16_MAX:
            self.steps += (at - self.last).to_bytes(2, "little")
            self.last = at
        else:
            self.wide = [*self.arrived, at]

    def trim(self, horizon: int) -> None:
        """Forget the entries that arrived before ``horizon`` (ms); the others keep their order."""
        if not self.ids:
            return
        if self.wide is not None:
            self._trim_wide(horizon)
            return
        if self.first >= horizon:
            return  # nothing to drop (the usual case)
        n, steps, at, drop = len(self), self.steps, self.first, 0
        while at < horizon:  # arrivals never decrease in the steps form: the dropped ones lead
            drop += 1
            if drop == n:
                self.first = self.last = 0
                self.steps, self.ids, self.keys = bytearray(), bytearray(), bytearray()
                return
            at += steps[2 * drop - 2] | steps[2 * drop - 1] << 8
        self.first = at
        del steps[: 2 * drop], self.ids[: 8 * drop], self.keys[: 8 * drop]

    def _trim_wide(self, horizon: int) -> None:
        arrived = self.wide
        assert arrived is not None
        if min(arrived) >= horizon:
            return
        keep = [i for i, at in enumerate(arrived) if at >= horizon]
        ids, keys = self.ids, self.keys
        kept = Window.packed(
            [arrived[i] for i in keep],
            b"".join(ids[8 * i : 8 * i + 8] for i in keep),
            b"".join(keys[8 * i : 8 * i + 8] for i in keep),
        )
        self.first, self.last, self.steps, self.wide = kept.first, kept.last, kept.steps, kept.wide
        self.ids, self.keys = kept.ids, kept.keys


def _has(digests: bytearray, value: int) -> bool:
    """Whether ``digests`` (i64 each) holds ``value``: a byte search that counts aligned matches only."""
    needle = value.to_bytes(8, "little", signed=True)
    at = digests.find(needle)
    while at >= 0:
        if at & 7 == 0:
            return True
        at = digests.find(needle, at + 1)
    return False
