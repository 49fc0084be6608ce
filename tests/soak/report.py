"""The soak's outputs: the goals table (terminal and Markdown), the PNG of the samples over time, and the
"Soak" section of docs/benchmarks.md."""

from __future__ import annotations

import math
import textwrap
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


def _mean(rows: list[dict[str, Any]], column: str) -> float | None:
    values = _series(rows, column)[1]
    return sum(values) / len(values) if values else None


def _machine(result: SoakResult) -> str:
    """The CPU the soak's processes used and, when recorded, the machine's load average."""
    names = (*SERVICES, *OTHERS, "blob-proxy", "front", "prometheus")
    cpu = {n: _mean(result.rows, f"{n}_cpu_pct") for n in names}
    used = ", ".join(f"{n} {c:.0f}%" for n, c in cpu.items() if c is not None)
    total = sum(c for c in cpu.values() if c is not None)
    load = _series(result.rows, "load_avg_1m")[1]
    seen = f"load average (1 min) {min(load):.1f} to {max(load):.1f}" if load else "load average not recorded"
    return f"the soak's processes used {total:.0f}% of a core on average ({used}); {seen}"


def _answers(statuses: dict[str, int]) -> str:
    return "; ".join(f"{'no answer' if k == '0' else k}: {n:,}" for k, n in statuses.items())


def section(result: SoakResult, command: str, png: str) -> str:
    cfg, v = result.config, result.verdict
    events = "; ".join(
        f"{h.label} at {h.start / 60:.1f} min ({h.end - h.start:.0f} s)" for h in result.happened
    )
    blob = _mean(result.rows, "blob_requests_per_s") or 0.0
    paragraphs = [
        f"""A day in the life of the pipeline, verified from the outside: `{command}` (`SOAK_MINUTES=60`;
method, goals and how to read the output in [operations](operations.md#soak-test)). Started
{result.started:%Y-%m-%d %H:%M} UTC on this machine: 2 cores shared with other engineers' test runs, which
the figures include ({_machine(result)}).""",
        f"""{cfg.homes:,} homes, each of their five sensors posting one reading a minute at the home's own
second (5 readings/home/min: {result.sent:,} readings sent, {v.acknowledged:,} acknowledged), through a
round-robin front to 2 producers; 2 consumers with production settings (`FLUSH_MAX_HOMES` scaled to the
homes per partition of 100,000 homes over 32 partitions); the emulator with {cfg.partitions} partitions
throttling at {cfg.throughput_units} TU (the smallest count: the fleet uses under a tenth of it, so only
bursts are throttled); Azurite behind the counting Blob proxy ({blob:.1f} requests/s on average);
Prometheus evaluating deploy/prometheus/rules.yaml. The readings' clock runs {result.shift_s / 3600:.2f} h
behind, starting a few minutes before midnight UTC: the run crosses a day (and hour) boundary.
Disruptions: {events}.""",
        f"""Answers the fleet got: {_answers(result.statuses)} (a request without an answer is resent). In
the telemetry hub: {v.hub_events:,} events, {v.hub_duplicates:,} acknowledged readings twice (the consumer
drops the copy), {v.unacknowledged_in_hub:,} never acknowledged. Alarm transitions: {v.alarms_expected}
expected, {v.alarms_in_hub} in the alarms hub.""",
    ]
    text = "\n\n".join(
        textwrap.fill(" ".join(para.split()), 110, break_on_hyphens=False) for para in paragraphs
    )
    return f"{HEAD}\n\n{text}\n\n{markdown_table(result)}\n\n![soak]({png})\n"
