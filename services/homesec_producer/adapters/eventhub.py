"""``EventPublisher`` on ``azure.eventhub.aio.EventHubProducerClient`` (one attempt per call).

The SDK's own retries are off (``retry_total=0``): ``PartitionedBuffer`` retries with its ``RetryPolicy``
so that every retry and every ServerBusy answer is counted. Events are sent per partition id in
``EventDataBatch``es no larger than ``max_batch_bytes`` (and the link's maximum message size), filled by
``batching.add_public`` (``EventData`` + ``EventDataBatch.add``), or by the ``encoder`` accelerator
(``accelerated_encoding``) when its start-up self-check has proved it builds the same bytes. The ``payload``
accelerator (``accelerated_payload``) frames a batch's events when the SDK sends it, on the same terms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from azure.eventhub import EventDataBatch, TransportType
from azure.eventhub.aio import EventHubProducerClient
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    EventDataError,
    EventHubError,
    OperationTimeoutError,
)
from homesec_domain.validation import AcceptedReading
from homesec_runtime.transport import client_options

from homesec_producer import errors
from homesec_producer.adapters import accelerated_encoding, accelerated_payload
from homesec_producer.adapters.batching import AddToBatch, add_public
from homesec_producer.metrics import ProducerMetrics
from homesec_producer.settings import ProducerSettings


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


def transport_options(settings: ProducerSettings) -> dict[str, Any]:
    """The SDK client's transport keywords from the settings (``transport``, proxy, custom endpoint)."""
    return client_options(
        settings, {"amqp": TransportType.Amqp, "amqp_websockets": TransportType.AmqpOverWebsocket}
    )


def build_client(settings: ProducerSettings) -> tuple[EventHubProducerClient, Any]:
    """The SDK client from settings (connection string, or namespace + DefaultAzureCredential)."""
    options: dict[str, Any] = {"retry_total": 0, "logging_enable": False, **transport_options(settings)}
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
        add: AddToBatch = add_public,
        traces: EventTraces | None = None,
    ) -> None:
        self._client = client
        self._add = add
        # Tracing on: events of sampled requests take the public ``EventDataBatch.add`` path, where the SDK's
        # OpenTelemetry plugin opens a message span in the request's context and stamps
        # ``traceparent``/``Diagnostic-Id`` on the event (``_fits``); the others keep ``add``.
        self._traces = traces
        self._credential = credential
        self._try_timeout = try_timeout
        self._max_batch_bytes = max_batch_bytes
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        settings: ProducerSettings,
        metrics: ProducerMetrics | None = None,
        traces: EventTraces | None = None,
    ) -> EventHubsPublisher:
        """The publisher from settings, with the accelerators (``encoder``, ``payload``) whose checks pass."""
        accelerated, decision = accelerated_encoding.load(settings.accelerators)
        _, payload = accelerated_payload.load(settings.accelerators)
        if metrics is not None:
            for made in (decision, payload):
                metrics.accelerated.labels(component=made.component).set(int(made.enabled))
        client, credential = build_client(settings)
        return cls(
            client,
            try_timeout=settings.publish_try_timeout_seconds,
            max_batch_bytes=settings.max_batch_bytes,
            credential=credential,
            add=accelerated or add_public,
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
        batch = await self._new_batch(partition_id)
        for reading in readings:
            if self._fits(batch, reading):
                continue
            if len(batch) == 0:
                raise errors.PublishRejectedError(f"event {reading.reading_id} exceeds the batch size")
            await self._client.send_batch(batch, timeout=self._try_timeout)
            batch = await self._new_batch(partition_id)
            if not self._fits(batch, reading):
                raise errors.PublishRejectedError(f"event {reading.reading_id} exceeds the batch size")
        if len(batch):
            await self._client.send_batch(batch, timeout=self._try_timeout)

    def _fits(self, batch: EventDataBatch, reading: AcceptedReading) -> bool:
        """Add ``reading`` to ``batch`` if it fits (else False, nothing added)."""
        traces = self._traces
        if traces is None or not traces.sampled(reading.reading_id):
            return self._add(batch, reading)
        with traces.attached(reading.reading_id):  # the SDK's message span: a child of the request's span
            return add_public(batch, reading)  # a traced request: the SDK's path, for its trace context

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
