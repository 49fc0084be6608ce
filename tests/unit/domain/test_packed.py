"""The packed state (format 3): exact round trips of any state (short and long rows alike), canonical bytes,
the size of a typical home, and migration on read of states written in format 2."""

from __future__ import annotations

import uuid

import pytest
from homesec_domain import rollup
from homesec_domain.dedup import Window
from homesec_domain.fold import SENSOR_TYPES, FoldConfig, HomeState, HourAgg, SensorState, Stat, fold, to_ms
from homesec_domain.models import SensorType
from homesec_domain.rollup import pack, unpack
from hypothesis import given, settings
from hypothesis import strategies as st

from .folding import reading
from .packed_v2_writer import pack_v2

I64 = st.integers(-(2**63), 2**63 - 1)
U32 = st.integers(0, 2**32 - 1)
I32 = st.integers(-(2**31), 2**31 - 1)
NT = len(SENSOR_TYPES)


def near(base: int, small: int, wide: st.SearchStrategy[int] = I64) -> st.SearchStrategy[int]:
    """Mostly a value a little below ``base`` (what live states hold), sometimes any value."""
    return st.one_of(st.integers(0, small).map(lambda d: base - d), wide)


@st.composite
def sensors(draw: st.DrawFn, wm: int) -> SensorState:
    last_ts = draw(near(wm, 10**7, st.integers(-(2**62), 2**62)))
    seq = draw(st.one_of(st.integers(-1, 10**6), I64))
    lo = draw(st.one_of(st.integers(-1, 10**6), I64))
    gapless = draw(st.booleans())
    hi = seq if gapless else draw(st.one_of(I32, I64))
    n = (0 if lo == hi == -1 else hi - lo + 1) if gapless and 0 <= hi - lo + 1 < 2**32 else draw(U32)
    return SensorState(
        draw(st.sampled_from(SENSOR_TYPES)), last_ts, seq,
        draw(st.one_of(st.none(), st.text(max_size=20))),
        draw(st.one_of(st.none(), st.floats(allow_nan=False))),
        draw(near(last_ts, 10**7, st.integers(-(2**62), 2**62))), lo, hi, n,
        draw(st.one_of(st.just(0), U32)),
    )  # fmt: skip


@st.composite
def stats(draw: st.DrawFn) -> Stat:
    if draw(st.booleans()):
        return Stat()
    small = draw(st.booleans())
    value = I32 if small else I64
    return Stat(draw(st.integers(1, 5000) if small else U32), draw(value), draw(value), draw(value))


@st.composite
def hours(draw: st.DrawFn) -> HourAgg:
    count = st.one_of(st.integers(0, 3600), U32)
    return HourAgg(
        draw(st.one_of(st.integers(0, 2**32 - 1), I64)), draw(st.lists(count, min_size=NT, max_size=NT)),
        draw(st.lists(st.integers(0, 255), min_size=60, max_size=60)),
        draw(st.lists(count, min_size=3, max_size=3)), draw(stats()), draw(stats()),
    )  # fmt: skip


@st.composite
def windows(draw: st.DrawFn, arrived: int) -> Window:
    n = draw(st.integers(0, 40))
    if draw(st.booleans()):  # in arrival order, readings up to ~70 s apart (deltas, or ages past u16)
        gaps = draw(st.lists(st.integers(0, 70_000), min_size=n, max_size=n))
        arrivals = [arrived - sum(gaps[i:]) for i in range(n)]
    else:
        arrivals = draw(st.lists(st.integers(arrived - 2**32 + 1, arrived), min_size=n, max_size=n))
    keys = st.one_of(st.just(0), I64)
    return Window.of(
        arrivals, draw(st.lists(I64, min_size=n, max_size=n)), draw(st.lists(keys, min_size=n, max_size=n))
    )


@st.composite
def states(draw: st.DrawFn) -> HomeState:
    wm = draw(st.one_of(st.none(), st.integers(-(2**61), 2**61)))
    arrived = draw(st.one_of(st.none(), st.integers(-(2**61), 2**61)))
    state = HomeState("home-1", wm, draw(I32), draw(I64), arrived)
    names = draw(st.lists(st.text(min_size=1, max_size=12), max_size=6, unique=True))
    state.sensors = {name: draw(sensors(0 if wm is None else wm)) for name in names}
    state.window = Window() if arrived is None else draw(windows(arrived))
    for agg in draw(st.lists(hours(), max_size=3, unique_by=lambda h: h.hour)):
        state.hours[agg.hour] = agg
    for agg in draw(st.lists(hours(), max_size=3)):
        agg.rev, agg.stream = draw(I64), draw(I32)
        state.closed.append(agg)
    state.closed.sort(key=lambda h: (h.hour, h.rev, h.stream))  # the order unpack gives
    return state


