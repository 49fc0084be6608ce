"""Run the producer: ``python -m homesec_producer`` (``main``; one uvicorn worker; scale with pods).

SIGTERM/SIGINT: readiness turns false at once; after ``SHUTDOWN_DELAY_SECONDS`` the listener closes,
in-flight requests finish, the buffer is flushed, every request not acknowledged in time gets 503 +
Retry-After before uvicorn's own graceful-shutdown timeout (``shutdown.ShutdownPlan``), and the process
exits (code 0) within ``SHUTDOWN_GRACE_SECONDS``. A watchdog exits with code 70 if anything hangs past the
grace period; by then every acknowledged reading has long been published (202 is only sent after Event
Hubs acknowledged).

Two ports: the API (``PORT``: ``POST /v1/readings`` only) and the admin port (``ADMIN_PORT``: probes, metrics,
docs; ``admin.py``), two uvicorn servers on one event loop. The admin server stops once the API server has.

Slow clients: the header deadline (``HEADER_READ_TIMEOUT_SECONDS``, the HTTP protocol of
``homesec_runtime.deadlines``), the body deadline (``BODY_READ_TIMEOUT_SECONDS``, in the app) and
uvicorn's idle keep-alive timeout (``KEEP_ALIVE_TIMEOUT_SECONDS``).

Concurrency: the app limits ingest requests (``MAX_CONCURRENT_REQUESTS``, 503 + Retry-After, counted);
uvicorn's ``limit_concurrency`` (connections, idle keep-alive ones included, or tasks; a bare 503) stays
only as a backstop at ``BACKSTOP_FACTOR`` times that.

Invalid settings: one line per problem on stderr, exit code 78 (``homesec_runtime.config_errors``).
Logging: one format for every line, uvicorn's included (``homesec_runtime.logs``: ``LOG_FORMAT`` json or
console). Tracing: off unless the ``OTEL_*`` variables turn it on (``homesec_runtime.tracing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import os
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
from homesec_runtime.config_errors import load_settings
from homesec_runtime.deadlines import header_deadline_protocol
from homesec_runtime.gc_tuning import tune_gc
from homesec_runtime.logs import log_config
from homesec_runtime.tracing import start_or_exit

from homesec_producer.compose import ProducerApps, build_app
from homesec_producer.ingest import Runtime
from homesec_producer.settings import ProducerSettings

log = logging.getLogger("homesec_producer")

BACKSTOP_FACTOR = 4


class GracefulServer(uvicorn.Server):
    """uvicorn.Server whose first signal starts the drain instead of stopping at once."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime, delay: float, grace: float) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.delay = delay
        self.grace = grace
        self._signalled = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signalled:  # a second signal: stop now
            self.force_exit = True
            return
        self._signalled = True
        log.info("signal %s: draining", sig)
        _start_watchdog(self.grace + 2.0)
        self.runtime.mark_draining()  # /readyz answers 503 from now on
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(self.runtime.begin_shutdown)
        loop.call_soon_threadsafe(loop.call_later, self.delay, self._stop_accepting)

    def _stop_accepting(self) -> None:
        self.should_exit = True


def _start_watchdog(seconds: float) -> None:
    def expire() -> None:
        log.error("shutdown exceeded %.1fs: exiting", seconds)
        os._exit(70)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


class AdminServer(uvicorn.Server):
    """The admin port's server: no signal handling of its own (it stops after the API server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(settings: ProducerSettings, apps: ProducerApps) -> uvicorn.Config:
    """uvicorn's settings: its graceful timeout from the shutdown plan, its concurrency limit a backstop, the
    slow-client deadlines (``homesec_runtime.deadlines``)."""
    return uvicorn.Config(
        apps.api,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=header_deadline_protocol(settings.header_read_timeout_seconds, apps.metrics.request_timeouts),
        log_level=settings.log_level.lower(),
        log_config=log_config(settings.log_level, settings.log_format),
        access_log=False,
        workers=1,
        timeout_graceful_shutdown=settings.shutdown_plan().server_timeout,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        limit_concurrency=BACKSTOP_FACTOR * settings.max_concurrent_requests,
    )


def admin_config(settings: ProducerSettings, apps: ProducerApps) -> uvicorn.Config:
    return uvicorn.Config(
        apps.admin,
        host=settings.admin_host,
        port=settings.admin_port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level=settings.log_level.lower(),
        log_config=None,  # configured by the API server's config
        access_log=False,
        timeout_graceful_shutdown=1,
    )


async def serve(server: uvicorn.Server, admin: uvicorn.Server) -> None:
    """Both servers; the admin port keeps answering (readiness false) until the API server has stopped."""
    admin_task = asyncio.create_task(admin.serve(), name="admin")
    try:
        await server.serve()
    finally:
        admin.should_exit = True
        await admin_task


def main() -> None:
    settings = load_settings(ProducerSettings, "HOMESEC_PRODUCER_")
    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    tracing = start_or_exit("homesec-producer")  # None unless OTEL_* turns it on (docs/operations.md)
    apps = build_app(settings, tracing=tracing)
    plan = settings.shutdown_plan()
    config = server_config(settings, apps)
    server = GracefulServer(config, apps.runtime, plan.delay, plan.grace)
    admin = AdminServer(admin_config(settings, apps))
    tune_gc(settings.gc_gen0_threshold)
    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(serve(server, admin))
    finally:
        if tracing is not None:
            tracing.shutdown()  # export the last spans
