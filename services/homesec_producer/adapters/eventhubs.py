"""``EventPublisher`` on ``azure.eventhub.aio.EventHubProducerClient`` (one attempt per call).

The SDK's own retries are off (``retry_total=0``): ``PartitionedBuffer`` retries with its ``RetryPolicy``
so that every retry and every ServerBusy answer is counted. Events are sent per partition id in
``EventDataBatch``es no larger than ``max_batch_bytes`` (and the link's maximum message size). Each event
carries ``reading_id`` as message ID, the codec's content type, and the home ID as its partition-key
annotation (``x-opt-partition-key``), so consumers see the same ``partition_key`` as with key-based sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from azure.eventhub import EventData, EventDataBatch
from azure.eventhub.aio import EventHubProducerClient
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    EventDataError,
    EventHubError,
    OperationTimeoutError,
)
from homesec_domain.events import CONTENT_TYPE
from homesec_domain.validation import AcceptedReading

from homesec_producer import errors
from homesec_producer.adapters.amqp_encoding import EventEncoder, batch_overhead
from homesec_producer.settings import ProducerSettings

PARTITION_KEY_ANNOTATION = b"x-opt-partition-key"


class EventTraces(Protocol):
    """Tracing on (``homesec_producer.tracing.RequestTraces``): the trace context of a reading's request."""

    def sampled(self, reading_id: str) -> bool: ...

    def attached(self, reading_id: str) -> AbstractContextManager[None]: ...


def map_error(exc: BaseException) -> errors.PublishError:
    """Translate an SDK/transport exception into the port's ``PublishError`` family."""
    text = (str(exc) or type(exc).__name__)[:300]
    kind: type[errors.PublishError] = errors.PublishError  # "other", retryable (includes auth hiccups)
    if "server-busy" in text or getattr(exc, "error", None) == "server-busy":
        kind = errors.ThrottledError
    elif isinstance(exc, OperationTimeoutError | TimeoutError):
        kind = errors.PublishTimeoutError
    elif isinstance(exc, AuthenticationError):
        kind = errors.PublishError
    elif isinstance(exc, ConnectionLostError | ConnectError | OSError):
        kind = errors.ConnectionLostError
    elif isinstance(exc, EventDataError | ValueError):
        kind = errors.PublishRejectedError
    elif not isinstance(exc, EventHubError):
        text = repr(exc)[:300]
    return kind(text)


def build_client(settings: ProducerSettings) -> tuple[EventHubProducerClient, Any]:
    """The SDK client from settings (connection string, or namespace + DefaultAzureCredential)."""
    options: dict[str, Any] = {"retry_total": 0, "logging_enable": False}
    if settings.eventhub_connection_string is not None:
        client = EventHubProducerClient.from_connection_string(
            settings.eventhub_connection_string.get_secret_value(),
            eventhub_name=settings.eventhub_name,
            **options,
        )
        return client, None
    from azure.identity.aio import DefaultAzureCredential

    assert settings.eventhub_fully_qualified_namespace and settings.eventhub_name  # checked by the settings
    credential = DefaultAzureCredential()
    client = EventHubProducerClient(
        fully_qualified_namespace=settings.eventhub_fully_qualified_namespace,
        eventhub_name=settings.eventhub_name,
        credential=credential,
        **options,
    )
    return client, credential


