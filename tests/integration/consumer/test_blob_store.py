"""The Blob adapters against a real Azurite process."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from azure.storage.blob.aio import ContainerClient
from homesec_consumer.adapters.blob import BlobDeadLetterSink, BlobRollupStore
from homesec_consumer.errors import RollupConflictError
from homesec_consumer.partition import digest
from homesec_devstack.azurite import AzuriteProcess

pytestmark = pytest.mark.integration


async def test_conditional_snapshot_writes_and_idempotent_retries(
    azurite: AzuriteProcess, container_name: str
) -> None:
    async with ContainerClient.from_connection_string(azurite.connection_string, container_name) as container:
        await container.create_container()
        store = BlobRollupStore(container, state_prefix="state/telemetry/rollups")
        assert await store.load_snapshot("3") is None
        etag1 = await store.put_snapshot("3", b"v1", None)
        assert await store.put_snapshot("3", b"v1", None) == etag1  # same content again: success, no change
        with pytest.raises(RollupConflictError):
            await store.put_snapshot("3", b"v0", None)
        etag2 = await store.put_snapshot("3", b"v2", etag1)
        with pytest.raises(RollupConflictError):  # a stale writer loses
            await store.put_snapshot("3", b"v3", etag1)
        assert await store.load_snapshot("3") == (b"v2", etag2)
        assert [b.name async for b in container.list_blobs()] == ["state/telemetry/rollups/3.state"]


async def test_a_landed_write_in_doubt_is_ours_and_any_other_body_is_a_conflict(
    azurite: AzuriteProcess, container_name: str
) -> None:
    async with ContainerClient.from_connection_string(azurite.connection_string, container_name) as container:
        await container.create_container()
        store = BlobRollupStore(container)
        v = [f"state {n}".encode() for n in range(5)]
        etag0 = await store.put_snapshot("0", v[0], None)
        await store.put_snapshot("0", v[1], etag0)  # a write whose answer this writer never got (timeout)
        with pytest.raises(RollupConflictError):  # without knowing it was ours: another writer's
            await store.put_snapshot("0", v[2], etag0)
        etag3 = await store.put_snapshot("0", v[3], etag0, in_doubt=(digest(v[2]), digest(v[1])))
        assert await store.load_snapshot("0") == (v[3], etag3)
        with pytest.raises(RollupConflictError):  # the blob holds none of the bodies in doubt
            await store.put_snapshot("0", v[4], etag0, in_doubt=(digest(v[1]), digest(v[2])))
        created = await store.put_snapshot("1", v[1], None)  # a create that landed, then its retry
        etag = await store.put_snapshot("1", v[2], None, in_doubt=(digest(v[1]),))
        assert etag != created


async def test_status_views_are_overwritten(azurite: AzuriteProcess, container_name: str) -> None:
    async with ContainerClient.from_connection_string(azurite.connection_string, container_name) as container:
        await container.create_container()
        store = BlobRollupStore(container)
        for n in range(2):
            await store.put_view("h1", orjson.dumps({"home_id": "h1", "v": n}))
        loaded = await store.load_status("h1")
        assert loaded is not None and loaded.doc == {"home_id": "h1", "v": 1}


async def test_concurrent_day_merges_keep_every_hour(azurite: AzuriteProcess, container_name: str) -> None:
    async with ContainerClient.from_connection_string(azurite.connection_string, container_name) as container:
        await container.create_container()
        store = BlobRollupStore(container)
        entries = [(f"{h:02d}", {"total": h, "rev": 10 + h, "stream": 0}) for h in range(6)]
        await asyncio.gather(*(store.merge_day("h1", "2026-11-25", [entry]) for entry in entries))
        await store.merge_day("h1", "2026-11-25", [entries[3]])  # merged before (same stamp): a no-op
        day = await store.load_day("h1", "2026-11-25")
        assert day is not None
        assert day.doc["hours"] == dict(entries)


async def test_dead_letters_are_idempotent_blobs(azurite: AzuriteProcess, container_name: str) -> None:
    async with ContainerClient.from_connection_string(azurite.connection_string, container_name) as container:
        await container.create_container()
        sink = BlobDeadLetterSink(container)
        await sink.put("3/00000000000000000007.json", b'{"reason":"undecodable"}')
        await sink.put("3/00000000000000000007.json", b'{"reason":"undecodable"}')
        names = [b.name async for b in container.list_blobs()]
        assert names == ["3/00000000000000000007.json"]
