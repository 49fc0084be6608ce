"""``make run``'s progress table: the producer's and the consumer's counters, one line every few seconds.

Every line fits 100 columns. ``LEGEND`` says what each column counts; ``header()`` names the columns and is
printed again every ``HEADER_EVERY`` lines. ``drain`` waits until the consumer has rolled up every reading
the producer acknowledged (the stack's last line comes after it).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

WIDTH = 100
HEADER_EVERY = 30
RECEIVED = "homesec_producer_readings_received_total"
ACKNOWLEDGED = "homesec_producer_readings_acknowledged_total"
CONSUMED = "homesec_consumer_events_processed_total"
ROLLED_UP = "homesec_consumer_readings_rolled_up_total"
LAG = "homesec_consumer_partition_lag_events"
OWNED = "homesec_consumer_partitions_owned"
SHED = "homesec_producer_shed_total"

# (title, width), one space between columns (98 in all): the time column, then ``Counts.cells`` in order
COLUMNS = (("time", 7), ("received", 12), ("acknowledged", 12), ("consumed", 12), ("rolled up", 12),
           ("lag", 10), ("owned", 5), ("429s", 10), ("503s", 10))  # fmt: skip
LEGEND = (
    "columns: readings received by the producer, acknowledged by Event Hubs, consumed and rolled up\n"
    "into Blob by the consumer; lag: events not consumed yet; owned: partitions the consumer owns;\n"
    "429s: requests answered 429 (producer buffer full); 503s: requests answered 503 (too many at\n"
    "once, deadline passed, publish failed, shutting down)"
)


def scrape(url: str) -> dict[str, float]:
    """Each metric family's samples summed over their labels, from ``url``/metrics; also each sample summed
    per single label value, as ``name{label=value}`` (``{}`` when the endpoint does not answer)."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=3) as resp:  # noqa: S310 - loopback
            text = resp.read().decode()
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            keys = [sample.name, *(f"{sample.name}{{{k}={v}}}" for k, v in sample.labels.items())]
            for key in keys:
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


@dataclass(frozen=True)
class Counts:
    """One reading of both services' counters."""

    received: int
    acknowledged: int
    consumed: int
    rolled_up: int
    lag: int
    owned: int
    throttled: int  # 429s
    refused: int  # 503s

    @classmethod
    def of(cls, producer: dict[str, float], consumer: dict[str, float]) -> Counts:
        return cls(
            received=int(producer.get(RECEIVED, 0)),
            acknowledged=int(producer.get(ACKNOWLEDGED, 0)),
            consumed=int(consumer.get(CONSUMED, 0)),
            rolled_up=int(consumer.get(ROLLED_UP, 0)),
            lag=int(consumer.get(LAG, 0)),
            owned=int(consumer.get(OWNED, 0)),
            throttled=int(producer.get(SHED + "{status=429}", 0)),
            refused=int(producer.get(SHED + "{status=503}", 0)),
        )

    @classmethod
    def scrape(cls, producer_admin_url: str, consumer_admin_url: str) -> Counts:
        return cls.of(scrape(producer_admin_url), scrape(consumer_admin_url))

    @property
    def drained(self) -> bool:
        """The consumer has rolled up every reading the producer acknowledged."""
        return self.rolled_up >= self.acknowledged

    def cells(self) -> tuple[int, ...]:
        return (self.received, self.acknowledged, self.consumed, self.rolled_up, self.lag, self.owned,
                self.throttled, self.refused)  # fmt: skip


def header() -> str:
    return " ".join(f"{title:>{width}}" for title, width in COLUMNS)


def line(counts: Counts, when: str) -> str:
    """``counts`` under ``header()``; ``when`` fills the time column (``12s``, ``final``)."""
    widths = [width for _, width in COLUMNS]
    cells = [f"{when:>{widths[0]}}"]
    cells += [f"{value:>{width},}" for value, width in zip(counts.cells(), widths[1:], strict=True)]
    return " ".join(cells)


def drain(
    read: Callable[[], Counts],
    timeout: float,
    give_up: Callable[[], bool] = lambda: False,
    poll: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Counts, float]:
    """Read ``read()`` every ``poll`` s until it is ``drained``, ``timeout`` s have passed or ``give_up()``;
    return the last counts and the seconds waited."""
    started = clock()
    counts = read()
    while not counts.drained and clock() - started < timeout and not give_up():
        sleep(poll)
        counts = read()
    return counts, clock() - started


def drain_report(counts: Counts, waited: float, timeout: float) -> str:
    if counts.drained:
        return f"drained: every acknowledged reading rolled up ({counts.acknowledged:,}) after {waited:.0f}s"
    missing = counts.acknowledged - counts.rolled_up
    why = f"after {timeout:g}s" if waited >= timeout else "interrupted"
    return f"not drained ({why}): {missing:,} acknowledged readings not rolled up yet"
