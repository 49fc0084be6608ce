"""Composition root of the consumer: builds the SDK clients, adapters, processor, HTTP apps and background
loops from the settings. Nothing is built at import time; ``runner.py`` runs what this builds and shuts it
down in order (stop intake, flush, checkpoint, release ownership)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob.aio import BlobServiceClient
from fastapi import FastAPI
from homesec_domain.fold import FoldConfig
from homesec_runtime import native
from homesec_runtime.process_metrics import register_process_metrics
from homesec_runtime.tracing import Tracing
from prometheus_client import CollectorRegistry

from homesec_consumer.adapters import accelerated_decoding, accelerated_receive
from homesec_consumer.adapters.alarms import EventHubAlarmPublisher, build_alarm_publisher
from homesec_consumer.adapters.blob import (
    BlobCheckpointSink,
    BlobDeadLetterSink,
    BlobRollupStore,
    StorageHealth,
)
from homesec_consumer.adapters.clients import (
    build_blob_clients,
    build_eventhub_client,
    credential_for,
    eventhub_namespace,
)
from homesec_consumer.adapters.eventhub import EventHubRunner
from homesec_consumer.adapters.initial_checkpoints import ensure_initial_checkpoints
from homesec_consumer.adapters.lag import refresh_lag
from homesec_consumer.adapters.ownership import watch_ownership
from homesec_consumer.adapters.peers import BlobPeers
from homesec_consumer.admin import create_admin_app
from homesec_consumer.alarm_outbox import AlarmOutbox
from homesec_consumer.api import create_http_app
from homesec_consumer.lifecycle import bounded_close
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.ports import NO_SPANS, RollupStore
from homesec_consumer.processor import ProcessorConfig, RollupProcessor
from homesec_consumer.reads import HomeReads
from homesec_consumer.settings import ConsumerSettings

if TYPE_CHECKING:
    from homesec_consumer.tracing import ConsumerSpans

log = logging.getLogger(__name__)
ALARM_RETRY_SECONDS = 1.0
Loop = tuple[str, Coroutine[Any, Any, None]]  # a background task's name and coroutine


@dataclass(frozen=True, slots=True)
class Clients:
    """The SDK clients; ``push_closes`` closes all but the Event Hubs client (closed last, by the runner)."""

    service: BlobServiceClient
    cp_store: BlobCheckpointStore
    client: EventHubConsumerClient
    alarms: EventHubAlarmPublisher | None
    credential: Any

    def push_closes(self, stack: contextlib.AsyncExitStack) -> None:
        closes = (self.service.close, self.cp_store.close)
        for close in closes + ((self.credential.close,) if self.credential else ()):
            stack.push_async_callback(bounded_close, close)
        if self.alarms is not None:
            stack.push_async_callback(bounded_close, self.alarms.close)


@dataclass(frozen=True, slots=True)
class Parts:
    service: BlobServiceClient
    store: RollupStore
    sink: BlobCheckpointSink
    processor: RollupProcessor
    peers: BlobPeers
    reads: HomeReads


def processor_config(s: ConsumerSettings) -> ProcessorConfig:
    def ms(seconds: float) -> int:
        return int(seconds * 1000)

    return ProcessorConfig(
        FoldConfig(ms(s.lateness_seconds), ms(s.resend_window_seconds), s.co_alarm_ppm),
        s.flush_max_homes, s.write_concurrency,
        max_age_ms=ms(s.max_reading_age_seconds + s.horizon_margin_seconds),
        max_ahead_ms=ms(s.max_clock_skew_seconds + s.horizon_margin_seconds),
    )  # fmt: skip


class ConsumerService:
    """The consumer's parts built from the settings, and its readiness (``runner.ConsumerRunner`` runs it)."""

    def __init__(
        self,
        settings: ConsumerSettings,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing  # None: off (homesec_runtime.tracing)
        self.spans: ConsumerSpans | None = None
        if tracing is not None:
            from homesec_consumer import tracing as consumer_tracing

            self.spans = consumer_tracing.install(tracing)
        self.registry = registry
        self.metrics = ConsumerMetrics.create(registry)
        register_process_metrics(registry)
        self.clock = clock
        self.started = False
        self.health = StorageHealth(self._storage_changed)
        self.metrics.ready.set_function(lambda: float(self.ready()))
        # Accelerators (homesec_runtime.accelerators): the fold's was decided by the runner before its import.
        self.decode, decoder = accelerated_decoding.load(settings.accelerators)
        receiver = accelerated_receive.load(settings.accelerators)
        for decision in (decoder, receiver):
            self.metrics.accelerated.labels(component=decision.component).set(int(decision.enabled))
        self.metrics.accelerated.labels(component="fold").set(int(native.ACTIVE))

    def ready(self) -> bool:
        """Started (Blob and Event Hubs answered), not stopping, and Blob storage answers."""
        return self.started and self.health.available

    def _storage_changed(self, available: bool) -> None:
        self.metrics.storage_available.set(1 if available else 0)
        if available:
            log.info("Blob storage answers again")
        else:
            log.warning("Blob storage is failing: not ready until it answers")

    def clients(self) -> Clients:
        s = self.settings
        needs_credential = s.blob_connection_string is None or s.eventhub_connection_string is None
        credential = credential_for(s) if needs_credential else None
        service, cp_store = build_blob_clients(s, credential)
        client = build_eventhub_client(s, cp_store, credential)
        alarms = build_alarm_publisher(s, credential)
        return Clients(service, cp_store, client, alarms, credential)

    def build(self, clients: Clients) -> Parts:
        service, cp_store, client, alarms = clients.service, clients.cp_store, clients.client, clients.alarms
        s, health, timeout = self.settings, self.health, self.settings.blob_operation_timeout_seconds
        prefix = f"state/{client.eventhub_name}/{s.consumer_group}"
        store: RollupStore = BlobRollupStore(
            service.get_container_client(s.rollup_container), health, timeout, prefix
        )
        if self.tracing is not None:
            from homesec_consumer.tracing import TracingStore

            store = TracingStore(store, self.tracing.tracer)
        # The SDK keys ownership and checkpoints by the endpoint's host name, as the settings give it.
        sink = BlobCheckpointSink(
            cp_store, eventhub_namespace(s), client.eventhub_name, s.consumer_group, health, timeout
        )
        dead = BlobDeadLetterSink(service.get_container_client(s.deadletter_container), health, timeout)
        members = f"members/{client.eventhub_name}/{s.consumer_group}"
        peers = BlobPeers(
            service.get_container_client(s.rollup_container), members, uuid.uuid4().hex, s.read_api_url,
            health, timeout,
        )  # fmt: skip
        settle = s.alarm_publish_timeout_seconds + 5  # a previous owner's send in flight, and its detachment
        outbox = None if alarms is None else AlarmOutbox(
            alarms, self.metrics, self.clock, settle, others_alive=peers.others_alive
        )  # fmt: skip
        processor = RollupProcessor(
            store, dead_letters=dead, checkpoints=sink, metrics=self.metrics, clock=self.clock,
            config=processor_config(s), spans=self.spans or NO_SPANS, alarms=outbox,
        )  # fmt: skip
        return Parts(service, store, sink, processor, peers, HomeReads(processor, store, peers, self.clock))

    def apps(self, parts: Parts) -> tuple[FastAPI, FastAPI]:
        """The API port's app and the admin port's app."""
        s = self.settings
        api = create_http_app(
            parts.reads, parts.store, authority=s.token_authority(), auth_failures=self.metrics.auth_failures,
            port=s.port,
        )  # fmt: skip
        return api, create_admin_app(api, self.registry, self.ready)

    async def initial_checkpoints(
        self, client: EventHubConsumerClient, sink: BlobCheckpointSink
    ) -> list[str]:
        return await ensure_initial_checkpoints(client, sink, self.settings.starting_position)

    def loops(
        self, client: EventHubConsumerClient, parts: Parts, partition_ids: list[str], stop: asyncio.Event
    ) -> list[Loop]:
        """The receive loop, then the flush, ownership, lag, alarm and peer loops (all but the receive loop
        end when ``stop`` is set)."""
        s, processor, sink = self.settings, parts.processor, parts.sink
        runner = EventHubRunner(
            client, processor, self.metrics, max_batch_size=s.max_batch_size,
            max_wait_time=s.max_wait_time_seconds,
            prefetch=s.prefetch, starting_position="@latest" if s.starting_position == "latest" else "-1",
            checkpoints=sink, decode=self.decode, spans=self.spans,
        )  # fmt: skip
        ownership = watch_ownership(
            sink, partition_ids, self.metrics, interval=s.load_balancing_interval_seconds,
            expiration=s.ownership_expiration_seconds, stop=stop,
        )  # fmt: skip
        lag = refresh_lag(client, processor, self.metrics, interval=s.lag_refresh_interval_seconds, stop=stop)
        owned = lambda: list(processor.partitions)  # noqa: E731
        return [
            ("receive", runner.run()),
            ("flush", processor.run_flush_loop(s.flush_interval_seconds, stop)),
            ("ownership", ownership),
            ("lag", lag),
            ("alarms", processor.run_alarm_loop(ALARM_RETRY_SECONDS, stop)),
            ("peers", parts.peers.run(owned, s.peer_refresh_interval_seconds, stop)),
        ]
