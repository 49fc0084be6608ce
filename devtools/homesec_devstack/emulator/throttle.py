"""Throughput units: the service's ingress limits, and auto-inflate.

One TU allows 1000 events/s or 1 MB/s of ingress, whichever comes first; above that the service answers
``com.microsoft:server-busy``. Two token buckets (events, bytes) hold one second of allowance each. With
auto-inflate on, a throttled request raises the unit count by one (at most every ``inflate_delay`` seconds),
up to ``auto_inflate_max``, as the service does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EVENTS_PER_TU = 1000
BYTES_PER_TU = 1024 * 1024


class ThroughputLimiter:
    def __init__(
        self,
        units: int | None,
        auto_inflate_max: int | None = None,
        inflate_delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.inflate_delay = inflate_delay
        self.throttled = 0
        self.configure(units, auto_inflate_max)

    def configure(self, units: int | None, auto_inflate_max: int | None) -> None:
        self.units = units
        self.auto_inflate_max = auto_inflate_max
        now = self.clock()
        self._events = float(units or 0) * EVENTS_PER_TU
        self._bytes = float(units or 0) * BYTES_PER_TU
        self._stamp = now
        self._last_inflate = now

    def _refill(self, now: float) -> None:
        assert self.units is not None
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        cap_e, cap_b = self.units * EVENTS_PER_TU, self.units * BYTES_PER_TU
        self._events = min(cap_e, self._events + elapsed * cap_e)
        self._bytes = min(cap_b, self._bytes + elapsed * cap_b)

    def admit(self, events: int, size: int) -> bool:
        """Take allowance for one send; ``False`` means the send is throttled (server-busy)."""
        if self.units is None:
            return True
        now = self.clock()
        self._refill(now)
        cap_e, cap_b = self.units * EVENTS_PER_TU, self.units * BYTES_PER_TU
        # A send larger than one second's allowance passes when the buckets are full (and overdraws them).
        if (self._events >= min(events, cap_e)) and (self._bytes >= min(size, cap_b)):
            self._events -= events
            self._bytes -= size
            return True
        self.throttled += 1
        if (
            self.auto_inflate_max is not None
            and self.units < self.auto_inflate_max
            and now - self._last_inflate >= self.inflate_delay
        ):
            self.units += 1
            self._last_inflate = now
        return False
