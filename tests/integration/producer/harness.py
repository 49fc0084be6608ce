"""Integration harness: the producer as a real process, and reading the hub back through the SDK."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.eventhub.aio import EventHubConsumerClient
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port, http_status

from tests.integration.transport import service_env

AUTH_KEYS = {"it": "integration-test-key-0123456789abcdef"}

# Fast retries for tests: the defaults (1 s .. 30 s, 30 s deadline) follow the source documents.
FAST = {
    "PUBLISH_MAX_TRIES": "8",
    "PUBLISH_BACKOFF_INITIAL_SECONDS": "0.2",
    "PUBLISH_BACKOFF_MAX_SECONDS": "2",
    "PUBLISH_TRY_TIMEOUT_SECONDS": "5",
    "REQUEST_DEADLINE_SECONDS": "10",
    "SHUTDOWN_GRACE_SECONDS": "15",
    "RETRY_AFTER_SECONDS": "1",
}


class ProducerProcess:
    """``python -m homesec_producer`` on a free loopback port against ``emulator``."""

    def __init__(
        self,
        emulator: EmulatorProcess,
        log_dir: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        fast: bool = True,
        transport: str = "amqp",
    ) -> None:
        """``fast=False`` runs the service's own defaults (only ``env`` overrides them); ``transport`` as in
        tests/integration/transport.py."""
        self.port = port or free_port()
        values = {**(FAST if fast else {}), **service_env(emulator, transport), **(env or {})}
        full_env = {
            "HOMESEC_PRODUCER_HOST": "127.0.0.1",
            "HOMESEC_PRODUCER_PORT": str(self.port),
            "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
            "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(AUTH_KEYS),
            "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
            **{f"HOMESEC_PRODUCER_{k}": v for k, v in values.items()},
        }
        self.proc = ManagedProcess.service("producer", "homesec_producer", env=full_env, log_dir=log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ProducerProcess:
        self.proc.start()
        self.proc.wait_http(f"{self.url}/readyz", timeout=timeout)
        return self

    def terminate(self) -> float:
        """SIGTERM; returns the monotonic time it was sent."""
        self.proc.send_signal(signal.SIGTERM)
        return time.monotonic()

    def ready(self) -> bool:
        return http_status(f"{self.url}/readyz") == 200

    def metric(self, name: str) -> float:
        """Sum of all samples of ``name`` on /metrics (0 when absent)."""
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in {" ", "{"}:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> int | None:
        return self.proc.stop(grace=20)


@dataclass
class HubContents:
    ids: Counter[str]
    partitions: dict[str, set[str]]  # reading ID -> partitions it was found in
    homes_by_partition: dict[str, set[str]]

    def missing(self, acked: set[str]) -> set[str]:
        return {rid for rid in acked if self.ids[rid] == 0}

    def duplicated(self, acked: set[str]) -> set[str]:
        return {rid for rid in acked if self.ids[rid] > 1}


async def read_hub(emulator: EmulatorProcess, timeout: float = 120.0) -> HubContents:
    """Every event of every partition from the start (``-1``), until the last enqueued one."""
    client = EventHubConsumerClient.from_connection_string(
        emulator.connection_string(), consumer_group="$Default", retry_total=3
    )
    ids: Counter[str] = Counter()
    where: dict[str, set[str]] = {}
    homes: dict[str, set[str]] = {}
    async with client:
        pids = await client.get_partition_ids()
        targets = {}
        for pid in pids:
            props: dict[str, Any] = await client.get_partition_properties(pid)
            if not props["is_empty"]:
                targets[pid] = int(props["last_enqueued_sequence_number"])
        done = {pid: asyncio.Event() for pid in targets}

        async def on_batch(ctx: Any, events: list[Any]) -> None:
            pid = ctx.partition_id
            for event in events:
                doc = json.loads(event.body_as_str())
                ids[doc["reading_id"]] += 1
                where.setdefault(doc["reading_id"], set()).add(pid)
                homes.setdefault(pid, set()).add(doc["home_id"])
                assert str(event.message_id) == doc["reading_id"]
                if event.sequence_number >= targets[pid]:
                    done[pid].set()

        tasks = [
            asyncio.create_task(
                client.receive_batch(
                    on_batch, partition_id=pid, starting_position="-1", max_batch_size=1000, max_wait_time=1
                )
            )
            for pid in targets
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), timeout)
        finally:
            await client.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return HubContents(ids, where, homes)
