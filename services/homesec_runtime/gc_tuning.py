"""Process set-up shared by both services (standard library only)."""

from __future__ import annotations

import gc


def tune_gc(gen0_threshold: int) -> None:
    """Freeze what start-up built out of garbage collection and collect the young generation less often.

    The ~100,000 objects of the imported modules and clients live as long as the process, yet every full
    collection walked them. In the consumer that was about a fifth of its CPU under load
    (docs/benchmarks.md); in the producer p99 at 16,700 readings/s through the emulator went from 71 ms to
    15 ms (docs/producer.md). Receiving and serving allocate several short-lived objects per reading, almost
    all freed by reference counting, so frequent young collections find little; the consumer's fold state
    is packed bytes, which the collector does not track.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
