"""``AlarmPublisher`` on the ``alarms`` event hub, through the azure-eventhub SDK's public API only.

``publish`` sends with ``EventHubProducerClient`` (``create_batch(partition_key=home_id)`` and
``send_batch``: one batch, or more when full, per home, in order), each event with its ``message_id`` and
``content_type`` ``application/json``. ``published_since`` maps the homes' partition keys to hub partitions
with ``homesec_domain.partitioning`` (the service's and the SDK's lookup3 hash), reads each of those
partitions with a short-lived ``EventHubConsumerClient`` from the enqueued time (inclusive) up to the last
sequence number the partition's properties report when the call starts, and returns the message IDs found.
Both are bounded by ``ALARM_PUBLISH_TIMEOUT_SECONDS``; any failure raises ``AlarmPublishError``. Closing a
read's client comes after that bound (the SDK stops its receivers in about a second; at most the timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.eventhub import EventData, EventDataBatch
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient, PartitionContext
from homesec_domain.partitioning import partition_for

from homesec_consumer.adapters.clients import transport_options
from homesec_consumer.errors import AlarmPublishError, ConfigurationError
from homesec_consumer.ports import AlarmEvent
from homesec_consumer.settings import ConsumerSettings

CONTENT_TYPE = "application/json"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ReaderFactory = Callable[[], EventHubConsumerClient]


def _detail(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:300]


def _message_id(event: EventData) -> str | None:
    mid: Any = event.message_id
    if mid is None:
        return None
    return mid.decode("utf-8", "replace") if isinstance(mid, bytes) else str(mid)


def _event(alarm: AlarmEvent) -> EventData:
    event = EventData(alarm.body)
    event.message_id = alarm.message_id
    event.content_type = CONTENT_TYPE
    return event


class EventHubAlarmPublisher:
    """See the module docstring; implements ``homesec_consumer.ports.AlarmPublisher``.

    ``producer`` targets the alarms hub; ``open_reader`` makes a consumer client on the alarms hub (one per
    ``published_since`` call, closed at its end, so concurrent calls never share a partition receiver).
    """

    def __init__(
        self,
        producer: EventHubProducerClient,
        open_reader: ReaderFactory,
        *,
        timeout_seconds: float,
    ) -> None:
        self._producer = producer
        self._open_reader = open_reader
        self._timeout = timeout_seconds

    async def publish(self, events: Sequence[AlarmEvent]) -> None:
        if not events:
            return
        try:
            await asyncio.wait_for(self._publish(events), self._timeout)
        except AlarmPublishError:
            raise
        except Exception as exc:
            raise AlarmPublishError("publish", _detail(exc)) from exc

    async def _publish(self, events: Sequence[AlarmEvent]) -> None:
        by_home: dict[str, list[AlarmEvent]] = {}
        for alarm in events:  # a home's events stay in their order, in one partition
            by_home.setdefault(alarm.home_id, []).append(alarm)
        for home_id, alarms in by_home.items():
            batch = await self._producer.create_batch(partition_key=home_id)
            for alarm in alarms:
                if self._added(batch, alarm):
                    continue
                if len(batch) == 0:
                    raise AlarmPublishError("publish", f"alarm {alarm.message_id} exceeds the batch size")
                await self._producer.send_batch(batch, timeout=self._timeout)
                batch = await self._producer.create_batch(partition_key=home_id)
                if not self._added(batch, alarm):
                    raise AlarmPublishError("publish", f"alarm {alarm.message_id} exceeds the batch size")
            await self._producer.send_batch(batch, timeout=self._timeout)

    @staticmethod
    def _added(batch: EventDataBatch, alarm: AlarmEvent) -> bool:
        try:
            batch.add(_event(alarm))
        except ValueError:  # the batch is full
            return False
        return True

    async def published_since(self, home_ids: Collection[str], since_ms: int) -> set[str]:
        if not home_ids:
            return set()
        read = _PartitionRead(self._open_reader(), since_ms)
        try:
            return await asyncio.wait_for(read.run(home_ids), self._timeout)
        except Exception as exc:
            detail = _detail(exc)
            if read.errors:  # the SDK retries a failed receive without raising: name the last error
                detail += f" (receiving: {_detail(read.errors[-1])})"
            raise AlarmPublishError("published_since", detail) from exc
        finally:  # outside the timeout: stopping the SDK's receivers takes about a second
            await read.close(self._timeout)

    async def close(self) -> None:
        await self._producer.close()


def _ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(milliseconds=1)


class _PartitionRead:
    """One ``published_since`` call on its own consumer client: the partitions the homes map to, each read
    from the enqueued time ``since_ms`` (inclusive) up to the last sequence number it had at the start."""

    def __init__(self, reader: EventHubConsumerClient, since_ms: int) -> None:
        self._reader = reader
        self._since_ms = since_ms
        self._tasks: list[asyncio.Task[None]] = []
        self._last: dict[str, int] = {}  # partition -> last sequence number to read
        self._done: dict[str, asyncio.Event] = {}
        self.found: set[str] = set()
        self.errors: list[BaseException] = []

    async def run(self, home_ids: Collection[str]) -> set[str]:
        reader = self._reader
        ids = [str(pid) for pid in await reader.get_partition_ids()]
        wanted = sorted({partition_for(home, ids) for home in home_ids}, key=ids.index)
        props: list[dict[str, Any]] = await asyncio.gather(
            *(reader.get_partition_properties(p) for p in wanted)
        )
        for pid, prop in zip(wanted, props, strict=True):
            last_time: datetime | None = prop.get("last_enqueued_time_utc")
            if prop["is_empty"] or (last_time is not None and _ms(last_time) < self._since_ms):
                continue  # nothing enqueued at or after since_ms
            self._last[pid] = int(prop["last_enqueued_sequence_number"])
            self._done[pid] = asyncio.Event()
        since = _EPOCH + timedelta(milliseconds=self._since_ms)
        for pid in self._last:
            receive = reader.receive_batch(
                self._on_batch, on_error=self._on_error, partition_id=pid, starting_position=since,
                starting_position_inclusive=True, max_batch_size=300, max_wait_time=0.2,
            )  # fmt: skip
            self._tasks.append(asyncio.create_task(receive))
        await asyncio.gather(*(done.wait() for done in self._done.values()))
        return self.found

    async def _on_batch(self, ctx: PartitionContext, events: list[EventData]) -> None:
        last = self._last[ctx.partition_id]
        for event in events:
            sequence_number = event.sequence_number or 0  # always set on a received event
            mid = _message_id(event)
            if mid is not None and sequence_number <= last:
                self.found.add(mid)
            if sequence_number >= last:
                self._done[ctx.partition_id].set()

    async def _on_error(self, ctx: PartitionContext | None, error: Exception) -> None:
        self.errors.append(error)

    async def close(self, timeout: float) -> None:
        """Close the client (which stops its receivers), then collect the receive tasks."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader.close(), timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- building it from the settings ---------------------------------------------------------------------
