"""The soak's goals, evaluated from the verifier's verdict and the recorded samples.

Strict at any length: 0 acknowledged readings lost, rollups equal to the reference (nothing counted
twice or missed), 0 5xx answers other than 503 + Retry-After (the documented "resend later"), every alarm
transition in the alarms hub exactly once and the status API showing the expected alarms, every
partition checkpointed to its end.

Trends, with the warm-up scaled (``plan.warm_up_seconds``: minute 10 of 60, the same share of a shorter
run): for each service, the median RSS of the last ``tail`` of the run is within +10% of the median just
after the warm-up, and its open FDs within +10% (at least +5); both windows last 1/30 of the run (2
minutes of 60, at least 3 samples) and leave out the samples of the ``RESTART_SETTLE_S`` after a restart
of that service. In runs shorter than ``plan.SHORT_MINUTES`` the trend goals are advisory (shown, not
failing the run): the services' memory only settles once their 300 s windows (the producer's idempotency
memory, the consumer's re-send window) have filled, which a run of a few minutes with restarts never sees.
So is the expected-alert check: the spell without an owner after a kill ends one load-balancing interval
after the claims expire, which 5 s scrapes and evaluations may miss, and a short run has a single kill.

After each disruption ends, the lag is back under 1,000 events within 60 s, and stays there until the
next disruption. No alert fires outside the
disruptions (each one's window runs until ``ALERT_GRACE_S`` after it ends), and each disruption's expected
alerts (``Disruption.expected_alerts``) are pending or firing in its window.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from .plan import ALERT_GRACE_S, LAG_GOAL_EVENTS, RECOVERY_S, SHORT_MINUTES
from .verify import Verdict

SERVICES = ("producer-1", "producer-2", "consumer-1", "consumer-2")
RESTART_SETTLE_S = 90.0
RSS_GROWTH = 0.10
FD_GROWTH, FD_SLACK = 0.10, 5


@dataclass
class Happened:
    """A disruption as it happened: seconds from the start of the load."""

    label: str
    kind: str
    target: str
    start: float
    end: float
    expected: tuple[str, ...] = ()


@dataclass
class Goal:
    name: str
    ok: bool
    detail: str
    advisory: bool = False  # shown, but does not fail the run


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _window(
    rows: list[dict[str, Any]], column: str, lo: float, hi: float, settle: list[float]
) -> list[float]:
    out = []
    for row in rows:
        t, value = row["t_s"], _num(row.get(column))
        if value is None or not lo <= t <= hi or any(s <= t < s + RESTART_SETTLE_S for s in settle):
            continue
        out.append(value)
    return out


def trend_goals(rows: list[dict[str, Any]], happened: list[Happened], warm: float, end: float) -> list[Goal]:
    span = max(end / 30, 3 * (rows[1]["t_s"] - rows[0]["t_s"]) if len(rows) > 1 else 0)
    goals = []
    for service in SERVICES:
        settle = [h.end for h in happened if h.target == service]
        for column, growth, slack in (("rss_mb", RSS_GROWTH, 0.0), ("fds", FD_GROWTH, FD_SLACK)):
            first = _window(rows, f"{service}_{column}", warm, warm + span, settle)
            last = _window(rows, f"{service}_{column}", end - span, end, settle)
            if not first or not last:
                goals.append(Goal(f"{service} {column}", False, "no samples in a window"))
                continue
            a, b = statistics.median(first), statistics.median(last)
            limit = max(a * (1 + growth), a + slack)
            goals.append(Goal(f"{service} {column} flat", b <= limit,
                              f"{a:.1f} -> {b:.1f} (limit {limit:.1f})"))  # fmt: skip
    return goals


def _back(rows: list[dict[str, Any]], end: float, until: float) -> float | None:
    """The first sample time at or after ``end`` from which the lag stays under the goal until ``until``."""
    back = None
    for r in rows:
        t, lag = r["t_s"], _num(r.get("lag_events"))
        if t < end or t > until or lag is None:
            continue
        if lag >= LAG_GOAL_EVENTS:
            back = None
        elif back is None:
            back = t
    return back


def lag_goals(rows: list[dict[str, Any]], happened: list[Happened], interval: float) -> list[Goal]:
    goals = []
    for i, h in enumerate(happened):
        until = happened[i + 1].start if i + 1 < len(happened) else rows[-1]["t_s"] if rows else h.end
        back = _back(rows, h.end, until)
        peak = max((float(r["lag_events"]) for r in rows if h.start <= r["t_s"] <= until
                    and _num(r.get("lag_events")) is not None), default=0.0)  # fmt: skip
        ok = back is not None and back - h.end <= RECOVERY_S + interval
        when = "never" if back is None else f"{back - h.end:.0f} s after"
        goals.append(Goal(f"lag < {LAG_GOAL_EVENTS} after {h.label}", ok, f"peak {peak:.0f}, back {when}"))
    return goals


def alert_goals(rows: list[dict[str, Any]], happened: list[Happened]) -> list[Goal]:
    outside: dict[str, list[float]] = {}
    for row in rows:
        for name in filter(None, str(row.get("alerts_firing", "")).split(";")):
            if not any(h.start <= row["t_s"] <= h.end + ALERT_GRACE_S for h in happened):
                outside.setdefault(name, []).append(row["t_s"])
    detail = ", ".join(f"{n} at {v[0]:.0f}-{v[-1]:.0f} s" for n, v in outside.items()) or "none"
    goals = [Goal("no alert firing outside disruptions", not outside, detail)]
    for h in happened:
        window = [r for r in rows if h.start <= r["t_s"] <= h.end + ALERT_GRACE_S]
        seen = {
            n
            for r in window
            for c in ("alerts_pending", "alerts_firing")
            for n in str(r.get(c, "")).split(";")
        }
        for name in h.expected:
            goals.append(Goal(f"{name} pending after {h.label}", name in seen,
                              "seen" if name in seen else "not seen"))  # fmt: skip
    return goals


def strict_goals(v: Verdict, rows: list[dict[str, Any]]) -> list[Goal]:
    last = rows[-1] if rows else {}
    five = int(last.get("answers_5xx_other", 0) or 0)
    lost = f"{len(v.lost)} of {v.acknowledged} missing from the hub" + (
        f", e.g. {v.lost[:3]}" if v.lost else ""
    )
    statuses = f"{len(v.status_problems)} homes differ" + (
        f", e.g. {v.status_problems[:2]}" if v.status_problems else ""
    )
    return [
        Goal("0 acknowledged readings lost", not v.lost, lost),
        Goal("rollups = reference (0 counted twice)", not v.rollup_mismatches,
             f"{len(v.rollup_mismatches)} of {v.rollup_homes} homes differ"
             + (f", e.g. {v.rollup_mismatches[:2]}" if v.rollup_mismatches else "")),
        Goal("0 5xx (other than 503 + Retry-After)", five == 0, f"{five} other 5xx"),
        Goal("alarms exactly once in the hub", not v.alarm_problems,
             "; ".join([f"{v.alarms_expected} expected, {v.alarms_in_hub} in the hub", *v.alarm_problems])),
        Goal("alarms visible in the status API", not v.status_problems, statuses),
        Goal("checkpoints reached every event", not v.caught_up, v.caught_up or "all partitions"),
    ]  # fmt: skip


def evaluate(v: Verdict, rows: list[dict[str, Any]], happened: list[Happened], warm: float, end: float,
             interval: float) -> list[Goal]:  # fmt: skip
    trends, alerts = trend_goals(rows, happened, warm, end), alert_goals(rows, happened)
    if end < SHORT_MINUTES * 60:
        trends = [Goal(g.name, g.ok, g.detail, advisory=True) for g in trends]
        alerts = alerts[:1] + [Goal(g.name, g.ok, g.detail, advisory=True) for g in alerts[1:]]
    return [*strict_goals(v, rows), *trends, *lag_goals(rows, happened, interval), *alerts]
