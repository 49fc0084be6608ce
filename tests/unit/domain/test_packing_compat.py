"""The fast ``pack``/``unpack`` must stay byte-for-byte compatible with the original implementation.

``_ref_pack``/``_ref_unpack`` are verbatim copies of the implementation before it was optimised (stored
status blobs embed its bytes, and equal states must keep giving equal blobs). Property tests compare both
on states folded from random readings and on hand-built states that reach every corner of the format.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from homesec_domain.dedup import Pending, SeqRange
from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, HomeState, HourAgg, SensorState, Stat, fold
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import pack, unpack
from hypothesis import given, settings
from hypothesis import strategies as st

from .folding import fold_all, reading
from .test_fold_properties import CFG, deliveries

# --- reference implementation (copied unchanged from rollup.py before the speed-up) -----------------

_FORMAT_VERSION = 1
_HEAD = struct.Struct("<BBqHHBB")
_SENSOR = struct.Struct("<BqqdqqI")
_WINDOW = struct.Struct("<IBiq")
_WINDOW_WIDE = struct.Struct("<IHqq")
_I32 = range(-(2**31), 2**31)
_STAT = struct.Struct("<Iqqq")
_HOUR = struct.Struct(f"<q{len(SENSOR_TYPES)}I60B{len(ALARM_KINDS)}I")
_NONE = 255


def _put_str(out: bytearray, text: str | None) -> None:
    if text is None:
        out.append(_NONE)
        return
    raw = text.encode()
    out.append(len(raw))
    out += raw


def _get_str(buf: bytes, pos: int) -> tuple[str | None, int]:
    size = buf[pos]
    if size == _NONE:
        return None, pos + 1
    return buf[pos + 1 : pos + 1 + size].decode(), pos + 1 + size


def _ref_pack(state: HomeState) -> bytes:
    names = sorted(state.sensors)
    index = {name: i for i, name in enumerate(names)}
    wm = state.watermark if state.watermark is not None else 0
    hours = sorted(state.hours.values(), key=lambda h: h.hour) + sorted(state.closed, key=lambda h: h.hour)
    last_seq = {name: state.sensors[name].last_seq for name in names}
    wide = len(names) > 255 or any(last_seq[e.sensor_id] - e.seq not in _I32 for e in state.window)
    out = bytearray(
        _HEAD.pack(_FORMAT_VERSION | wide << 4, state.watermark is not None, wm, len(names),
                   len(state.window), len(state.hours), len(state.closed))
    )  # fmt: skip
    for name in names:
        s = state.sensors[name]
        r = state.settled.get(name, SeqRange())
        _put_str(out, name)
        _put_str(out, s.last_state)
        value = math.nan if s.last_value is None else s.last_value
        out += _SENSOR.pack(
            SENSOR_TYPES.index(s.sensor_type), s.last_ts, s.last_seq, value, r.lo, r.hi - r.lo, r.n
        )
    for e in sorted(state.window):
        if wide:
            out += _WINDOW_WIDE.pack(wm - e.ts, index[e.sensor_id], e.seq, e.idh)
        else:
            out += _WINDOW.pack(wm - e.ts, index[e.sensor_id], last_seq[e.sensor_id] - e.seq, e.idh)
    for h in hours:
        out += _HOUR.pack(h.hour, *h.counts, *h.minutes, *h.alarms)
        out += _STAT.pack(h.co.n, h.co.total, h.co.lo, h.co.hi)
        out += _STAT.pack(h.temperature.n, h.temperature.total, h.temperature.lo, h.temperature.hi)
    return bytes(out)


def _ref_unpack(home_id: str, buf: bytes) -> HomeState:
    version, has_wm, wm, n_sensors, n_window, n_hours, n_closed = _HEAD.unpack_from(buf, 0)
    if version & 0x0F != _FORMAT_VERSION:
        raise ValueError(f"unknown state format {version}")
    wide = bool(version >> 4)
    window = _WINDOW_WIDE if wide else _WINDOW
    state = HomeState(home_id, wm if has_wm else None)
    pos = _HEAD.size
    names: list[str] = []
    for _ in range(n_sensors):
        name, pos = _get_str(buf, pos)
        last_state, pos = _get_str(buf, pos)
        assert name is not None
        type_i, last_ts, last_seq, value, lo, span, n = _SENSOR.unpack_from(buf, pos)
        pos += _SENSOR.size
        names.append(name)
        last_value = None if math.isnan(value) else value
        state.sensors[name] = SensorState(SENSOR_TYPES[type_i], last_ts, last_seq, last_state, last_value)
        if n:
            state.settled[name] = SeqRange(lo, lo + span, n)
    for _ in range(n_window):
        age, si, seq, idh = window.unpack_from(buf, pos)
        pos += window.size
        if not wide:
            seq = state.sensors[names[si]].last_seq - seq
        state.window.append(Pending(wm - age, names[si], seq, idh))
    for i in range(n_hours + n_closed):
        agg, pos = _ref_unpack_hour(buf, pos)
        if i < n_hours:
            state.hours[agg.hour] = agg
        else:
            state.closed.append(agg)
    return state


def _ref_unpack_hour(buf: bytes, pos: int) -> tuple[HourAgg, int]:
    fields = _HOUR.unpack_from(buf, pos)
    pos += _HOUR.size
    nt, na = len(SENSOR_TYPES), len(ALARM_KINDS)
    agg = HourAgg(
        fields[0], list(fields[1 : 1 + nt]), list(fields[1 + nt : 61 + nt]), list(fields[61 + nt :])
    )
    assert len(agg.alarms) == na
    agg.co = Stat(*_STAT.unpack_from(buf, pos))
    agg.temperature = Stat(*_STAT.unpack_from(buf, pos + _STAT.size))
    return agg, pos + 2 * _STAT.size


# --- comparison helpers -----------------------------------------------------------------------------


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """The result, or the exception type, so failures must match too."""
    try:
        return "ok", fn(*args)
    except Exception as exc:
        return "error", type(exc)


def assert_compatible(state: HomeState) -> None:
    packed = _outcome(pack, state)
    assert packed == _outcome(_ref_pack, state)
    if packed[0] != "ok":
        return
    buf = packed[1]
    got = unpack(state.home_id, buf)
    assert got == _ref_unpack(state.home_id, buf)
    assert pack(got) == _ref_pack(got)


def _canonical(state: HomeState) -> HomeState:
    """What unpack gives back: sorted window, sorted hours, no empty settled ranges."""
    return HomeState(
        state.home_id, state.watermark,
        {name: state.sensors[name] for name in sorted(state.sensors)},
        {name: r for name, r in sorted(state.settled.items()) if r.n and name in state.sensors},
        sorted(state.window),
        {h.hour: h for h in sorted(state.hours.values(), key=lambda h: h.hour)},
        sorted(state.closed, key=lambda h: h.hour),
    )  # fmt: skip


def assert_roundtrip(state: HomeState) -> None:
    assert_compatible(state)
    assert unpack(state.home_id, pack(state)) == _canonical(state)


# --- states folded from readings --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(deliveries(), st.integers(0, 10**6))
def test_folded_states_pack_identically(case: tuple[list[Reading], ...], cut_seed: int) -> None:
    _, delivered, _ = case
    state = HomeState("home-1")
    cut = cut_seed % (len(delivered) + 1)
    for i, r in enumerate(delivered):
        if i == cut:
            assert_roundtrip(state)  # mid-stream: open hours, closed hours not yet drained
        fold(state, r, CFG)
    assert_roundtrip(state)
    state.drain_closed()
    assert_roundtrip(state)


# --- hand-built states: every corner of the format --------------------------------------------------

_INT64 = st.integers(-(2**63), 2**63 - 1)
_NAMES = st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) < 255)
_STATES = st.none() | st.sampled_from(["open", "closed", "alarm", "ok"]) | st.text(max_size=12)
_VALUES = st.none() | st.floats(allow_nan=False) | st.integers(-(2**53), 2**53).map(float)


def _stat() -> st.SearchStrategy[Stat]:
    return st.builds(Stat, st.integers(0, 2**32 - 1), _INT64, _INT64, _INT64)


@st.composite
def hour_aggs(draw: st.DrawFn) -> HourAgg:
    return HourAgg(
        draw(_INT64),
        draw(st.lists(st.integers(0, 2**32 - 1), min_size=len(SENSOR_TYPES), max_size=len(SENSOR_TYPES))),
        draw(st.lists(st.integers(0, 255), min_size=60, max_size=60)),
        draw(st.lists(st.integers(0, 2**32 - 1), min_size=len(ALARM_KINDS), max_size=len(ALARM_KINDS))),
        draw(_stat()),
        draw(_stat()),
    )


@st.composite
def _window(draw: st.DrawFn, names: list[str], sensors: dict[str, SensorState], wm: int) -> list[Pending]:
    out: list[Pending] = []
    for _ in range(draw(st.integers(0, 15)) if names else 0):
        name = draw(st.sampled_from(names))
        last = sensors[name].last_seq
        near = st.integers(max(-1, last - 40), last + 3)
        far = st.integers(-(2**62), 2**62)
        seq = draw(st.one_of(near, near, near, far))
        out.append(Pending(wm - draw(st.integers(0, 2**32 - 1)), name, seq, draw(_INT64)))
    return out


@st.composite
def home_states(draw: st.DrawFn) -> HomeState:
    many = draw(st.integers(0, 19)) == 0
    n = draw(st.integers(250, 300)) if many else draw(st.integers(0, 8))
    names = draw(st.lists(_NAMES, min_size=n, max_size=n, unique=True))
    sensors = {
        name: SensorState(
            draw(st.sampled_from(SENSOR_TYPES)), draw(_INT64), draw(st.integers(-1, 2**40)),
            draw(_STATES), draw(_VALUES),
        )
        for name in names
    }  # fmt: skip
    settled: dict[str, SeqRange] = {}
    for name in draw(st.lists(st.sampled_from(names), unique=True)) if names else []:
        lo = draw(st.integers(-1, 2**40))
        settled[name] = SeqRange(lo, lo + draw(st.integers(0, 2**40)), draw(st.integers(0, 2**32 - 1)))
    watermark = draw(st.none() | st.integers(-(2**40), 2**42))
    window = draw(_window(names, sensors, 0 if watermark is None else watermark))
    hours = {h.hour: h for h in draw(st.lists(hour_aggs(), max_size=3))}
    closed = draw(st.lists(hour_aggs(), max_size=3))
    if draw(st.booleans()) and closed:
        closed.append(closed[0])  # the same hour twice keeps its order
    return HomeState("home-x", watermark, sensors, settled, window, hours, closed)


@settings(max_examples=300, deadline=None)
@given(home_states())
def test_hand_built_states_pack_identically_and_roundtrip(state: HomeState) -> None:
    assert_roundtrip(state)


def test_empty_state_without_watermark() -> None:
    assert_roundtrip(HomeState("home-1"))
    assert pack(HomeState("home-1")) == _ref_pack(HomeState("home-1"))


def test_more_than_255_sensors_is_wide() -> None:
    readings = [reading(f"m-{i}", SensorType.MOTION, i * 0.01, state="motion", seq=1) for i in range(300)]
    state = fold_all(readings, CFG)
    assert pack(state)[0] >> 4 == 1
    assert_roundtrip(state)


def test_far_apart_sequence_numbers_are_wide() -> None:
    readings = [
        reading("door-1", SensorType.DOOR, 1, state="open", seq=2**40),
        reading("door-1", SensorType.DOOR, 2, state="open"),
        reading("door-1", SensorType.DOOR, 3, state="closed", seq=5),
    ]
    state = fold_all(readings, CFG)
    assert pack(state)[0] >> 4 == 1
    assert_roundtrip(state)


def test_sequence_deltas_at_the_int32_edges() -> None:
    for delta in (2**31 - 1, 2**31, -(2**31), -(2**31) - 1):
        sensors = {"s": SensorState(SensorType.DOOR, 5, 2**40, None, None)}
        window = [Pending(5, "s", 2**40 - delta, 7)]
        state = HomeState("home-1", 5, sensors, {}, window)
        assert pack(state)[0] >> 4 == (delta not in range(-(2**31), 2**31))
        assert_roundtrip(state)


def test_closed_hours_and_none_fields_and_unicode_ids() -> None:
    readings = [
        reading("door-1", SensorType.DOOR, 1, state="open", seq=1),
        reading("t-1", SensorType.TEMPERATURE, 2, value=-4.5),
        reading("co-1", SensorType.CO, 3, value=12.25, seq=5),
        reading("m-1", SensorType.MOTION, 4000, state="motion", seq=9),
        reading("m-1", SensorType.MOTION, 8000, state="motion", seq=10),
    ]
    state = fold_all(readings, CFG)
    assert state.closed
    state.sensors["co-1"].last_state = None
    state.sensors["m-1"].last_value = None
    state.sensors["dörr-☃"] = SensorState(SensorType.DOOR, 4_000_000, 3, "öffen", None)
    state.sensors["温度-1"] = SensorState(SensorType.TEMPERATURE, 4_000_000, -1, None, 21.5)
    wm = state.watermark or 0
    state.window += [Pending(wm, "dörr-☃", 3, 11), Pending(wm - 1000, "温度-1", -1, 12)]
    assert_roundtrip(state)


def test_nan_value_reads_back_as_none_in_both() -> None:
    state = HomeState("home-1", 10, {"t": SensorState(SensorType.TEMPERATURE, 10, -1, None, math.nan)})
    assert_compatible(state)
    assert unpack("home-1", pack(state)).sensors["t"].last_value is None


def test_oversized_strings_fail_the_same_way() -> None:
    for name, last_state in (("x" * 256, None), ("x", "y" * 300)):
        state = HomeState("home-1", 0, {name: SensorState(SensorType.DOOR, 0, 0, last_state, 1.0)})
        assert _outcome(pack, state) == _outcome(_ref_pack, state)
        assert _outcome(pack, state)[0] == "error"


def test_unpacked_window_entries_are_ordinary_frozen_pendings() -> None:
    state = fold_all([reading("door-1", SensorType.DOOR, 1, state="open", seq=3)], CFG)
    (entry,) = unpack("home-1", pack(state)).window
    (original,) = state.window
    assert type(entry) is Pending and entry == original and hash(entry) == hash(original)
    assert entry.ts == original.ts and entry.sensor_id == "door-1" and entry.seq == 3
