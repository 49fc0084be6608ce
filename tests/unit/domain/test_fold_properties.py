"""Property tests of the fold: any arrival order, late arrivals far past the lateness bound, re-sends (same
reading_id, or a fresh ID with the same sensor, seq and ts) and sensor restarts give the rollups of an
independent ground truth over the distinct readings; resuming from a packed snapshot and replaying from any
older position changes nothing."""

from __future__ import annotations

import uuid
from collections import Counter

from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, FoldConfig, HomeState, HourAgg, fold, to_ms
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import pack, unpack
from hypothesis import given, settings
from hypothesis import strategies as st

from .folding import Log, reading, truth

CFG = FoldConfig(lateness_ms=120_000, resend_window_ms=300_000, co_alarm_ppm=50.0)
SENSORS = [
    ("door-1", SensorType.DOOR), ("window-1", SensorType.WINDOW), ("motion-1", SensorType.MOTION),
    ("gb-1", SensorType.GLASS_BREAK), ("smoke-1", SensorType.SMOKE), ("co-1", SensorType.CO),
    ("temp-1", SensorType.TEMPERATURE),
]  # fmt: skip
Arrival = tuple[int, Reading]  # (enqueued ms, reading)


@st.composite
def sensor_stream(draw: st.DrawFn, sensor_id: str, sensor_type: SensorType) -> list[Reading]:
    """One sensor's readings: increasing time, sequence numbers that may start again, some lost."""
    out: list[Reading] = []
    t, seq = draw(st.floats(0, 90)), draw(st.integers(0, 50))
    for _ in range(draw(st.integers(0, 20))):
        t += draw(st.floats(1, 600))
        seq = draw(st.integers(0, 3)) if draw(st.integers(0, 11)) == 0 else seq + 1  # a restart now and then
        if draw(st.integers(0, 9)) == 0:
            continue  # lost
        if sensor_type in (SensorType.CO, SensorType.TEMPERATURE):
            value = draw(st.floats(-20, 150, allow_nan=False).map(lambda v: round(v, 3)))
            out.append(reading(sensor_id, sensor_type, t, seq=seq, value=value))
        elif sensor_type in (SensorType.DOOR, SensorType.WINDOW):
            door = draw(st.sampled_from(["open", "closed"]))
            out.append(reading(sensor_id, sensor_type, t, seq=seq, state=door))
        else:
            out.append(reading(sensor_id, sensor_type, t, seq=seq, value=float(draw(st.integers(0, 1)))))
    return out


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Reading], list[Arrival]]:
    """Distinct readings, and their arrivals: most soon after their time, some hours late, some re-sent
    (within the re-send window of the first copy's arrival), as the same reading or with a fresh ID."""
    readings = [r for sid, stype in SENSORS for r in draw(sensor_stream(sid, stype))]
    arrivals: list[Arrival] = []
    for r in readings:
        late = draw(st.integers(0, 4)) == 0
        first = to_ms(r.ts) + draw(st.integers(0, 3 * 3_600_000 if late else 30_000))
        arrivals.append((first, r))
        for _ in range(draw(st.integers(0, 2))):
            again = first + draw(st.integers(0, CFG.resend_window_ms))
            fresh = draw(st.booleans())
            arrivals.append((again, r.model_copy(update={"reading_id": uuid.uuid4()}) if fresh else r))
    arrivals.sort(key=lambda a: a[0])
    return readings, arrivals


def deliver_all(arrivals: list[Arrival], state: HomeState | None = None) -> HomeState:
    log = Log(state or HomeState("home-1"), CFG)
    for arrived, r in arrivals:
        log.deliver(r, arrived)
    return log.state


def all_hours(state: HomeState) -> dict[int, HourAgg]:
    """Open hours plus closed hours and amendments, added up per hour (what the blobs add up to)."""
    out: dict[int, HourAgg] = {}
    for h in [*state.hours.values(), *state.closed]:
        acc = out.setdefault(h.hour, HourAgg(h.hour))
        acc.counts = [a + b for a, b in zip(acc.counts, h.counts, strict=True)]
        acc.alarms = [a + b for a, b in zip(acc.alarms, h.alarms, strict=True)]
        acc.minutes = [min(255, a + b) for a, b in zip(acc.minutes, h.minutes, strict=True)]
        for mine, theirs in ((acc.co, h.co), (acc.temperature, h.temperature)):
            if theirs.n:
                mine.lo = theirs.lo if not mine.n else min(mine.lo, theirs.lo)
                mine.hi = theirs.hi if not mine.n else max(mine.hi, theirs.hi)
                mine.n, mine.total = mine.n + theirs.n, mine.total + theirs.total
    return out


@settings(max_examples=100, deadline=None)
@given(deliveries())
def test_every_distinct_reading_counts_once_whatever_its_arrival(
    case: tuple[list[Reading], list[Arrival]],
) -> None:
    readings, arrivals = case
    state = deliver_all(arrivals)
    expected = truth(readings, co_alarm_ppm=50.0)
    hours = all_hours(state)
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
    assert len(state.window) <= len(arrivals)


@settings(max_examples=60, deadline=None)
@given(deliveries(), st.integers(0, 10**6))
def test_resuming_from_a_packed_snapshot_and_replaying_changes_nothing(
    case: tuple[list[Reading], list[Arrival]], cut_seed: int
) -> None:
    """Crash model: state persisted after k events, the consumer replays from an older position j <= k."""
    _, arrivals = case
    if not arrivals:
        return
    k = cut_seed % len(arrivals)
    j = (cut_seed // 7) % (k + 1)
    straight = deliver_all(arrivals)
    snapshot = deliver_all(arrivals[:k])
    resumed = unpack("home-1", pack(snapshot))
    for position in range(j, len(arrivals)):
        arrived, r = arrivals[position]
        fold(resumed, r, CFG, 0, position, arrived)
    resumed.restarts = straight.restarts = 0  # transient counters
    assert pack(resumed) == pack(straight)
