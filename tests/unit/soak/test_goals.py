"""The soak's plan and goals (tests/soak): the schedule fits the run, the readings' clock crosses a UTC
midnight within the producer's horizon, and each goal fails on the evidence it is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.soak.goals import Happened, alert_goals, evaluate, lag_goals, strict_goals, trend_goals
from tests.soak.plan import (
    MAX_READING_AGE_S,
    QUIET_TAIL_SHARE,
    clock_shift,
    flush_max_homes,
    plan,
    warm_up_seconds,
)
from tests.soak.verify import Verdict


def rows(n: int, step: float = 5.0, **columns: Any) -> list[dict[str, Any]]:
    return [{"t_s": i * step, **columns} for i in range(n)]


def test_plans_fit_their_runs() -> None:
    for minutes in (4, 60):
        events = plan(minutes)
        assert {d.kind for d in events} == {"restart", "kill", "blob-hang", "eventhubs-drop"}
        assert warm_up_seconds(minutes) <= events[0].at
        assert events[-1].at <= minutes * 60 * (1 - QUIET_TAIL_SHARE)
        assert [d.at for d in events] == sorted(d.at for d in events)
    assert len(plan(4)) == 5 and len(plan(60)) == 11
    assert {d.target for d in plan(60) if d.kind == "restart"} == {
        "producer-1", "producer-2", "consumer-1", "consumer-2"
    }  # fmt: skip


def test_the_readings_clock_crosses_midnight_inside_the_horizon() -> None:
    now = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
    shift = clock_shift(now, 60)
    first = now - shift
    assert first.date() == datetime(2026, 12, 6).date() and first.hour == 23 and first.minute == 57
    assert (first + timedelta(minutes=60)).date() == now.date()
    assert shift.total_seconds() + 3600 < MAX_READING_AGE_S
    assert clock_shift(datetime(2026, 12, 7, 23, 30, tzinfo=UTC), 60) == timedelta(0)  # too old: real time


def test_flush_max_homes_keeps_the_production_share_per_partition() -> None:
    assert flush_max_homes(100_000, 32) == 2000
    assert flush_max_homes(1000, 16) == 40


def test_strict_goals_fail_on_loss_mismatch_5xx_and_alarms() -> None:
    clean = strict_goals(Verdict(acknowledged=10), rows(1, answers_5xx_other=0))
    assert all(g.ok for g in clean)
    bad = Verdict(acknowledged=10, lost=["r1"], rollup_mismatches=["home-1: ..."], alarm_problems=["x"],
                  status_problems=["home-2: ..."], caught_up="checkpoints behind")  # fmt: skip
    goals = strict_goals(bad, rows(1, answers_5xx_other=2))
    assert not any(g.ok for g in goals)


def test_lag_must_be_back_within_a_minute_of_each_disruption() -> None:
    h = Happened("kill consumer-1", "kill", "consumer-1", 100.0, 110.0)
    quick = rows(60, lag_events=0)
    for r in quick:
        if 100 <= r["t_s"] < 150:
            r["lag_events"] = 5000
    assert lag_goals(quick, [h], 5.0)[0].ok
    slow = rows(60, lag_events=0)
    for r in slow:
        if 100 <= r["t_s"] < 200:
            r["lag_events"] = 5000
    assert not lag_goals(slow, [h], 5.0)[0].ok
    dip = rows(60, lag_events=0)  # under the goal at once, then up again as the claims expire: not back
    for r in dip:
        if 150 <= r["t_s"] < 200:
            r["lag_events"] = 5000
    assert not lag_goals(dip, [h], 5.0)[0].ok


def test_alerts_firing_outside_disruptions_fail_and_expected_ones_must_show() -> None:
    h = Happened(
        "restart consumer-1", "restart", "consumer-1", 100.0, 110.0, ("HomesecConsumerPartitionsUnowned",)
    )
    samples = rows(100, alerts_firing="", alerts_pending="")
    samples[25]["alerts_pending"] = "HomesecConsumerPartitionsUnowned"  # t = 125 s: inside its window
    assert all(g.ok for g in alert_goals(samples, [h]))
    samples[90]["alerts_firing"] = "HomesecConsumerDeadLetters"  # t = 450 s: outside
    assert [g.ok for g in alert_goals(samples, [h])] == [False, True]
    samples[25]["alerts_pending"] = ""
    assert not alert_goals(samples, [h])[1].ok


def test_trends_fail_on_growth_and_are_advisory_in_short_runs() -> None:
    samples = rows(120, step=30.0)  # an hour
    for r in samples:
        for s in ("producer-1", "producer-2", "consumer-1", "consumer-2"):
            r[f"{s}_rss_mb"], r[f"{s}_fds"] = 100.0, 20
    assert all(g.ok for g in trend_goals(samples, [], warm=600, end=3600))
    for r in samples[100:]:
        r["consumer-2_rss_mb"] = 120.0
    failed = [g.name for g in trend_goals(samples, [], warm=600, end=3600) if not g.ok]
    assert failed == ["consumer-2 rss_mb flat"]
    short = evaluate(Verdict(), samples[:8], [], warm=40, end=240, interval=30.0)
    assert all(g.advisory for g in short if "flat" in g.name or "rss" in g.name or "fds" in g.name)
