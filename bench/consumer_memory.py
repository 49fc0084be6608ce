"""Consumer memory benchmark: resident memory per home with 100,000 homes in state.

Drives the real ``PartitionState`` (packed per-home fold state, the structure the consumer holds) with
5 sensors per home reporting once a minute until the re-send window is in steady state (300 s of arrivals),
then measures the process's resident set growth (``VmRSS``) and the Python heap growth (tracemalloc)
per home. Baseline of the same run: the memory of just the home-ID keys in a dict (the least any
per-home map can cost).

``python bench/consumer_memory.py [--homes 100000] [--minutes 7]`` (``make bench-consumer``).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from homesec_domain.models import Reading, SensorType
from homesec_runtime import native

if TYPE_CHECKING:  # these import the fold: only after native.enable (main)
    from homesec_consumer.partition import PartitionState

SENSORS = [("door-1", SensorType.DOOR, "open"), ("window-1", SensorType.WINDOW, "closed"),
           ("motion-1", SensorType.MOTION, "clear"), ("co-1", SensorType.CO, None),
           ("temp-1", SensorType.TEMPERATURE, None)]  # fmt: skip
NO_BODY = b""


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def fill(part: PartitionState, homes: list[str], minutes: int) -> int:
    from homesec_consumer.partition import InboundEvent
    from homesec_consumer.ports import Position
    from homesec_domain.fold import HomeState

    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    seq = 0
    for home in homes:
        part.install(HomeState(home))
    for m in range(minutes):
        for i, home in enumerate(homes):
            batch = []
            for j, (sensor_id, stype, state) in enumerate(SENSORS):
                ts = t0 + timedelta(minutes=m, seconds=(i + 7 * j) % 60)
                reading = Reading.model_construct(
                    reading_id=uuid.uuid4(), home_id=home, sensor_id=sensor_id, sensor_type=stype, ts=ts,
                    value=None if state else 21.5, state=state, seq=m,
                )  # fmt: skip
                arrived = int(ts.timestamp() * 1000) + 1500  # enqueued 1.5 s after the reading's time
                batch.append((InboundEvent(NO_BODY, Position(seq, str(seq)), arrived), reading))
                seq += 1
            part.apply(batch)
    return seq


def main() -> None:
    native.enable("auto")  # the compiled fold, as in the consumer (before the fold is imported)
    from homesec_consumer.partition import PartitionState
    from homesec_domain.fold import FoldConfig

    p = argparse.ArgumentParser()
    p.add_argument("--homes", type=int, default=100_000)
    p.add_argument("--minutes", type=int, default=7)
    p.add_argument("--resend-window", type=int, default=300, help="seconds (the consumer's default: 300)")
    a = p.parse_args()
    homes = [f"home-{i:06d}" for i in range(a.homes)]

    part = PartitionState("0", FoldConfig(lateness_ms=120_000, resend_window_ms=a.resend_window * 1000))
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    events = fill(part, [f"home-{i:06d}" for i in range(a.homes)], a.minutes)
    elapsed = time.perf_counter() - start
    gc.collect()
    grown = rss_bytes() - before
    base = rss_bytes()  # baseline after the measurement, so it cannot reuse freed memory
    keys_only = dict.fromkeys(f"home-{i:06d}" for i in range(a.homes))
    gc.collect()
    baseline = rss_bytes() - base
    assert len(keys_only) == a.homes
    sizes = sorted(len(v) for v in part.homes.values())
    sample = part.state_of(homes[0])
    print(json.dumps({
        "homes": a.homes, "resend_window_s": a.resend_window, "events": events, "fold_events_per_s": events / elapsed,
        "rss_growth_bytes": grown, "rss_bytes_per_home": grown / a.homes,
        "baseline_key_dict_bytes_per_home": baseline / a.homes, "ratio_to_baseline": grown / baseline,
        "packed_state_bytes_median": sizes[len(sizes) // 2], "packed_state_bytes_max": sizes[-1],
        "window_entries_per_home": len(sample.window), "open_hours": len(sample.hours),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
