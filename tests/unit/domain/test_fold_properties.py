"""Property tests: any order (within the lateness bound) and any duplication give the same rollup,
and the rollup equals a ground truth computed independently from the distinct readings."""

from __future__ import annotations

import uuid
from collections import Counter

from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, FoldConfig, HomeState, fold
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import pack, unpack
from hypothesis import given, settings
from hypothesis import strategies as st

from .folding import closed_docs, final_of, fold_all, reading, truth

LATENESS_S = 120
CFG = FoldConfig(lateness_ms=LATENESS_S * 1000, co_alarm_ppm=50.0)
SENSORS = [
    ("door-1", SensorType.DOOR), ("window-1", SensorType.WINDOW), ("motion-1", SensorType.MOTION),
    ("gb-1", SensorType.GLASS_BREAK), ("smoke-1", SensorType.SMOKE), ("co-1", SensorType.CO),
    ("temp-1", SensorType.TEMPERATURE),
]  # fmt: skip


@st.composite
def sensor_stream(draw: st.DrawFn, sensor_id: str, sensor_type: SensorType) -> list[Reading]:
    """One sensor's readings: increasing seq and time, some sequence numbers lost on the way."""
    n = draw(st.integers(0, 25))
    out: list[Reading] = []
    t = draw(st.floats(0, 90))
    for seq in range(n):
        t += draw(st.floats(1, 240))
        if draw(st.integers(0, 9)) == 0:
            continue  # lost reading
        if sensor_type in (SensorType.CO, SensorType.TEMPERATURE):
            value = draw(st.floats(-20, 150, allow_nan=False).map(lambda v: round(v, 3)))
            out.append(reading(sensor_id, sensor_type, t, seq=seq, value=value))
        elif sensor_type in (SensorType.DOOR, SensorType.WINDOW):
            out.append(
                reading(sensor_id, sensor_type, t, seq=seq, state=draw(st.sampled_from(["open", "closed"])))
            )
        else:
            out.append(reading(sensor_id, sensor_type, t, seq=seq, value=float(draw(st.integers(0, 1)))))
    return out


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Reading], list[Reading], list[Reading]]:
    """Distinct readings and two deliveries of them: duplicated and reordered within the lateness bound."""
    readings = [r for sid, stype in SENSORS for r in draw(sensor_stream(sid, stype))]

    def deliver() -> list[Reading]:
        copies: list[tuple[float, int, Reading]] = []
        for i, r in enumerate(readings):
            for _ in range(draw(st.integers(1, 3))):
                delay = draw(st.floats(0, LATENESS_S - 0.01))
                copies.append((r.ts.timestamp() + delay, i, r))
        copies.sort(key=lambda c: (c[0], c[1]))
        return [c[2] for c in copies]

    return readings, deliver(), deliver()


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_any_order_and_duplication_give_the_same_rollup(case: tuple[list[Reading], ...]) -> None:
    readings, first, second = case
    in_time_order = sorted(readings, key=lambda r: r.ts)
    reference = final_of(fold_all(in_time_order, CFG))
    assert final_of(fold_all(first, CFG)) == reference
    assert final_of(fold_all(second, CFG)) == reference


@settings(max_examples=100, deadline=None)
@given(deliveries())
def test_rollup_equals_independent_ground_truth(case: tuple[list[Reading], ...]) -> None:
    readings, delivered, _ = case
    state = fold_all(delivered, CFG)
    expected = truth(readings, co_alarm_ppm=50.0)
    hours = {h.hour: h for h in [*state.drain_closed(), *state.hours.values()]}
    got_counts = {
        hour: Counter({t.value: c for t, c in zip(SENSOR_TYPES, h.counts, strict=True) if c})
        for hour, h in hours.items()
    }
    assert got_counts == dict(expected["counts"])
    for hour, h in hours.items():
        alarms = Counter({t.value: c for t, c in zip(ALARM_KINDS, h.alarms, strict=True) if c})
        assert alarms == expected["alarms"].get(hour, Counter())
        assert sum(h.minutes) == sum(h.counts)
    for sensor_id, last in expected["last"].items():
        got = state.sensors[sensor_id]
        assert (got.last_state, got.last_value, got.last_seq) == (last.state, last.value, last.seq)
    # Once the watermark is far ahead, every gap is settled: lost readings are exactly the missing seqs.
    fold(state, reading("probe", SensorType.MOTION, 10**6, state="clear"), CFG)
    assert {s: r.gaps for s, r in state.settled.items()} == expected["gaps"]


@settings(max_examples=60, deadline=None)
@given(deliveries(), st.integers(0, 10**6))
def test_resuming_from_a_packed_snapshot_and_replaying_changes_nothing(
    case: tuple[list[Reading], ...], cut_seed: int
) -> None:
    """Crash model: state persisted after k events, the consumer replays from an older position j <= k."""
    _, delivered, _ = case
    if not delivered:
        return
    k = cut_seed % len(delivered)
    j = (cut_seed // 7) % (k + 1)
    straight = final_of(fold_all(delivered, CFG))
    snapshot = fold_all(delivered[:k], CFG)
    closed_before = snapshot.drain_closed()  # persisted to the day blobs before the state blob
    resumed = unpack("home-1", pack(snapshot))
    for r in delivered[j:]:
        fold(resumed, r, CFG)
    final = final_of(resumed)
    assert final.packed == straight.packed
    assert tuple(sorted(set(final.closed) | set(closed_docs(closed_before)))) == straight.closed


def test_distinct_ids_never_collide_in_a_small_window() -> None:
    state = HomeState("home-1")
    for i in range(200):
        r = reading("m-1", SensorType.MOTION, i * 0.1, state="motion", reading_id=uuid.uuid4())
        fold(state, r, CFG)
    assert sum(next(iter(state.hours.values())).counts) == 200
