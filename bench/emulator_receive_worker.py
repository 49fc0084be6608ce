"""Receive ``--expected`` events from the given partitions with the SDK's async consumer; print JSON stats.

Used by ``bench/emulator_throughput.py`` as a separate process (one per simulated consumer pod).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from azure.eventhub.aio import EventHubConsumerClient


async def run(conn: str, partitions: list[str], expected: int, timeout: float) -> dict[str, Any]:
    received = 0
    first: float | None = None
    done = asyncio.Event()
    client = EventHubConsumerClient.from_connection_string(
        conn, consumer_group="$Default", prefetch=int(os.environ.get("BENCH_PREFETCH", "2000"))
    )

    async def on_batch(ctx: Any, events: list[Any]) -> None:
        nonlocal received, first
        if first is None:
            first = time.perf_counter()
        received += len(events)
        if received >= expected:
            done.set()

    start = time.perf_counter()
    cpu_start = time.process_time()
    tasks = [
        asyncio.create_task(
            client.receive_batch(on_batch, max_batch_size=500, partition_id=p, starting_position="-1")
        )
        for p in partitions
    ]
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        end = time.perf_counter()
        await client.close()
        for t in tasks:
            t.cancel()
    cpu = time.process_time() - cpu_start
    return {
        "received": received,
        "seconds": end - start,
        "first_event_after": (first or end) - start,
        "cpu": cpu,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--conn", required=True)
    p.add_argument("--partitions", required=True, help="comma-separated partition ids")
    p.add_argument("--expected", type=int, required=True)
    p.add_argument("--timeout", type=float, default=600)
    a = p.parse_args()
    stats = asyncio.run(run(a.conn, a.partitions.split(","), a.expected, a.timeout))
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
