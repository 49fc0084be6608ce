"""The store calls of the consumer's flushes: bounded in number at once, counted, and cut short by an outage.

``StoreWrites`` runs at most ``concurrency`` store calls at a time (loads included). Each day-blob merge and
status view write is counted in ``rollup_writes_total{result}`` (``ok``; ``error``: storage failed or timed
out; ``conflict``: a conditional write lost to another writer). After a storage error the rest of the flush's
merges is skipped, not attempted (``begin`` starts the next flush afresh): their entries stay in the state
(and its snapshot), and the next flush tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from homesec_domain.rollup import amendment_doc, day_of, hh_of, status_doc

from homesec_consumer.errors import RollupConflictError, StoreUnavailableError
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import Merge, PartitionState
from homesec_consumer.ports import RollupStore

log = logging.getLogger("homesec_consumer.processor")
T = TypeVar("T")
SKIPPED = "skipped"  # the ``operation`` of a write not attempted (the store failed earlier in the flush)


class StoreWrites:
    """See the module docstring."""

    def __init__(self, store: RollupStore, metrics: ConsumerMetrics, concurrency: int) -> None:
        self._store = store
        self._metrics = metrics
        self._io = asyncio.Semaphore(concurrency)
        self._outage = False  # a store write failed in this flush: skip the rest of it

    def begin(self) -> None:
        """A new flush: try every write again."""
        self._outage = False

    async def bounded(self, aw: Awaitable[T]) -> T:
        async with self._io:
            return await aw

    async def merge_days(self, part: PartitionState, items: list[Merge]) -> int:
        """Merge the items' closed entries into their day blobs, then rewrite each home's status view;
        return how many failed (their entries stay in the state for the next flush)."""
        outcomes = await asyncio.gather(*(self._merge_item(part, i) for i in items), return_exceptions=True)
        failures = [outcome for outcome in outcomes if outcome is not None]
        log_failures("day merge", part.partition_id, failures)
        return len(failures)

    async def _merge_item(self, part: PartitionState, item: Merge) -> None:
        by_day: dict[str, list[tuple[str, dict[str, object]]]] = {}
        for agg in item.closed:
            by_day.setdefault(day_of(agg.hour), []).append((hh_of(agg.hour), amendment_doc(agg)))
        for day, entries in sorted(by_day.items()):
            await self._counted(lambda: self._store.merge_day(item.home_id, day, entries))  # noqa: B023
        state = part.merged(item)
        doc = status_doc(state, part.co_alarm_ppm, packed=False)
        view = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        with contextlib.suppress(StoreUnavailableError):  # counted; rewritten when the next hour closes
            await self._counted(lambda: self._store.put_view(item.home_id, view))

    async def _counted(self, op: Callable[[], Awaitable[T]]) -> T:
        async with self._io:
            if self._outage:
                raise StoreUnavailableError(SKIPPED, "the store failed earlier in this flush")
            try:
                result = await op()
            except StoreUnavailableError:
                self._outage = True
                self._metrics.rollup_writes.labels(result="error").inc()
                raise
            except RollupConflictError:
                self._metrics.rollup_writes.labels(result="conflict").inc()
                raise
        self._metrics.rollup_writes.labels(result="ok").inc()
        return result


def log_failures(what: str, partition_id: str, failures: list[BaseException]) -> None:
    """One line per flush and partition, not one per home: an outage fails thousands of writes."""
    if failures:
        log.warning(
            "%d %s(s) for partition %s failed, e.g. %r", len(failures), what, partition_id, failures[0]
        )
