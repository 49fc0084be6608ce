"""The compact, canonical binary form of a home's fold state (format 3), and the status document.

``pack``/``unpack``: a home's state in about 0.8 KB for 5 sensors reporting every minute (consumers hold
100,000 homes in memory this way, and state snapshots embed it, so a new partition owner continues folding
exactly where the last durable write left off). Equal states give equal bytes (sensors sorted, hours
sorted, the window in arrival order). ``unpack`` also reads format 2 (``homesec_domain.packed_v2``): a
state written by the previous version is migrated on read. ``status_doc``: a home's current status.

The hour and day documents (``hour_doc``, ``amendment_doc``, ``merge_day``, ...) live in
``homesec_domain.rollup_docs`` and are re-exported here.
"""

from __future__ import annotations

import base64
import struct
import sys
from array import array
from operator import attrgetter
from typing import Any, NoReturn

from homesec_domain import packed_v2
from homesec_domain.dedup import Window
from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, TYPE_INDEX, HomeState, HourAgg, SensorState, Stat
from homesec_domain.models import SensorType
from homesec_domain.rollup_docs import DAY_SCHEMA, amendment_doc, day_of, hh_of, hour_doc, iso_ms, merge_day

__all__ = [
    "DAY_SCHEMA", "FORMAT_VERSION", "STATUS_SCHEMA", "amendment_doc", "day_of", "hh_of", "hour_doc", "iso_ms",
    "merge_day", "pack", "state_from_status", "status_doc", "unpack",
]  # fmt: skip

FORMAT_VERSION = 3
STATUS_SCHEMA = "homesec.rollup.status.v1"

# Format 3. Head: version, flags (_WM, _ARRIVED, _DELTAS), watermark, stream, applied, arrived; counts of
# sensors, window entries, open hours and closed entries.
_HEAD = struct.Struct("<BBqiqqHIHH")
_WM, _ARRIVED, _DELTAS = 1, 2, 4
# A sensor: its ID and state text (a length byte each; _NONE: no text), its row, and its value (a double)
# when it has one. A row starts with its type index (low 4 bits) and the _S_* flags. A short row holds
# last_ts as its distance below the watermark and run_ts below last_ts; _S_RUN: a run without gaps
# (hi = last_seq, n from lo and hi, lost 0), so of the run only lo follows. The long row holds any values.
_S_VALUE, _S_SHORT, _S_RUN = 0x10, 0x20, 0x40
_S_RUN_ROW = struct.Struct("<BIiIi")  # kind, watermark - last_ts, last_seq, last_ts - run_ts, lo
_S_GAPS_ROW = struct.Struct("<BIiIiiII")  # as _S_RUN_ROW, then hi, n, lost
_S_LONG_ROW = struct.Struct("<BqqqqqII")  # kind, last_ts, last_seq, run_ts, lo, hi, n, lost
_VALUE = struct.Struct("<d")
# The window: its arrivals (_DELTAS: the oldest's age, u32 ms before ``arrived``, then each next one's
# distance from the one before, u16 ms; else n ages, u32), then n id hashes, then n key hashes (i64 each).
_AGE, _STEP, _HASH = 4, 2, 8
_U32 = struct.Struct("<I")
assert array("I").itemsize == _AGE and array("H").itemsize == _STEP and array("q").itemsize == _HASH
assert sys.byteorder == "little"
# An hour: a flags byte (_H_SHORT; _H_CO, _H_TEMP: that stat follows), the hour (epoch s), the counts by
# type, 60 minute counts (bytes), the alarm counts, and the stats present (n, total, lo, hi). Short form:
# hour u32, counts and alarms u16, stats u32 and i32; long form: hour i64, counts u32, stat sums i64.
_NT, _NA = len(SENSOR_TYPES), len(ALARM_KINDS)
_H_SHORT, _H_CO, _H_TEMP = 1, 2, 4
_H_SHORT_HEAD, _H_LONG_HEAD = struct.Struct(f"<BI{_NT}H"), struct.Struct(f"<Bq{_NT}I")
_H_SHORT_ROW = struct.Struct(f"<BI{_NT}H60B{_NA}H")  # head, minutes, alarms: one unpack
_H_LONG_ROW = struct.Struct(f"<Bq{_NT}I60B{_NA}I")
_H_SHORT_ALARMS, _H_LONG_ALARMS = struct.Struct(f"<{_NA}H"), struct.Struct(f"<{_NA}I")
_STAT_SHORT, _STAT_LONG = struct.Struct("<Iiii"), struct.Struct("<Iqqq")
_MINUTES, _ALARMS = 2 + _NT, 62 + _NT
_STAMP = struct.Struct("<qi")  # a closed entry's rev and stream
_U16_MAX, _U32_MAX = 0xFFFF, 0xFFFF_FFFF
_NONE = 255
_LEN = [bytes((n,)) for n in range(256)]  # length prefixes; _LEN[_NONE] also marks None
_HOUR_OF = attrgetter("hour")
_CLOSED_KEY = attrgetter("hour", "rev", "stream")
# ``pack``/``unpack`` run for every touched home in every batch: few struct calls, no object sorting; a
# value out of a short form's range is found by ``struct.error`` (the long form is then used).


