"""The baseline of the consumer benchmark: a bare SDK receive loop over every partition, same batch size and
prefetch as the consumer, doing nothing with the events. Prints JSON: events, seconds (first to last event).

``python bench/consumer_baseline_worker.py --conn ... --expected N [--group $Default] [--loop asyncio|uvloop]
[--lazy-events]`` (``asyncio``: the SDK's default event loop, what a bare receive loop gets; ``uvloop``: the
loop the consumer runs on; ``--lazy-events``: with the consumer's ``receiver`` accelerator installed, so the
SDK does the same work per event as in the consumer and the ratio against it is the consumer's own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from azure.eventhub.aio import EventHubConsumerClient


async def run(
    conn: str, group: str, expected: int, batch: int, prefetch: int, timeout: float
) -> dict[str, Any]:
    received = 0
    first: float | None = None
    last = 0.0
    done = asyncio.Event()
    client = EventHubConsumerClient.from_connection_string(conn, consumer_group=group)

    async def on_batch(ctx: Any, events: list[Any]) -> None:
        nonlocal received, first, last
        if not events:
            return
        if first is None:
            first = time.perf_counter()
        received += len(events)
        last = time.perf_counter()
        if received >= expected:
            done.set()

    task = asyncio.create_task(
        client.receive_batch(
            on_batch, max_batch_size=batch, max_wait_time=0.5, prefetch=prefetch, starting_position="-1",
            track_last_enqueued_event_properties=True,
        )
    )  # fmt: skip
    cpu0 = time.process_time()
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        cpu = time.process_time() - cpu0
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"events": received, "seconds": last - (first or last), "cpu_seconds": cpu}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--conn", required=True)
    p.add_argument("--group", default="$Default")
    p.add_argument("--expected", type=int, required=True)
    p.add_argument("--batch", type=int, default=300)
    p.add_argument("--prefetch", type=int, default=600)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    p.add_argument("--lazy-events", action="store_true", help="install the consumer's receiver accelerator")
    a = p.parse_args()
    if a.lazy_events:
        from homesec_consumer.adapters import accelerated_receive

        if not accelerated_receive.load("auto").enabled:
            raise SystemExit("consumer_baseline_worker: the receiver accelerator's self-check failed")
    main_coro = run(a.conn, a.group, a.expected, a.batch, a.prefetch, a.timeout)
    if a.loop == "uvloop":
        import uvloop

        print(json.dumps(uvloop.run(main_coro)))
    else:
        print(json.dumps(asyncio.run(main_coro)))


if __name__ == "__main__":
    main()
