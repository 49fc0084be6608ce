"""Ownership watch: how many partitions have no live owner in the checkpoint store
(``homesec_consumer_partitions_unowned``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from homesec_consumer.adapters.blob import BlobCheckpointSink
from homesec_consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)


async def watch_ownership(
    sink: BlobCheckpointSink,
    partition_ids: list[str],
    metrics: ConsumerMetrics,
    *,
    interval: float,
    expiration: float,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
) -> None:
    """Every ``interval``: count partitions with no live owner in the checkpoint store."""
    while not stop.is_set():
        try:
            owners = {str(o["partition_id"]): o for o in await sink.owners()}
            now = clock()
            unowned = sum(
                1 for pid in partition_ids
                if pid not in owners or not owners[pid].get("owner_id")
                or now - float(owners[pid].get("last_modified_time") or 0) > expiration
            )  # fmt: skip
            metrics.partitions_unowned.set(unowned)
        except Exception as exc:
            metrics.handler_errors.labels(stage="ownership_watch").inc()
            log.warning("listing ownership failed: %r", exc)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
