"""The port between the buffer and Event Hubs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from homesec_domain.validation import AcceptedReading


class EventPublisher(Protocol):
    """Publishes batches of readings to one Event Hubs partition.

    Delivery semantics:
    - ``publish(partition_id, readings)`` makes ONE attempt (no retries of its own; the caller retries so it
      can count and pace them). It returns only once Event Hubs has acknowledged (AMQP Accepted) every
      reading, in the given order, in that partition. Each event carries ``reading_id`` as its message ID and
      ``home_id`` as its partition key annotation.
    - It raises a ``homesec_producer.errors.PublishError`` subclass otherwise: ``ThrottledError``
      (server-busy), ``PublishTimeoutError`` and ``ConnectionLostError`` (outcome unknown: some or all
      events may be stored, a retry may duplicate them, consumers dedupe by reading_id), or
      ``PublishRejectedError`` (not retryable).
    - Readings that do not fit one Event Hubs batch (``max_batch_bytes``) are sent as several consecutive
      batches, in order; an error in any of them fails the call.
    - Callers make at most one concurrent call per partition, which keeps per-home order.
    """

    async def partition_ids(self) -> Sequence[str]:
        """The hub's partition ids, in the hub's order (the partition-key hash indexes into it)."""
        ...

    async def publish(self, partition_id: str, readings: Sequence[AcceptedReading]) -> None:
        """Send and wait for the acknowledgement; see the class docstring."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...
