"""Alarm latency, status freshness, Blob requests per home per hour and memory per home, on the real local
stack: the Event Hubs emulator (hubs ``telemetry`` and ``alarms``, same partition count, and a 1-partition
``baseline`` hub), Azurite behind a counting HTTP proxy (``homesec_devstack.blob_proxy``: every Blob request
classified at the wire), the producer and one consumer process with their production defaults, and a fleet
posting through the producer's HTTP API with real tokens (``bench/alarms_load.py``).

Readings' timestamps are shifted into the past so that one UTC hour boundary closes during the measured
window (the producer accepts readings up to ``MAX_READING_AGE_SECONDS`` old): every home's hour closes once,
which is what an hour of operation costs in day merges and status views.

``python bench/alarms.py [--homes 2000] [--duration 300] [--write docs/benchmarks.md]`` (``make bench-alarms``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from alarms_load import HubWatch, Load, Results
from alarms_report import render, summarize, summary_rows
from docsection import write_section
from homesec_devstack.azurite import AzuriteProcess, blob_connection_string
from homesec_devstack.blob_proxy import BlobProxyProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"bench": "alarms-benchmark-signing-key-0123456789"}
RAW = ROOT / ".cache" / "bench-alarms.json"  # every run's raw figures, for --from-json
HEAD = "## Alarms, status freshness and Blob requests per home"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(f"{url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def delta(after: dict[str, Any], before: dict[str, Any], what: str) -> Counter[str]:
    out = Counter(after[what])
    out.subtract(before[what])
    return +out


def hour_plan(now: float, warm_up: float, lead: float) -> float:
    """The timestamp shift (seconds into the past) that puts a UTC hour boundary ``lead`` seconds after the
    planned start of the window (``now + warm_up``) in the readings' time."""
    window = now + warm_up
    boundary = (window + lead) // 3600 * 3600
    return window + lead - boundary


class Stack:
    def __init__(self, root: Path, partitions: int) -> None:
        logs = root / "logs"
        hubs = f"telemetry:{partitions},alarms:{partitions},baseline:1"
        self.emulator = EmulatorProcess(root / "eh", hubs=hubs, log_dir=logs).start()
        self.azurite = AzuriteProcess(root / "az", log_dir=logs).start()
        self.proxy = BlobProxyProcess(self.azurite.port, log_dir=logs).start()
        self.producer_port, self.consumer_port = free_port(), free_port()
        self.producer_admin, self.consumer_admin = free_port(), free_port()
        keys = json.dumps(KEYS)
        self.producer = ManagedProcess.service("producer", "homesec_producer", env={
            "HOMESEC_PRODUCER_HOST": "127.0.0.1", "HOMESEC_PRODUCER_PORT": str(self.producer_port),
            "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1", "HOMESEC_PRODUCER_ADMIN_PORT": str(self.producer_admin),
            "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": self.emulator.connection_string(),
            "HOMESEC_PRODUCER_AUTH_KEYS": keys, "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
        }, log_dir=logs).start()  # fmt: skip
        self.consumer = ManagedProcess.service("consumer", "homesec_consumer", env={
            "HOMESEC_CONSUMER_HOST": "127.0.0.1", "HOMESEC_CONSUMER_PORT": str(self.consumer_port),
            "HOMESEC_CONSUMER_ADMIN_PORT": str(self.consumer_admin),
            "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": self.emulator.connection_string(),
            "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": blob_connection_string(self.proxy.port),
            "HOMESEC_CONSUMER_AUTH_KEYS": keys,
        }, log_dir=logs).start()  # fmt: skip
        self.producer.wait_http(f"http://127.0.0.1:{self.producer_admin}/readyz", timeout=60)
        self.consumer.wait_http(f"{self.consumer_admin_url}/readyz", timeout=90)

    @property
    def producer_url(self) -> str:
        return f"http://127.0.0.1:{self.producer_port}"

    @property
    def consumer_url(self) -> str:
        return f"http://127.0.0.1:{self.consumer_port}"

    @property
    def consumer_admin_url(self) -> str:
        return f"http://127.0.0.1:{self.consumer_admin}"

    def pids(self) -> dict[str, int]:
        return {"consumer": self.consumer.pid, "producer": self.producer.pid,
                "emulator": self.emulator.process.pid, "azurite": self.azurite.process.pid,
                "blob proxy": self.proxy.process.pid, "benchmark": os.getpid()}  # fmt: skip

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def stop(self) -> None:
        for stop in (self.consumer.stop, self.producer.stop, self.proxy.stop, self.azurite.stop,
                     self.emulator.stop):  # fmt: skip
            with contextlib.suppress(Exception):
                stop()


