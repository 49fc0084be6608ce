"""Consumer integration harness: consumer processes, a known data set, an independent ground truth, and
reading the rollups back from Azurite."""

from __future__ import annotations

import asyncio
import random
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob.aio import ContainerClient
from homesec_consumer import snapshot
from homesec_consumer.settings import ConsumerSettings
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port
from homesec_domain.events import CONTENT_TYPE, encode_reading
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import status_doc, unpack

from tests.integration.producer.harness import AUTH_KEYS, operator_token
from tests.integration.transport import service_env

HUB = "telemetry"
GROUP = "rollups"
LATENESS_S = 120
SENSORS = (("door-1", SensorType.DOOR), ("motion-1", SensorType.MOTION), ("co-1", SensorType.CO),
           ("temp-1", SensorType.TEMPERATURE))  # fmt: skip
FAST_ENV = {
    "FLUSH_INTERVAL_SECONDS": "1", "LOAD_BALANCING_INTERVAL_SECONDS": "2",
    "OWNERSHIP_EXPIRATION_SECONDS": "8", "LATENESS_SECONDS": str(LATENESS_S),
    "SHUTDOWN_GRACE_SECONDS": "15", "MAX_WAIT_TIME_SECONDS": "0.5", "LOG_LEVEL": "INFO",
}  # fmt: skip


def production_env() -> dict[str, str]:
    """``FAST_ENV``'s settings at their production defaults (``ConsumerSettings``): pass as a consumer's
    ``env`` to run it as deployed (30 s flushes, 10 s load balancing, 60 s ownership expiry, ...)."""
    fields = ConsumerSettings.model_fields
    return {name: str(fields[name.lower()].default) for name in FAST_ENV}


@dataclass
class Stack:
    emulator: EmulatorProcess
    azurite: AzuriteProcess
    prefix: str
    log_dir: Path
    transport: str = "amqp"  # how the services reach the emulator (tests/integration/transport.py)

    @property
    def containers(self) -> dict[str, str]:
        return {"CHECKPOINT_CONTAINER": f"{self.prefix}-cp", "ROLLUP_CONTAINER": f"{self.prefix}-ro",
                "DEADLETTER_CONTAINER": f"{self.prefix}-dl"}  # fmt: skip

    @property
    def namespace(self) -> str:
        """How the SDK names the namespace in the checkpoint store: the endpoint's host[:port]."""
        return f"127.0.0.1:{self.emulator.port}"

    def consumer(self, name: str, **env: str) -> ConsumerProcess:
        return ConsumerProcess(self, name, env)

    def rollups(self) -> ContainerClient:
        return ContainerClient.from_connection_string(
            self.azurite.connection_string, self.containers["ROLLUP_CONTAINER"]
        )

    def checkpoint_store(self) -> BlobCheckpointStore:
        return BlobCheckpointStore.from_connection_string(
            self.azurite.connection_string, self.containers["CHECKPOINT_CONTAINER"]
        )


class ConsumerProcess:
    def __init__(self, stack: Stack, name: str, env: dict[str, str]) -> None:
        self.port, self.admin_port = free_port(), free_port()
        values = {**FAST_ENV, **stack.containers, **service_env(stack.emulator, stack.transport), **env}
        full_env = {
            "HOMESEC_CONSUMER_PORT": str(self.port), "HOMESEC_CONSUMER_HOST": "127.0.0.1",
            "HOMESEC_CONSUMER_ADMIN_PORT": str(self.admin_port), "HOMESEC_CONSUMER_ADMIN_HOST": "127.0.0.1",
            "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": stack.emulator.connection_string(HUB),
            "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": stack.azurite.connection_string,
            "HOMESEC_CONSUMER_CONSUMER_GROUP": GROUP,
            "HOMESEC_CONSUMER_AUTH_KEYS": orjson.dumps(AUTH_KEYS).decode(),
            **{f"HOMESEC_CONSUMER_{k}": v for k, v in values.items()},
        }  # fmt: skip
        self.proc = ManagedProcess.service(name, "homesec_consumer", env=full_env, log_dir=stack.log_dir)

    def start(self, timeout: float = 60.0) -> ConsumerProcess:
        self.proc.start()
        self.proc.wait_http(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=timeout)
        return self

    def __enter__(self) -> ConsumerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop(grace=20)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            matches = line.startswith(name) and line[len(name) : len(name) + 1] in {" ", "{"}
            if matches and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def get(self, path: str) -> Any:
        """GET ``path`` with an operator read token (the status API needs one)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {operator_token()}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return orjson.loads(resp.read())


# -- the data set and its ground truth ---------------------------------------------------------------
def base_time() -> datetime:
    """hh:50 two hours ago: the data spans an hour boundary that closes, and the producer accepts it."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=2) + timedelta(minutes=50)


