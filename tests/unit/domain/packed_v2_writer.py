"""The previous packed state writer (format 2), kept verbatim for the migration tests: the states it writes
are what consumers of the previous version left in state snapshots and status blobs."""

from __future__ import annotations

import math
import struct
from array import array
from operator import attrgetter

from homesec_domain.fold import SENSOR_TYPES, TYPE_INDEX, HomeState, HourAgg, SensorState

_HEAD = struct.Struct("<BBqiqqHIHH")
_SENSOR = struct.Struct("<BqqdqqqII")
_NT, _NA = len(SENSOR_TYPES), 3
_HOUR_HEAD = struct.Struct(f"<q{_NT}I")
_HOUR_TAIL = struct.Struct(f"<{_NA}IIqqqIqqq")
_STAMP = struct.Struct("<qi")


def pack_v2(state: HomeState) -> bytes:
    window, closed = state.window, state.closed
    wm = 0 if state.watermark is None else state.watermark
    arrived = 0 if state.arrived is None else state.arrived
    flags = (state.watermark is not None) | (state.arrived is not None) << 1
    parts = [
        _HEAD.pack(2, flags, wm, state.stream, state.applied, arrived, len(state.sensors), len(window),
                   len(state.hours), len(closed))
    ]  # fmt: skip
    for name in sorted(state.sensors):
        parts.append(_sensor(name, state.sensors[name]))
    parts += [
        array("I", [arrived - a for a in window.arrived]).tobytes(),
        bytes(window.ids),
        bytes(window.keys),
    ]
    parts += [_hour(h) for h in sorted(state.hours.values(), key=attrgetter("hour"))]
    for h in sorted(closed, key=attrgetter("hour", "rev", "stream")):
        parts += [_hour(h), _STAMP.pack(h.rev, h.stream)]
    return b"".join(parts)


def _sensor(name: str, s: SensorState) -> bytes:
    raw = name.encode()
    text = b"\xff" if s.last_state is None else bytes((len(s.last_state.encode()),)) + s.last_state.encode()
    value = math.nan if s.last_value is None else s.last_value
    row = _SENSOR.pack(
        TYPE_INDEX[s.sensor_type], s.last_ts, s.last_seq, value, s.run_ts, s.lo, s.hi, s.n, s.lost
    )
    return bytes((len(raw),)) + raw + text + row


def _hour(h: HourAgg) -> bytes:
    co, t = h.co, h.temperature
    return (
        _HOUR_HEAD.pack(h.hour, *h.counts) + bytes(h.minutes)
        + _HOUR_TAIL.pack(*h.alarms, co.n, co.total, co.lo, co.hi, t.n, t.total, t.lo, t.hi)
    )  # fmt: skip
