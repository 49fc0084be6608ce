"""The soak's outputs: the goals table (terminal and Markdown), the PNG of the samples over time, and the
"Soak" section of docs/benchmarks.md."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .goals import SERVICES, Goal
from .run import SoakResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HEAD = "## Soak"
OTHERS = ("emulator", "azurite", "soak")


def _verdict(goal: Goal) -> str:
    if goal.ok:
        return "ok"
    return "(fail, advisory)" if goal.advisory else "FAIL"


def table(result: SoakResult) -> str:
    width = max(len(g.name) for g in result.goals)
    lines = [f"{'goal':<{width}}  result  detail"]
    lines += [f"{g.name:<{width}}  {_verdict(g):<6}  {g.detail}" for g in result.goals]
    return "\n".join(lines)


def markdown_table(result: SoakResult) -> str:
    rows = ["| goal | result | detail |", "|---|---|---|"]
    rows += [
        f"| {g.name} | {_verdict(g).replace('FAIL', '**FAIL**')} | {g.detail.replace('|', '/')} |"
        for g in result.goals
    ]
    return "\n".join(rows)


def _series(rows: list[dict[str, Any]], column: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        try:
            value = float(row.get(column, ""))
        except (TypeError, ValueError):
            continue
        if not math.isnan(value):
            xs.append(row["t_s"] / 60)
            ys.append(value)
    return xs, ys


def _mark(ax: Axes, result: SoakResult) -> None:
    for h in result.happened:
        ax.axvspan(h.start / 60, max(h.end, h.start + 5) / 60, color="0.85", lw=0)


def plot(result: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.rows
    fig, axes = plt.subplots(4, 2, figsize=(14, 14), sharex=True)
    panels: list[tuple[str, list[tuple[str, str]], bool]] = [
        ("RSS (MB)", [(f"{s}_rss_mb", s) for s in SERVICES], False),
        ("open FDs", [(f"{s}_fds", s) for s in SERVICES], False),
        ("CPU (% of a core)", [(f"{s}_cpu_pct", s) for s in (*SERVICES, *OTHERS)], False),
        ("request p99 (ms)", [("client_p99_ms", "clients"), ("server_p99_ms", "producers")], True),
        ("consumer lag (events)", [("lag_events", "lag")], True),
        ("checkpoint age (s)", [("checkpoint_age_s", "oldest")], False),
        ("Blob requests/s", [("blob_requests_per_s", "all kinds")], False),
        ("answers (cumulative)", [("answers_429", "429"), ("answers_503", "503"), ("no_answer", "no answer"),
                                  ("answers_5xx_other", "other 5xx")], False),
    ]  # fmt: skip
    for ax, (title, columns, log) in zip(axes.flat, panels, strict=True):
        _mark(ax, result)
        for column, label in columns:
            xs, ys = _series(rows, column)
            ax.plot(xs, ys, label=label, lw=1)
        if log:
            ax.set_yscale("symlog")
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper left")
    firing = [r["t_s"] / 60 for r in rows if r.get("alerts_firing")]
    for ax in axes.flat:
        for x in firing:
            ax.axvline(x, color="red", alpha=0.15, lw=2)
    for ax in axes[-1]:
        ax.set_xlabel("minutes")
    fig.suptitle(f"Soak: {result.config.homes} homes, {result.config.minutes:g} min "
                 "(grey: disruptions; red: an alert firing)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def section(result: SoakResult, command: str, png: str) -> str:
    cfg, v = result.config, result.verdict
    events = "; ".join(
        f"{h.label} at {h.start / 60:.1f} min ({h.end - h.start:.0f} s)" for h in result.happened
    )
    load = os.getloadavg()
    return f"""{HEAD}

A day in the life of the pipeline, verified from the outside: `{command}` (`make soak`, `SOAK_MINUTES=60`;
method in [operations](operations.md#soak-test)). Started {result.started:%Y-%m-%d %H:%M} UTC on this machine
(2 cores, shared with other engineers' test runs: load average {load[0]:.1f} at the end), {cfg.homes:,} homes,
each sensor posting one reading a minute (5 readings/home/min, {result.sent:,} readings sent,
{v.acknowledged:,} acknowledged); the emulator with {cfg.partitions} partitions throttling at
{cfg.throughput_units} TU; 2 producers behind a round-robin front, 2 consumers (production settings,
`FLUSH_MAX_HOMES` scaled to the homes per partition of 100,000 homes), Azurite behind the counting Blob proxy,
Prometheus with deploy/prometheus/rules.yaml. The readings' clock starts {result.shift_s / 3600:.2f} h in the
past, a few minutes before midnight UTC: the run crosses a day (and hour) boundary. Disruptions: {events}.

Answers the fleet got (status: count, 0 = no answer): {result.statuses}. In the hub: {v.hub_events:,} events,
{v.hub_duplicates:,} acknowledged readings twice (dropped by the consumer), {v.unacknowledged_in_hub:,}
never acknowledged; alarm transitions: {v.alarms_expected} expected, {v.alarms_in_hub} in the alarms hub.

{markdown_table(result)}

![soak]({png})
"""
