"""Blob adapters: rollup store, dead-letter sink and checkpoint sink (azure-storage-blob aio).

Layout of the rollup container (documented in docs/consumer.md):
``homes/<home_id>/status.json`` (current status, one read) and
``homes/<home_id>/hourly/<YYYY-MM-DD>.json`` (closed hourly rollups of one UTC day).
"""

from __future__ import annotations

from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import ContainerClient
from homesec_domain.rollup import merge_day

from homesec_consumer.errors import RollupConflictError, StoreUnavailableError
from homesec_consumer.ports import Position, StoredDoc

_JSON = ContentSettings(content_type="application/json", cache_control="no-cache")
_MERGE_ATTEMPTS = 8
_IF_MATCH = MatchConditions.IfNotModified


def status_blob(home_id: str) -> str:
    return f"homes/{home_id}/status.json"


def day_blob(home_id: str, day: str) -> str:
    return f"homes/{home_id}/hourly/{day}.json"


class BlobRollupStore:
    """``RollupStore`` on one container. Conditional writes use etags (if-match / if-none-match)."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    async def _get(self, name: str) -> tuple[bytes, str] | None:
        try:
            downloader = await self._container.get_blob_client(name).download_blob()
            body = await downloader.readall()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StoreUnavailableError("get", repr(exc)) from exc
        return bytes(body), str(downloader.properties.etag)

    async def _put(self, name: str, body: bytes, etag: str | None) -> str:
        blob = self._container.get_blob_client(name)
        try:
            if etag is None:
                result = await blob.upload_blob(body, overwrite=False, content_settings=_JSON)
            else:
                result = await blob.upload_blob(
                    body, overwrite=True, content_settings=_JSON, etag=etag, match_condition=_IF_MATCH
                )
        except (ResourceExistsError, ResourceModifiedError) as exc:
            # Idempotent by name + content: a retried write that already landed is a success.
            current = await self._get(name)
            if current is not None and current[0] == body:
                return current[1]
            raise RollupConflictError(name) from exc
        except AzureError as exc:
            raise StoreUnavailableError("put", repr(exc)) from exc
        return str(result["etag"])

    async def load_status(self, home_id: str) -> StoredDoc | None:
        got = await self._get(status_blob(home_id))
        return None if got is None else StoredDoc(orjson.loads(got[0]), got[1])

    async def put_status(self, home_id: str, body: bytes, etag: str | None) -> str:
        return await self._put(status_blob(home_id), body, etag)

    async def load_day(self, home_id: str, day: str) -> StoredDoc | None:
        got = await self._get(day_blob(home_id, day))
        return None if got is None else StoredDoc(orjson.loads(got[0]), got[1])

    async def merge_day(self, home_id: str, day: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
        name = day_blob(home_id, day)
        for _ in range(_MERGE_ATTEMPTS):
            current = await self.load_day(home_id, day)
            doc = merge_day(current.doc if current else None, home_id, day, entries)
            if current is not None and doc == current.doc:
                return  # every entry was merged before (a retry or a replay)
            body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
            try:
                await self._put(name, body, current.etag if current else None)
                return
            except RollupConflictError:
                continue  # someone else merged in between: merge again on top of theirs
        raise StoreUnavailableError("merge_day", f"{name}: too many concurrent updates")


class BlobDeadLetterSink:
    """``DeadLetterSink``: one JSON blob per poison event (overwrite: replays are idempotent)."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    async def put(self, name: str, body: bytes) -> None:
        try:
            await self._container.upload_blob(name, body, overwrite=True, content_settings=_JSON)
        except AzureError as exc:
            raise StoreUnavailableError("dead_letter", repr(exc)) from exc


class BlobCheckpointSink:
    """``CheckpointSink`` on the SDK's ``BlobCheckpointStore`` (the blobs KEDA's blobMetadata reads)."""

    def __init__(
        self, store: BlobCheckpointStore, namespace: str, eventhub: str, consumer_group: str
    ) -> None:
        self._store = store
        self._ids = {
            "fully_qualified_namespace": namespace,
            "eventhub_name": eventhub,
            "consumer_group": consumer_group,
        }

    async def checkpoint(self, partition_id: str, position: Position) -> None:
        await self._store.update_checkpoint(
            {**self._ids, "partition_id": partition_id, "offset": position.offset,
             "sequence_number": position.sequence_number}
        )  # fmt: skip

    async def positions(self) -> dict[str, Position]:
        """Every partition's checkpoint (partitions without one are absent)."""
        found = await self._store.list_checkpoints(**self._ids)
        return {
            str(c["partition_id"]): Position(int(c.get("sequence_number") or 0), str(c.get("offset")))
            for c in found
        }

    async def owners(self) -> list[dict[str, Any]]:
        return list(await self._store.list_ownership(**self._ids))
