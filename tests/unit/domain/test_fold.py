"""Example-based tests of the per-home fold."""

from __future__ import annotations

from homesec_domain.fold import (
    CLEARED,
    NO_CHANGE,
    RAISED,
    UNSTAMPED,
    FoldConfig,
    HomeState,
    Outcome,
    fold,
    to_ms,
)
from homesec_domain.models import SensorType
from homesec_domain.rollup import pack, status_doc, unpack

from .folding import T0, Log, fold_all, reading

CFG = FoldConfig(lateness_ms=120_000, co_alarm_ppm=50.0)


def test_last_state_and_last_seen_follow_timestamp_not_arrival() -> None:
    newer = reading("door-1", SensorType.DOOR, 30, state="open", seq=2)
    older = reading("door-1", SensorType.DOOR, 10, state="closed", seq=1)
    state = fold_all([newer, older], CFG)
    sensor = state.sensors["door-1"]
    assert sensor.last_state == "open"
    assert sensor.last_seq == 2
    assert state.watermark is not None and sensor.last_ts == state.watermark


def test_duplicate_reading_id_is_dropped() -> None:
    r = reading("motion-1", SensorType.MOTION, 5, state="motion", seq=7)
    log = Log(HomeState("home-1"), CFG)
    assert log.deliver(r) is Outcome.ACCEPTED
    assert log.deliver(r) is Outcome.DUPLICATE
    assert sum(next(iter(log.state.hours.values())).counts) == 1


def test_resent_reading_with_same_sensor_sequence_and_time_is_a_duplicate() -> None:
    first = reading("door-1", SensorType.DOOR, 5, state="open", seq=3)
    resent = first.model_copy(update={"reading_id": reading("x", SensorType.DOOR, 0).reading_id})
    log = Log(HomeState("home-1"), CFG)
    log.deliver(first)
    assert log.deliver(resent) is Outcome.DUPLICATE


def test_same_sequence_number_with_another_timestamp_is_not_a_duplicate() -> None:
    log = Log(HomeState("home-1"), CFG)
    log.deliver(reading("door-1", SensorType.DOOR, 5, state="open", seq=3))
    assert log.deliver(reading("door-1", SensorType.DOOR, 65, state="closed", seq=3)) is Outcome.ACCEPTED


def test_a_resend_is_recognised_within_the_arrival_window_however_old_the_reading() -> None:
    old = reading("door-1", SensorType.DOOR, -7200, state="open", seq=1)  # two hours old
    log = Log(fold_all([reading("m-1", SensorType.MOTION, 0, state="motion")], CFG), CFG)
    now = to_ms(T0)
    assert log.deliver(old, arrived=now) is Outcome.LATE
    assert log.deliver(old, arrived=now + CFG.resend_window_ms) is Outcome.DUPLICATE
    # Past the window the copy is no longer remembered: that is the documented retry horizon.
    log.deliver(reading("m-1", SensorType.MOTION, 1, state="motion"), arrived=now + CFG.resend_window_ms + 1)
    assert log.state.window.arrived[0] == now + CFG.resend_window_ms + 1


def test_a_redelivered_event_is_skipped_by_position_whatever_its_content() -> None:
    state = HomeState("home-1")
    r = reading("door-1", SensorType.DOOR, 5, state="open", seq=3)
    assert fold(state, r, CFG, 0, 10, to_ms(r.ts)) is Outcome.ACCEPTED
    other = reading("door-1", SensorType.DOOR, 9, state="closed", seq=4)
    assert fold(state, other, CFG, 0, 10, to_ms(r.ts)) is Outcome.REDELIVERED
    assert fold(state, other, CFG, 0, 7, to_ms(r.ts)) is Outcome.REDELIVERED
    assert fold(state, other, CFG, 1, 7, to_ms(r.ts)) is Outcome.ACCEPTED  # another partition: a new log
    assert (state.stream, state.applied) == (1, 7)


