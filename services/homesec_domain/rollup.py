"""Rollup documents and the compact, canonical binary form of a home's fold state.

``pack``/``unpack``: a home's state in ~0.5-1 KB (consumers hold 100,000 homes in memory this way, and the
status blob embeds it so a new partition owner can continue folding idempotently). The encoding is
canonical (sensors, window entries and hours sorted), so equal states give equal bytes and equal blobs.

``status_doc``: what the resident website reads with one blob read. ``hour_doc``/``merge_day``: closed
hourly rollups, grouped by UTC day (one blob per home and day).
"""

from __future__ import annotations

import base64
import math
import struct
from datetime import UTC, datetime
from typing import Any

from homesec_domain.dedup import Pending, SeqRange
from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, HomeState, HourAgg, SensorState, Stat
from homesec_domain.models import SensorType

FORMAT_VERSION = 1
STATUS_SCHEMA = "homesec.rollup.status.v1"
DAY_SCHEMA = "homesec.rollup.day.v1"

_HEAD = struct.Struct("<BBqHHBB")  # version | wide << 4, has_wm, wm, n_sensors, n_window, n_hours, n_closed
_SENSOR = struct.Struct("<BqqdqqI")  # type, last_ts, last_seq, value, settled lo, hi - lo, n
_WINDOW = struct.Struct("<IBiq")  # wm - ts, sensor index, sensor's last seq - seq, id hash
_WINDOW_WIDE = struct.Struct("<IHqq")  # wm - ts, sensor index, seq, id hash (many sensors or far seqs)
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


def pack(state: HomeState) -> bytes:
    """Canonical compact bytes of ``state`` (the home ID is not included: it is the key)."""
    names = sorted(state.sensors)
    index = {name: i for i, name in enumerate(names)}
    wm = state.watermark if state.watermark is not None else 0
    hours = sorted(state.hours.values(), key=lambda h: h.hour) + sorted(state.closed, key=lambda h: h.hour)
    last_seq = {name: state.sensors[name].last_seq for name in names}
    wide = len(names) > 255 or any(last_seq[e.sensor_id] - e.seq not in _I32 for e in state.window)
    out = bytearray(
        _HEAD.pack(FORMAT_VERSION | wide << 4, state.watermark is not None, wm, len(names), len(state.window),
                   len(state.hours), len(state.closed))
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


def unpack(home_id: str, buf: bytes) -> HomeState:
    """The inverse of ``pack``."""
    version, has_wm, wm, n_sensors, n_window, n_hours, n_closed = _HEAD.unpack_from(buf, 0)
    if version & 0x0F != FORMAT_VERSION:
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
        agg, pos = _unpack_hour(buf, pos)
        if i < n_hours:
            state.hours[agg.hour] = agg
        else:
            state.closed.append(agg)
    return state


def _unpack_hour(buf: bytes, pos: int) -> tuple[HourAgg, int]:
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


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stat_doc(stat: Stat) -> dict[str, Any] | None:
    if stat.n == 0:
        return None
    return {
        "n": stat.n,
        "min": stat.lo / 1000,
        "max": stat.hi / 1000,
        "mean": round(stat.total / stat.n) / 1000,
    }


def hour_doc(agg: HourAgg) -> dict[str, Any]:
    """One hourly rollup as JSON (the 1-minute windows are the ``minutes`` list, index = minute)."""
    return {
        "hour": iso_ms(agg.hour * 1000),
        "counts": {t.value: c for t, c in zip(SENSOR_TYPES, agg.counts, strict=True) if c},
        "total": sum(agg.counts),
        "minutes": agg.minutes,
        "alarms": {t.value: c for t, c in zip(ALARM_KINDS, agg.alarms, strict=True) if c},
        "co_ppm": _stat_doc(agg.co),
        "temperature_c": _stat_doc(agg.temperature),
    }


def _sensor_doc(name: str, s: SensorState, r: SeqRange | None, co_alarm_ppm: float) -> dict[str, Any]:
    value = s.last_value if s.last_value is not None else 0.0
    threshold = co_alarm_ppm if s.sensor_type is SensorType.CO else 1.0
    alarm = s.last_state == "alarm" or (s.sensor_type in ALARM_KINDS and value >= threshold)
    return {
        "sensor_id": name, "type": s.sensor_type.value, "state": s.last_state, "value": s.last_value,
        "last_seen": iso_ms(s.last_ts), "seq": s.last_seq if s.last_seq >= 0 else None,
        "alarm": alarm, "lost_readings": r.gaps if r else 0,
    }  # fmt: skip


def status_doc(state: HomeState, co_alarm_ppm: float = 50.0) -> dict[str, Any]:
    """The status blob: current sensor states, open hours, lost readings, and the packed state."""
    sensors = [
        _sensor_doc(n, state.sensors[n], state.settled.get(n), co_alarm_ppm) for n in sorted(state.sensors)
    ]
    return {
        "schema": STATUS_SCHEMA,
        "home_id": state.home_id,
        "watermark": iso_ms(state.watermark) if state.watermark is not None else None,
        "sensors": sensors,
        "active_alarms": [s["sensor_id"] for s in sensors if s["alarm"]],
        "lost_readings": state.gaps,
        "open_hours": [hour_doc(state.hours[h]) for h in sorted(state.hours)],
        "state": base64.b64encode(pack(state)).decode(),
    }


def state_from_status(doc: dict[str, Any]) -> HomeState:
    return unpack(str(doc["home_id"]), base64.b64decode(doc["state"]))


def day_of(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%d")


def merge_day(
    existing: dict[str, Any] | None, home_id: str, day: str, hours: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Add closed hours (``"HH"`` -> ``hour_doc``) to a day document; re-adding an hour is a no-op
    because closed hours are final."""
    doc = existing or {"schema": DAY_SCHEMA, "home_id": home_id, "date": day, "hours": {}}
    doc["hours"] = dict(sorted({**doc["hours"], **hours}.items()))
    return doc
