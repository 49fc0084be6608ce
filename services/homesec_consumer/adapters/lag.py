"""Lag refresh: each owned partition's last enqueued sequence number read from the service at an interval,
so the consumer's lag moves even when the receiver delivers nothing."""

from __future__ import annotations

import asyncio
import logging

from azure.eventhub.aio import EventHubConsumerClient

from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.processor import RollupProcessor

log = logging.getLogger(__name__)


async def refresh_lag(
    client: EventHubConsumerClient,
    processor: RollupProcessor,
    metrics: ConsumerMetrics,
    *,
    interval: float,
    stop: asyncio.Event,
    timeout: float = 10.0,
) -> None:
    """Every ``interval``: read each owned partition's last enqueued sequence number from the service, so
    the lag moves even when the receiver delivers nothing (a stalled or paused partition)."""
    while not stop.is_set():
        for pid in list(processor.watches):
            try:
                props = await asyncio.wait_for(client.get_partition_properties(pid), timeout)
            except Exception as exc:
                metrics.handler_errors.labels(stage="lag_refresh").inc()
                log.warning("reading partition %s properties failed: %r", pid, exc)
                break  # the service does not answer: try again next interval
            if not props.get("is_empty"):
                processor.note_enqueued(pid, int(props["last_enqueued_sequence_number"]))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
