"""``python -m homesec_consumer``: run the consumer until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal

from homesec_domain import native
from homesec_domain.config_errors import load_settings
from homesec_domain.runtime import tune_gc
from prometheus_client import CollectorRegistry

from homesec_consumer.settings import ConsumerSettings

log = logging.getLogger("homesec_consumer")


async def _main(settings: ConsumerSettings) -> None:
    from homesec_consumer.app import ConsumerService  # imports the fold: after native.enable

    tune_gc(settings.gc_gen0_threshold)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ConsumerService(settings, CollectorRegistry()).run(stop)


def main() -> None:
    settings = load_settings(ConsumerSettings, "HOMESEC_CONSUMER_")  # bad settings: one line each, exit 78
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("uamqp").setLevel(logging.WARNING)
    native.enable(settings.accelerators, log)  # before anything imports the fold
    try:
        import uvloop

        uvloop.run(_main(settings))
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
