"""The Blob adapters against a real Azurite process."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from azure.storage.blob.aio import ContainerClient
from homesec_consumer.adapters.blob import BlobDeadLetterSink, BlobRollupStore
from homesec_consumer.errors import RollupConflictError
from homesec_devstack.azurite import AzuriteProcess

pytestmark = pytest.mark.integration


async def test_conditional_status_writes_and_idempotent_retries(
    azurite: AzuriteProcess, container_name: str
) -> None:
    async with ContainerClient.from_connection_string(azurite.connection_string, container_name) as container:
        await container.create_container()
        store = BlobRollupStore(container)
        assert await store.load_status("h1") is None
        body = orjson.dumps({"home_id": "h1", "v": 1})
        etag1 = await store.put_status("h1", body, None)
        assert await store.put_status("h1", body, None) == etag1  # same content again: success, no change
        with pytest.raises(RollupConflictError):
            await store.put_status("h1", orjson.dumps({"home_id": "h1", "v": 0}), None)
        etag2 = await store.put_status("h1", orjson.dumps({"home_id": "h1", "v": 2}), etag1)
        with pytest.raises(RollupConflictError):  # a stale writer loses
            await store.put_status("h1", orjson.dumps({"home_id": "h1", "v": 3}), etag1)
        loaded = await store.load_status("h1")
        assert loaded is not None and loaded.doc["v"] == 2 and loaded.etag == etag2


async def test_a_landed_write_in_doubt_is_ours_and_any_other_body_is_a_conflict(
    azurite: AzuriteProcess, container_name: str
) -> None:
    async with ContainerClient.from_connection_string(azurite.connection_string, container_name) as container:
        await container.create_container()
        store = BlobRollupStore(container)
        v = [orjson.dumps({"home_id": "h1", "v": n}) for n in range(5)]
        etag0 = await store.put_status("h1", v[0], None)
        await store.put_status("h1", v[1], etag0)  # a write whose answer this writer never got (timeout)
        with pytest.raises(RollupConflictError):  # without knowing it was ours: another writer's
            await store.put_status("h1", v[2], etag0)
        etag3 = await store.put_status("h1", v[3], etag0, in_doubt=(v[2], v[1]))
        loaded = await store.load_status("h1")
        assert loaded is not None and loaded.doc["v"] == 3 and loaded.etag == etag3
        with pytest.raises(RollupConflictError):  # the blob holds none of the bodies in doubt
            await store.put_status("h1", v[4], etag0, in_doubt=(v[1], v[2]))
        created = await store.put_status("h2", v[1], None)  # a create that landed, then its retry
        etag = await store.put_status("h2", v[2], None, in_doubt=(v[1],))
        assert etag != created


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
