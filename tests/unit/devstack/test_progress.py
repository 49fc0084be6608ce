"""``make run``'s progress table: every line fits 100 columns, the columns count what they say (429s apart
from 503s), and the final line waits until the consumer has rolled up every acknowledged reading."""

from __future__ import annotations

import re

from homesec_devstack import progress
from homesec_devstack.progress import Counts

BIG = Counts(987_654_321, 987_654_321, 987_654_321, 987_654_321, 9_876_543, 32, 98_765_432, 98_765_432)


def test_every_line_fits_100_columns_even_with_large_counts() -> None:
    lines = [progress.header(), progress.line(BIG, "86400s"), progress.line(BIG, "final")]
    lines += progress.LEGEND.splitlines()
    assert max(len(line) for line in lines) <= progress.WIDTH
    assert progress.line(BIG, "12s").split() == ["12s", *(f"{v:,}" for v in BIG.cells())]


def test_columns_line_up_under_their_titles() -> None:
    header, row = progress.header(), progress.line(BIG, "final")
    title_ends = [m.end() for m in re.finditer(r"\S+", header.replace("rolled up", "rolled_up"))]
    value_ends = [m.end() for m in re.finditer(r"\S+", row)]
    assert title_ends == value_ends  # each figure right-aligned under its title


def test_429s_and_503s_are_counted_apart_from_the_labelled_samples() -> None:
    producer = {progress.SHED: 7.0, progress.SHED + "{status=429}": 5.0, progress.SHED + "{status=503}": 2.0,
                progress.RECEIVED: 100.0, progress.ACKNOWLEDGED: 90.0}  # fmt: skip
    consumer = {progress.ROLLED_UP: 80.0, progress.CONSUMED: 85.0, progress.OWNED: 16.0}
    counts = Counts.of(producer, consumer)
    assert (counts.throttled, counts.refused) == (5, 2)
    assert (counts.received, counts.acknowledged, counts.consumed, counts.rolled_up) == (100, 90, 85, 80)
    assert "429s" in progress.header() and "503s" in progress.header()
    assert "503s" not in progress.LEGEND.split("429s")[1].split(";")[0], "429s described on their own"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _counts(acknowledged: int, rolled_up: int) -> Counts:
    return Counts(acknowledged, acknowledged, acknowledged, rolled_up, 0, 16, 0, 0)


def test_drain_waits_until_rolled_up_reaches_acknowledged() -> None:
    time = FakeTime()
    rolled = iter([8_240, 8_240, 9_500, 10_000, 10_000])
    counts, waited = progress.drain(lambda: _counts(10_000, next(rolled)), 60, clock=time.clock,
                                    sleep=time.sleep)  # fmt: skip
    assert counts.drained and counts.rolled_up == 10_000
    assert waited == 1.5
    assert progress.drain_report(counts, waited, 60).startswith("drained: every acknowledged reading")


def test_drain_gives_up_after_the_timeout_and_says_so() -> None:
    time = FakeTime()
    counts, waited = progress.drain(lambda: _counts(10_000, 8_240), 5, clock=time.clock, sleep=time.sleep)
    assert not counts.drained
    assert waited >= 5
    assert progress.drain_report(counts, waited, 5) == (
        "not drained (after 5s): 1,760 acknowledged readings not rolled up yet"
    )


def test_drain_stops_when_asked() -> None:
    time = FakeTime()
    counts, waited = progress.drain(lambda: _counts(10, 0), 60, give_up=lambda: time.now >= 1,
                                    clock=time.clock, sleep=time.sleep)  # fmt: skip
    assert waited == 1.0
    assert "interrupted" in progress.drain_report(counts, waited, 60)