def _too_long(raw: bytes) -> NoReturn:
    raise ValueError(f"string of {len(raw)} bytes is too long to pack")


def pack(state: HomeState) -> bytes:
    """Canonical compact bytes of ``state`` in format 3 (the home ID is not included: it is the key)."""
    sensors, window, closed = state.sensors, state.window, state.closed
    wm = 0 if state.watermark is None else state.watermark
    arrived = 0 if state.arrived is None else state.arrived
    deltas, arrivals = _pack_window_arrivals(window, arrived)
    flags = (state.watermark is not None) | (state.arrived is not None) << 1 | deltas
    parts = [
        _HEAD.pack(FORMAT_VERSION, flags, wm, state.stream, state.applied, arrived, len(sensors),
                   len(window), len(state.hours), len(closed))
    ]  # fmt: skip
    _pack_sensors(parts, sensors, wm)
    parts += [arrivals, bytes(window.ids), bytes(window.keys)]
    for agg in sorted(state.hours.values(), key=_HOUR_OF):
        _pack_hour(parts, agg)
    if closed:
        stamp = _STAMP.pack
        for agg in sorted(closed, key=_CLOSED_KEY):
            _pack_hour(parts, agg)
            parts.append(stamp(agg.rev, agg.stream))
    return b"".join(parts)


def _pack_window_arrivals(window: Window, arrived: int) -> tuple[int, bytes]:
    """The window's arrivals as ``_pack_arrivals`` gives them, straight from its steps when it has them."""
    if window.wide is None and window.ids and 0 <= arrived - window.first <= _U32_MAX:
        return _DELTAS, _U32.pack(arrived - window.first) + bytes(window.steps)
    return _pack_arrivals(window.arrived, arrived)


def _pack_arrivals(arrivals: list[int], arrived: int) -> tuple[int, bytes]:
    """The window's arrivals: (_DELTAS, the oldest's age and the steps) when they fit, else (0, ages)."""
    n = len(arrivals)
    if n and 0 <= arrived - arrivals[0] <= _U32_MAX:
        steps = [0] * (n - 1)
        prev = arrivals[0]
        for i in range(1, n):
            at = arrivals[i]
            step = at - prev
            if step < 0 or step > _U16_MAX:
                break
            steps[i - 1] = step
            prev = at
        else:
            return _DELTAS, _U32.pack(arrived - arrivals[0]) + array("H", steps).tobytes()
    return 0, array("I", [arrived - a for a in arrivals]).tobytes()


