"""Per-pod memory of the readings this process recently acknowledged, and of those in flight.

A client that got 429/503 resends the readings not acknowledged, or (an older client) the whole batch, with
the same ``reading_id``s. ``AckTable`` lets the pod that answered recognise them:

- a reading **acknowledged** by Event Hubs less than ``ttl_seconds`` ago (and among the last ``max_entries``)
  is answered as acknowledged again without being published a second time;
- a reading **in flight** (queued or being sent by this pod) is joined: the resend waits for the pending
  send instead of queueing a copy.

A reading is identified by **(home_id, reading_id)**: entries are indexed by reading ID and a hit counts
only when the home matches. A token only authorises its own homes, so a client can only ever be answered
from, or join, readings of homes it may post for; a reading ID reused by another home is a different
reading (it may displace the first one's entry: that reading is then published again if resent, never
answered falsely). Memory is bounded: the acknowledged entries by count (``max_entries``, oldest first) and
age (``ttl_seconds``), the in-flight ones by the buffer's capacity (a slot leaves them when its send is
acknowledged, fails or is dropped). The table is a best-effort optimisation, never a correctness device: a
reading evicted, or remembered by another pod, is published again and the consumer drops the copy by
``reading_id``. ``max_entries = 0`` turns it off (every resend is published again, as before it existed).

Cheap on the hot path and for the garbage collector: keys are the readings' own ID strings (hashes cached),
values are home ID strings, and each send's IDs are kept as one tuple, so the cyclic collector untracks
them and a full collection does not walk the entries; only the ``_Generation`` objects stay tracked.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Generic, TypeVar

from homesec_domain.validation import AcceptedReading

from homesec_producer.metrics import ProducerMetrics

S = TypeVar("S")


def _ignore(reading_id: str, slot: object) -> None:
    """``track`` while the table is off."""


class _Generation:
    """The reading IDs one send acknowledged, when, and how many the count bound already took (``start``)."""

    __slots__ = ("at", "ids", "start")

    def __init__(self, at: float, ids: tuple[str, ...]) -> None:
        self.at = at
        self.ids = ids
        self.start = 0


class AckTable(Generic[S]):
    """Acknowledged readings (bounded by count and age) and in-flight slots (``S``, the buffer's)."""

    def __init__(
        self,
        max_entries: int,
        ttl_seconds: float,
        metrics: ProducerMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self._metrics = metrics
        self._clock = clock
        self._acked: dict[str, str] = {}  # reading ID -> home ID
        self._generations: deque[_Generation] = deque()
        self._in_flight: dict[str, S] = {}  # reading ID -> slot (the caller checks the slot's home)
        # The hot path's look-ups, bound once (a C call per reading, no Python frame):
        # ``acknowledged_home(reading_id)`` -> the home it was acknowledged for, or None;
        # ``in_flight(reading_id)`` -> the slot in flight under that ID (of whichever home: compare), or None;
        # ``track(reading_id, slot)``: the slot is queued; resends join it until acknowledged or forgotten.
        self.acknowledged_home: Callable[[str], str | None] = self._acked.get
        self.in_flight: Callable[[str], S | None] = self._in_flight.get
        self.track: Callable[[str, S], None] = self._in_flight.__setitem__ if max_entries else _ignore
        metrics.ack_table_entries.labels(state="acknowledged").set_function(lambda: len(self._acked))
        metrics.ack_table_entries.labels(state="in_flight").set_function(lambda: len(self._in_flight))

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def __len__(self) -> int:
        return len(self._acked)

    def is_acknowledged(self, home_id: str, reading_id: str) -> bool:
        return self._acked.get(reading_id) == home_id

    def forget(self, reading_id: str, slot: S) -> None:
        """``slot`` failed or was dropped: a resend is published anew."""
        if self._in_flight.get(reading_id) is slot:
            del self._in_flight[reading_id]

    def acknowledge(self, readings: Sequence[AcceptedReading]) -> None:
        """Event Hubs acknowledged ``readings`` (one send): remember them, then trim to the bounds."""
        if not self.max_entries:
            return
        ids = tuple([r.reading_id for r in readings])
        deque(map(self._in_flight.pop, ids, repeat(None)), maxlen=0)  # a C loop: pop each, default None
        self._acked.update(zip(ids, [r.home_id for r in readings], strict=True))
        self._generations.append(_Generation(self._clock(), ids))
        self.expire()
        excess = len(self._acked) - self.max_entries
        if excess > 0:
            self._evict(excess)

    def expire(self) -> None:
        """Drop the acknowledged entries older than ``ttl_seconds`` (O(1) when there are none)."""
        generations = self._generations
        if not generations:
            return
        horizon = self._clock() - self.ttl
        dropped = 0
        while generations and generations[0].at < horizon:
            generation = generations.popleft()
            dropped += self._drop(generation, len(generation.ids))
        if dropped:
            self._metrics.ack_table_evictions.labels(reason="age").inc(dropped)

    def _evict(self, count: int) -> None:
        """Drop ``count`` entries, oldest first (the count bound)."""
        generations, dropped = self._generations, 0
        while dropped < count and generations:
            generation = generations[0]
            dropped += self._drop(generation, generation.start + count - dropped)
            if generation.start >= len(generation.ids):
                generations.popleft()
        self._metrics.ack_table_evictions.labels(reason="count").inc(dropped)

    def _drop(self, generation: _Generation, stop: int) -> int:
        """Drop ``generation.ids[start:stop]`` (those still remembered); how many entries that removed."""
        acked, ids = self._acked, generation.ids
        stop = min(stop, len(ids))
        before = len(acked)
        deque(map(acked.pop, ids[generation.start : stop], repeat(None)), maxlen=0)
        generation.start = stop
        return before - len(acked)
