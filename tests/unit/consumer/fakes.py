"""In-memory implementations of the consumer's ports, with the same semantics as the Blob adapters."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from homesec_consumer.errors import RollupConflictError, StoreUnavailableError
from homesec_consumer.ports import Position, StoredDoc
from homesec_domain.rollup import merge_day


class MemoryRollupStore:
    """Blobs as a dict of name -> (bytes, etag); conditional writes like Blob's if-match / if-none-match."""

    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.fail_writes: set[str] = set()  # home IDs whose status writes fail (storage outage)
        self.fail_days: set[str] = set()  # home IDs whose day-blob merges fail
        self.land_then_fail: set[str] = set()  # home IDs whose status writes land, then report a timeout
        self.writes = 0
        self.status_reads = 0
        self._etags = itertools.count(1)

    def _put(self, name: str, body: bytes, etag: str | None) -> str:
        current = self.blobs.get(name)
        if (etag is None and current is not None) or (
            etag is not None and (current is None or current[1] != etag)
        ):
            raise RollupConflictError(name)
        new = f'"0x{next(self._etags):X}"'
        self.blobs[name] = (body, new)
        self.writes += 1
        return new

    def _get(self, name: str) -> StoredDoc | None:
        current = self.blobs.get(name)
        return None if current is None else StoredDoc(orjson.loads(current[0]), current[1])

    async def load_status(self, home_id: str) -> StoredDoc | None:
        self.status_reads += 1
        return self._get(f"homes/{home_id}/status.json")

    async def put_status(
        self, home_id: str, body: bytes, etag: str | None, in_doubt: tuple[bytes, ...] = ()
    ) -> str:
        if home_id in self.fail_writes:
            raise StoreUnavailableError("put_status", "injected outage")
        name = f"homes/{home_id}/status.json"
        try:
            new = self._put(name, body, etag)
        except RollupConflictError:
            current = self.blobs.get(name)
            if current is not None and current[0] == body:
                return current[1]  # the same content again: idempotent
            if current is None or current[0] not in in_doubt:
                raise
            new = self._put(name, body, current[1])  # an earlier timed-out write of ours landed
        if home_id in self.land_then_fail:
            raise StoreUnavailableError("put", "no answer in 1 s")
        return new

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

    def status(self, home_id: str) -> dict[str, Any]:
        return dict(orjson.loads(self.blobs[f"homes/{home_id}/status.json"][0]))


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
