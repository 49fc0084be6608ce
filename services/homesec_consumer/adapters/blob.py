"""Blob adapters: rollup store, dead-letter sink and checkpoint sink (azure-storage-blob aio).

Layout of the rollup container (documented in docs/consumer.md):
``state/<event hub>/<consumer group>/<partition>.state`` (a partition's state snapshot),
``homes/<home_id>/status.json`` (a home's status view, rewritten when an hour closes) and
``homes/<home_id>/hourly/<YYYY-MM-DD>.json`` (closed hourly rollups of one UTC day).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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

log = logging.getLogger(__name__)
T = TypeVar("T")
_JSON = ContentSettings(content_type="application/json", cache_control="no-cache")
_STATE = ContentSettings(content_type="application/octet-stream", cache_control="no-cache")
_MERGE_ATTEMPTS = 8
_IF_MATCH = MatchConditions.IfNotModified


def status_blob(home_id: str) -> str:
    return f"homes/{home_id}/status.json"


def day_blob(home_id: str, day: str) -> str:
    return f"homes/{home_id}/hourly/{day}.json"


def snapshot_blob(prefix: str, partition_id: str) -> str:
    return f"{prefix}/{partition_id}.state"


class StorageHealth:
    """Whether Blob storage answers: the outcome of the latest call (a 404 or a lost condition is an
    answer). ``on_change(available)`` is called when that flips (the ``storage_available`` gauge)."""

    def __init__(
        self, on_change: Callable[[bool], None] = lambda _: None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failing_since: float | None = None
        self._on_change = on_change
        self._clock = clock

    @property
    def available(self) -> bool:
        return self.failing_since is None

    def ok(self) -> None:
        if self.failing_since is not None:
            self.failing_since = None
            self._on_change(True)

    def failed(self) -> None:
        if self.failing_since is None:
            self.failing_since = self._clock()
            self._on_change(False)

    async def call(self, operation: str, aw: Awaitable[T], timeout: float) -> T:
        """Await one Blob call within ``timeout`` seconds (the SDK's retries included); a timeout or an
        ``AzureError`` other than not-found / lost condition marks storage failing."""
        try:
            result = await asyncio.wait_for(aw, timeout)
        except TimeoutError as exc:
            self.failed()
            raise StoreUnavailableError(operation, f"no answer in {timeout:g} s") from exc
        except (ResourceNotFoundError, ResourceExistsError, ResourceModifiedError):
            self.ok()
            raise
        except AzureError:
            self.failed()
            raise
        self.ok()
        return result


class _ConditionLostError(RollupConflictError):
    """A conditional write's condition failed; ``current`` is the blob as it is now (None: gone). Internal
    to ``BlobRollupStore._put``, which decides whether it is a conflict."""

    def __init__(self, name: str, current: tuple[bytes, str] | None) -> None:
        super().__init__(name)
        self.current = current


class BlobRollupStore:
    """``RollupStore`` on one container. Conditional writes use etags (if-match / if-none-match). Each call
    ends within ``timeout`` seconds and reports to ``health``."""

    def __init__(
        self, container: ContainerClient, health: StorageHealth | None = None, timeout: float = 30.0,
        state_prefix: str = "state/telemetry/rollups",
    ) -> None:  # fmt: skip
        self._container = container
        self._health = health or StorageHealth()
        self._timeout = timeout
        self._state_prefix = state_prefix  # state/<event hub>/<consumer group>

    async def _download(self, name: str) -> tuple[bytes, str]:
        downloader = await self._container.get_blob_client(name).download_blob()
        body = await downloader.readall()
        return bytes(body), str(downloader.properties.etag)

    async def _get(self, name: str) -> tuple[bytes, str] | None:
        try:
            return await self._health.call("get", self._download(name), self._timeout)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StoreUnavailableError("get", repr(exc)) from exc

    async def _put(
        self, name: str, body: bytes, etag: str | None, in_doubt: tuple[bytes, ...] = (),
        settings: ContentSettings = _JSON,
    ) -> str:  # fmt: skip
        try:
            return await self._put_once(name, body, etag, settings)
        except _ConditionLostError as lost:
            if lost.current is not None and lost.current[0] == body:
                return lost.current[1]  # a retried write that already landed: idempotent by name + content
            if lost.current is not None and hashlib.sha256(lost.current[0]).digest() in in_doubt:
                log.info("%s: a write that timed out had landed after all; writing on top of it", name)
                try:  # our own earlier write landed after its timeout: the condition holds against it
                    return await self._put_once(name, body, lost.current[1], settings)
                except _ConditionLostError as again:
                    raise RollupConflictError(name) from again
            raise RollupConflictError(name) from lost

    async def _put_once(self, name: str, body: bytes, etag: str | None, settings: ContentSettings) -> str:
        blob = self._container.get_blob_client(name)
        if etag is None:
            upload = blob.upload_blob(body, overwrite=False, content_settings=settings)
        else:
            upload = blob.upload_blob(
                body, overwrite=True, content_settings=settings, etag=etag, match_condition=_IF_MATCH
            )
        try:
            result = await self._health.call("put", upload, self._timeout)
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise _ConditionLostError(name, await self._get(name)) from exc
        except AzureError as exc:
            raise StoreUnavailableError("put", repr(exc)) from exc
        return str(result["etag"])

    async def load_status(self, home_id: str) -> StoredDoc | None:
        got = await self._get(status_blob(home_id))
        return None if got is None else StoredDoc(orjson.loads(got[0]), got[1])

    async def load_snapshot(self, partition_id: str) -> tuple[bytes, str] | None:
        return await self._get(snapshot_blob(self._state_prefix, partition_id))

    async def put_snapshot(
        self, partition_id: str, body: bytes, etag: str | None, in_doubt: tuple[bytes, ...] = ()
    ) -> str:
        return await self._put(snapshot_blob(self._state_prefix, partition_id), body, etag, in_doubt, _STATE)

    async def put_view(self, home_id: str, body: bytes) -> None:
        upload = self._container.upload_blob(
            status_blob(home_id), body, overwrite=True, content_settings=_JSON
        )
        try:
            await self._health.call("put_view", upload, self._timeout)
        except AzureError as exc:
            raise StoreUnavailableError("put_view", repr(exc)) from exc

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

    def __init__(
        self, container: ContainerClient, health: StorageHealth | None = None, timeout: float = 30.0
    ) -> None:
        self._container = container
        self._health = health or StorageHealth()
        self._timeout = timeout

    async def put(self, name: str, body: bytes) -> None:
        upload = self._container.upload_blob(name, body, overwrite=True, content_settings=_JSON)
        try:
            await self._health.call("dead_letter", upload, self._timeout)
        except AzureError as exc:
            raise StoreUnavailableError("dead_letter", repr(exc)) from exc


class BlobCheckpointSink:
    """``CheckpointSink`` on the SDK's ``BlobCheckpointStore`` (the blobs KEDA's blobMetadata reads); each
    call ends within ``timeout`` seconds and reports to ``health``."""

    def __init__(
        self, store: BlobCheckpointStore, namespace: str, eventhub: str, consumer_group: str,
        health: StorageHealth | None = None, timeout: float = 30.0,
    ) -> None:  # fmt: skip
        self._store = store
        self._health = health or StorageHealth()
        self._timeout = timeout
        self._ids = {
            "fully_qualified_namespace": namespace,
            "eventhub_name": eventhub,
            "consumer_group": consumer_group,
        }

    async def checkpoint(self, partition_id: str, position: Position) -> None:
        update = self._store.update_checkpoint(
            {**self._ids, "partition_id": partition_id, "offset": position.offset,
             "sequence_number": position.sequence_number}
        )  # fmt: skip
        await self._health.call("checkpoint", update, self._timeout)

    async def positions(self) -> dict[str, Position]:
        """Every partition's checkpoint (partitions without one are absent)."""
        found = await self._health.call(
            "list_checkpoints", self._store.list_checkpoints(**self._ids), self._timeout
        )
        return {
            str(c["partition_id"]): Position(int(c.get("sequence_number") or 0), str(c.get("offset")))
            for c in found
        }

    async def owners(self) -> list[dict[str, Any]]:
        return list(
            await self._health.call("list_ownership", self._store.list_ownership(**self._ids), self._timeout)
        )