def build_alarm_publisher(settings: ConsumerSettings, credential: Any) -> EventHubAlarmPublisher | None:
    """The publisher on ``ALARMS_EVENTHUB_NAME`` (``None`` when it is empty: alarm publishing off).

    Same namespace, credential, transport, proxy and custom endpoint as the telemetry client. A connection
    string's ``EntityPath`` names the telemetry hub; the SDK lets ``eventhub_name`` override it, so the
    alarms client is given the alarms hub's name explicitly. Reads back in ``CONSUMER_GROUP``.
    """
    hub = settings.alarms_eventhub_name
    if not hub:
        return None
    options: dict[str, Any] = {"eventhub_name": hub, **transport_options(settings)}
    secret = settings.alarms_eventhub_connection_string or settings.eventhub_connection_string
    group = settings.consumer_group
    if secret is not None:
        conn = secret.get_secret_value()
        producer = EventHubProducerClient.from_connection_string(conn, **options)

        def open_reader() -> EventHubConsumerClient:
            return EventHubConsumerClient.from_connection_string(conn, consumer_group=group, **options)

    elif settings.eventhub_fully_qualified_namespace:
        namespace = settings.eventhub_fully_qualified_namespace
        producer = EventHubProducerClient(namespace, credential=credential, **options)

        def open_reader() -> EventHubConsumerClient:
            return EventHubConsumerClient(namespace, group, credential=credential, **options)

    else:
        raise ConfigurationError(
            "set HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING or "
            "HOMESEC_CONSUMER_EVENTHUB_FULLY_QUALIFIED_NAMESPACE"
        )
    return EventHubAlarmPublisher(
        producer, open_reader, timeout_seconds=settings.alarm_publish_timeout_seconds
    )
