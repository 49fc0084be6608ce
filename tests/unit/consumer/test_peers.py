"""The peer directory (``adapters.peers.BlobPeers``) over an in-memory container that answers as Blob storage
does: an empty metadata value comes back from a listing as None."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from homesec_consumer.adapters.blob import StorageHealth
from homesec_consumer.adapters.peers import BlobPeers

from .fakes import Clock

PREFIX = "members/telemetry/rollups"
NOW = 1_796_000_000.0


@dataclass
class Listed:
    name: str
    metadata: dict[str, str | None]


class MemoryContainer:
    def __init__(self) -> None:
        self.blobs: dict[str, dict[str, str]] = {}
        self.listings = 0
        self.stalls = 0  # uploads that hang (storage not answering)

    async def upload_blob(self, name: str, data: bytes, *, overwrite: bool, metadata: dict[str, str]) -> None:
        if self.stalls:
            self.stalls -= 1
            await asyncio.sleep(3600)
        self.blobs[name] = dict(metadata)

    async def _list(self, name_starts_with: str) -> AsyncIterator[Listed]:
        self.listings += 1
        for name, meta in sorted(self.blobs.items()):
            if name.startswith(name_starts_with):
                yield Listed(name, {k: v or None for k, v in meta.items()})

    def list_blobs(self, *, name_starts_with: str, include: list[str]) -> AsyncIterator[Listed]:
        return self._list(name_starts_with)

    async def delete_blob(self, name: str) -> None:
        self.blobs.pop(name, None)


def pod(container: MemoryContainer, name: str, clock: Clock, timeout: float = 5.0) -> BlobPeers:
    c: Any = container
    return BlobPeers(c, PREFIX, name, f"http://{name}:8081", StorageHealth(), timeout, clock)


async def test_a_pod_that_owns_nothing_yet_does_not_hide_the_others() -> None:
    container, clock = MemoryContainer(), Clock(NOW)
    a, b, c = pod(container, "a", clock), pod(container, "b", clock), pod(container, "c", clock)
    await a.announce([])  # just started: nothing claimed yet
    await b.announce(["1", "2"])
    clock.now += 1
    await c.refresh()
    assert (c.owner("1"), c.owner("2"), c.owner("3")) == ("http://b:8081", "http://b:8081", None)
    await a.announce(["2"])  # a claims 2 later: the freshest claim wins
    await c.refresh()
    assert (c.owner("1"), c.owner("2")) == ("http://b:8081", "http://a:8081")


async def test_the_directory_loop_goes_on_after_storage_does_not_answer() -> None:
    container, clock = MemoryContainer(), Clock(NOW)
    a, b = pod(container, "a", clock), pod(container, "b", clock, timeout=0.05)
    container.blobs[f"{PREFIX}/odd"] = {"url": "http://odd:8081", "updated": "soon"}  # skipped
    await a.announce(["3"])
    container.stalls = 1  # b's first announce times out (StoreUnavailableError)
    stop = asyncio.Event()
    task = asyncio.create_task(b.run(lambda: ["4"], 0.01, stop))
    for _ in range(500):
        if b.owner("3") is not None and f"{PREFIX}/b" in container.blobs:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert b.owner("3") == "http://a:8081" and container.blobs[f"{PREFIX}/b"]["partitions"] == "4"


async def test_others_alive_reads_the_directory_now() -> None:
    """Asked at a claim: another pod with a fresh entry (owning something or not) may be sending alarms."""
    container, clock = MemoryContainer(), Clock(NOW)
    a, b = pod(container, "a", clock), pod(container, "b", clock)
    await a.announce(["1"])
    assert not await a.others_alive()  # alone (its own entry does not count)
    await b.announce([])
    assert await a.others_alive() and container.listings == 2  # read at the question, not from a cache
    clock.now += 600  # b's entry went stale: b died
    await a.announce(["1"])
    assert not await a.others_alive()


async def test_others_alive_assumes_a_pod_when_the_directory_cannot_be_read() -> None:
    container, clock = MemoryContainer(), Clock(NOW)
    a = pod(container, "a", clock)

    async def refuse(name_starts_with: str) -> AsyncIterator[Listed]:
        raise ConnectionError("storage down")
        yield Listed("", {})  # pragma: no cover

    container._list = refuse  # type: ignore[method-assign]
    assert await a.others_alive()