def dataset(n_homes: int, minutes: int, seed: int = 7, t0: datetime | None = None) -> list[Reading]:
    """Every sensor of every home reports once a minute with a sequence number; a few readings are lost
    (early enough that their gaps settle before the end)."""
    rng = random.Random(seed)
    t0 = t0 or base_time()
    out: list[Reading] = []
    for h in range(n_homes):
        home = f"home-{h:05d}"
        for sensor_id, stype in SENSORS:
            for m in range(minutes):
                if 0 < m < minutes * 2 // 3 and rng.random() < 0.03:
                    continue  # lost on the way: a sequence gap
                ts = t0 + timedelta(minutes=m, seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))
                kw: dict[str, Any] = {}
                if stype is SensorType.DOOR:
                    kw["state"] = rng.choice(["open", "closed"])
                elif stype is SensorType.MOTION:
                    kw["state"] = rng.choice(["motion", "clear"])
                elif stype is SensorType.CO:
                    kw["value"] = round(rng.uniform(0, 80), 2)
                else:
                    kw["value"] = round(rng.uniform(15, 28), 2)
                rid = uuid.UUID(int=rng.getrandbits(128), version=4)
                out.append(
                    Reading(
                        reading_id=rid,
                        home_id=home,
                        sensor_id=sensor_id,
                        sensor_type=stype,
                        ts=ts,
                        seq=m,
                        **kw,
                    )
                )
    return out


@dataclass
class Truth:
    hours: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    last: dict[str, tuple[str | None, float | None, int | None]] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    readings: int = 0


def ground_truth(readings: list[Reading]) -> dict[str, Truth]:
    """Computed from the distinct readings alone (no fold code): hourly counts by type, last reading per
    sensor by timestamp, lost readings per sensor from the sequence numbers."""
    truth: dict[str, Truth] = defaultdict(Truth)
    seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
    latest: dict[tuple[str, str], Reading] = {}
    for r in {r.reading_id: r for r in readings}.values():
        t = truth[r.home_id]
        t.readings += 1
        hour = r.ts.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:00:00.000Z")
        t.hours[hour][r.sensor_type.value] += 1
        key = (r.home_id, r.sensor_id)
        if r.seq is not None:
            seqs[key].append(r.seq)
        if key not in latest or r.ts > latest[key].ts:
            latest[key] = r
    for (home, sensor), r in latest.items():
        truth[home].last[sensor] = (r.state, r.value, r.seq)
    for (home, sensor), s in seqs.items():
        truth[home].lost[sensor] = max(s) - min(s) + 1 - len(s)
    return dict(truth)


# -- producing -----------------------------------------------------------------------------------
def event_of(r: Reading) -> EventData:
    event = EventData(encode_reading(r))
    event.message_id = str(r.reading_id)
    event.content_type = CONTENT_TYPE
    return event


async def publish(conn: str, readings: list[Reading], pace: float = 0.0) -> None:
    """Send with partition key = home ID, in per-home batches, in the given order."""
    by_home: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        by_home[r.home_id].append(r)
    async with EventHubProducerClient.from_connection_string(conn) as producer:
        for home, rs in by_home.items():
            batch = await producer.create_batch(partition_key=home)
            for r in rs:
                try:
                    batch.add(event_of(r))
                except ValueError:
                    await producer.send_batch(batch)
                    batch = await producer.create_batch(partition_key=home)
                    batch.add(event_of(r))
            await producer.send_batch(batch)
            if pace:
                await asyncio.sleep(pace)