class EventHubsPublisher:
    """See the module docstring; implements ``homesec_producer.ports.EventPublisher``."""

    def __init__(
        self,
        client: EventHubProducerClient,
        *,
        try_timeout: float,
        max_batch_bytes: int,
        credential: Any = None,
        fast_encoding: bool = True,
        traces: EventTraces | None = None,
    ) -> None:
        self._client = client
        # Tracing on: events of sampled requests take the public ``EventDataBatch.add`` path, where the SDK's
        # OpenTelemetry plugin opens a message span in the request's context and stamps
        # ``traceparent``/``Diagnostic-Id`` on the event (``_fits``); the others keep the fast encoder.
        self._traces = traces
        self._encoder = EventEncoder(CONTENT_TYPE) if fast_encoding else None
        self._credential = credential
        self._try_timeout = try_timeout
        self._max_batch_bytes = max_batch_bytes
        self._closed = False

    @classmethod
    def from_settings(
        cls, settings: ProducerSettings, traces: EventTraces | None = None
    ) -> EventHubsPublisher:
        client, credential = build_client(settings)
        return cls(
            client,
            try_timeout=settings.publish_try_timeout_seconds,
            max_batch_bytes=settings.max_batch_bytes,
            credential=credential,
            fast_encoding=settings.publish_encoder == "fast",
            traces=traces,
        )

    async def partition_ids(self) -> Sequence[str]:
        try:
            ids = await asyncio.wait_for(self._client.get_partition_ids(), self._try_timeout)
        except Exception as exc:
            raise map_error(exc) from exc
        return [str(pid) for pid in ids]

    async def publish(self, partition_id: str, readings: Sequence[AcceptedReading]) -> None:
        try:
            await asyncio.wait_for(self._publish(partition_id, readings), self._try_timeout + 5.0)
        except errors.PublishError:
            raise
        except Exception as exc:
            raise map_error(exc) from exc

    async def _publish(self, partition_id: str, readings: Sequence[AcceptedReading]) -> None:
        if self._encoder is not None:
            await self._publish_fast(partition_id, readings, self._encoder)
            return
        batch = await self._new_batch(partition_id)
        for reading in readings:
            event = _event(reading)
            try:
                self._add(batch, event, reading.reading_id)
            except ValueError:
                if len(batch) == 0:
                    raise errors.PublishRejectedError(
                        f"event {reading.reading_id} exceeds the batch size"
                    ) from None
                await self._client.send_batch(batch, timeout=self._try_timeout)
                batch = await self._new_batch(partition_id)
                self._add(batch, event, reading.reading_id)
        if len(batch):
            await self._client.send_batch(batch, timeout=self._try_timeout)

    def _add(self, batch: EventDataBatch, event: EventData, reading_id: str) -> None:
        if self._traces is None:
            batch.add(event)
            return
        with self._traces.attached(reading_id):  # the SDK's message span: a child of the request's span
            batch.add(event)

    async def _publish_fast(
        self, partition_id: str, readings: Sequence[AcceptedReading], encoder: EventEncoder
    ) -> None:
        """Same batches as the SDK path, events encoded by ``EventEncoder`` (see amqp_encoding.py)."""
        batch = await self._new_batch(partition_id)
        for reading in readings:
            if not self._fits(batch, reading, encoder):
                if len(batch) == 0:
                    msg = f"event {reading.reading_id} exceeds the batch size"
                    raise errors.PublishRejectedError(msg)
                await self._client.send_batch(batch, timeout=self._try_timeout)
                batch = await self._new_batch(partition_id)
                if not self._fits(batch, reading, encoder):
                    raise errors.PublishRejectedError(f"event {reading.reading_id} exceeds the batch size")
        if len(batch):
            await self._client.send_batch(batch, timeout=self._try_timeout)

    def _fits(self, batch: EventDataBatch, reading: AcceptedReading, encoder: EventEncoder) -> bool:
        """Add ``reading`` to ``batch`` if it fits (else False, nothing added)."""
        if self._traces is not None and self._traces.sampled(reading.reading_id):
            try:  # a traced request: the SDK's path, for its message span and trace context
                self._add(batch, _event(reading), reading.reading_id)
            except ValueError:
                return False
            return True
        encoded = encoder.encode(reading.reading_id, reading.home_id, reading.body)
        cost = len(encoded) + batch_overhead(len(encoded))
        if batch._size + cost > batch.max_size_in_bytes:
            return False
        append_encoded(batch, encoded, cost)
        return True

    async def _new_batch(self, partition_id: str) -> EventDataBatch:
        try:
            return await self._client.create_batch(
                partition_id=partition_id, max_size_in_bytes=self._max_batch_bytes
            )
        except ValueError:  # larger than the link allows: use the link's maximum message size
            batch = await self._client.create_batch(partition_id=partition_id)
            self._max_batch_bytes = batch.max_size_in_bytes
            return batch

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()


def _event(reading: AcceptedReading) -> EventData:
    event = EventData(reading.body)
    event.message_id = reading.reading_id
    event.content_type = CONTENT_TYPE
    annotations = event.raw_amqp_message.annotations
    if annotations is None:
        event.raw_amqp_message.annotations = annotations = {}
    annotations[PARTITION_KEY_ANNOTATION] = reading.home_id
    return event


def append_encoded(batch: EventDataBatch, encoded: bytes, cost: int) -> None:
    """Add an already encoded event to ``batch``, as ``EventDataBatch.add`` does after encoding.

    Touches the batch's private fields (pinned SDK version; the unit tests compare the result with
    ``EventDataBatch.add`` byte for byte).
    """
    batch._message.data.append(encoded)
    batch._size += cost
    batch._count += 1