def test_reading_older_than_the_lateness_bound_amends_its_closed_hour() -> None:
    state = fold_all([reading("t-1", SensorType.TEMPERATURE, 0, value=21.0)], CFG)  # 09:58
    log = Log(state, CFG)
    log.deliver(reading("t-1", SensorType.TEMPERATURE, 3600, value=22.0))  # 10:58: 09:00 closes
    [closed] = state.closed
    assert closed.rev == UNSTAMPED and closed.temperature.n == 1
    assert log.deliver(reading("t-1", SensorType.TEMPERATURE, 60, value=99.0)) is Outcome.LATE
    assert closed.temperature.n == 2  # not yet persisted: the amendment joins the closed hour
    state.stamp_closed()
    assert log.deliver(reading("t-1", SensorType.TEMPERATURE, 61, value=98.0)) is Outcome.LATE
    assert [(h.rev, h.temperature.n) for h in state.closed] == [(2, 2), (UNSTAMPED, 1)]
    assert state.sensors["t-1"].last_value == 22.0  # a late reading never hides a newer one


def test_reading_within_lateness_bound_is_accepted_out_of_order() -> None:
    state = fold_all([reading("t-1", SensorType.TEMPERATURE, 600, value=21.0)], CFG)
    log = Log(state, CFG)
    assert log.deliver(reading("t-1", SensorType.TEMPERATURE, 500, value=19.0)) is Outcome.ACCEPTED
    hour = next(iter(state.hours.values()))
    assert (hour.temperature.n, hour.temperature.lo, hour.temperature.hi) == (2, 19_000, 21_000)
    assert hour.temperature.total == 40_000


def test_a_sensor_restart_applies_its_readings_and_its_new_alarm() -> None:
    smoke = [reading("smoke-1", SensorType.SMOKE, 60 * i, state="ok", seq=100 + i) for i in range(5)]
    state = fold_all(smoke, CFG)
    log = Log(state, CFG)
    assert log.deliver(reading("smoke-1", SensorType.SMOKE, 400, state="ok", seq=1)) is Outcome.ACCEPTED
    assert log.deliver(reading("smoke-1", SensorType.SMOKE, 460, state="alarm", seq=2)) is Outcome.ACCEPTED
    assert state.restarts == 1
    doc = status_doc(state)
    assert doc["active_alarms"] == ["smoke-1"] and doc["sensors"][0]["seq"] == 2
    assert doc["lost_readings"] == 0
    assert sum(sum(h.counts) for h in [*state.hours.values(), *state.closed]) == 7


def test_alarms_are_counted_per_kind_with_co_threshold() -> None:
    readings = [
        reading("gb-1", SensorType.GLASS_BREAK, 1, state="alarm"),
        reading("smoke-1", SensorType.SMOKE, 2, value=1.0),
        reading("smoke-1", SensorType.SMOKE, 3, value=0.0),
        reading("co-1", SensorType.CO, 4, value=49.9),
        reading("co-1", SensorType.CO, 5, value=50.0),
        reading("co-1", SensorType.CO, 6, value=120.5),
    ]
    state = fold_all(readings, CFG)
    hour = next(iter(state.hours.values()))
    assert hour.alarms == [1, 1, 2]
    assert (hour.co.n, hour.co.lo, hour.co.hi, hour.co.total) == (3, 49_900, 120_500, 220_400)
    doc = status_doc(state, co_alarm_ppm=50.0)
    assert doc["active_alarms"] == ["co-1", "gb-1"]


def test_minute_windows_roll_up_into_the_hour_and_hours_close_after_lateness() -> None:
    # T0 is 09:58:00; readings at 09:58:10, 09:59:10, 10:00:10 fall in two hours.
    readings = [
        reading("m-1", SensorType.MOTION, s, state="motion", seq=i) for i, s in enumerate((10, 70, 130))
    ]
    state = fold_all(readings, CFG)
    assert len(state.hours) == 2  # 09:00 is still open: 10:00:10 - 120 s = 09:58:10 < 10:00
    Log(state, CFG).deliver(reading("m-1", SensorType.MOTION, 260, state="motion", seq=3))
    closed = state.drain_closed()
    assert [h.hour for h in closed] == [int(T0.replace(minute=0).timestamp())]
    assert closed[0].minutes[58] == 1 and closed[0].minutes[59] == 1 and sum(closed[0].minutes) == 2
    assert closed[0].counts[list(SensorType).index(SensorType.MOTION)] == 2
    assert state.drain_closed() == []


