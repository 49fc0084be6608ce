"""Composition root of the consumer: builds the SDK clients, adapters, processor and HTTP app from the
settings, runs them, and shuts down in order (stop intake, flush, checkpoint, release ownership)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from azure.core.exceptions import HttpResponseError
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob.aio import BlobServiceClient
from fastapi import FastAPI
from homesec_domain import native
from homesec_domain.fold import FoldConfig
from homesec_domain.tracing import Tracing
from prometheus_client import CollectorRegistry

from homesec_consumer.adapters import accelerated_decoding
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
from homesec_consumer.adapters.eventhub import (
    EventHubRunner,
    ensure_initial_checkpoints,
    refresh_lag,
    watch_ownership,
)
from homesec_consumer.adapters.peers import BlobPeers
from homesec_consumer.alarm_outbox import AlarmOutbox
from homesec_consumer.http import create_admin_app, create_http_app
from homesec_consumer.lifecycle import Server, StoppedError, bounded_close, brief, until_stopped
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.ports import NO_SPANS, RollupStore
from homesec_consumer.processor import ProcessorConfig, RollupProcessor
from homesec_consumer.reads import HomeReads
from homesec_consumer.settings import ConsumerSettings

if TYPE_CHECKING:
    from homesec_consumer.tracing import ConsumerSpans

log = logging.getLogger(__name__)
ALARM_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Parts:
    service: BlobServiceClient
    store: RollupStore
    sink: BlobCheckpointSink
    processor: RollupProcessor
    peers: BlobPeers
    reads: HomeReads


def _server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        log_config=None,  # the process's logging (homesec_domain.logsetup), not uvicorn's own
    )


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
    def __init__(
        self,
        settings: ConsumerSettings,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing  # None: off (homesec_domain.tracing)
        self.spans: ConsumerSpans | None = None
        if tracing is not None:
            from homesec_consumer import tracing as consumer_tracing

            self.spans = consumer_tracing.install(tracing)
        self.registry = registry
        self.metrics = ConsumerMetrics.create(registry)
        self.clock = clock
        self.started = False
        self.health = StorageHealth(self._storage_changed)
        self.metrics.ready.set_function(lambda: float(self.ready()))
        # Accelerators (homesec_domain.accelerators): the fold's was decided by __main__ before its import.
        self.decode, decoder = accelerated_decoding.load(settings.accelerators)
        for component, enabled in ((decoder.component, decoder.enabled), ("fold", native.ACTIVE)):
            self.metrics.accelerated.labels(component=component).set(int(enabled))

    def ready(self) -> bool:
        """Started (Blob and Event Hubs answered), not stopping, and Blob storage answers."""
        return self.started and self.health.available

    def _storage_changed(self, available: bool) -> None:
        self.metrics.storage_available.set(1 if available else 0)
        if available:
            log.info("Blob storage answers again")
        else:
            log.warning("Blob storage is failing: not ready until it answers")

    async def run(self, stop: asyncio.Event) -> None:
        """Serve /healthz at once; start when the dependencies answer (retrying); run until ``stop`` is
        set, then shut down within ``shutdown_grace_seconds``."""
        s = self.settings
        needs_credential = s.blob_connection_string is None or s.eventhub_connection_string is None
        credential = credential_for(s) if needs_credential else None
        service, cp_store = build_blob_clients(s, credential)
        client = build_eventhub_client(s, cp_store, credential)
        alarms = build_alarm_publisher(s, credential)
        async with contextlib.AsyncExitStack() as stack:
            for close in (service.close, cp_store.close) + ((credential.close,) if credential else ()):
                stack.push_async_callback(bounded_close, close)
            if alarms is not None:
                stack.push_async_callback(bounded_close, alarms.close)
            await self._serve(stop, self._build(service, cp_store, client, alarms), client)

    def _build(
        self, service: BlobServiceClient, cp_store: BlobCheckpointStore, client: EventHubConsumerClient,
        alarms: EventHubAlarmPublisher | None,
    ) -> _Parts:  # fmt: skip
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
        outbox = None if alarms is None else AlarmOutbox(alarms, self.metrics, self.clock)
        processor = RollupProcessor(
            store, dead_letters=dead, checkpoints=sink, metrics=self.metrics, clock=self.clock,
            config=processor_config(s), spans=self.spans or NO_SPANS, alarms=outbox,
        )  # fmt: skip
        members = f"members/{client.eventhub_name}/{s.consumer_group}"
        peers = BlobPeers(
            service.get_container_client(s.rollup_container), members, uuid.uuid4().hex, s.read_api_url,
            health, timeout,
        )  # fmt: skip
        return _Parts(service, store, sink, processor, peers, HomeReads(processor, store, peers, self.clock))

    async def _serve(self, stop: asyncio.Event, parts: _Parts, client: EventHubConsumerClient) -> None:
        s = self.settings
        api = create_http_app(
            parts.reads, parts.store, authority=s.token_authority(), auth_failures=self.metrics.auth_failures,
            port=s.port,
        )  # fmt: skip
        admin = create_admin_app(api, self.registry, self.ready)
        servers = [
            Server(_server_config(admin, s.admin_host, s.admin_port)),
            Server(_server_config(api, s.host, s.port)),
        ]
        tasks = [asyncio.create_task(server.serve(), name="http") for server in servers]
        try:
            partition_ids = await self._start(stop, parts.service, client, parts.sink)
            if partition_ids is None:  # stopped during start-up: nothing was received, nothing to flush
                log.info("consumer stopped in 0.0 s (during start-up)")
            else:
                parts.reads.partition_ids = partition_ids
                await self._run(stop, client, parts, partition_ids)
                await parts.peers.leave()
        finally:
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
        await bounded_close(client.close)

    async def _start(
        self, stop: asyncio.Event, service: BlobServiceClient, client: EventHubConsumerClient,
        sink: BlobCheckpointSink,
    ) -> list[str] | None:  # fmt: skip
        """Reach Blob and Event Hubs, retrying with backoff; the partition IDs, or None when stopped."""
        attempt = 0
        while True:
            try:
                return await until_stopped(stop, self._start_once(service, client, sink), _ATTEMPT_TIMEOUT)
            except StoppedError:
                return None
            except Exception as exc:
                attempt += 1
                delay = min(self.settings.startup_retry_max_seconds, 0.5 * 2**attempt)
                self.metrics.handler_errors.labels(stage="startup").inc()
                log.warning("start-up attempt %d failed (%s); retrying in %.1f s", attempt, brief(exc), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                return None

    async def _start_once(
        self, service: BlobServiceClient, client: EventHubConsumerClient, sink: BlobCheckpointSink
    ) -> list[str]:
        s, timeout = self.settings, self.settings.blob_operation_timeout_seconds
        if s.create_containers:
            for name in (s.checkpoint_container, s.rollup_container, s.deadletter_container):
                # Exists (409), or no right to create (403): then it must exist. No answer: retry.
                with contextlib.suppress(HttpResponseError):
                    create = service.create_container(name, retry_total=0)  # this loop retries
                    await self.health.call("create_container", create, timeout)
        written = await ensure_initial_checkpoints(client, sink, s.starting_position)
        log.info("initial checkpoints written for partitions %s", written)
        return list(await client.get_partition_ids())

    async def _run(
        self, stop: asyncio.Event, client: EventHubConsumerClient, parts: _Parts, partition_ids: list[str]
    ) -> None:
        s, processor, sink = self.settings, parts.processor, parts.sink
        runner = EventHubRunner(
            client, processor, self.metrics, max_batch_size=s.max_batch_size,
            max_wait_time=s.max_wait_time_seconds,
            prefetch=s.prefetch, starting_position="@latest" if s.starting_position == "latest" else "-1",
            checkpoints=sink, decode=self.decode, spans=self.spans,
        )  # fmt: skip
        loops_stop = asyncio.Event()
        tasks = [
            asyncio.create_task(runner.run(), name="receive"),
            asyncio.create_task(processor.run_flush_loop(s.flush_interval_seconds, loops_stop), name="flush"),
            asyncio.create_task(
                watch_ownership(
                    sink,
                    partition_ids,
                    self.metrics,
                    interval=s.load_balancing_interval_seconds,
                    expiration=s.ownership_expiration_seconds,
                    stop=loops_stop,
                ),
                name="ownership",
            ),
            asyncio.create_task(
                refresh_lag(
                    client, processor, self.metrics, interval=s.lag_refresh_interval_seconds, stop=loops_stop
                ),
                name="lag",
            ),
            asyncio.create_task(processor.run_alarm_loop(ALARM_RETRY_SECONDS, loops_stop), name="alarms"),
            asyncio.create_task(
                parts.peers.run(
                    lambda: list(processor.partitions), s.peer_refresh_interval_seconds, loops_stop
                ),
                name="peers",
            ),
        ]
        self.started = True
        log.info("consumer running: group %s, %d partitions", s.consumer_group, len(partition_ids))
        await stop.wait()
        await self._shutdown(processor, client, loops_stop, tasks)

    async def _shutdown(
        self, processor: RollupProcessor, client: EventHubConsumerClient, loops_stop: asyncio.Event,
        tasks: list[asyncio.Task[Any]],
    ) -> None:  # fmt: skip
        """Stop receiving, flush and checkpoint, then close the client (releasing ownership)."""
        started = self.clock()
        self.started = False
        processor.stop_intake()
        loops_stop.set()
        try:
            await asyncio.wait_for(
                processor.flush_all(force=True), timeout=self.settings.shutdown_grace_seconds * 0.6
            )
        except TimeoutError:
            log.error("final flush did not finish in time; the next owner redoes the rest")
        await bounded_close(client.close, max(1.0, self.settings.shutdown_grace_seconds * 0.3))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("consumer stopped in %.1f s", self.clock() - started)


_ATTEMPT_TIMEOUT = 60.0  # one start-up attempt (the SDKs' own retries included)
