"""Reading a hub back through the SDK: every event of every partition from the start, until the last one
enqueued when the read began. Used by the integration tests and the benchmarks to count what was published
(missing and duplicated reading IDs), never by the services."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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
    """Every event of every partition from the start (``-1``), until the last enqueued one."""
    client = EventHubConsumerClient.from_connection_string(
        emulator.connection_string(), consumer_group="$Default", retry_total=3
    )
    ids: Counter[str] = Counter()
    where: dict[str, set[str]] = {}
    homes: dict[str, set[str]] = {}
    mismatches: list[str] = []
    async with client:
        pids = await client.get_partition_ids()
        targets = {}
        for pid in pids:
            props: dict[str, Any] = await client.get_partition_properties(pid)
            if not props["is_empty"]:
                targets[pid] = int(props["last_enqueued_sequence_number"])
        done = {pid: asyncio.Event() for pid in targets}

        async def on_batch(ctx: Any, events: list[Any]) -> None:
            pid = ctx.partition_id
            for event in events:
                doc = json.loads(event.body_as_str())
                ids[doc["reading_id"]] += 1
                where.setdefault(doc["reading_id"], set()).add(pid)
                homes.setdefault(pid, set()).add(doc["home_id"])
                if str(event.message_id) != doc["reading_id"]:
                    mismatches.append(f"{event.message_id} != {doc['reading_id']}")
                if event.sequence_number >= targets[pid]:
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
    return HubContents(ids, where, homes, mismatches)
