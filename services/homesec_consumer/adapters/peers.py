"""Where the consumer pods are: a directory of small blobs, and forwarding a read to a partition's owner.

Each pod keeps one empty blob ``members/<event hub>/<consumer group>/<instance>`` in the rollup container
whose metadata says where its read API is (``url``), which partitions it owns (``partitions``) and when it
said so (``updated``, epoch ms). It rewrites it when the partitions it owns change, and at least every
``HEARTBEAT_SECONDS``; it deletes it when it stops. Every ``interval`` each pod lists the directory (one
request: the metadata comes with the listing) and maps each partition to the pod that claimed it last,
ignoring entries older than ``STALE_SECONDS``. A read for a partition another pod owns is forwarded there once
(``HomeReads``); an answer of 421 (not owned there any more) or none falls back to the durable state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
import orjson
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from homesec_consumer.adapters.blob import StorageHealth
from homesec_consumer.reads import Forwarded

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 120.0
FORWARD_TIMEOUT_SECONDS = 2.0
FORWARDED_HEADER = "X-Homesec-Forwarded"


class BlobPeers:
    """``Peers`` on the rollup container (see the module docstring)."""

    def __init__(
        self, container: ContainerClient, prefix: str, instance: str, url: str,
        health: StorageHealth, timeout: float, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._container = container
        self._prefix = prefix  # members/<event hub>/<consumer group>
        self._name = f"{prefix}/{instance}"
        self.url = url.rstrip("/")
        self._health = health
        self._timeout = timeout
        self._clock = clock
        self._owners: dict[str, str] = {}
        self._members: set[str] = set()  # the read URLs of the pods with a fresh entry, this one included
        self._announced: tuple[tuple[str, ...], float] | None = None
        self._session: aiohttp.ClientSession | None = None

    def owner(self, partition_id: str) -> str | None:
        url = self._owners.get(partition_id)
        return None if url is None or url == self.url else url

    async def forward(self, url: str, path: str, authorization: str | None) -> Forwarded | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_SECONDS)
            )
        headers = {FORWARDED_HEADER: "1"}
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            async with self._session.get(url + path, headers=headers) as resp:
                body = orjson.loads(await resp.read())
                return Forwarded(resp.status, body if isinstance(body, dict) else {"detail": body})
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            log.info("forwarding a read to %s failed: %r", url, exc)
            return None

    async def announce(self, partitions: list[str]) -> None:
        """Write this pod's entry if what it owns changed or the heartbeat is due."""
        owned, now = tuple(sorted(partitions)), self._clock()
        last = self._announced
        if last is not None and last[0] == owned and now - last[1] < HEARTBEAT_SECONDS:
            return
        meta = {"url": self.url, "partitions": ",".join(owned), "updated": str(int(now * 1000))}
        upload = self._container.upload_blob(self._name, b"", overwrite=True, metadata=meta)
        await self._health.call("announce", upload, self._timeout)
        self._announced = (owned, now)

    async def refresh(self) -> None:
        """Read the directory: each partition's freshest claim."""
        owners: dict[str, tuple[int, str]] = {}
        members: set[str] = set()
        horizon = (self._clock() - STALE_SECONDS) * 1000
        async for blob in self._container.list_blobs(
            name_starts_with=self._prefix + "/", include=["metadata"]
        ):
            meta = blob.metadata or {}
            try:
                updated = int(meta.get("updated", "0"))
            except ValueError:
                continue
            if updated < horizon or not meta.get("url"):
                continue
            members.add(meta["url"].rstrip("/"))
            # A pod owning nothing announces an empty value, which the listing returns as None.
            for pid in filter(None, (meta.get("partitions") or "").split(",")):
                if pid not in owners or owners[pid][0] < updated:
                    owners[pid] = (updated, meta["url"])
        self._owners = {pid: url for pid, (_, url) in owners.items()}
        self._members = members

    async def others_alive(self) -> bool:
        """Whether another consumer pod has a fresh entry, read now (one listing); True when the directory
        cannot be read. An alarm outbox asks at a claim: such a pod may have owned the partition and still
        be sending its alarms."""
        try:
            await asyncio.wait_for(self.refresh(), self._timeout)
        except Exception as exc:  # a storage error, a timeout: assume there is one
            log.warning("peer directory: %r", exc)
            return True
        return bool(self._members - {self.url})

    async def run(self, owned: Callable[[], list[str]], interval: float, stop: asyncio.Event) -> None:
        """Announce and refresh every ``interval`` until ``stop``; errors are logged, never fatal."""
        while not stop.is_set():
            try:
                await self.announce(owned())
                await asyncio.wait_for(self.refresh(), self._timeout)
            except Exception as exc:  # a storage error, a timeout, an entry of another shape
                log.warning("peer directory: %r", exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue

    async def leave(self) -> None:
        """Remove this pod's entry (best effort) and close the forwarding session."""
        try:
            await asyncio.wait_for(self._container.delete_blob(self._name), self._timeout)
        except (AzureError, TimeoutError, ResourceNotFoundError) as exc:
            log.debug("leaving the peer directory: %r", exc)
        if self._session is not None:
            await self._session.close()
