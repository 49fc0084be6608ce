"""Run the consumer: ``python -m homesec_consumer`` until SIGTERM/SIGINT, then shut down in order.

``main``: the settings (bad ones, or no read-token key, Event Hubs or Blob endpoint: one line each on
stderr, exit 78), logging, tracing (off unless ``OTEL_*`` turns it on), the compiled fold's check (before
anything imports the fold), then the event loop (uvloop).
``ConsumerRunner`` serves both ports at once (``/healthz`` answers from the start), starts when Blob and
Event Hubs answer (retrying with backoff), runs the loops ``compose.ConsumerService`` builds, and on the
signal shuts down within ``SHUTDOWN_GRACE_SECONDS``: stop intake, flush, checkpoint, close the client
(releasing ownership). The API port cuts slow clients off (``HEADER_READ_TIMEOUT_SECONDS``,
``KEEP_ALIVE_TIMEOUT_SECONDS``: ``homesec_runtime.deadlines``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

import uvicorn
from azure.core.exceptions import HttpResponseError
from homesec_runtime import logs, native
from homesec_runtime.config_errors import check_or_exit, exit_with, load_settings
from homesec_runtime.deadlines import header_deadline_protocol
from homesec_runtime.gc_tuning import tune_gc
from homesec_runtime.tracing import Tracing, start_or_exit
from prometheus_client import CollectorRegistry

from homesec_consumer.errors import ConfigurationError
from homesec_consumer.lifecycle import Server, StoppedError, bounded_close, brief, until_stopped
from homesec_consumer.settings import ConsumerSettings

if TYPE_CHECKING:  # these import the fold: only after native.enable
    from azure.eventhub.aio import EventHubConsumerClient
    from azure.storage.blob.aio import BlobServiceClient
    from fastapi import FastAPI

    from homesec_consumer.adapters.blob import BlobCheckpointSink
    from homesec_consumer.compose import ConsumerService, Parts
    from homesec_consumer.metrics import ConsumerMetrics
    from homesec_consumer.processor import RollupProcessor

log = logging.getLogger(__name__)
_ATTEMPT_TIMEOUT = 60.0  # one start-up attempt (the SDKs' own retries included)


def _server_config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        log_config=None,  # the process's logging (homesec_runtime.logs), not uvicorn's own
        **options,
    )


def _api_config(app: FastAPI, settings: ConsumerSettings, metrics: ConsumerMetrics) -> uvicorn.Config:
    """The API port's server: the slow-client header deadline and keep-alive timeout (``deadlines``)."""
    protocol = header_deadline_protocol(settings.header_read_timeout_seconds, metrics.request_timeouts)
    return _server_config(
        app,
        settings.host,
        settings.port,
        http=protocol,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
    )


class ConsumerRunner:
    """Runs a ``ConsumerService`` until ``stop`` is set, then shuts it down in order."""

    def __init__(self, service: ConsumerService) -> None:
        self.service = service
        self.settings = service.settings

    async def run(self, stop: asyncio.Event) -> None:
        """Serve /healthz at once; start when the dependencies answer (retrying); run until ``stop`` is
        set, then shut down within ``shutdown_grace_seconds``."""
        clients = self.service.clients()
        async with contextlib.AsyncExitStack() as stack:
            clients.push_closes(stack)
            await self._serve(stop, self.service.build(clients), clients.client)

    async def _serve(self, stop: asyncio.Event, parts: Parts, client: EventHubConsumerClient) -> None:
        s = self.settings
        api, admin = self.service.apps(parts)
        servers = [
            Server(_server_config(admin, s.admin_host, s.admin_port)),
            Server(_api_config(api, s, self.service.metrics)),
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
                self.service.metrics.handler_errors.labels(stage="startup").inc()
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
                    await self.service.health.call("create_container", create, timeout)
        written = await self.service.initial_checkpoints(client, sink)
        log.info("initial checkpoints written for partitions %s", written)
        return list(await client.get_partition_ids())

    async def _run(
        self, stop: asyncio.Event, client: EventHubConsumerClient, parts: Parts, partition_ids: list[str]
    ) -> None:
        loops_stop = asyncio.Event()
        loops = self.service.loops(client, parts, partition_ids, loops_stop)
        tasks = [asyncio.create_task(coro, name=name) for name, coro in loops]
        self.service.started = True
        log.info(
            "consumer running: group %s, %d partitions", self.settings.consumer_group, len(partition_ids)
        )
        await stop.wait()
        await self._shutdown(parts.processor, client, loops_stop, tasks)

    async def _shutdown(
        self, processor: RollupProcessor, client: EventHubConsumerClient, loops_stop: asyncio.Event,
        tasks: list[asyncio.Task[Any]],
    ) -> None:  # fmt: skip
        """Stop receiving, flush and checkpoint, then close the client (releasing ownership)."""
        started = self.service.clock()
        self.service.started = False
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
        log.info("consumer stopped in %.1f s", self.service.clock() - started)


async def _main(settings: ConsumerSettings, tracing: Tracing | None) -> None:
    from homesec_consumer.compose import ConsumerService  # imports the fold: after native.enable

    tune_gc(settings.gc_gen0_threshold)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ConsumerRunner(ConsumerService(settings, CollectorRegistry(), tracing=tracing)).run(stop)


def main() -> None:
    settings = load_settings(ConsumerSettings, "HOMESEC_CONSUMER_")  # bad settings: one line each, exit 78
    # no read-token key (the status API would be open or useless), no Event Hubs or Blob endpoint
    check_or_exit(settings.startup_problems())
    logs.configure(settings.log_level, settings.log_format)
    tracing = start_or_exit("homesec-consumer")  # None unless OTEL_* turns it on (docs/operations.md)
    # before anything imports the fold
    native.enable(settings.accelerators, logging.getLogger("homesec_consumer"))
    try:
        _run(settings, tracing)
    except ConfigurationError as exc:  # a client the settings cannot build: one line, exit 78
        exit_with([str(exc)])
    finally:
        if tracing is not None:
            tracing.shutdown()  # export the last spans


def _run(settings: ConsumerSettings, tracing: Tracing | None) -> None:
    try:
        import uvloop

        uvloop.run(_main(settings, tracing))
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        asyncio.run(_main(settings, tracing))
