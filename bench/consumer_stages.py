"""The consumer's own work per event, step by step, with the compiled fold and with the plain one.

``python bench/consumer_stages.py [--homes 1000] [--minutes 12] [--repeat 3]`` (``make bench-consumer``).
Builds the interleaved scenario's events the way the SDK's receiver does (``EventData`` from a pyamqp
message: body, sequence number, offset, enqueued time), then replays them in batches of 60, partitions
interleaved, through the consumer's real code: ``inbound`` (event conversion), ``decode_reading`` and
``PartitionState.apply`` (unpack, dedup, fold, repack); no I/O. Each mode runs in its own process
(``HOMESEC_PURE_PYTHON`` is read by ``native.enable``), alternately, ``--repeat`` times; the plain fold is the
baseline of the ratio. GC as in the service (``tune_gc``). ``--cpu``: time each step by the process's CPU time
instead of the wall clock, for a figure that holds on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.eventhub import EventData
from azure.eventhub._pyamqp.message import Message
from consumer_throughput import SENSORS, readings_of
from homesec_domain.events import decode_reading, encode_reading
from homesec_domain.partitioning import partition_for
from homesec_runtime import native
from homesec_runtime.gc_tuning import tune_gc

if TYPE_CHECKING:
    from homesec_consumer.partition import PartitionState

CPU_CLOCK = "BENCH_CPU_CLOCK"  # "1": the child times steps by process CPU time (``--cpu``)
PARTITIONS = 16
BATCH = 60


def events(homes: int, minutes: int) -> dict[str, list[EventData]]:
    """The throughput benchmark's readings (``readings_of``), minute by minute across homes as its interleaved
    scenario publishes them, as received events with consecutive positions per partition."""
    rng = random.Random(1)
    t0 = datetime.now(UTC) - timedelta(minutes=minutes + 5)
    by_home = {f"home-{h:06d}": readings_of(f"home-{h:06d}", minutes, t0, rng) for h in range(homes)}
    per_minute = len(SENSORS)
    ids = [str(p) for p in range(PARTITIONS)]
    parts: dict[str, list[EventData]] = {pid: [] for pid in ids}
    for m in range(minutes):
        for home, readings in by_home.items():
            received = parts[partition_for(home, ids)]
            for r in readings[m * per_minute : (m + 1) * per_minute]:
                seq = len(received)
                ann: dict[str | bytes, Any] = {b"x-opt-sequence-number": seq, b"x-opt-offset": str(seq * 300).encode(),
                       b"x-opt-enqueued-time": 1_795_600_000_123, b"x-opt-partition-key": home.encode()}  # fmt: skip
                received.append(
                    EventData._from_message(Message(data=[encode_reading(r)], message_annotations=ann))
                )
    return parts


def child(homes: int, minutes: int) -> dict[str, Any]:
    native.enable("auto")  # the compiled fold unless HOMESEC_PURE_PYTHON=1; before the fold is imported
    from homesec_consumer.adapters.eventhub import inbound
    from homesec_consumer.partition import PartitionState
    from homesec_domain.fold import FoldConfig

    parts = events(homes, minutes)
    batches = [(p, evs[i : i + BATCH]) for p, evs in parts.items() for i in range(0, len(evs), BATCH)]
    batches.sort(key=lambda b: b[1][0].sequence_number or 0)  # partitions interleaved, as received
    states: dict[str, PartitionState] = {p: PartitionState(p, FoldConfig()) for p in parts}
    tune_gc(10_000)
    spent = {"inbound": 0.0, "decode": 0.0, "apply": 0.0}
    clock = time.process_time if os.environ.get(CPU_CLOCK) == "1" else time.perf_counter
    for pid, batch in batches:
        t0 = clock()
        inbound_events = [inbound(e) for e in batch]
        t1 = clock()
        items = [(e, decode_reading(e.body)) for e in inbound_events]
        t2 = clock()
        part = states[pid]
        part.apply(items)
        t3 = clock()
        spent["inbound"] += t1 - t0
        spent["decode"] += t2 - t1
        spent["apply"] += t3 - t2
    n = sum(len(b) for _, b in batches)
    us = {k: 1e6 * v / n for k, v in spent.items()}
    return {"compiled": native.ACTIVE, "events": n, "us_per_event": {**us, "total": sum(us.values())}}


def run(mode: str, homes: int, minutes: int, cpu: bool = False) -> dict[str, Any]:
    env = {
        **os.environ,
        "HOMESEC_PURE_PYTHON": "1" if mode == "plain" else "0",
        CPU_CLOCK: "1" if cpu else "0",
    }
    argv = [sys.executable, __file__, "--child", "--homes", str(homes), "--minutes", str(minutes)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--homes", type=int, default=1000)
    p.add_argument("--minutes", type=int, default=12)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cpu", action="store_true", help="process CPU time instead of the wall clock")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.homes, a.minutes)))
        return
    runs = [{"plain": run("plain", a.homes, a.minutes, a.cpu), "compiled": run("compiled", a.homes, a.minutes, a.cpu)}
            for _ in range(a.repeat)]  # fmt: skip
    if not all(r["compiled"]["compiled"] for r in runs):
        raise SystemExit("consumer_stages: the compiled fold did not load (make native)")
    speedups = [r["plain"]["us_per_event"]["total"] / r["compiled"]["us_per_event"]["total"] for r in runs]
    print(json.dumps({"homes": a.homes, "minutes": a.minutes, "runs": runs, "speedup_total": speedups,
                      "median_speedup_total": statistics.median(speedups)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
