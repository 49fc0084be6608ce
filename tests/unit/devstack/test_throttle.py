"""Throughput-unit limiter with an injected clock."""

from __future__ import annotations

from homesec_devstack.emulator.throttle import BYTES_PER_TU, ThroughputLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_unlimited_when_no_units() -> None:
    limiter = ThroughputLimiter(None)
    assert all(limiter.admit(10_000, 10_000_000) for _ in range(100))
    assert limiter.throttled == 0


def test_one_tu_allows_1000_events_per_second() -> None:
    clock = Clock()
    limiter = ThroughputLimiter(1, clock=clock)
    assert limiter.admit(600, 1000)
    assert not limiter.admit(600, 1000)
    assert limiter.throttled == 1
    clock.now += 0.1  # 400 left + 100 refilled = 500 < 600
    assert not limiter.admit(600, 1000)
    clock.now += 0.11  # >= 600
    assert limiter.admit(600, 1000)
    assert not limiter.admit(100, 1)


def test_bytes_limit_applies_too() -> None:
    clock = Clock()
    limiter = ThroughputLimiter(1, clock=clock)
    assert limiter.admit(1, BYTES_PER_TU // 2 + 1)
    assert not limiter.admit(1, BYTES_PER_TU // 2 + 1)


def test_auto_inflate_steps_up_to_the_maximum() -> None:
    clock = Clock()
    limiter = ThroughputLimiter(1, auto_inflate_max=3, inflate_delay=1.0, clock=clock)
    limiter.admit(1000, 1)
    for _ in range(10):
        clock.now += 1.0
        limiter.admit(100_000, 1)
    assert limiter.units == 3
