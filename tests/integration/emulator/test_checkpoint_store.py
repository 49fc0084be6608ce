"""EventHubConsumerClient + BlobCheckpointStore on Azurite: checkpoints, resume, balancing, takeover."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from homesec_devstack.azurite import AzuriteProcess, create_containers
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess

from tests.integration.emulator.helpers import send_keyed
from tests.waits import eventually

pytestmark = pytest.mark.integration


def _worker(
    emu: EmulatorProcess, azurite: AzuriteProcess, container: str, out: Path, tmp: Path
) -> ManagedProcess:
    args = [emu.connection_string(), azurite.connection_string, container, str(out)]
    return ManagedProcess.python_module("consumer-worker", "tests.integration.emulator.consumer_worker", args,
                                        log_dir=tmp).start()  # fmt: skip


def _lines(*paths: Path) -> list[dict[str, Any]]:
    rows = []
    for p in paths:
        if p.exists():
            rows += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return rows


def _ns(emu: EmulatorProcess) -> str:
    """The SDK keys the checkpoint store by the endpoint's host:port in emulator mode."""
    return f"127.0.0.1:{emu.port}"


async def _ownership(emu: EmulatorProcess, azurite: AzuriteProcess, container: str) -> dict[str, str]:
    store = BlobCheckpointStore.from_connection_string(azurite.connection_string, container)
    async with store:
        owned = await store.list_ownership(_ns(emu), "telemetry", "$Default")
    return {o["partition_id"]: o["owner_id"] for o in owned if o.get("owner_id")}


async def _checkpoints(emu: EmulatorProcess, azurite: AzuriteProcess, container: str) -> dict[str, int]:
    store = BlobCheckpointStore.from_connection_string(azurite.connection_string, container)
    async with store:
        cps = await store.list_checkpoints(_ns(emu), "telemetry", "$Default")
    return {c["partition_id"]: c["sequence_number"] for c in cps}


def _data(prefix: str, homes: int, per_home: int) -> dict[str, list[str]]:
    return {f"{prefix}-home-{h}": [f"{prefix}-{h}-{i}" for i in range(per_home)] for h in range(homes)}


async def test_checkpoint_and_resume(
    emulator: EmulatorProcess, azurite: AzuriteProcess, container_name: str, tmp_path: Path
) -> None:
    await create_containers(azurite.connection_string, [container_name])
    first = _data("a", 32, 5)
    await send_keyed(emulator.connection_string(), first)
    out1 = tmp_path / "run1.jsonl"
    w = _worker(emulator, azurite, container_name, out1, tmp_path)
    try:
        await eventually(lambda: len(_lines(out1)) >= 160, 60, "first 160 events")
        await asyncio.sleep(1.0)  # let the last checkpoints land
    finally:
        assert w.stop(grace=15) == 0
    cps = await _checkpoints(emulator, azurite, container_name)
    assert sum(seq + 1 for seq in cps.values()) == 160
    second = _data("b", 32, 3)
    await send_keyed(emulator.connection_string(), second)
    out2 = tmp_path / "run2.jsonl"
    w2 = _worker(emulator, azurite, container_name, out2, tmp_path)
    try:
        await eventually(lambda: len(_lines(out2)) >= 96, 60, "96 new events")
        await asyncio.sleep(1.5)
    finally:
        w2.stop(grace=15)
    bodies = [r["body"] for r in _lines(out2)]
    assert sorted(bodies) == sorted(b for v in second.values() for b in v), "resumed from the checkpoint"


async def test_two_consumers_share_partitions_and_take_over(
    emulator: EmulatorProcess, azurite: AzuriteProcess, container_name: str, tmp_path: Path
) -> None:
    await create_containers(azurite.connection_string, [container_name])
    outs = [tmp_path / "w0.jsonl", tmp_path / "w1.jsonl"]
    workers = [_worker(emulator, azurite, container_name, o, tmp_path) for o in outs]
    try:

        async def balanced() -> bool:
            owners = await _ownership(emulator, azurite, container_name)
            counts = sorted({o: list(owners.values()).count(o) for o in owners.values()}.values())
            return len(owners) == 16 and counts == [8, 8]

        deadline = time.monotonic() + 60
        while not await balanced():
            assert time.monotonic() < deadline, "16 partitions never split 8/8 between two consumers"
            await asyncio.sleep(0.5)
        first = _data("c", 64, 4)
        await send_keyed(emulator.connection_string(), first)
        await eventually(lambda: len({r["body"] for r in _lines(*outs)}) >= 256, 60, "256 events")
        workers[0].kill()  # crash one consumer: no clean release of its partitions
        second = _data("d", 64, 4)
        await send_keyed(emulator.connection_string(), second)
        expected = {b for v in (*first.values(), *second.values()) for b in v}
        await eventually(
            lambda: {r["body"] for r in _lines(*outs)} >= expected, 90, "all events after takeover"
        )
        deadline = time.monotonic() + 30
        while True:  # the survivor claims every partition once the dead owner's claims expire
            owners = await _ownership(emulator, azurite, container_name)
            if len(owners) == 16 and len(set(owners.values())) == 1:
                break
            assert time.monotonic() < deadline, f"partitions not taken over: {owners}"
            await asyncio.sleep(0.5)
    finally:
        for w in workers:
            w.stop(grace=15)
