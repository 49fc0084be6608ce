"""A plain SDK consumer process for checkpoint-store tests: EventHubConsumerClient + BlobCheckpointStore.

``python -m tests.integration.emulator.consumer_worker EH_CONN BLOB_CONN CONTAINER OUT_FILE``
Appends one JSON line per event to OUT_FILE and checkpoints after each event.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore


async def main(eh_conn: str, blob_conn: str, container: str, out_path: str) -> None:
    store = BlobCheckpointStore.from_connection_string(blob_conn, container)
    client = EventHubConsumerClient.from_connection_string(
        eh_conn, consumer_group="$Default", checkpoint_store=store,
        load_balancing_interval=1.0, partition_ownership_expiration_interval=4.0,
    )  # fmt: skip
    out = Path(out_path).open("a", buffering=1)  # noqa: SIM115, ASYNC230

    async def on_event(ctx: Any, ev: Any) -> None:
        if ev is None:
            return
        out.write(
            json.dumps({"p": ctx.partition_id, "seq": ev.sequence_number, "body": ev.body_as_str()}) + "\n"
        )
        await ctx.update_checkpoint(ev)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with client:
        task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
        await stop.wait()
        await client.close()
        task.cancel()
    await store.close()
    out.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