def _pack_sensors(parts: list[bytes], sensors: dict[str, SensorState], wm: int) -> None:
    type_index, lengths, append, value_row = TYPE_INDEX, _LEN, parts.append, _VALUE.pack
    run_row, gaps_row, long_row = _S_RUN_ROW.pack, _S_GAPS_ROW.pack, _S_LONG_ROW.pack
    for name in sorted(sensors):
        s = sensors[name]
        raw = name.encode()
        append(lengths[len(raw)] if len(raw) < _NONE else _too_long(raw))
        append(raw)
        if s.last_state is None:
            append(lengths[_NONE])
        else:
            raw = s.last_state.encode()
            append(lengths[len(raw)] if len(raw) < _NONE else _too_long(raw))
            append(raw)
        value = s.last_value
        kind = type_index[s.sensor_type] | (0 if value is None else _S_VALUE)
        last_ts, seq, lo, hi, n, lost = s.last_ts, s.last_seq, s.lo, s.hi, s.n, s.lost
        try:
            if hi == seq and lost == 0 and n == (0 if lo == hi == -1 else hi - lo + 1):
                row = run_row(kind | _S_SHORT | _S_RUN, wm - last_ts, seq, last_ts - s.run_ts, lo)
            else:
                row = gaps_row(kind | _S_SHORT, wm - last_ts, seq, last_ts - s.run_ts, lo, hi, n, lost)
        except struct.error:  # a value out of the short row's range
            row = long_row(kind, last_ts, seq, s.run_ts, lo, hi, n, lost)
        append(row)
        if value is not None:
            append(value_row(value))


def _pack_hour(parts: list[bytes], h: HourAgg) -> None:
    co, temp = h.co, h.temperature
    has_co, has_temp = (
        bool(co.n or co.total or co.lo or co.hi),
        bool(temp.n or temp.total or temp.lo or temp.hi),
    )
    flags = (_H_CO if has_co else 0) | (_H_TEMP if has_temp else 0)
    try:
        rows = [
            _H_SHORT_HEAD.pack(flags | _H_SHORT, h.hour, *h.counts), bytes(h.minutes),
            _H_SHORT_ALARMS.pack(*h.alarms),
        ]  # fmt: skip
        if has_co:
            rows.append(_STAT_SHORT.pack(co.n, co.total, co.lo, co.hi))
        if has_temp:
            rows.append(_STAT_SHORT.pack(temp.n, temp.total, temp.lo, temp.hi))
    except struct.error:  # a value out of the short form's range
        rows = [_H_LONG_HEAD.pack(flags, h.hour, *h.counts), bytes(h.minutes), _H_LONG_ALARMS.pack(*h.alarms)]
        if has_co:
            rows.append(_STAT_LONG.pack(co.n, co.total, co.lo, co.hi))
        if has_temp:
            rows.append(_STAT_LONG.pack(temp.n, temp.total, temp.lo, temp.hi))
    parts += rows


def unpack(home_id: str, buf: bytes) -> HomeState:
    """The inverse of ``pack``; a state in the previous format (2) is read too (migration on read)."""
    version, flags, wm, stream, applied, arrived, n_sensors, n_window, n_hours, n_closed = _HEAD.unpack_from(
        buf, 0
    )
    if version != FORMAT_VERSION:
        if version == packed_v2.VERSION:
            return packed_v2.unpack_v2(home_id, buf)
        raise ValueError(f"unknown packed state version {version} (this version reads 2 and 3)")
    sensors: dict[str, SensorState] = {}
    pos = _unpack_sensors(buf, _HEAD.size, n_sensors, sensors, wm)
    if flags & _DELTAS:
        ids_at = pos + _AGE + (n_window - 1) * _STEP
        keys_at = ids_at + n_window * _HASH
        end = keys_at + n_window * _HASH
        first = arrived - _U32.unpack_from(buf, pos)[0]
        window = Window.stepped(first, buf[pos + _AGE : ids_at], buf[ids_at:keys_at], buf[keys_at:end])
    else:
        ids_at = pos + n_window * _AGE
        keys_at = ids_at + n_window * _HASH
        end = keys_at + n_window * _HASH
        arrivals = [arrived - age for age in array("I", buf[pos:ids_at])]
        window = Window.packed(arrivals, buf[ids_at:keys_at], buf[keys_at:end])
    hours: dict[int, HourAgg] = {}
    for _ in range(n_hours):
        agg, end = _unpack_hour(buf, end)
        hours[agg.hour] = agg
    closed: list[HourAgg] = []
    for _ in range(n_closed):
        agg, end = _unpack_hour(buf, end)
        agg.rev, agg.stream = _STAMP.unpack_from(buf, end)
        end += _STAMP.size
        closed.append(agg)
    return HomeState(
        home_id, wm if flags & _WM else None, stream, applied, arrived if flags & _ARRIVED else None,
        sensors, window, hours, closed,
    )  # fmt: skip


