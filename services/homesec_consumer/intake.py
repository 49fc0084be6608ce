"""The intake step of the per-partition pipeline, before the fold: each received event decoded into its
reading and checked against the acceptance horizon; an event that fails either (poison, or a reading outside
the horizon) is written to the dead-letter container and counted, uncounted in the rollups. In a partition
without a snapshot yet (``PartitionState.legacy``), the batch's homes not in the state are migrated from
their format-2 status blobs first.

The acceptance horizon is relative to an event's enqueued time: the producer's ``MAX_READING_AGE_SECONDS``
and ``MAX_CLOCK_SKEW_SECONDS`` plus a margin for the time between its check and the enqueue
(``ProcessorConfig.max_age_ms``/``max_ahead_ms``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence

import orjson
from homesec_domain.errors import InvalidEventError
from homesec_domain.events import decode_reading
from homesec_domain.fold import HomeState, to_ms
from homesec_domain.models import Reading
from homesec_domain.rollup import state_from_status

from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import InboundEvent, PartitionState
from homesec_consumer.ports import DeadLetterSink, RollupStore
from homesec_consumer.store_writes import StoreWrites

log = logging.getLogger(__name__)

MAX_DEAD_LETTER_BODY = 262_144  # bytes of an event's body kept in its dead letter
MAX_DEAD_LETTER_DETAIL = 2000  # characters of the reason's detail kept


class Intake:
    """Admits the events of a batch: their readings, or None for the ones set aside (dead-lettered)."""

    def __init__(
        self, dead_letters: DeadLetterSink, metrics: ConsumerMetrics, store: RollupStore, writes: StoreWrites,
        *, max_age_ms: int, max_ahead_ms: int,
    ) -> None:  # fmt: skip
        self._dead_letters = dead_letters
        self._store = store
        self._writes = writes
        self._metrics = metrics
        self._max_age_ms = max_age_ms
        self._max_ahead_ms = max_ahead_ms

    async def take(
        self, part: PartitionState, events: Sequence[InboundEvent]
    ) -> list[tuple[InboundEvent, Reading | None]]:
        """Each event with its reading, or with None once it is dead-lettered; the readings' homes are in
        ``part`` (migrated) when it has no snapshot yet."""
        items: list[tuple[InboundEvent, Reading | None]] = []
        for event in events:
            try:
                items.append((event, self.admit(event)))
            except InvalidEventError as exc:
                await self.dead_letter(part.partition_id, event, exc)
                items.append((event, None))
        if part.legacy and (missing := part.missing({r.home_id for _, r in items if r is not None})):
            await self.migrate(part, missing)
        return items

    def admit(self, event: InboundEvent) -> Reading:
        """The event's reading if it decodes and lies in the acceptance horizon, else InvalidEventError."""
        reading = decode_reading(event.body)
        enqueued = event.enqueued_ms
        if enqueued is not None:
            ts = to_ms(reading.ts)
            if not enqueued - self._max_age_ms <= ts <= enqueued + self._max_ahead_ms:
                raise InvalidEventError(
                    "outside_horizon", f"ts {reading.ts.isoformat()} vs enqueued time {enqueued} ms"
                )
        return reading

    async def dead_letter(self, partition_id: str, event: InboundEvent, exc: InvalidEventError) -> None:
        """Write the event to the dead-letter container (named by its position: a retry rewrites it)."""
        seq = event.position.sequence_number
        doc = {
            "reason": exc.reason, "detail": exc.detail[:MAX_DEAD_LETTER_DETAIL], "partition": partition_id,
            "sequence_number": seq, "offset": event.position.offset, "enqueued_ms": event.enqueued_ms,
            "body_base64": base64.b64encode(event.body[:MAX_DEAD_LETTER_BODY]).decode(),
        }  # fmt: skip
        await self._dead_letters.put(f"{partition_id}/{seq:020d}.json", orjson.dumps(doc))
        self._metrics.dead_letters.labels(reason=exc.reason).inc()

    async def migrate(self, part: PartitionState, home_ids: list[str]) -> None:
        """Homes of a partition without a snapshot yet: their state from their format-2 status blobs."""

        async def one(home_id: str) -> None:
            stored = await self._writes.bounded(self._store.load_status(home_id))
            if stored is None:
                part.install(HomeState(home_id))
            elif "state" not in stored.doc:
                log.error("home %s: status blob without state: no snapshot holds it; started anew", home_id)
                part.install(HomeState(home_id))
            else:
                part.install(state_from_status(stored.doc))

        await asyncio.gather(*(one(h) for h in home_ids))
