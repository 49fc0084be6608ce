"""``python -m homesec_consumer``: run the consumer until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from homesec_domain import native
from prometheus_client import CollectorRegistry

from homesec_consumer.app import ConsumerService
from homesec_consumer.settings import ConsumerSettings

log = logging.getLogger("homesec_consumer")


def tune_gc(gen0_threshold: int) -> None:
    """Collect less often, and never scan what start-up built. The ~100,000 objects of the imported modules
    and clients live as long as the process, yet every full collection walked them: under load that was
    about a fifth of the consumer's CPU (``docs/benchmarks.md``). Fold state is packed bytes, which the
    collector does not track, so frozen start-up objects are almost all it would otherwise look at."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


async def _main(settings: ConsumerSettings) -> None:
    tune_gc(settings.gc_gen0_threshold)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ConsumerService(settings, CollectorRegistry()).run(stop)


def main() -> None:
    settings = ConsumerSettings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("uamqp").setLevel(logging.WARNING)
    log.info(native.describe())
    try:
        import uvloop

        uvloop.run(_main(settings))
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
