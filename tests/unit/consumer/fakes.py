"""In-memory implementations of the consumer's ports, with the same semantics as the Blob adapters."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any

import orjson
from homesec_consumer import snapshot
from homesec_consumer.errors import AlarmPublishError, RollupConflictError, StoreUnavailableError
from homesec_consumer.ports import AlarmEvent, Position, StoredDoc
from homesec_domain.rollup import merge_day, status_doc, unpack


class Clock:
    """An injected clock (seconds since the epoch) that moves only when a test sets or advances ``now``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryRollupStore:
    """Blobs as a dict of name -> (bytes, etag); conditional writes like Blob's if-match / if-none-match."""

    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.fail_snapshots = False  # state snapshot writes fail (storage outage)
        self.land_then_fail = False  # snapshot writes land, then report a timeout
        self.fail_days: set[str] = set()  # home IDs whose day-blob merges fail
        self.writes = 0
        self.snapshot_writes = 0
        self.status_reads = 0
        self.co_alarm_ppm = 50.0
        self._etags = itertools.count(1)

    def _put(self, name: str, body: bytes, etag: str | None) -> str:
        current = self.blobs.get(name)
        if (etag is None and current is not None) or (
            etag is not None and (current is None or current[1] != etag)
        ):
            raise RollupConflictError(name)
        return self._set(name, body)

    def _set(self, name: str, body: bytes) -> str:
        new = f'"0x{next(self._etags):X}"'
        self.blobs[name] = (body, new)
        self.writes += 1
        return new

    def _get(self, name: str) -> StoredDoc | None:
        current = self.blobs.get(name)
        return None if current is None else StoredDoc(orjson.loads(current[0]), current[1])

    async def load_snapshot(self, partition_id: str) -> tuple[bytes, str] | None:
        return self.blobs.get(f"state/{partition_id}.state")

    async def put_snapshot(
        self, partition_id: str, body: bytes, etag: str | None, in_doubt: tuple[bytes, ...] = ()
    ) -> str:
        if self.fail_snapshots:
            raise StoreUnavailableError("put_snapshot", "injected outage")
        name = f"state/{partition_id}.state"
        try:
            new = self._put(name, body, etag)
        except RollupConflictError:
            current = self.blobs.get(name)
            if current is not None and current[0] == body:
                return current[1]  # the same content again: idempotent
            if current is None or hashlib.sha256(current[0]).digest() not in in_doubt:
                raise
            new = self._put(name, body, current[1])  # an earlier timed-out write of ours landed
        self.snapshot_writes += 1
        if self.land_then_fail:
            raise StoreUnavailableError("put", "no answer in 1 s")
        return new

    async def load_status(self, home_id: str) -> StoredDoc | None:
        self.status_reads += 1
        return self._get(f"homes/{home_id}/status.json")

    async def put_view(self, home_id: str, body: bytes) -> None:
        self._set(f"homes/{home_id}/status.json", body)

    async def merge_day(self, home_id: str, day: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
        if home_id in self.fail_days:
            raise StoreUnavailableError("merge_day", "injected outage")
        name = f"homes/{home_id}/hourly/{day}.json"
        stored = self._get(name)
        doc = merge_day(stored.doc if stored else None, home_id, day, entries)
        if stored is not None and doc == stored.doc:
            return  # every entry was merged before
        self._put(name, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), stored.etag if stored else None)

    async def load_day(self, home_id: str, day: str) -> StoredDoc | None:
        return self._get(f"homes/{home_id}/hourly/{day}.json")

    def homes(self, partition_id: str = "0") -> dict[str, bytes]:
        """The packed states of the partition's durable snapshot."""
        stored = self.blobs.get(f"state/{partition_id}.state")
        return {} if stored is None else snapshot.decode(stored[0])[1]

    def status(self, home_id: str, partition_id: str = "0") -> dict[str, Any]:
        """The home's status as the durable snapshot holds it."""
        return status_doc(unpack(home_id, self.homes(partition_id)[home_id]), self.co_alarm_ppm)


class MemoryAlarmHub:
    """The alarms hub: events in the order acknowledged, each with the (fake) time it was enqueued."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self.events: list[tuple[int, AlarmEvent]] = []
        self.clock = clock
        self.fail = False  # sends fail and nothing lands
        self.land_then_fail = False  # sends land, then report a timeout
        self.lookups = 0
        self.reading = asyncio.Event()  # set while a look-up waits for ``slow`` (a read takes ~2 s for real)
        self.slow: asyncio.Event | None = None  # look-ups wait until it is set

    async def publish(self, events: Sequence[AlarmEvent]) -> None:
        if self.fail:
            raise AlarmPublishError("send", "injected outage")
        now = int(self.clock() * 1000)
        self.events.extend((now, e) for e in events)
        if self.land_then_fail:
            raise AlarmPublishError("send", "no acknowledgement in 10 s")

    async def published_since(self, home_ids: Collection[str], since_ms: int) -> set[str]:
        self.lookups += 1
        if self.slow is not None:
            self.reading.set()
            await self.slow.wait()
            self.reading.clear()
        if self.fail:
            raise AlarmPublishError("read", "injected outage")
        return {e.message_id for at, e in self.events if at >= since_ms and e.home_id in home_ids}

    def ids(self) -> list[str]:
        return [e.message_id for _, e in self.events]


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    async def put(self, name: str, body: bytes) -> None:
        self.items[name] = body


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.calls = 0

    async def checkpoint(self, partition_id: str, position: Position) -> None:
        self.positions[partition_id] = position
        self.calls += 1
