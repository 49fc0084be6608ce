"""In-memory implementations of the producer's ports, for unit tests (no mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from homesec_domain.validation import AcceptedReading
from homesec_producer.errors import PublishError


class FakePublisher:
    """An ``EventPublisher`` that stores what it acknowledges and can be told to fail or stall.

    - ``failures``: exceptions raised by the next ``publish`` calls, in order (one per call).
    - ``stall``: while cleared, ``publish`` waits (Event Hubs not answering).
    - ``hold(pid)``: sends to that partition wait until ``release(pid)`` (one partition not answering).
    - ``unreachable``: ``partition_ids`` raises ``PublishError`` this many times first.
    """

    def __init__(self, partitions: int = 4) -> None:
        self.ids = [str(i) for i in range(partitions)]
        self.published: list[tuple[str, AcceptedReading]] = []
        self.calls: list[tuple[str, int]] = []
        self.failures: list[BaseException] = []
        self.stall = asyncio.Event()
        self.stall.set()
        self.unreachable = 0
        self.in_flight: dict[str, int] = {}
        self.max_in_flight_per_partition = 0
        self.closed = False
        self.held: dict[str, asyncio.Event] = {}

    async def partition_ids(self) -> Sequence[str]:
        if self.unreachable > 0:
            self.unreachable -= 1
            raise PublishError("unreachable")
        return list(self.ids)

    async def publish(self, partition_id: str, readings: Sequence[AcceptedReading]) -> None:
        self.calls.append((partition_id, len(readings)))
        self.in_flight[partition_id] = self.in_flight.get(partition_id, 0) + 1
        self.max_in_flight_per_partition = max(self.max_in_flight_per_partition, self.in_flight[partition_id])
        try:
            await self.stall.wait()
            if partition_id in self.held:
                await self.held[partition_id].wait()
            await asyncio.sleep(0)
            if self.failures:
                raise self.failures.pop(0)
            self.published.extend((partition_id, r) for r in readings)
        finally:
            self.in_flight[partition_id] -= 1

    def hold(self, partition_id: str) -> None:
        self.held[partition_id] = asyncio.Event()

    def release(self, partition_id: str) -> None:
        self.held.pop(partition_id).set()

    async def close(self) -> None:
        self.closed = True

    def ids_published(self) -> list[str]:
        return [r.reading_id for _, r in self.published]
