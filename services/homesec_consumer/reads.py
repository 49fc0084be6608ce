"""A home's status for the read API, from wherever it is freshest (SDK- and HTTP-free).

1. This pod owns the home's partition and has restored it: the current fold state (``source: live``),
   including readings not yet durable. ``as_of`` is when the partition last delivered (a batch, or an empty
   wait) while it is caught up, else the enqueued time of the last event folded: what the status is current
   to. ``age_seconds`` is how old that is.
2. Another pod owns it (``Peers``: the owners' addresses, from their directory entries): the read is
   forwarded there once, and its answer returned as it is.
3. Nobody answers for it (a rebalance, the owner restarting): the partition's last durable snapshot
   (``source: snapshot``, ``as_of`` when it was taken), else the home's status view blob (``source: view``,
   hourly), said so in ``source``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from homesec_domain.partitioning import partition_for
from homesec_domain.rollup import iso_ms, status_doc, unpack

from homesec_consumer import snapshot
from homesec_consumer.errors import SnapshotFormatError
from homesec_consumer.ports import RollupStore
from homesec_consumer.processor import RollupProcessor

SNAPSHOT_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Forwarded:
    """The owner's answer to a forwarded read: its status code and JSON body."""

    status: int
    body: dict[str, Any]


class Peers(Protocol):
    """Where the other pods are. ``owner(partition_id)`` is the base URL of the pod that last said it owns the
    partition (None: unknown, or this pod); ``forward(url, path, authorization)`` sends the read there once
    and returns its answer, or None when it did not answer (then the caller falls back)."""

    def owner(self, partition_id: str) -> str | None: ...

    async def forward(self, url: str, path: str, authorization: str | None) -> Forwarded | None: ...


class HomeReads:
    def __init__(
        self, processor: RollupProcessor, store: RollupStore, peers: Peers | None,
        clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._processor = processor
        self._store = store
        self._peers = peers
        self._clock = clock
        self._monotonic = monotonic
        self.partition_ids: Sequence[str] = ()  # the hub's, once the consumer has started
        self._snapshots: dict[str, tuple[float, tuple[int, dict[str, bytes]] | None]] = {}

    def partition_of(self, home_id: str) -> str | None:
        return partition_for(home_id, self.partition_ids) if self.partition_ids else None

    def live(self, home_id: str) -> dict[str, Any] | None:
        """The status from this pod's fold state (None: the partition is not owned and restored here)."""
        pid = self.partition_of(home_id)
        part = None if pid is None else self._processor.partitions.get(pid)
        if part is None or not part.loaded or part.fenced or pid is None:
            return None
        doc = part.status(home_id)
        if doc is None:  # never seen; a partition still migrating may have its format-2 status blob
            return None if part.legacy else {"home_id": home_id, "unknown": True}
        watch = self._processor.watches.get(pid)
        caught_up = watch is None or watch.lag() == 0
        as_of = (
            part.current_at if caught_up or part.last_enqueued_ms is None else part.last_enqueued_ms / 1000
        )
        return self._stamped(doc, "live", as_of, pid)

    async def status(self, home_id: str, authorization: str | None, *, forwarded: bool) -> Forwarded:
        """The answer to ``GET /v1/homes/{home_id}/status`` (``forwarded``: from another pod)."""
        pid = self.partition_of(home_id)
        if pid is None:
            return Forwarded(503, {"detail": "starting"})
        live = self.live(home_id)
        if live is not None:
            return Forwarded(404, {"detail": "unknown home"}) if live.get("unknown") else Forwarded(200, live)
        part = self._processor.partitions.get(pid)
        if part is not None and part.loaded and part.legacy:
            return await self.durable(home_id, pid)
        if forwarded:
            return Forwarded(421, {"detail": "partition not owned here"})
        owner = None if self._peers is None else self._peers.owner(pid)
        if owner is not None and self._peers is not None:
            answer = await self._peers.forward(owner, f"/v1/homes/{home_id}/status", authorization)
            if answer is not None and answer.status != 421:
                return answer
        return await self.durable(home_id, pid)

    async def durable(self, home_id: str, pid: str) -> Forwarded:
        """The last durable state: the partition's snapshot, else the home's status view."""
        found = await self._snapshot(pid)
        if found is not None and home_id in found[1]:
            doc = status_doc(unpack(home_id, found[1][home_id]), self._processor.co_alarm_ppm, packed=False)
            return Forwarded(200, self._stamped(doc, "snapshot", found[0] / 1000, pid))
        view = await self._store.load_status(home_id)
        if view is None:
            return Forwarded(404, {"detail": "unknown home"})
        doc = {k: v for k, v in view.doc.items() if k != "state"}
        return Forwarded(200, {**doc, "source": "view", "partition": pid})

    async def _snapshot(self, pid: str) -> tuple[int, dict[str, bytes]] | None:
        now = self._monotonic()
        cached = self._snapshots.get(pid)
        if cached is not None and now - cached[0] < SNAPSHOT_CACHE_SECONDS:
            return cached[1]
        stored = await self._store.load_snapshot(pid)
        found = None
        if stored is not None:
            try:
                header, homes = snapshot.decode(stored[0])
            except SnapshotFormatError:
                homes, header = {}, None
            if header is not None:
                found = (header.taken_ms, homes)
        self._snapshots[pid] = (now, found)
        return found

    def _stamped(self, doc: dict[str, Any], source: str, as_of: float | None, pid: str) -> dict[str, Any]:
        now = self._clock()
        at = now if as_of is None else as_of
        return {
            **doc, "source": source, "partition": pid, "as_of": iso_ms(int(at * 1000)),
            "age_seconds": round(max(0.0, now - at), 3),
        }  # fmt: skip