async def _until(check: Any, timeout: float, every: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


async def measure(stack: Stack, a: argparse.Namespace) -> dict[str, Any]:
    rss0 = rss_bytes(stack.consumer.pid)
    shift = hour_plan(time.time(), a.warm_up, a.lead)
    load = Load(stack.producer_url, stack.consumer_url, KEYS, a.homes, shift, a.samples_per_s, a.seed)
    alarms = HubWatch(stack.emulator.connection_string("alarms"))
    hop_hub = HubWatch(stack.emulator.connection_string("baseline"))
    stop, probes_stop = asyncio.Event(), asyncio.Event()
    for coro in (alarms.run(), hop_hub.run(), load.run_fleet(stop), load.run_lag_monitor(stop),
                 load.run_hop(stack.emulator.connection_string("baseline"), hop_hub, stop)):  # fmt: skip
        load.spawn(coro)
    session, url = load.session, stack.consumer_admin_url
    try:
        await asyncio.sleep(a.warm_up)

        async def all_homes() -> bool:
            homes_in_state = await metric(session, url, "homesec_consumer_homes_in_state")
            return homes_in_state >= int(a.homes)

        await _until(all_homes, 180)
        c0, cpu0, t0 = await asyncio.to_thread(stack.proxy.counts), stack.cpu(), time.monotonic()
        load.measuring = True
        load.spawn(load.run_probes(alarms, a.probe_interval, probes_stop))
        await asyncio.sleep(a.duration)

        async def merged() -> bool:
            now = delta(await asyncio.to_thread(stack.proxy.counts), c0, "requests")
            return all(
                sum(n for k, n in now.items() if k.startswith(kind)) >= a.homes
                for kind in ("day blob|write", "status view|write")
            )

        complete = await _until(merged, 300, 5.0)
        c1, cpu1, t1 = await asyncio.to_thread(stack.proxy.counts), stack.cpu(), time.monotonic()
        rss1, homes = (
            rss_bytes(stack.consumer.pid),
            await metric(session, url, "homesec_consumer_homes_in_state"),
        )
        fold = await metric(session, url, 'homesec_consumer_accelerated{component="fold"}')
        probes_stop.set()
        await asyncio.sleep(a.probe_drain)  # outstanding probes and samples finish (each waits 30 s at most)
        load.measuring = False
    finally:
        stop.set()
        probes_stop.set()
        await load.close()
        await alarms.close()
        await hop_hub.close()
    return {
        "window_s": t1 - t0,
        "homes": int(homes),
        "compiled_fold": fold == 1,
        "merges_complete": complete,
        "shift_s": shift,
        "closed_before_window": sum(n for k, n in c0["requests"].items() if k.startswith("day blob|write")),
        "requests": delta(c1, c0, "requests"),
        "bytes": delta(c1, c0, "bytes"),
        "cpu_s": {name: cpu1[name] - cpu0[name] for name in cpu0},
        "rss_start": rss0,
        "rss_end": rss1,
        "results": load.results,
    }


def memory_bench(homes: int) -> dict[str, Any]:
    argv = [sys.executable, str(ROOT / "bench" / "consumer_memory.py"), "--homes", str(homes)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def collect(a: argparse.Namespace) -> dict[str, Any]:
    """Run the stack and the load; then the memory benchmark, once the stack has stopped."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), a.partitions)
        try:
            run = asyncio.run(measure(stack, a))
        finally:
            stack.stop()
    run["load_avg"] = (load_before, os.getloadavg()[0])
    run["memory_bench"] = memory_bench(a.memory_homes) if a.memory_homes else None
    return run


def raw_doc(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` as JSON can hold it (``--from-json`` reads it back)."""
    r = run["results"]  # not dataclasses.asdict: it rebuilds a Counter from its (key, count) pairs
    results = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
    results["posts"] = {str(k): v for k, v in r.posts.items()}
    results["alarm_missed"] = dict(r.alarm_missed)
    return {**run, "results": results, "requests": dict(run["requests"]), "bytes": dict(run["bytes"])}


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: the finally blocks stop every process


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--homes", type=int, default=2000)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of the measured window (at least)")
    p.add_argument("--warm-up", type=float, default=60.0, help="seconds of load before the window")
    p.add_argument("--lead", type=float, default=60.0, help="the hour boundary: seconds into the window")
    p.add_argument("--partitions", type=int, default=32, help="of both hubs (the chart's default: 32)")
    p.add_argument("--pods", type=int, default=4, help="consumer pods assumed at 100,000 homes")
    p.add_argument("--probe-interval", type=float, default=5.0, help="seconds between alarm probes (mean)")
    p.add_argument("--samples-per-s", type=float, default=1.0, help="freshness samples per second")
    p.add_argument("--probe-drain", type=float, default=45.0)
    p.add_argument("--memory-homes", type=int, default=100_000, help="for bench/consumer_memory.py (0: skip)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--from-json", type=Path, default=None, help=f"report a saved run ({RAW.relative_to(ROOT)})"
    )
    p.add_argument("--write", type=Path, default=None, help=f"replace this file's '{HEAD[3:]}' section")
    a = p.parse_args()
    if a.from_json:
        run = orjson.loads(a.from_json.read_bytes())
        run["results"] = Results(**run["results"])
        started = datetime.fromisoformat(run["started"])
    else:
        started = datetime.now(UTC)
        run = collect(a)
        run["started"] = started.isoformat()
        RAW.parent.mkdir(parents=True, exist_ok=True)
        RAW.write_bytes(orjson.dumps(raw_doc(run)))
    summary = summarize(run, a)
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    command = "make bench-alarms" if a.write else "python bench/alarms.py " + " ".join(sys.argv[1:])
    section = render(summary, a, command)
    print(section)
    if a.write:
        write_section(a.write, HEAD, section, summary_rows(summary, started, command))


if __name__ == "__main__":
    main()
