"""Per-pod memory of the readings this process recently acknowledged, and of those in flight.

A client that got 429/503 resends the readings not acknowledged, or (an older client) the whole batch, with
the same ``reading_id``s. ``AckTable`` lets the pod that answered recognise them:

- a reading **acknowledged** by Event Hubs less than ``ttl_seconds`` ago (and among the last ``max_entries``)
  is answered as acknowledged again without being published a second time;
- a reading **in flight** (queued or being sent by this pod) is joined: the resend waits for the pending
  send instead of queueing a copy.

Keys are ``(home_id, reading_id)``. The home is part of the key because a token only authorises its own
homes: a client can only ever look up, or be answered from, readings of homes it may post for. Memory is
bounded: the acknowledged entries by count (``max_entries``, oldest first) and age (``ttl_seconds``), the
in-flight ones by the buffer's capacity (a slot leaves them when its send is acknowledged, fails or is
dropped). The table is a best-effort optimisation, never a correctness device: a reading evicted or
remembered by another pod is published again, and the consumer drops the copy by ``reading_id``.
``max_entries = 0`` turns it off (every resend is published again, as before this table existed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from homesec_producer.metrics import ProducerMetrics

Key = tuple[str, str]  # (home_id, reading_id)
S = TypeVar("S")


class _Generation:
    """The keys one send acknowledged, when, and how many of them the count bound already took (``start``)."""

    __slots__ = ("at", "keys", "serial", "start")

    def __init__(self, at: float, serial: int, keys: tuple[Key, ...]) -> None:
        self.at = at
        self.serial = serial
        self.keys = keys
        self.start = 0


class AckTable(Generic[S]):
    """Acknowledged keys (bounded by count and age) and in-flight slots (``S``, the buffer's); see above.

    Garbage-collector friendly: the acknowledged entries map a key (a tuple of two strings) to an int, and
    each send's keys are kept as one tuple, so the cyclic collector untracks them and a full collection does
    not walk the (up to ``max_entries``) entries; only the few hundred ``_Generation`` objects stay tracked.
    """

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
        self._acked: dict[Key, int] = {}  # key -> serial of the generation that acknowledged it
        self._generations: deque[_Generation] = deque()
        self._serial = 0
        self._in_flight: dict[Key, S] = {}
        metrics.ack_table_entries.labels(state="acknowledged").set_function(lambda: len(self._acked))
        metrics.ack_table_entries.labels(state="in_flight").set_function(lambda: len(self._in_flight))

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def __len__(self) -> int:
        return len(self._acked)

    def is_acknowledged(self, key: Key) -> bool:
        return key in self._acked

    def in_flight(self, key: Key) -> S | None:
        return self._in_flight.get(key)

    def track(self, key: Key, slot: S) -> None:
        """``slot`` is queued for ``key``; resends of it join it until ``acknowledge`` or ``forget``."""
        if self.max_entries:
            self._in_flight[key] = slot

    def forget(self, key: Key) -> None:
        """The in-flight slot of ``key`` failed or was dropped: a resend is published anew."""
        self._in_flight.pop(key, None)

    def acknowledge(self, keys: Sequence[Key]) -> None:
        """Event Hubs acknowledged ``keys`` (one send): remember them, then trim to the bounds."""
        if not self.max_entries:
            return
        self._serial += 1
        serial = self._serial
        self._generations.append(_Generation(self._clock(), serial, tuple(keys)))
        acked, in_flight = self._acked, self._in_flight
        for key in keys:
            in_flight.pop(key, None)
            acked[key] = serial
        self.expire()
        excess = len(acked) - self.max_entries
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
            dropped += self._drop(generation, len(generation.keys))
        if dropped:
            self._metrics.ack_table_evictions.labels(reason="age").inc(dropped)

    def _evict(self, count: int) -> None:
        """Drop ``count`` entries, oldest first (the count bound)."""
        generations, dropped = self._generations, 0
        while dropped < count and generations:
            generation = generations[0]
            dropped += self._drop(generation, generation.start + count - dropped)
            if generation.start >= len(generation.keys):
                generations.popleft()
        self._metrics.ack_table_evictions.labels(reason="count").inc(dropped)

    def _drop(self, generation: _Generation, stop: int) -> int:
        """Drop ``generation.keys[start:stop]`` (those it still holds); how many entries that removed."""
        acked, serial, dropped = self._acked, generation.serial, 0
        keys, stop = generation.keys, min(stop, len(generation.keys))
        for index in range(generation.start, stop):
            key = keys[index]
            if acked.get(key) == serial:  # else acknowledged again since, by a newer generation
                del acked[key]
                dropped += 1
        generation.start = stop
        return dropped
