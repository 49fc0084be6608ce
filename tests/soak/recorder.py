"""Samples over time: per process RSS, open FDs and CPU (from /proc, every process of its session), the
clients' request p99 and the producers' (Prometheus), the consumers' lag and checkpoint age, Blob
requests/s (the counting proxy), the answers the fleet got, and the alerts Prometheus has pending/firing."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.consumer.harness import checkpoints, last_sequence_numbers

from .deployment import Deployment
from .fleet import Fleet

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
PROCESS_COLUMNS = ("rss_mb", "fds", "cpu_pct")
SERVER_P99 = (
    "histogram_quantile(0.99, sum by (le) (rate(homesec_producer_http_request_duration_seconds_bucket"
    '{route="/v1/readings"}[1m])))'
)


@dataclass
class ProcStat:
    cpu_s: float
    rss: int
    fds: int


def _sessions() -> dict[int, list[int]]:
    """Session ID -> its processes' PIDs (every process the deployment started leads a session)."""
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out.setdefault(int(fields[3]), []).append(int(entry.name))
    return out


def proc_stat(pids: list[int]) -> ProcStat:
    cpu, rss, fds = 0.0, 0, 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICK
            rss += int(fields[21]) * PAGE
            fds += sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
        except (OSError, IndexError):
            continue
    return ProcStat(cpu, rss, fds)


def scrape(port: int) -> dict[str, dict[str, float]]:
    """A /metrics page: sample name -> {partition label (or ""): value}."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.labels.get("partition", "")
            out.setdefault(s.name, {})[key] = out.get(s.name, {}).get(key, 0.0) + s.value
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Recorder:
    deployment: Deployment
    fleet: Fleet
    interval: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    label: str = ""  # the disruption under way, if any
    _last_cpu: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # name -> (pid, cpu, when)
    _last_blob: tuple[int, float] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                row = await self.sample()
            except Exception as exc:
                row = {"t_s": round(time.monotonic() - self.started, 1), "error": repr(exc)[:200]}
            self.rows.append(row)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        row: dict[str, Any] = {"t_s": round(now - self.started, 1), "disruption": self.label,
                               "load_avg_1m": os.getloadavg()[0]}  # fmt: skip
        row.update(await asyncio.to_thread(self._processes, now))
        latencies = self.fleet.stats.take_latencies()
        row["client_p99_ms"] = round(percentile(latencies, 0.99) * 1000, 1)
        row["requests_per_s"] = round(len(latencies) / self.interval, 1)
        row.update(await self._pipeline(now))
        statuses = self.fleet.stats.statuses
        other = sum(n for s, n in statuses.items() if s >= 500 and s != 503)
        row.update({"acknowledged": len(self.fleet.acked), "answers_429": statuses[429],
                    "answers_503": statuses[503], "no_answer": statuses[0],
                    "answers_5xx_other": other})  # fmt: skip
        row.update(await asyncio.to_thread(self._prometheus))
        return row

    def _processes(self, now: float) -> dict[str, Any]:
        sessions = _sessions()
        row: dict[str, Any] = {}
        for name, pid in self.deployment.pids().items():
            if pid is None:
                row.update({f"{name}_{c}": "" for c in PROCESS_COLUMNS})
                continue
            stat = proc_stat([pid] if name == "soak" else sessions.get(pid, [pid]))
            last = self._last_cpu.get(name)
            cpu_pct = ""
            if last is not None and last[0] == pid and now > last[2]:
                cpu_pct = str(round((stat.cpu_s - last[1]) / (now - last[2]) * 100, 1))
            self._last_cpu[name] = (pid, stat.cpu_s, now)
            row.update({f"{name}_rss_mb": round(stat.rss / 2**20, 1), f"{name}_fds": stat.fds,
                        f"{name}_cpu_pct": cpu_pct})  # fmt: skip
        return row

    async def _pipeline(self, now: float) -> dict[str, Any]:
        """Lag: the owners' ``partition_lag_events``; a partition no consumer reports (no live owner) counts
        what waits after its checkpoint. Checkpoint age: the oldest the owners report."""
        d = self.deployment
        pages = await asyncio.gather(*(asyncio.to_thread(scrape, c.admin_port) for c in d.consumers.values()))
        lag: dict[str, float] = {}
        age = 0.0
        for page in pages:
            for part, value in page.get("homesec_consumer_partition_lag_events", {}).items():
                lag[part] = max(lag.get(part, 0.0), value)
            age = max([age, *page.get("homesec_consumer_checkpoint_age_seconds", {}).values()])
        last = await asyncio.to_thread(last_sequence_numbers, d.emulator)
        unowned = [p for p in last if p not in lag]
        waiting = 0.0
        if unowned:
            have = await checkpoints(d.stack)
            waiting = sum(last[p] - have.get(p, -1) for p in unowned)
        counts = await asyncio.to_thread(d.proxy.counts)
        total = sum(counts["requests"].values())
        blob_rps: float | str = ""
        if self._last_blob is not None and now > self._last_blob[1]:
            blob_rps = round((total - self._last_blob[0]) / (now - self._last_blob[1]), 1)
        self._last_blob = (total, now)
        return {"lag_events": int(sum(lag.values()) + waiting), "unowned_partitions": len(unowned),
                "checkpoint_age_s": round(age, 1), "blob_requests_per_s": blob_rps}  # fmt: skip

    def _prometheus(self) -> dict[str, Any]:
        prom = self.deployment.prometheus
        p99 = prom.query(SERVER_P99)
        alerts = prom.api("alerts")["alerts"]
        firing = sorted({a["labels"]["alertname"] for a in alerts if a["state"] == "firing"})
        pending = sorted({a["labels"]["alertname"] for a in alerts if a["state"] == "pending"})
        value = float(p99[0]["value"][1]) if p99 else float("nan")
        return {"server_p99_ms": round(value * 1000, 1), "alerts_firing": ";".join(firing),
                "alerts_pending": ";".join(pending)}  # fmt: skip


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
