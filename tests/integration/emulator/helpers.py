"""Helpers for emulator tests: read a hub back with the real SDK."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import EventDataSendError


@dataclass(frozen=True)
class Got:
    partition: str
    sequence_number: int
    offset: str
    body: str
    partition_key: bytes | None
    enqueued_time: datetime


async def read_all(
    conn_str: str,
    expected: int,
    timeout: float = 20.0,
    *,
    client_kw: dict[str, Any] | None = None,
    **receive_kw: object,
) -> list[Got]:
    """Receive from every partition (from the start by default) until ``expected`` events or the timeout."""
    got: list[Got] = []
    done = asyncio.Event()

    async def on_event(ctx: object, ev: EventData | None) -> None:
        if ev is None:
            return
        assert ev.sequence_number is not None and ev.offset is not None and ev.enqueued_time is not None
        pid: str = ctx.partition_id  # type: ignore[attr-defined]
        got.append(
            Got(pid, ev.sequence_number, ev.offset, ev.body_as_str(), ev.partition_key, ev.enqueued_time)
        )
        if len(got) >= expected:
            done.set()

    receive_kw.setdefault("starting_position", "-1")
    client = EventHubConsumerClient.from_connection_string(
        conn_str, consumer_group="$Default", **(client_kw or {})
    )
    async with client:
        task = asyncio.create_task(client.receive(on_event, **receive_kw))  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            await client.close()
            task.cancel()
    return got


async def send_keyed(conn_str: str, keys_and_bodies: dict[str, list[str]], **client_kw: Any) -> None:
    producer = EventHubProducerClient.from_connection_string(conn_str, **client_kw)
    async with producer:
        for key, bodies in keys_and_bodies.items():
            batch = await producer.create_batch(partition_key=key)
            for body in bodies:
                batch.add(EventData(body))
            await producer.send_batch(batch)


async def send_batches(
    cs: str, batches: int, size: int, app_retries: int = 0, body_bytes: int = 0, **kw: Any
) -> int:
    """Send keyed batches of ``size`` events (bodies ``"batch:index"``, padded to ``body_bytes``); retry
    server-busy in the application (as the producer service does).

    Returns how many sends were throttled. azure-eventhub 5.15 (pyamqp transport) does not retry a send whose
    disposition is rejected with ``com.microsoft:server-busy``: it raises ``EventDataSendError`` at once,
    whatever ``retry_total`` says (the legacy uamqp transport retried it). Callers must retry themselves.
    """
    throttled = 0
    producer = EventHubProducerClient.from_connection_string(cs, **kw)
    async with producer:
        for b in range(batches):
            for attempt in range(app_retries + 1):
                batch = await producer.create_batch(partition_key=f"home-{b % 7}")
                for i in range(size):
                    batch.add(EventData(f"{b}:{i}".ljust(body_bytes, ".")))
                try:
                    await producer.send_batch(batch)
                    break
                except EventDataSendError as exc:
                    if "server-busy" not in str(exc) or attempt == app_retries:
                        raise
                    throttled += 1
                    await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
    return throttled
