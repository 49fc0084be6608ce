"""A/B of two producer configurations through the emulator, interleaved, optionally with the producer on a
core of its own: the producer pinned to CPU 0, the emulator and the load generator to CPU 1 (``taskset``).

Each pair starts a fresh emulator and producer for A, then for B (the order alternates between pairs), warms
up like ``make bench-producer`` (every gateway once), then measures one simulator run at ``--rate``: p50/p99
of the 202s and the producer's CPU per 1,000 acknowledged readings. A and B are settings given as
``KEY=VALUE`` (``HOMESEC_PRODUCER_`` is prepended).

``python bench/producer_ab.py --a PUBLISH_LINGER_SECONDS=0 --b PUBLISH_LINGER_SECONDS=0.01 [--pairs 5]
[--rate 16700] [--duration 15] [--pin] [--write docs/benchmarks.md]`` (``make bench-producer-ab``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import producer_throughput as pt
from docsection import Row, write_section
from homesec_devstack.emulator_process import EmulatorProcess

HEAD = "## Producer: A/B on a pinned core"


def pin(pid: int, cpu: int) -> None:
    subprocess.run(["taskset", "-pc", str(cpu), str(pid)], check=True, stdout=subprocess.DEVNULL)


def one(settings: dict[str, str], rate: float, duration: float, pinned: bool) -> dict[str, Any]:
    """Fresh emulator and producer with ``settings``; one measured run."""
    extra = {f"HOMESEC_PRODUCER_{key}": value for key, value in settings.items()}
    mine = os.sched_getaffinity(0)
    with tempfile.TemporaryDirectory() as tmp:
        emulator = EmulatorProcess(Path(tmp) / "eh", log_dir=Path(tmp) / "logs").start()
        try:
            producer, url = pt.start_producer(emulator, Path(tmp) / "logs", extra)
            try:
                pt.warm_up(url, pt.CONCURRENCY)
                if pinned:
                    pin(producer.pid, 0)
                    pin(emulator.process.pid, 1)
                    os.sched_setaffinity(0, {1})  # the simulator, started from here, inherits it
                return pt.measured(producer.pid, emulator.process.pid, url, rate, duration, pt.CONCURRENCY)
            finally:
                os.sched_setaffinity(0, mine)
                producer.stop()
        finally:
            emulator.stop()


def run(
    a: dict[str, str], b: dict[str, str], pairs: int, rate: float, duration: float, pinned: bool
) -> list[dict[str, dict[str, Any]]]:
    results = []
    for i in range(pairs):
        order = [("A", a), ("B", b)] if i % 2 == 0 else [("B", b), ("A", a)]
        results.append({name: one(settings, rate, duration, pinned) for name, settings in order})
    return results


def summary(results: list[dict[str, dict[str, Any]]]) -> list[Row]:
    """The summary table's rows: B against A, medians over the pairs (producer CPU per reading, p99)."""

    def median(name: str, key: str) -> float:
        values = [
            r[name]["cpu_ms_per_1000"]["producer"] if key == "cpu" else r[name]["p99_ms"] for r in results
        ]
        return float(statistics.median(values))

    command = "`make bench-producer-ab`"
    cpu_a, cpu_b, p99_a, p99_b = (
        median("A", "cpu"),
        median("B", "cpu"),
        median("A", "p99"),
        median("B", "p99"),
    )
    return [
        Row(f"producer A/B, B's CPU per 1,000 readings (median): {cpu_b:g} ms", f"A: {cpu_a:g} ms",
            f"{cpu_b / cpu_a:.2f}x" if cpu_a else "-", command),
        Row(f"producer A/B, B's p99 (median): {p99_b:g} ms", f"A: {p99_a:g} ms",
            f"{p99_b / p99_a:.2f}x" if p99_a else "-", command),
    ]  # fmt: skip


def markdown(
    a: dict[str, str], b: dict[str, str], results: list[dict[str, dict[str, Any]]], args: argparse.Namespace
) -> str:
    def show(settings: dict[str, str]) -> str:
        return ", ".join(f"`{k}={v}`" for k, v in settings.items()) or "defaults"

    def cell(r: dict[str, Any]) -> str:
        return f"{r['p50_ms']} / {r['p99_ms']} ms, {r['cpu_ms_per_1000']['producer']} ms CPU, {r['acked_per_s']:,.0f}/s"

    where = "the producer pinned to CPU 0, emulator and simulator to CPU 1" if args.pin else "unpinned"
    lines = [
        f"`make bench-producer-ab` (`bench/producer_ab.py`): A = {show(a)}, B = {show(b)}; {args.pairs} "
        f"interleaved pairs at {args.rate:,.0f} readings/s, {args.duration:.0f} s each, fresh emulator and "
        f"producer per run, warmed up like `make bench-producer`; {where}. Cells: p50 / p99 of the "
        "202s, producer CPU per 1,000 acknowledged readings, acknowledged readings/s.",
        "", "| pair | A | B |", "|---:|---|---|",
    ]  # fmt: skip
    lines += [f"| {i + 1} | {cell(r['A'])} | {cell(r['B'])} |" for i, r in enumerate(results)]
    return "\n".join([*lines, ""])


def settings_of(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", action="append", default=[], help="KEY=VALUE (repeatable) of configuration A")
    p.add_argument("--b", action="append", default=[], help="KEY=VALUE (repeatable) of configuration B")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--rate", type=float, default=16_700.0)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--pin", action="store_true", help="producer on CPU 0, emulator and simulator on CPU 1")
    p.add_argument("--write", type=Path, default=None)
    args = p.parse_args()
    a, b = settings_of(args.a), settings_of(args.b)
    results = run(a, b, args.pairs, args.rate, args.duration, args.pin)
    print(json.dumps(results))
    section = markdown(a, b, results, args)
    print(section)
    if args.write:
        write_section(args.write, HEAD, section, summary(results))


if __name__ == "__main__":
    main()
