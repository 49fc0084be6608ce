"""Alarm events out of the consumer, each in the alarms hub exactly once.

A partition's alarm transitions wait in its outbox (``PartitionState.outbox``, part of the state snapshot)
until the hub acknowledges them. ``AlarmOutbox.send`` publishes them at once when found (the batch that
folded them waits for the acknowledgement unless another send of the partition is under way: that one sends
them too) and, after a failure, again every second (``RollupProcessor.run_alarm_loop``). A partition's sends
stop when it closes: nothing is published for a partition this owner no longer holds.

Exactly once: folding the same events again (after a crash, a rebalance or a fenced write) finds the same
transitions with the same message IDs. Before publishing an alarm of an event another owner may have folded
(enqueued before this owner restored the partition, plus a margin) for a home it has not looked up since,
the owner reads which message IDs are already in the hub (``AlarmPublisher.published_since``) from the
snapshot's ``alarms_since_ms``, or from the first attempt of any alarm that snapshot still held. A snapshot's
``alarms_since_ms`` (``since_for``) is the moment it was taken, less a margin, once its position is past every
event enqueued before its writer claimed the partition: every event after it was then folded, and so
published, after that moment, by its writer alone. Until then an earlier owner may have folded further and
published, so the writer's own starting point is kept (0 when it started without a snapshot). A send that
failed may have landed (a timeout), so its homes are looked up again, from its first attempt, before the
next try. When another consumer pod is alive (``others_alive``, asked once per claim), those look-ups wait
until ``settle_seconds`` after the claim, so that a previous owner still alive ends its sends: its receiver
is detached when this owner attaches, its partition closes, and a send in flight ends within its timeout.
Until then the homes concerned keep their alarms pending (in order); the others' go out at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from homesec_consumer.errors import AlarmPublishError
from homesec_consumer.metrics import ConsumerMetrics
from homesec_consumer.partition import PartitionState
from homesec_consumer.ports import AlarmEvent, AlarmPublisher

log = logging.getLogger(__name__)
CLOCK_MARGIN_MS = 120_000  # the hub's clock (enqueued times) against this pod's, and sends in flight
# After a claim the SDK attaches this owner's receiver with a higher epoch, which detaches the previous
# owner's: events enqueued this long after the claim reached no other owner (clock skew included).
CLAIM_MARGIN_MS = 10_000


@dataclasses.dataclass(slots=True)
class _Claim:
    since_ms: int  # alarms of this claim's replayed events cannot be in the hub before this
    opened_ms: int  # when the partition was restored: later events were never folded by another owner
    looked_up: set[str] = dataclasses.field(default_factory=set)  # homes whose published IDs are known
    published: set[str] = dataclasses.field(default_factory=set)  # message IDs found in the hub
    contested: bool | None = None  # another pod may have owned the partition and be sending (None: not asked)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    again: bool = False  # alarms were folded while a send held the lock: its holder sends them too


class AlarmOutbox:
    def __init__(
        self, publisher: AlarmPublisher, metrics: ConsumerMetrics, clock: Callable[[], float],
        settle_seconds: float = 15.0, others_alive: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:  # fmt: skip
        self._publisher = publisher
        self._settle_ms = int(settle_seconds * 1000)
        self._others_alive = others_alive  # None: always assume another pod may be sending
        self._metrics = metrics
        self._clock = clock
        self._claims: dict[str, _Claim] = {}
        self._pending: dict[str, int] = {}  # alarms pending per partition (the gauge)

    def opened(self, part: PartitionState) -> None:
        """The partition's state was restored (from its snapshot, or none): where a look-up must start."""
        since = 0 if part.snapshot_taken_ms is None else part.alarms_since_ms
        tried = [a.first_attempt_ms for a in part.outbox if a.first_attempt_ms is not None]
        since = max(0, min([since, *(t - CLOCK_MARGIN_MS for t in tried)]))
        self._claims[part.partition_id] = _Claim(since, int(self._clock() * 1000))

    def since_for(self, part: PartitionState, taken_ms: int) -> int:
        """The ``alarms_since_ms`` of a snapshot of ``part`` taken now (see the module docstring)."""
        claim = self._claims.get(part.partition_id)
        if claim is None:
            return 0
        last = part.last_enqueued_ms
        if last is not None and last > claim.opened_ms + CLAIM_MARGIN_MS:
            return max(0, taken_ms - CLOCK_MARGIN_MS)
        return claim.since_ms

    def closed(self, partition_id: str) -> None:
        self._claims.pop(partition_id, None)
        self._pending.pop(partition_id, None)
        self._metrics.alarms_pending.set(sum(self._pending.values()))

    async def send(self, part: PartitionState, *, wait: bool = True) -> None:
        """Publish the partition's pending alarms that are not in the hub yet; failures are counted and
        logged, and the alarms stay pending (never raises). ``wait=False`` (a batch that folded alarms):
        when a send is already under way, its holder sends these too, so the batch does not wait."""
        claim = self._claims.get(part.partition_id)
        if claim is None or not part.outbox:
            return
        if not wait and claim.lock.locked():
            claim.again = True
            return
        async with claim.lock:
            try:
                while self._claims.get(part.partition_id) is claim:  # closed: the next owner sends them
                    claim.again = False
                    await self._send(part, claim)
                    if not claim.again:
                        break
            except AlarmPublishError as exc:
                self._metrics.alarm_publish_errors.inc()
                log.warning("publishing %d alarm(s) of partition %s failed: %s", len(part.outbox),
                            part.partition_id, exc)  # fmt: skip
            finally:
                if self._claims.get(part.partition_id) is claim:
                    self._pending[part.partition_id] = len(part.outbox)
                    self._metrics.alarms_pending.set(sum(self._pending.values()))

    @staticmethod
    def _maybe_published(part: PartitionState, claim: _Claim) -> set[str]:
        """Homes with an alarm pending that may be in the hub: of an event another owner may have folded, or
        sent before."""
        recent = claim.opened_ms + CLAIM_MARGIN_MS
        return {
            a.home_id for a in part.outbox
            if a.first_attempt_ms is not None or a.enqueued_ms is None or a.enqueued_ms <= recent
        }  # fmt: skip

    @staticmethod
    def _replayed(part: PartitionState, claim: _Claim) -> set[str]:
        """Homes with an alarm pending that another owner may be sending: of an event it may have folded, or
        restored from its snapshot as tried."""
        recent = claim.opened_ms + CLAIM_MARGIN_MS
        return {
            a.home_id for a in part.outbox
            if a.enqueued_ms is None or a.enqueued_ms <= recent
            or (a.first_attempt_ms is not None and a.first_attempt_ms < claim.opened_ms)
        }  # fmt: skip

    async def _send(self, part: PartitionState, claim: _Claim) -> None:
        # A batch may fold alarms into the outbox while a look-up is in flight (the lock only orders sends):
        # look up until no alarm left in the outbox needs one, then publish the outbox as it is.
        # Right after a claim the previous owner may still be sending (its receiver not yet detached, a send
        # in flight): the homes whose alarms it may have published wait until that has settled.
        settled = self._clock() * 1000 >= claim.opened_ms + self._settle_ms
        if not settled and claim.contested is None:
            claim.contested = True if self._others_alive is None else await self._others_alive()
        settled = settled or not claim.contested
        while (
            unknown := self._maybe_published(part, claim)
            - claim.looked_up
            - (set() if settled else self._replayed(part, claim))
        ):
            claim.published |= await self._publisher.published_since(unknown, claim.since_ms)
            claim.looked_up |= unknown
        part.acknowledged({a.message_id for a in part.outbox if a.message_id in claim.published})
        held = set() if settled else self._replayed(part, claim) - claim.looked_up
        todo = [a for a in part.outbox if a.home_id not in held]
        if not todo or self._claims.get(part.partition_id) is not claim:  # closed during the look-up
            return
        now_ms = int(self._clock() * 1000)
        tried = {
            a.message_id: dataclasses.replace(a, first_attempt_ms=a.first_attempt_ms or now_ms) for a in todo
        }
        part.outbox = [tried.get(a.message_id, a) for a in part.outbox]
        try:
            await self._publisher.publish(
                [AlarmEvent(a.message_id, a.home_id, a.body, a.enqueued_ms) for a in todo]
            )
        except AlarmPublishError:
            # It may have landed after all: look these homes up again, from the first attempt, before a retry.
            claim.looked_up -= {a.home_id for a in todo}
            claim.since_ms = min(
                claim.since_ms, min(t.first_attempt_ms or now_ms for t in tried.values()) - CLOCK_MARGIN_MS
            )
            raise
        part.acknowledged(set(tried))
        done = self._clock()
        for a in todo:
            self._metrics.alarms_published.inc()
            if a.enqueued_ms is not None:
                self._metrics.alarm_latency.observe(max(0.0, done - a.enqueued_ms / 1000))
