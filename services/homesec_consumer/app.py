"""Composition root of the consumer: builds the SDK clients, adapters, processor and HTTP app from the
settings, runs them, and shuts down in order (stop intake, flush, checkpoint, release ownership)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob.aio import BlobServiceClient
from homesec_domain.fold import FoldConfig
from prometheus_client import CollectorRegistry

from homesec_consumer.adapters.blob import BlobCheckpointSink, BlobDeadLetterSink, BlobRollupStore
from homesec_consumer.adapters.eventhub import EventHubRunner, ensure_initial_checkpoints, watch_ownership
from homesec_consumer.errors import ConfigurationError
from homesec_consumer.http import create_http_app
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.processor import ProcessorConfig, RollupProcessor
from homesec_consumer.settings import ConsumerSettings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: the consumer orders its shutdown itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def processor_config(s: ConsumerSettings) -> ProcessorConfig:
    def ms(seconds: float) -> int:
        return int(seconds * 1000)

    return ProcessorConfig(
        FoldConfig(ms(s.lateness_seconds), ms(s.resend_window_seconds), s.co_alarm_ppm),
        s.flush_max_homes, s.write_concurrency,
        max_age_ms=ms(s.max_reading_age_seconds + s.horizon_margin_seconds),
        max_ahead_ms=ms(s.max_clock_skew_seconds + s.horizon_margin_seconds),
    )  # fmt: skip


def _credential(settings: ConsumerSettings) -> Any:
    from azure.identity.aio import DefaultAzureCredential  # Workload Identity on AKS

    return DefaultAzureCredential()


def build_blob_clients(
    settings: ConsumerSettings, credential: Any
) -> tuple[BlobServiceClient, BlobCheckpointStore]:
    transport: dict[str, Any] = {"use_env_settings": settings.blob_use_env_proxy}
    if settings.blob_connection_string is not None:
        conn = settings.blob_connection_string.get_secret_value()
        service = BlobServiceClient.from_connection_string(conn, **transport)
        store = BlobCheckpointStore.from_connection_string(conn, settings.checkpoint_container, **transport)
    elif settings.blob_account_url:
        service = BlobServiceClient(settings.blob_account_url, credential=credential, **transport)
        store = BlobCheckpointStore(
            settings.blob_account_url, settings.checkpoint_container, credential=credential, **transport
        )
    else:
        raise ConfigurationError(
            "set HOMESEC_CONSUMER_BLOB_CONNECTION_STRING or HOMESEC_CONSUMER_BLOB_ACCOUNT_URL"
        )
    return service, store


def build_eventhub_client(
    settings: ConsumerSettings, store: BlobCheckpointStore, credential: Any
) -> EventHubConsumerClient:
    common: dict[str, Any] = {
        "consumer_group": settings.consumer_group, "eventhub_name": settings.eventhub_name,
        "checkpoint_store": store, "load_balancing_strategy": settings.load_balancing_strategy,
        "load_balancing_interval": settings.load_balancing_interval_seconds,
        "partition_ownership_expiration_interval": settings.ownership_expiration_seconds,
    }  # fmt: skip
    if settings.eventhub_connection_string is not None:
        return EventHubConsumerClient.from_connection_string(
            settings.eventhub_connection_string.get_secret_value(), **common
        )
    if settings.eventhub_fully_qualified_namespace:
        return EventHubConsumerClient(
            settings.eventhub_fully_qualified_namespace, credential=credential, **common
        )
    raise ConfigurationError(
        "set HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING or "
        "HOMESEC_CONSUMER_EVENTHUB_FULLY_QUALIFIED_NAMESPACE"
    )


class ConsumerService:
    def __init__(
        self, settings: ConsumerSettings, registry: CollectorRegistry, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = ConsumerMetrics.create(registry)
        self.clock = clock
        self.ready = False

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down within ``shutdown_grace_seconds``."""
        s = self.settings
        needs_credential = s.blob_connection_string is None or s.eventhub_connection_string is None
        credential = _credential(s) if needs_credential else None
        service, cp_store = build_blob_clients(s, credential)
        client = build_eventhub_client(s, cp_store, credential)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(service.close)
            stack.push_async_callback(cp_store.close)
            if credential is not None:
                stack.push_async_callback(credential.close)
            await self._serve(stop, service, cp_store, client)

    async def _serve(
        self, stop: asyncio.Event, service: BlobServiceClient, cp_store: BlobCheckpointStore,
        client: EventHubConsumerClient,
    ) -> None:  # fmt: skip
        s = self.settings
        if s.create_containers:
            for name in (s.checkpoint_container, s.rollup_container, s.deadletter_container):
                with contextlib.suppress(Exception):  # exists, or no right to create: then it must exist
                    await service.create_container(name)
        store = BlobRollupStore(service.get_container_client(s.rollup_container))
        # The SDK keys ownership and checkpoints by the endpoint's host name (EventProcessor._namespace).
        namespace = str(client._address.hostname)
        sink = BlobCheckpointSink(cp_store, namespace, client.eventhub_name, s.consumer_group)
        processor = RollupProcessor(
            store, dead_letters=BlobDeadLetterSink(service.get_container_client(s.deadletter_container)),
            checkpoints=sink, metrics=self.metrics, clock=self.clock,
            config=processor_config(s),
        )  # fmt: skip
        app = create_http_app(store, self.registry, lambda: self.ready)
        http = _Server(
            uvicorn.Config(
                app, host=s.host, port=s.port, log_level="warning", lifespan="off", access_log=False
            )
        )
        http_task = asyncio.create_task(http.serve(), name="http")
        written = await ensure_initial_checkpoints(client, sink, s.starting_position)
        log.info("initial checkpoints written for partitions %s", written)
        partition_ids = await client.get_partition_ids()
        runner = EventHubRunner(
            client, processor, self.metrics, max_batch_size=s.max_batch_size,
            max_wait_time=s.max_wait_time_seconds,
            prefetch=s.prefetch, starting_position="@latest" if s.starting_position == "latest" else "-1",
            checkpoints=sink,
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
        ]
        self.ready = True
        self.metrics.ready.set(1)
        log.info("consumer running: group %s, %d partitions", s.consumer_group, len(partition_ids))
        await stop.wait()
        await self._shutdown(processor, client, loops_stop, tasks)
        http.should_exit = True
        await asyncio.gather(http_task, return_exceptions=True)

    async def _shutdown(
        self, processor: RollupProcessor, client: EventHubConsumerClient, loops_stop: asyncio.Event,
        tasks: list[asyncio.Task[Any]],
    ) -> None:  # fmt: skip
        """Stop receiving, flush and checkpoint, then close the client (releasing ownership)."""
        started = self.clock()
        self.ready = False
        self.metrics.ready.set(0)
        processor.stop_intake()
        loops_stop.set()
        try:
            await asyncio.wait_for(
                processor.flush_all(force=True), timeout=self.settings.shutdown_grace_seconds * 0.6
            )
        except TimeoutError:
            log.error("final flush did not finish in time; the next owner redoes the rest")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                client.close(), timeout=max(1.0, self.settings.shutdown_grace_seconds * 0.3)
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("consumer stopped in %.1f s", self.clock() - started)
