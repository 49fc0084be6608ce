"""Example-based tests of the per-home fold."""

from __future__ import annotations

from homesec_domain.fold import FoldConfig, HomeState, Outcome, fold
from homesec_domain.models import SensorType
from homesec_domain.rollup import pack, status_doc, unpack

from .folding import T0, fold_all, reading

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
    state = HomeState("home-1")
    assert fold(state, r, CFG) is Outcome.ACCEPTED
    assert fold(state, r, CFG) is Outcome.DUPLICATE
    assert sum(next(iter(state.hours.values())).counts) == 1


def test_resent_reading_with_same_sensor_sequence_is_a_duplicate() -> None:
    first = reading("door-1", SensorType.DOOR, 5, state="open", seq=3)
    resent = reading("door-1", SensorType.DOOR, 5, state="open", seq=3)  # new reading_id, same seq
    state = fold_all([first], CFG)
    assert fold(state, resent, CFG) is Outcome.DUPLICATE


def test_reading_older_than_lateness_bound_is_late_and_ignored() -> None:
    state = fold_all([reading("t-1", SensorType.TEMPERATURE, 600, value=21.0)], CFG)
    before = pack(state)
    assert fold(state, reading("t-1", SensorType.TEMPERATURE, 400, value=99.0), CFG) is Outcome.LATE
    assert pack(state) == before


def test_reading_within_lateness_bound_is_accepted_out_of_order() -> None:
    state = fold_all([reading("t-1", SensorType.TEMPERATURE, 600, value=21.0)], CFG)
    assert fold(state, reading("t-1", SensorType.TEMPERATURE, 500, value=19.0), CFG) is Outcome.ACCEPTED
    hour = next(iter(state.hours.values()))
    assert (hour.temperature.n, hour.temperature.lo, hour.temperature.hi) == (2, 19_000, 21_000)
    assert hour.temperature.total == 40_000


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
    fold(state, reading("m-1", SensorType.MOTION, 260, state="motion", seq=3), CFG)
    closed = state.drain_closed()
    assert [h.hour for h in closed] == [int(T0.replace(minute=0).timestamp())]
    assert closed[0].minutes[58] == 1 and closed[0].minutes[59] == 1 and sum(closed[0].minutes) == 2
    assert closed[0].counts[list(SensorType).index(SensorType.MOTION)] == 2
    assert state.drain_closed() == []


def test_sequence_gaps_count_only_after_the_lateness_bound() -> None:
    readings = [reading("door-1", SensorType.DOOR, 60 * i, state="closed", seq=i) for i in (0, 1, 3, 4)]
    state = fold_all(readings, CFG)
    assert state.gaps == 0  # seq 2 (t=120 s) could still arrive: wm - lateness = 120 s
    fold(state, reading("door-1", SensorType.DOOR, 600, state="closed", seq=10), CFG)
    assert state.gaps == 1  # 0..4 settled, 2 missing; 5..9 are still pending
    fold(state, reading("door-1", SensorType.DOOR, 900, state="closed", seq=11), CFG)
    assert state.gaps == 6  # 5..9 never arrived


def test_pack_roundtrip_preserves_state_exactly() -> None:
    readings = [
        reading("door-1", SensorType.DOOR, 1, state="open", seq=1),
        reading("co-1", SensorType.CO, 2, value=12.25, seq=5),
        reading("t-1", SensorType.TEMPERATURE, 3, value=-4.5),
        reading("door-1", SensorType.DOOR, 4000, state="closed", seq=9),
    ]
    state = fold_all(readings, CFG)
    copy = unpack("home-1", pack(state))
    assert copy == state
    assert pack(copy) == pack(state)


def test_equal_timestamps_resolve_the_same_way_in_either_order() -> None:
    a = reading("door-1", SensorType.DOOR, 10, state="open")
    b = reading("door-1", SensorType.DOOR, 10, state="closed")
    assert pack(fold_all([a, b], CFG)) == pack(fold_all([b, a], CFG))
    assert fold_all([b, a], CFG).sensors["door-1"].last_state == "open"
