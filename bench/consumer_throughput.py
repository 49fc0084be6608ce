"""Consumer throughput benchmark: events/s folded by ONE consumer process (``python -m homesec_consumer``:
decode, dedup, fold, flush to Blob, checkpoint), against a bare SDK receive loop
(``bench/consumer_baseline_worker.py``) reading the same events from the same emulator in the same run.

``python bench/consumer_throughput.py [--homes 2000] [--minutes 6] [--repeat 2]`` (``make bench-consumer``).
Figures: events/s of each, the ratio consumer/baseline (goal >= 0.8), and the time until every reading's
rollup was durable in Blob. Baselines per repetition: the SDK on asyncio's default loop (a bare receive
loop as the SDK's samples write it) and on uvloop (the loop the consumer runs on), so the ratio is reported
both against the plain SDK and like for like; a third baseline, the uvloop one with the consumer's
``receiver`` accelerator installed, does the same SDK work per event as the consumer, so the ratio against it
is the consumer's own cost alone. Everything runs on this machine (2 cores shared by emulator, Azurite, client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port
from homesec_domain.events import encode_reading
from homesec_domain.models import Reading, SensorType

ROOT = Path(__file__).resolve().parents[1]

SENSORS = [("door-1", SensorType.DOOR, "open"), ("window-1", SensorType.WINDOW, "closed"),
           ("motion-1", SensorType.MOTION, "clear"), ("co-1", SensorType.CO, None),
           ("temp-1", SensorType.TEMPERATURE, None)]  # fmt: skip


def readings_of(home: str, minutes: int, t0: datetime, rng: random.Random) -> list[Reading]:
    out = []
    for m in range(minutes):
        for sensor_id, stype, state in SENSORS:
            value = None if state else round(rng.uniform(10, 30), 2)
            out.append(Reading(reading_id=uuid.uuid4(), home_id=home, sensor_id=sensor_id, sensor_type=stype,
                               ts=t0 + timedelta(minutes=m, seconds=rng.randint(0, 59)), state=state,
                               value=value, seq=m))  # fmt: skip
    return out


async def _send(producer: EventHubProducerClient, home: str, readings: list[Reading]) -> None:
    batch = await producer.create_batch(partition_key=home)
    for r in readings:
        event = EventData(encode_reading(r))
        event.message_id = str(r.reading_id)
        batch.add(event)
    await producer.send_batch(batch)


async def publish(conn: str, homes: int, minutes: int, interleaved: bool) -> int:
    """Backlog: each home's readings together (one send per home). Interleaved: minute by minute, one send
    per home and minute (a gateway posting every minute), so a receive batch spans many homes."""
    rng = random.Random(1)
    t0 = datetime.now(UTC) - timedelta(minutes=minutes + 5)
    by_home = {f"home-{h:06d}": readings_of(f"home-{h:06d}", minutes, t0, rng) for h in range(homes)}
    per_minute = len(SENSORS)
    async with EventHubProducerClient.from_connection_string(conn) as producer:
        if not interleaved:
            for home, rs in by_home.items():
                await _send(producer, home, rs)
        else:
            for m in range(minutes):
                sends = [
                    _send(producer, home, rs[m * per_minute : (m + 1) * per_minute])
                    for home, rs in by_home.items()
                ]
                for i in range(0, len(sends), 64):
                    await asyncio.gather(*sends[i : i + 64])
    return sum(len(rs) for rs in by_home.values())


def baseline(conn: str, expected: int, loop: str, *, lazy: bool = False) -> dict[str, Any]:
    argv = [sys.executable, str(ROOT / "bench" / "consumer_baseline_worker.py"), "--conn", conn,
            "--expected", str(expected), "--loop", loop, *(["--lazy-events"] if lazy else [])]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["events_per_s"] = result["events"] / result["seconds"]
    return result


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def consumer(
    emulator: EmulatorProcess,
    azurite: AzuriteProcess,
    expected: int,
    logs: Path,
    flush: float,
    *,
    plain: bool = False,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    port, prefix = free_port(), f"b{uuid.uuid4().hex[:10]}"  # the admin port (probes, metrics)
    env = {"HOMESEC_PURE_PYTHON": "1" if plain else "0",
        "HOMESEC_CONSUMER_PORT": str(free_port()), "HOMESEC_CONSUMER_ADMIN_PORT": str(port), "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
        "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": azurite.connection_string,
        "HOMESEC_CONSUMER_CONSUMER_GROUP": "rollups", "HOMESEC_CONSUMER_CHECKPOINT_CONTAINER": f"{prefix}-cp",
        "HOMESEC_CONSUMER_ROLLUP_CONTAINER": f"{prefix}-ro", "HOMESEC_CONSUMER_DEADLETTER_CONTAINER": f"{prefix}-dl",
        "HOMESEC_CONSUMER_FLUSH_INTERVAL_SECONDS": str(flush), "HOMESEC_CONSUMER_LOG_LEVEL": "WARNING",
        "HOMESEC_CONSUMER_AUTH_KEYS": '{"bench": "consumer-benchmark-read-key-0123456789"}',
        **(extra_env or {}),
    }  # fmt: skip
    proc = ManagedProcess.python_module("consumer-bench", "homesec_consumer", env=env, log_dir=logs).start()
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
        cpu0 = cpu_seconds(proc.pid)
        first = None
        while first is None:  # 100 polls a second while it waits (idle: costs it nothing that counts)
            if metric(port, "homesec_consumer_events_processed_total") > 0:
                first = time.time()
            time.sleep(0.01)
        while metric(port, "homesec_consumer_events_processed_total") < expected:
            time.sleep(0.5)  # while it works, few scrapes: Prometheus scrapes every 15-30 s in production
        done = metric(port, "homesec_consumer_last_batch_timestamp_seconds")  # its clock: this machine's
        cpu = cpu_seconds(proc.pid) - cpu0
        while metric(port, "homesec_consumer_readings_rolled_up_total") < expected:
            time.sleep(0.1)
        durable = time.time()
        return {"events": expected, "seconds": done - first, "events_per_s": expected / (done - first),
                "durable_after_s": durable - first, "cpu_seconds": cpu,
                "rollup_writes": metric(port, 'homesec_consumer_rollup_writes_total{result="ok"}'),
                "mean_batch": metric(port, "homesec_consumer_batch_size_sum") / max(1.0, metric(port, "homesec_consumer_batch_size_count"))}  # fmt: skip
    finally:
        proc.stop(grace=20)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: the finally blocks stop the emulator, Azurite and the workers


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    p = argparse.ArgumentParser()
    p.add_argument("--homes", type=int, default=2000)
    p.add_argument("--minutes", type=int, default=6)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--flush-interval", type=float, default=30.0)
    p.add_argument("--interleaved", action="store_true", help="minute by minute across homes")
    p.add_argument("--plain", action="store_true", help="also run the consumer with the plain Python fold")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        emulator = EmulatorProcess(root / "eh", log_dir=root / "logs").start()
        azurite = AzuriteProcess(root / "az", log_dir=root / "logs").start()
        try:
            n = asyncio.run(publish(emulator.connection_string(), a.homes, a.minutes, a.interleaved))
            runs = []
            for _ in range(a.repeat):
                run = {"baseline": baseline(emulator.connection_string(), n, "asyncio"),
                       "baseline_uvloop": baseline(emulator.connection_string(), n, "uvloop"),
                       "baseline_uvloop_lazy": baseline(emulator.connection_string(), n, "uvloop", lazy=True),
                       "consumer": consumer(emulator, azurite, n, root / "logs", a.flush_interval)}  # fmt: skip
                if a.plain:
                    run["consumer_plain"] = consumer(
                        emulator, azurite, n, root / "logs", a.flush_interval, plain=True
                    )
                runs.append(run)
        finally:
            azurite.stop()
            emulator.stop()
    ratios = [r["consumer"]["events_per_s"] / r["baseline"]["events_per_s"] for r in runs]
    same_loop = [r["consumer"]["events_per_s"] / r["baseline_uvloop"]["events_per_s"] for r in runs]
    own = [r["consumer"]["events_per_s"] / r["baseline_uvloop_lazy"]["events_per_s"] for r in runs]
    plain = [
        r["consumer_plain"]["events_per_s"] / r["baseline"]["events_per_s"]
        for r in runs
        if "consumer_plain" in r
    ]
    print(json.dumps({"events": n, "homes": a.homes, "minutes": a.minutes, "interleaved": a.interleaved, "runs": runs,
                      "ratios": ratios, "median_ratio": statistics.median(ratios),
                      "ratios_same_loop": same_loop, "median_ratio_same_loop": statistics.median(same_loop),
                      "ratios_same_sdk_work": own, "median_ratio_same_sdk_work": statistics.median(own),
                      "ratios_plain_fold": plain}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
