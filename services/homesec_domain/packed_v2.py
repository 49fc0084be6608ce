"""Reader of the previous packed state format (version 2), for migration on read.

``homesec_domain.rollup.unpack`` hands a state whose first byte is 2 to ``unpack_v2``: state snapshots and
status blobs written before format 3 are read as they are, and the next ``pack`` writes format 3. Layout:
a head (``_HEAD``), per sensor its ID, its state text and a fixed row (``_SENSOR``), the window (arrival
ages as u32, then the id hashes and the key hashes as i64), then the open hours and the closed entries
(``_HOUR``; closed entries followed by their stamp).
"""

from __future__ import annotations

import struct
from array import array

from homesec_domain.dedup import Window
from homesec_domain.fold import SENSOR_TYPES, HomeState, HourAgg, SensorState, Stat

VERSION = 2
_HEAD = struct.Struct("<BBqiqqHIHH")
_SENSOR = struct.Struct("<BqqdqqqII")  # type, last_ts, last_seq, value, run_ts, lo, hi, n, lost
_NT, _NA = len(SENSOR_TYPES), 3
_HOUR = struct.Struct(f"<q{_NT}I60B{_NA}IIqqqIqqq")  # hour, counts, minutes, alarms, co, temperature
_STAMP = struct.Struct("<qi")
_MINUTES, _ALARMS, _CO, _TEMP = 1 + _NT, 61 + _NT, 61 + _NT + _NA, 65 + _NT + _NA
_NONE = 255


def unpack_v2(home_id: str, buf: bytes) -> HomeState:
    version, flags, wm, stream, applied, arrived, n_sensors, n_window, n_hours, n_closed = _HEAD.unpack_from(
        buf, 0
    )
    if version != VERSION:
        raise ValueError(f"not a format-{VERSION} state: {version}")
    state = HomeState(home_id, wm if flags & 1 else None, stream, applied, arrived if flags & 2 else None)
    pos = _sensors(buf, _HEAD.size, n_sensors, state.sensors)
    ids_at = pos + n_window * 4
    keys_at = ids_at + n_window * 8
    end = keys_at + n_window * 8
    state.window = Window.packed(
        [arrived - age for age in array("I", buf[pos:ids_at])], buf[ids_at:keys_at], buf[keys_at:end]
    )
    for _ in range(n_hours):
        agg = _hour(buf, end)
        end += _HOUR.size
        state.hours[agg.hour] = agg
    for _ in range(n_closed):
        agg = _hour(buf, end)
        agg.rev, agg.stream = _STAMP.unpack_from(buf, end + _HOUR.size)
        end += _HOUR.size + _STAMP.size
        state.closed.append(agg)
    return state


def _sensors(buf: bytes, pos: int, count: int, sensors: dict[str, SensorState]) -> int:
    for _ in range(count):
        end = pos + 1 + buf[pos]
        name = buf[pos + 1 : end].decode()
        if buf[end] == _NONE:
            text, pos = None, end + 1
        else:
            pos = end + 1 + buf[end]
            text = buf[end + 1 : pos].decode()
        type_i, last_ts, last_seq, value, run_ts, lo, hi, n, lost = _SENSOR.unpack_from(buf, pos)
        pos += _SENSOR.size
        last_value = None if value != value else value  # noqa: PLR0124 (NaN)
        sensors[name] = SensorState(
            SENSOR_TYPES[type_i], last_ts, last_seq, text, last_value, run_ts, lo, hi, n, lost
        )
    return pos


def _hour(buf: bytes, pos: int) -> HourAgg:
    f = _HOUR.unpack_from(buf, pos)
    return HourAgg(
        f[0], list(f[1:_MINUTES]), list(f[_MINUTES:_ALARMS]), list(f[_ALARMS:_CO]),
        Stat(f[_CO], f[_CO + 1], f[_CO + 2], f[_CO + 3]),
        Stat(f[_TEMP], f[_TEMP + 1], f[_TEMP + 2], f[_TEMP + 3]),
    )  # fmt: skip
