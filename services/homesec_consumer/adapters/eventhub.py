"""Event Hubs adapter, the receive loop: ``EventHubConsumerClient`` (async, batch receive, Blob checkpoint
store, load balancing) feeding the processor. The other Event Hubs jobs: ``initial_checkpoints`` (a
checkpoint for every partition at start-up), ``ownership`` (partitions with no live owner), ``lag`` (the
last enqueued sequence numbers)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, PartitionContext
from azure.eventhub.amqp import AmqpMessageBodyType
from homesec_runtime import logs

from homesec_consumer.adapters.blob import BlobCheckpointSink
from homesec_consumer.adapters.initial_checkpoints import INITIAL_OFFSET
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import InboundEvent
from homesec_consumer.ports import Position
from homesec_consumer.processor import RollupProcessor

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
Decode = Callable[[EventData], InboundEvent]


class BatchSpans(Protocol):
    """Tracing on (``homesec_consumer.tracing.ConsumerSpans``): a span around one received batch."""

    def batch(self, partition_id: str, events: Sequence[EventData]) -> AbstractContextManager[None]: ...


def event_body(event: EventData) -> bytes:
    """The body as bytes: the data sections joined; any other body type as text (it is poison)."""
    try:
        body: Any = event.body
    except ValueError:  # "Event content empty."
        return b""
    body_type = event.body_type
    if body_type is AmqpMessageBodyType.DATA:
        return body if isinstance(body, bytes) else b"".join(body)
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    return repr(body if body_type is not AmqpMessageBodyType.SEQUENCE else list(body)).encode()


def inbound(event: EventData) -> InboundEvent:
    """The processor's view of an event through the SDK's public ``EventData`` API (the default path;
    ``accelerated_decoding`` reads the same faster when its start-up self-check passes)."""
    enqueued = event.enqueued_time
    return InboundEvent(
        event_body(event),
        Position(event.sequence_number or 0, event.offset or ""),
        None if enqueued is None else (enqueued - _EPOCH) // _MS,
    )


class EventHubRunner:
    """Callbacks for ``receive_batch``; every handler error is counted and reported, never fatal."""

    def __init__(
        self,
        client: EventHubConsumerClient,
        processor: RollupProcessor,
        metrics: ConsumerMetrics,
        *,
        max_batch_size: int,
        max_wait_time: float,
        prefetch: int,
        starting_position: str,
        checkpoints: BlobCheckpointSink | None = None,
        decode: Decode = inbound,
        spans: BatchSpans | None = None,
    ) -> None:
        self._client = client
        self._decode = decode
        self._spans = spans  # tracing on: a span per batch, linked to the producers' contexts
        self._checkpoints = checkpoints
        self._processor = processor
        self._metrics = metrics
        self._receive_kwargs: dict[str, Any] = {
            "max_batch_size": max_batch_size, "max_wait_time": max_wait_time, "prefetch": prefetch,
            "starting_position": starting_position, "track_last_enqueued_event_properties": True,
        }  # fmt: skip

    async def run(self) -> None:
        await self._client.receive_batch(
            on_event_batch=self._on_batch,
            on_partition_initialize=self._on_init,
            on_partition_close=self._on_close,
            on_error=self._on_error,
            **self._receive_kwargs,
        )

    async def _on_batch(self, ctx: PartitionContext, events: list[EventData]) -> None:
        decode = self._decode
        with logs.bind(partition=ctx.partition_id, reading_count=len(events)):
            if self._spans is None:
                await self._processor.handle_batch(ctx.partition_id, [decode(e) for e in events])
            else:
                with self._spans.batch(ctx.partition_id, events):
                    await self._processor.handle_batch(ctx.partition_id, [decode(e) for e in events])
        last = ctx.last_enqueued_event_properties
        if last and last.get("sequence_number") is not None:
            self._processor.note_enqueued(ctx.partition_id, int(last["sequence_number"]))

    async def _on_init(self, ctx: PartitionContext) -> None:
        position = await self._checkpoint_of(ctx.partition_id)
        # Still the initial ``earliest`` checkpoint: nothing of the partition was ever checkpointed as
        # durable, so without a snapshot every home is new (see ``RollupProcessor.open_partition``).
        fresh = position is not None and position.offset == INITIAL_OFFSET
        log.info("claimed partition %s%s", ctx.partition_id, " (initial checkpoint)" if fresh else "")
        self._processor.open_partition(ctx.partition_id, initial=fresh, checkpoint=position)
        await self._processor.load(ctx.partition_id)

    async def _checkpoint_of(self, partition_id: str) -> Position | None:
        """The partition's checkpoint, or None (none, or reading failed: then every home's status is read)."""
        if self._checkpoints is None:
            return None
        try:
            return (await self._checkpoints.positions()).get(partition_id)
        except Exception as exc:
            log.warning("reading the checkpoint of partition %s failed: %r", partition_id, exc)
            return None

    async def _on_close(self, ctx: PartitionContext, reason: Any) -> None:
        log.info("partition %s closed: %s", ctx.partition_id, reason)
        self._processor.close_partition(ctx.partition_id)

    async def _on_error(self, ctx: PartitionContext | None, error: Exception) -> None:
        stage = "load_balancing" if ctx is None else "partition"
        self._metrics.handler_errors.labels(stage=stage).inc()
        log.warning("%s error (partition %s): %r", stage, getattr(ctx, "partition_id", None), error)
