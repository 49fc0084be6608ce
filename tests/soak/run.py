"""Run the soak: start the deployment, the fleet and the recorder, play the disruptions on schedule, stop
the load, verify, and write the CSV, the PNG and the summary (``make soak``: ``python -m tests.soak``)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tests.integration.producer.harness import AUTH_KEYS

from .deployment import Deployment
from .fleet import Fleet
from .goals import Goal, Happened, evaluate
from .plan import Disruption, clock_shift, plan, warm_up_seconds
from .recorder import Recorder, write_csv
from .verify import Verdict, verify


@dataclass
class SoakConfig:
    minutes: float
    homes: int
    out: Path
    partitions: int = 16
    throughput_units: int = 1
    interval: float = 5.0


@dataclass
class SoakResult:
    config: SoakConfig
    started: datetime
    shift_s: float
    verdict: Verdict
    goals: list[Goal]
    happened: list[Happened]
    rows: list[dict[str, Any]] = field(repr=False)
    statuses: dict[str, int] = field(default_factory=dict)
    sent: int = 0

    @property
    def ok(self) -> bool:
        return all(g.ok or g.advisory for g in self.goals)


async def _disrupt(d: Deployment, rec: Recorder, disruption: Disruption) -> Happened:
    start = time.monotonic() - rec.started
    rec.label = disruption.label
    try:
        if disruption.kind == "restart":
            await asyncio.to_thread(d.restart, disruption.target)
        elif disruption.kind == "kill":
            await asyncio.to_thread(d.kill, disruption.target)
        elif disruption.kind == "blob-hang":
            await asyncio.to_thread(d.blob_hang, disruption.seconds)
            await asyncio.sleep(disruption.seconds)
        elif disruption.kind == "eventhubs-drop":
            await asyncio.to_thread(d.eventhubs_drop)
    finally:
        rec.label = ""
    end = time.monotonic() - rec.started
    print(f"[{end:7.1f}s] {disruption.label}: {start:.1f}-{end:.1f} s", flush=True)
    return Happened(
        disruption.label, disruption.kind, disruption.target, start, end, disruption.expected_alerts
    )


async def _play(d: Deployment, rec: Recorder, total: float, happened: list[Happened]) -> None:
    for disruption in plan(total / 60):
        await asyncio.sleep(max(0.0, rec.started + disruption.at - time.monotonic()))
        happened.append(await _disrupt(d, rec, disruption))
    await asyncio.sleep(max(0.0, rec.started + total - time.monotonic()))


async def _progress(rec: Recorder, fleet: Fleet, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 60)
        row = rec.rows[-1] if rec.rows else {}
        print(f"[{time.monotonic() - rec.started:7.1f}s] acknowledged {len(fleet.acked):,}"
              f"  in flight {fleet.in_flight}  lag {row.get('lag_events', '?')}"
              f"  p99 {row.get('client_p99_ms', '?')} ms  firing {row.get('alerts_firing') or '-'}",
              flush=True)  # fmt: skip


async def _run(d: Deployment, cfg: SoakConfig, started: datetime) -> SoakResult:
    total = cfg.minutes * 60
    shift = clock_shift(started, cfg.minutes)
    fleet = Fleet(d.front.url, AUTH_KEYS, cfg.homes, shift)
    rec = Recorder(d, fleet, cfg.interval)
    load_stop, rec_stop = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(c) for c in (fleet.run(load_stop), rec.run(rec_stop),
                                                _progress(rec, fleet, rec_stop))]  # fmt: skip
    happened: list[Happened] = []
    try:
        await _play(d, rec, total, happened)
        load_stop.set()
        await tasks[0]
        print(f"load stopped: {len(fleet.acked):,} acknowledged of {fleet.sent:,}; verifying ...", flush=True)
        verdict = await verify(d, fleet)
    finally:
        load_stop.set()
        rec_stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    goals = evaluate(verdict, rec.rows, happened, warm_up_seconds(cfg.minutes), total, cfg.interval)
    return SoakResult(cfg, started, shift.total_seconds(), verdict, goals, happened, rec.rows,
                      {str(k): v for k, v in sorted(fleet.stats.statuses.items())}, fleet.sent)  # fmt: skip


def load_result(out: Path) -> SoakResult:
    """A finished run read back from its ``summary.json`` and ``soak.csv``, its goals evaluated again."""
    doc = orjson.loads((out / "summary.json").read_bytes())
    cfg = SoakConfig(**{**doc["config"], "out": out})
    with (out / "soak.csv").open(newline="") as f:
        rows: list[dict[str, Any]] = [{**r, "t_s": float(r["t_s"])} for r in csv.DictReader(f)]
    verdict = Verdict(**doc["verdict"])
    happened = [Happened(**{**h, "expected": tuple(h.get("expected", ()))}) for h in doc["happened"]]
    goals = evaluate(verdict, rows, happened, warm_up_seconds(cfg.minutes), cfg.minutes * 60, cfg.interval)
    return SoakResult(cfg, datetime.fromisoformat(doc["started"]), doc["shift_s"], verdict, goals, happened,
                      rows, doc["statuses"], doc["sent"])  # fmt: skip


def run_soak(cfg: SoakConfig) -> SoakResult:
    """The whole soak; every process it started is stopped, whatever happens."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    d = Deployment(cfg.out, cfg.homes, cfg.partitions, cfg.throughput_units)
    try:
        d.start()
        result = asyncio.run(_run(d, cfg, started))
    finally:
        d.stop()
    write_csv(result.rows, cfg.out / "soak.csv")
    summary = {"config": {**asdict(cfg), "out": str(cfg.out)}, "started": started.isoformat(),
               "shift_s": result.shift_s, "sent": result.sent, "statuses": result.statuses,
               "verdict": {**asdict(result.verdict), "lost": result.verdict.lost[:100]},
               "goals": [asdict(g) for g in result.goals],
               "happened": [asdict(h) for h in result.happened]}  # fmt: skip
    (cfg.out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return result