def _unpack_sensors(buf: bytes, pos: int, count: int, sensors: dict[str, SensorState], wm: int) -> int:
    types, run_row, gaps_row, long_row = SENSOR_TYPES, _S_RUN_ROW, _S_GAPS_ROW, _S_LONG_ROW
    for _ in range(count):
        end = pos + 1 + buf[pos]
        name = buf[pos + 1 : end].decode()
        n_text = buf[end]
        if n_text == _NONE:
            text, pos = None, end + 1
        else:
            pos = end + 1 + n_text
            text = buf[end + 1 : pos].decode()
        kind = buf[pos]
        if kind & _S_RUN:
            _, dts, last_seq, drun, lo = run_row.unpack_from(buf, pos)
            last_ts, hi, lost = wm - dts, last_seq, 0
            run_ts, n = last_ts - drun, 0 if lo == last_seq == -1 else last_seq - lo + 1
            pos += run_row.size
        elif kind & _S_SHORT:
            _, dts, last_seq, drun, lo, hi, n, lost = gaps_row.unpack_from(buf, pos)
            last_ts = wm - dts
            run_ts = last_ts - drun
            pos += gaps_row.size
        else:
            _, last_ts, last_seq, run_ts, lo, hi, n, lost = long_row.unpack_from(buf, pos)
            pos += long_row.size
        value: float | None = None
        if kind & _S_VALUE:
            value = _VALUE.unpack_from(buf, pos)[0]
            pos += 8
        sensors[name] = SensorState(
            types[kind & 0x0F], last_ts, last_seq, text, value, run_ts, lo, hi, n, lost
        )
    return pos


def _unpack_hour(buf: bytes, pos: int) -> tuple[HourAgg, int]:
    flags = buf[pos]
    row, stat = (_H_SHORT_ROW, _STAT_SHORT) if flags & _H_SHORT else (_H_LONG_ROW, _STAT_LONG)
    f = row.unpack_from(buf, pos)
    agg = HourAgg(f[1], list(f[2:_MINUTES]), list(f[_MINUTES:_ALARMS]), list(f[_ALARMS:]))
    pos += row.size
    if flags & _H_CO:
        agg.co = Stat(*stat.unpack_from(buf, pos))
        pos += stat.size
    if flags & _H_TEMP:
        agg.temperature = Stat(*stat.unpack_from(buf, pos))
        pos += stat.size
    return agg, pos


def _sensor_doc(name: str, s: SensorState, co_alarm_ppm: float) -> dict[str, Any]:
    value = s.last_value if s.last_value is not None else 0.0
    threshold = co_alarm_ppm if s.sensor_type is SensorType.CO else 1.0
    alarm = s.last_state == "alarm" or (s.sensor_type in ALARM_KINDS and value >= threshold)
    return {
        "sensor_id": name, "type": s.sensor_type.value, "state": s.last_state, "value": s.last_value,
        "last_seen": iso_ms(s.last_ts), "seq": s.last_seq if s.last_seq >= 0 else None,
        "alarm": alarm, "lost_readings": s.gaps,
    }  # fmt: skip


def status_doc(state: HomeState, co_alarm_ppm: float = 50.0, *, packed: bool = True) -> dict[str, Any]:
    """The status blob: current sensor states, open hours, lost readings, and (``packed``) the packed state;
    without it, the status the read API answers and the status view (the state is never packed then)."""
    sensors = [_sensor_doc(n, state.sensors[n], co_alarm_ppm) for n in sorted(state.sensors)]
    doc = {
        "schema": STATUS_SCHEMA,
        "home_id": state.home_id,
        "watermark": iso_ms(state.watermark) if state.watermark is not None else None,
        "sensors": sensors,
        "active_alarms": [s["sensor_id"] for s in sensors if s["alarm"]],
        "lost_readings": state.gaps,
        "open_hours": [hour_doc(state.hours[h]) for h in sorted(state.hours)],
    }
    if packed:
        doc["state"] = base64.b64encode(pack(state)).decode()
    return doc


def state_from_status(doc: dict[str, Any]) -> HomeState:
    return unpack(str(doc["home_id"]), base64.b64decode(doc["state"]))