@settings(max_examples=300, deadline=None)
@given(states())
def test_any_state_round_trips_exactly_and_packs_canonically(state: HomeState) -> None:
    packed = pack(state)
    assert packed[0] == rollup.FORMAT_VERSION == 3
    copy = unpack("home-1", packed)
    assert copy == state
    assert pack(copy) == packed


@settings(max_examples=300, deadline=None)
@given(states())
def test_a_state_packed_in_format_2_is_read_and_repacked_in_format_3(state: HomeState) -> None:
    migrated = unpack("home-1", pack_v2(state))
    assert migrated == state
    assert pack(migrated) == pack(state)


# A home packed by the previous version (format 2): the readings of ``_golden_readings`` folded into stream
# 3 at positions 100-105, each arriving 1.5 s after its time, closed entries stamped.
GOLDEN_V2 = bytes.fromhex(
    "0203e0936212a2010000030000006900000000000000bc996212a20100000300020000000100010004636f2d31ff05100c24"
    "12a201000005000000000000000000000000c04e40100c2412a2010000050000000000000005000000000000000100000000"
    "00000006646f6f722d3106636c6f73656401e0936212a20100000000000000000000000000000000f87fe0936212a2010000"
    "00000000000000000000000000000000010000000600000003742d31ff06f80f2412a2010000ffffffffffffffff00000000"
    "000011c0f80f2412a2010000ffffffffffffffffffffffffffffffff0000000000000000a086010000000000020000c07bf3"
    "2a24070000a0396d403625a51b5609dbb33153da2f4f90b6201eb0bf066b0000000000000000020000000000000000000000"
    "0000000000000000000000000000000000000000010001000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000090a3066b0000"
    "0000000000000200000000000000000000000000000001000000010000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000400000000000000"
    "000001000000010000003cf00000000000003cf00000000000003cf00000000000000100000066efffffffffffff66efffff"
    "ffffffff66efffffffffffff690000000000000003000000"
)


def _golden_state() -> HomeState:
    specs = [
        ("door-1", SensorType.DOOR, 1, "open", None, 1), ("co-1", SensorType.CO, 2, None, 61.5, 5),
        ("t-1", SensorType.TEMPERATURE, 3, None, -4.25, None),
        ("door-1", SensorType.DOOR, 4000, "closed", None, 9), ("door-1", SensorType.DOOR, 4, "open", None, 2),
        ("door-1", SensorType.DOOR, 4100, "closed", None, 0),
    ]  # fmt: skip
    state = HomeState("home-7")
    for i, (sensor_id, kind, seconds, text, value, seq) in enumerate(specs):
        r = reading(sensor_id, kind, seconds, home_id="home-7", seq=seq, value=value, state=text,
                    reading_id=uuid.UUID(int=(i + 1) * 0x1234567890ABCDEF1234567))  # fmt: skip
        fold(state, r, FoldConfig(), 3, 100 + i, to_ms(r.ts) + 1500)
    state.stamp_closed()
    state.restarts = state.alarm_change = 0  # transient, never packed
    return state


def test_bytes_written_by_the_previous_version_are_migrated_on_read() -> None:
    state = _golden_state()
    assert pack_v2(state) == GOLDEN_V2  # the writer kept for these tests writes what the previous version did
    migrated = unpack("home-7", GOLDEN_V2)
    assert migrated == state
    assert pack(migrated) == pack(state) and len(pack(state)) < len(GOLDEN_V2)


def test_an_unknown_version_is_refused() -> None:
    packed = bytearray(pack(HomeState("home-1")))
    packed[0] = 9
    with pytest.raises(ValueError, match="unknown packed state version 9"):
        unpack("home-1", bytes(packed))


def test_a_typical_home_packs_into_800_bytes() -> None:
    """5 sensors reporting once a minute, 26 readings in the re-send window, one open hour."""
    state, t0 = HomeState("home-1"), to_ms(reading("x", SensorType.DOOR, 0).ts)
    kinds = [("door-1", SensorType.DOOR, "open", None), ("window-1", SensorType.WINDOW, "closed", None),
             ("motion-1", SensorType.MOTION, "clear", None), ("co-1", SensorType.CO, None, 3.5),
             ("temp-1", SensorType.TEMPERATURE, None, 21.5)]  # fmt: skip
    position = 0
    for minute in range(7):
        for j, (sensor_id, kind, text, value) in enumerate(kinds):
            seconds = 120 + 60 * minute + 7 * j  # from 10:00, so that one hour is open and none closed
            r = reading(sensor_id, kind, seconds, seq=minute, state=text, value=value)
            position += 1
            fold(state, r, FoldConfig(), 0, position, t0 + seconds * 1000 + 1500)
    assert len(state.window) == 26 and len(state.hours) == 1 and not state.closed
    assert len(pack(state)) <= 800
    assert len(pack_v2(state)) > 1000
