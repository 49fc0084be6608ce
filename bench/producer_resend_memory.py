"""CPU cost of the producer's resend memory (``idempotency.AckTable``) on the buffer's path, per reading.

The buffer (``PartitionedBuffer``) alone, in-process, with a publisher that acknowledges at once: requests
of 100 readings of 20 homes (60,000 homes, fresh reading IDs, nothing resent) are submitted and settled, 20
at a time. Three configurations in the same run, interleaved ``--repeat`` times: the memory off
(``IDEMPOTENCY_MAX_READINGS=0``), on at the default 200,000 entries (full after 2,000 requests: every
acknowledgement then evicts as many), and on at 10,000,000 (never full). The figure is CPU microseconds per
reading (process time), and its ratio to the memory off; and the pause of a full garbage collection with the
memory as it is at the end (full, for the default), which the event loop would wait for (objects that existed
before the run are frozen, as the producer freezes its start-up objects).

``python bench/producer_resend_memory.py [--requests 3000] [--repeat 3] [--write docs/benchmarks.md]``
(``make bench-producer-resend-memory``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from docsection import Row, write_section
from homesec_domain.validation import AcceptedReading
from homesec_producer.buffer import PartitionedBuffer, Slot
from homesec_producer.idempotency import AckTable
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.retry import RetryPolicy
from prometheus_client import CollectorRegistry

PARTITIONS = [str(i) for i in range(16)]
CONFIGS = {"off": 0, "on (200,000)": 200_000, "on (never full)": 10_000_000}


class InstantPublisher:
    async def partition_ids(self) -> Sequence[str]:
        return PARTITIONS

    async def publish(self, partition_id: str, readings: Sequence[AcceptedReading]) -> None:
        await asyncio.sleep(0)

    async def close(self) -> None:
        return None


def requests(count: int) -> list[list[AcceptedReading]]:
    body = b'{"x":1}' * 30
    return [
        [
            AcceptedReading(str(uuid.uuid4()), f"home-{(b * 20 + i % 20) % 60_000:06d}", body)
            for i in range(100)
        ]
        for b in range(count)
    ]


async def measure(max_entries: int, reqs: list[list[AcceptedReading]]) -> tuple[float, float]:
    """CPU microseconds per reading to submit and settle ``reqs``; a full collection's pause (ms) after."""
    metrics = ProducerMetrics.create(CollectorRegistry())
    buffer = PartitionedBuffer(
        InstantPublisher(), PARTITIONS, capacity=200_000, max_batch_events=500, max_batch_bytes=1_000_000,
        retry=RetryPolicy(3, 0.01, 0.02, random.Random(0)), metrics=metrics,
        table=AckTable[Slot](max_entries, 300.0, metrics),
    )  # fmt: skip
    buffer.start()
    gc.collect()
    gc.freeze()  # as the producer does at start-up: what exists now is never walked again
    started = time.process_time()
    for k in range(0, len(reqs), 20):
        tickets = [buffer.submit(r) for r in reqs[k : k + 20]]
        await asyncio.gather(*(t.future for t in tickets))
        for ticket in tickets:
            ticket.release()  # as the request path does when it answers
    per_reading = (time.process_time() - started) / (len(reqs) * 100) * 1e6
    reqs.clear()  # only what the buffer and its memory keep stays alive
    gc.collect()  # the first pass untracks the memory's tuples, as the producer's young collections do
    gc_started = time.perf_counter()
    gc.collect()
    pause = (time.perf_counter() - gc_started) * 1000
    await buffer.close(1)
    gc.unfreeze()
    return per_reading, pause


HEAD = "## Producer: resend memory"


def table(results: dict[str, list[tuple[float, float]]]) -> str:
    off = statistics.median(cpu for cpu, _ in results["off"])
    lines = [
        "| resend memory | CPU µs per reading: median (all) | vs off | full GC pause after, ms: median (all) |",
        "|---|---|---|---|",
    ]
    for name, values in results.items():
        cpu, pause = [v[0] for v in values], [v[1] for v in values]
        lines.append(
            f"| {name} | {statistics.median(cpu):.2f} ({', '.join(f'{v:.2f}' for v in cpu)}) | "
            f"{statistics.median(cpu) / off:.2f}x | {statistics.median(pause):.1f} "
            f"({', '.join(f'{v:.1f}' for v in pause)}) |"
        )
    return "\n".join(lines)


def summary(results: dict[str, list[tuple[float, float]]]) -> list[Row]:
    """The summary table's row: the default memory (200,000 entries) against the memory off."""
    on = statistics.median(cpu for cpu, _ in results["on (200,000)"])
    off = statistics.median(cpu for cpu, _ in results["off"])
    return [Row(f"producer resend memory (default size), CPU per reading: {on:.2f} µs",
                f"memory off: {off:.2f} µs", f"{on / off:.2f}x", "`make bench-producer-resend-memory`")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", type=Path, default=None, help=f"update this file's '{HEAD}' section")
    args = parser.parse_args()
    gc.set_threshold(10_000, 10, 10)  # the producer's GC_GEN0_THRESHOLD
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeat):
        for name, entries in CONFIGS.items():
            results[name].append(asyncio.run(measure(entries, requests(args.requests))))
    print(table(results))
    if args.write:
        preamble = (__doc__ or "").split("\n\n")[1].replace("\n", " ").replace("``", "`")
        body = f"`make bench-producer-resend-memory` (`bench/producer_resend_memory.py`). {preamble}"
        write_section(args.write, HEAD, f"{body}\n\n{table(results)}", summary(results))


if __name__ == "__main__":
    main()
