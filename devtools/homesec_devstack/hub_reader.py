"""Reading a hub back through the SDK: every event of every partition from the start, until the last one
enqueued when the read began. Used by the integration tests and the benchmarks to count what was published
(missing and duplicated reading IDs; the alarm events the consumer published), never by the services."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient

from homesec_devstack.emulator_process import EmulatorProcess


@dataclass
class HubContents:
    ids: Counter[str]
    partitions: dict[str, set[str]]  # reading ID -> partitions it was found in
    homes_by_partition: dict[str, set[str]]
    id_mismatches: list[str] = field(default_factory=list)  # events whose message ID is not the body's ID

    def missing(self, acked: set[str]) -> set[str]:
        return {rid for rid in acked if self.ids[rid] == 0}

    def duplicated(self, acked: set[str]) -> set[str]:
        return {rid for rid in acked if self.ids[rid] > 1}


async def read_hub(emulator: EmulatorProcess, timeout: float = 120.0) -> HubContents:
    """Every event of the telemetry hub, every partition from the start, until the last enqueued one."""
    ids: Counter[str] = Counter()
    where: dict[str, set[str]] = {}
    homes: dict[str, set[str]] = {}
    mismatches: list[str] = []

    def on_event(pid: str, event: EventData) -> None:
        doc = json.loads(event.body_as_str())
        ids[doc["reading_id"]] += 1
        where.setdefault(doc["reading_id"], set()).add(pid)
        homes.setdefault(pid, set()).add(doc["home_id"])
        if str(event.message_id) != doc["reading_id"]:
            mismatches.append(f"{event.message_id} != {doc['reading_id']}")

    await read_events(emulator.connection_string(), on_event, timeout)
    return HubContents(ids, where, homes, mismatches)


def _body(event: EventData) -> bytes:
    body: Any = event.body
    return body if isinstance(body, bytes) else b"".join(body)


@dataclass(frozen=True)
class AlarmRecord:
    """One event of the ``alarms`` hub as a subscriber sees it."""

    partition_id: str
    sequence_number: int
    message_id: str | None
    partition_key: str | None
    content_type: str | None
    body: bytes
    enqueued_ms: int

    def doc(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


async def read_alarms(
    emulator: EmulatorProcess, hub: str = "alarms", timeout: float = 60.0
) -> list[AlarmRecord]:
    """Every event of the alarms hub (consumer group ``$Default``), in partition and sequence order."""
    records: list[AlarmRecord] = []

    def on_event(pid: str, event: EventData) -> None:
        key = event.partition_key
        enqueued = event.enqueued_time
        records.append(
            AlarmRecord(
                partition_id=pid, sequence_number=int(event.sequence_number or 0),
                message_id=None if event.message_id is None else str(event.message_id),
                partition_key=key.decode() if isinstance(key, bytes) else key,
                content_type=event.content_type, body=_body(event),
                enqueued_ms=0 if enqueued is None else int(enqueued.timestamp() * 1000),
            )
        )  # fmt: skip

    await read_events(emulator.connection_string(hub), on_event, timeout)
    return sorted(records, key=lambda r: (int(r.partition_id), r.sequence_number))


async def read_events(
    connection_string: str, on_event: Callable[[str, EventData], None], timeout: float = 120.0
) -> None:
    """Call ``on_event(partition_id, event)`` for every event of every partition of the connection string's
    hub from the start (``-1``), until the last one enqueued when the read began (consumer group
    ``$Default``); ``TimeoutError`` after ``timeout`` seconds."""
    client = EventHubConsumerClient.from_connection_string(
        connection_string, consumer_group="$Default", retry_total=3
    )
    async with client:
        pids = await client.get_partition_ids()
        props: list[dict[str, Any]] = await asyncio.gather(
            *(client.get_partition_properties(p) for p in pids)
        )
        targets = {
            pid: int(prop["last_enqueued_sequence_number"])
            for pid, prop in zip(pids, props, strict=True)
            if not prop["is_empty"]
        }
        done = {pid: asyncio.Event() for pid in targets}

        async def on_batch(ctx: Any, events: list[EventData]) -> None:
            pid = ctx.partition_id
            for event in events:
                on_event(pid, event)
                if event.sequence_number is not None and event.sequence_number >= targets[pid]:
                    done[pid].set()

        tasks = [
            asyncio.create_task(
                client.receive_batch(
                    on_batch, partition_id=pid, starting_position="-1", max_batch_size=1000, max_wait_time=1
                )
            )
            for pid in targets
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), timeout)
        finally:
            await client.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