def test_sequence_gaps_per_run_and_filled_by_late_readings() -> None:
    readings = [reading("door-1", SensorType.DOOR, 60 * i, state="closed", seq=i) for i in (0, 1, 3, 4)]
    state = fold_all(readings, CFG)
    assert state.gaps == 1  # seq 2 is missing so far
    log = Log(state, CFG)
    log.deliver(reading("door-1", SensorType.DOOR, 120, state="closed", seq=2))
    assert state.gaps == 0  # it arrived late: the gap is filled
    log.deliver(reading("door-1", SensorType.DOOR, 600, state="closed", seq=10))
    assert state.gaps == 5  # 5..9 missing
    log.deliver(reading("door-1", SensorType.DOOR, 660, state="closed", seq=0))  # a restart
    log.deliver(reading("door-1", SensorType.DOOR, 780, state="closed", seq=2))
    assert state.gaps == 6 and state.restarts == 1  # 5 from the first run, seq 1 of the second


def test_pack_roundtrip_preserves_state_exactly() -> None:
    readings = [
        reading("door-1", SensorType.DOOR, 1, state="open", seq=1),
        reading("co-1", SensorType.CO, 2, value=12.25, seq=5),
        reading("t-1", SensorType.TEMPERATURE, 3, value=-4.5),
        reading("door-1", SensorType.DOOR, 4000, state="closed", seq=9),
        reading("door-1", SensorType.DOOR, 4, state="open", seq=2),  # late: an amendment
        reading("door-1", SensorType.DOOR, 4100, state="closed", seq=0),  # a restart
    ]
    state = fold_all(readings, CFG)
    state.stamp_closed()
    state.restarts = 0  # transient, never packed
    assert state.closed and state.window and state.arrived is not None
    copy = unpack("home-1", pack(state))
    assert copy == state
    assert pack(copy) == pack(state)


def test_equal_timestamps_resolve_the_same_way_in_either_order() -> None:
    a = reading("door-1", SensorType.DOOR, 10, state="open")
    b = reading("door-1", SensorType.DOOR, 10, state="closed")
    assert fold_all([a, b], CFG).sensors == fold_all([b, a], CFG).sensors
    assert fold_all([b, a], CFG).sensors["door-1"].last_state == "open"


def test_the_fold_reports_each_alarm_transition_once() -> None:
    log = Log(HomeState("home-1"), CFG)
    ok, alarm = reading("smoke-1", SensorType.SMOKE, 10, state="ok"), reading("smoke-1", SensorType.SMOKE, 20)
    steps = [
        (ok, NO_CHANGE),
        (alarm, RAISED),
        (alarm, NO_CHANGE),  # the second: a duplicate
        (reading("smoke-1", SensorType.SMOKE, 15, state="ok"), NO_CHANGE),  # late: not the newest reading
        (reading("smoke-1", SensorType.SMOKE, 30, state="ok"), CLEARED),
        (reading("co-1", SensorType.CO, 31, value=49.9), NO_CHANGE),
        (reading("co-1", SensorType.CO, 32, value=50.0), RAISED),
        (reading("gb-1", SensorType.GLASS_BREAK, 33, value=1.0), RAISED),  # a new sensor, in alarm at once
    ]
    assert [(log.deliver(r), log.state.alarm_change)[1] for r, _ in steps] == [want for _, want in steps]
    assert fold(log.state, ok, CFG, 0, 1, 0) is Outcome.REDELIVERED and log.state.alarm_change == NO_CHANGE
