"""Initial checkpoints: at start-up, a checkpoint for every partition that has none, so that every
partition's lag is measurable from the checkpoint store (KEDA's blobMetadata lag needs one each)."""

from __future__ import annotations

import asyncio

from azure.eventhub.aio import EventHubConsumerClient

from homesec_consumer.adapters.blob import BlobCheckpointSink
from homesec_consumer.ports import Position

INITIAL_OFFSET = "-1"  # an initial ``earliest`` checkpoint: nothing was ever checkpointed after it


async def ensure_initial_checkpoints(
    client: EventHubConsumerClient, sink: BlobCheckpointSink, starting_position: str
) -> list[str]:
    """Write a checkpoint for every partition that has none (KEDA's blobMetadata lag needs one each).

    ``earliest``: offset ``-1`` (the start), sequence number ``beginning - 1``; ``latest``: the last
    enqueued event. Returns the partitions written.
    """
    existing = await sink.positions()
    missing = [pid for pid in await client.get_partition_ids() if pid not in existing]

    async def write(pid: str) -> None:
        props = await client.get_partition_properties(pid)
        if starting_position == "latest" and not props["is_empty"]:
            position = Position(
                int(props["last_enqueued_sequence_number"]), str(props["last_enqueued_offset"])
            )
        else:
            position = Position(int(props["beginning_sequence_number"]) - 1, INITIAL_OFFSET)
        await sink.checkpoint(pid, position)

    await asyncio.gather(*(write(pid) for pid in missing))
    return missing