async def publish_raw(conn: str, bodies: list[bytes], partition_key: str) -> None:
    async with EventHubProducerClient.from_connection_string(conn) as producer:
        batch = await producer.create_batch(partition_key=partition_key)
        for body in bodies:
            batch.add(EventData(body))
        await producer.send_batch(batch)


def interleave(readings: list[Reading], duplicate_fraction: float, seed: int = 3) -> list[Reading]:
    """Time order with duplicates and out-of-order delivery (within the lateness bound)."""
    rng = random.Random(seed)
    copies = [r for r in readings for _ in range(2 if rng.random() < duplicate_fraction else 1)]
    return sorted(copies, key=lambda r: r.ts + timedelta(seconds=rng.uniform(0, LATENESS_S * 0.8)))


# -- reading the rollups back ------------------------------------------------------------------
async def read_rollups(stack: Stack) -> dict[str, bytes]:
    async with stack.rollups() as container:
        out = {}
        async for blob in container.list_blobs():
            out[blob.name] = bytes(await (await container.download_blob(blob.name)).readall())
        return out


def durable_statuses(blobs: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Every home's status as the partitions' durable state snapshots hold it (closed entries not yet
    merged into day blobs are left out: the day blobs must hold them to match)."""
    out: dict[str, dict[str, Any]] = {}
    for name, body in blobs.items():
        if name.startswith("state/") and name.endswith(".state"):
            for home_id, packed in snapshot.decode(body)[1].items():
                out[home_id] = status_doc(unpack(home_id, packed))
    return out


def mismatches(blobs: dict[str, bytes], truth: dict[str, Truth]) -> list[str]:
    """Differences between the durable rollups in Blob and the ground truth (empty when they agree)."""
    problems: list[str] = []
    statuses = durable_statuses(blobs)
    for home, t in sorted(truth.items()):
        status = statuses.get(home)
        if status is None:
            problems.append(f"{home}: in no state snapshot")
            continue
        hours = {h["hour"]: h for h in status["open_hours"]}
        for name, body in blobs.items():
            if name.startswith(f"homes/{home}/hourly/"):
                hours.update({h["hour"]: h for h in orjson.loads(body)["hours"].values()})
        got = {hour: Counter(h["counts"]) for hour, h in hours.items()}
        if got != dict(t.hours):
            problems.append(f"{home}: hourly counts {got} != {dict(t.hours)}")
        sensors = {s["sensor_id"]: (s["state"], s["value"], s["seq"]) for s in status["sensors"]}
        if sensors != t.last:
            problems.append(f"{home}: sensors {sensors} != {t.last}")
        lost = {s["sensor_id"]: s["lost_readings"] for s in status["sensors"]}
        if lost != t.lost:
            problems.append(f"{home}: lost readings {lost} != {t.lost}")
    return problems


async def wait_rolled_up(stack: Stack, truth: dict[str, Truth], timeout: float) -> dict[str, bytes]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        blobs = await read_rollups(stack)
        problems = mismatches(blobs, truth)
        if not problems:
            return blobs
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(problems)} homes differ from the ground truth, e.g. {problems[:3]}")
        await asyncio.sleep(1.0)


async def checkpoints(stack: Stack) -> dict[str, int]:
    async with stack.checkpoint_store() as store:
        found = await store.list_checkpoints(stack.namespace, HUB, GROUP)
    return {str(c["partition_id"]): int(c["sequence_number"]) for c in found}


async def ownership(stack: Stack) -> list[dict[str, Any]]:
    async with stack.checkpoint_store() as store:
        return list(await store.list_ownership(stack.namespace, HUB, GROUP))


def last_sequence_numbers(emulator: EmulatorProcess) -> dict[str, int]:
    parts = emulator.stats()["hubs"][HUB]["partitions"]
    return {pid: int(p["last"]) for pid, p in parts.items() if int(p.get("count", 0)) > 0}


async def wait_checkpointed_to_end(stack: Stack, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        want = last_sequence_numbers(stack.emulator)
        have = await checkpoints(stack)
        if all(have.get(pid, -2) >= last for pid, last in want.items()):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"checkpoints {have} did not reach {want}")
        await asyncio.sleep(0.5)
