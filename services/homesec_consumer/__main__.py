"""``python -m homesec_consumer``: run the consumer until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from homesec_domain import logsetup, native
from homesec_domain.config_errors import EX_CONFIG, LINE_PREFIX, load_settings
from homesec_domain.runtime import tune_gc
from homesec_domain.tracing import Tracing, start_or_exit
from prometheus_client import CollectorRegistry

from homesec_consumer.settings import ConsumerSettings

log = logging.getLogger("homesec_consumer")


async def _main(settings: ConsumerSettings, tracing: Tracing | None) -> None:
    from homesec_consumer.app import ConsumerService  # imports the fold: after native.enable

    tune_gc(settings.gc_gen0_threshold)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ConsumerService(settings, CollectorRegistry(), tracing=tracing).run(stop)


def main() -> None:
    settings = load_settings(ConsumerSettings, "HOMESEC_CONSUMER_")  # bad settings: one line each, exit 78
    problem = settings.token_key_problem()
    if problem:  # no key to verify read tokens with: the status API would be open or useless
        sys.stderr.write(f"{LINE_PREFIX}{problem}\n")
        raise SystemExit(EX_CONFIG)
    logsetup.configure(settings.log_level, settings.log_format)
    tracing = start_or_exit("homesec-consumer")  # None unless OTEL_* turns it on (docs/operations.md)
    native.enable(settings.accelerators, log)  # before anything imports the fold
    try:
        import uvloop

        uvloop.run(_main(settings, tracing))
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        asyncio.run(_main(settings, tracing))
    finally:
        if tracing is not None:
            tracing.shutdown()  # export the last spans


if __name__ == "__main__":
    main()
