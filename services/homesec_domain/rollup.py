"""Rollup documents and the compact, canonical binary form of a home's fold state.

``pack``/``unpack``: a home's state in about 0.5-1 KB (consumers hold 100,000 homes in memory this way, and
the status blob embeds it, so a new partition owner continues folding exactly where the last durable write
left off). Equal states give equal bytes (sensors sorted, hours sorted, the window in arrival order).

``status_doc``: what the resident website reads with one blob read. ``amendment_doc``/``merge_day``: closed
hourly rollups and their late amendments, grouped by UTC day (one blob per home and day), merged
idempotently by their stamp (``HourAgg.rev``/``stream``).
"""

from __future__ import annotations

import base64
import math
import struct
import sys
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NoReturn

from homesec_domain.dedup import Window
from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, TYPE_INDEX, HomeState, HourAgg, SensorState, Stat
from homesec_domain.models import SensorType

FORMAT_VERSION = 2
STATUS_SCHEMA = "homesec.rollup.status.v1"
DAY_SCHEMA = "homesec.rollup.day.v1"

# version, flags (1: watermark, 2: arrived), watermark, stream, applied, arrived; counts of sensors, window
# entries, open hours and closed entries
_HEAD = struct.Struct("<BBqiqqHIHH")
_SENSOR = struct.Struct("<BqqdqqqII")  # type, last_ts, last_seq, value, run_ts, lo, hi, n, lost
# The window: n arrival ages (u32, ms before ``arrived``), then n id hashes, then n key hashes (i64 each).
_AGE, _HASH = 4, 8
assert array("I").itemsize == _AGE and array("q").itemsize == _HASH and sys.byteorder == "little"
_NT, _NA = len(SENSOR_TYPES), len(ALARM_KINDS)
_HOUR = struct.Struct(f"<q{_NT}I60B{_NA}IIqqqIqqq")  # hour, counts, minutes, alarms, co, temperature
_HOUR_HEAD = struct.Struct(f"<q{_NT}I")  # ``_HOUR`` in three parts for packing: this, 60 minute bytes, tail
_HOUR_TAIL = struct.Struct(f"<{_NA}IIqqqIqqq")
_STAMP = struct.Struct("<qi")  # a closed entry's rev and stream
_MINUTES, _ALARMS, _CO, _TEMP = 1 + _NT, 61 + _NT, 61 + _NT + _NA, 65 + _NT + _NA
_NONE = 255
_LEN = [bytes((n,)) for n in range(256)]  # length prefixes; _LEN[_NONE] also marks None
_HOUR_OF = attrgetter("hour")
_CLOSED_KEY = attrgetter("hour", "rev", "stream")
# ``pack``/``unpack`` run for every touched home in every batch, so they avoid per-field struct calls,
# attribute lookups in loops and object sorting.


def _too_long(raw: bytes) -> NoReturn:
    raise ValueError(f"string of {len(raw)} bytes is too long to pack")


def pack(state: HomeState) -> bytes:
    """Canonical compact bytes of ``state`` (the home ID is not included: it is the key)."""
    sensors, window, closed = state.sensors, state.window, state.closed
    wm = 0 if state.watermark is None else state.watermark
    arrived = 0 if state.arrived is None else state.arrived
    flags = (state.watermark is not None) | (state.arrived is not None) << 1
    parts = [
        _HEAD.pack(FORMAT_VERSION, flags, wm, state.stream, state.applied, arrived, len(sensors),
                   len(window), len(state.hours), len(closed))
    ]  # fmt: skip
    _pack_sensors(parts, sensors)
    parts += [
        array("I", [arrived - a for a in window.arrived]).tobytes(),
        array("q", window.ids).tobytes(),
        array("q", window.keys).tobytes(),
    ]
    _pack_hours(parts, sorted(state.hours.values(), key=_HOUR_OF))
    if closed:
        stamp = _STAMP.pack
        for agg in sorted(closed, key=_CLOSED_KEY):
            _pack_hours(parts, (agg,))
            parts.append(stamp(agg.rev, agg.stream))
    return b"".join(parts)


def _pack_sensors(parts: list[bytes], sensors: dict[str, SensorState]) -> None:
    row, type_index, lengths, append = _SENSOR.pack, TYPE_INDEX, _LEN, parts.append
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
        value = math.nan if s.last_value is None else s.last_value
        kind = type_index[s.sensor_type]
        append(row(kind, s.last_ts, s.last_seq, value, s.run_ts, s.lo, s.hi, s.n, s.lost))


def _pack_hours(parts: list[bytes], hours: Iterable[HourAgg]) -> None:
    head, tail, append = _HOUR_HEAD.pack, _HOUR_TAIL.pack, parts.append
    for h in hours:
        co, temp = h.co, h.temperature
        append(head(h.hour, *h.counts))
        append(bytes(h.minutes))
        append(tail(*h.alarms, co.n, co.total, co.lo, co.hi, temp.n, temp.total, temp.lo, temp.hi))


def unpack(home_id: str, buf: bytes) -> HomeState:
    """The inverse of ``pack``."""
    version, flags, wm, stream, applied, arrived, n_sensors, n_window, n_hours, n_closed = _HEAD.unpack_from(
        buf, 0
    )
    if version != FORMAT_VERSION:
        raise ValueError(f"unknown state format {version}")
    sensors: dict[str, SensorState] = {}
    pos = _unpack_sensors(buf, _HEAD.size, n_sensors, sensors)
    ids_at = pos + n_window * _AGE
    keys_at = ids_at + n_window * _HASH
    end = keys_at + n_window * _HASH
    window = Window(
        [arrived - age for age in array("I", buf[pos:ids_at])],
        array("q", buf[ids_at:keys_at]).tolist(),
        array("q", buf[keys_at:end]).tolist(),
    )
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
    state = HomeState(home_id, wm if flags & 1 else None, stream, applied, arrived if flags & 2 else None)
    state.sensors, state.window, state.hours, state.closed = sensors, window, hours, closed
    return state


def _unpack_sensors(buf: bytes, pos: int, count: int, sensors: dict[str, SensorState]) -> int:
    row, size, types = _SENSOR.unpack_from, _SENSOR.size, SENSOR_TYPES
    for _ in range(count):
        end = pos + 1 + buf[pos]
        name = buf[pos + 1 : end].decode()
        n_text = buf[end]
        if n_text == _NONE:
            text, pos = None, end + 1
        else:
            pos = end + 1 + n_text
            text = buf[end + 1 : pos].decode()
        type_i, last_ts, last_seq, value, run_ts, lo, hi, n, lost = row(buf, pos)
        pos += size
        last_value = None if value != value else value  # noqa: PLR0124 (NaN, without a call)
        sensors[name] = SensorState(
            types[type_i], last_ts, last_seq, text, last_value, run_ts, lo, hi, n, lost
        )
    return pos


def _unpack_hour(buf: bytes, pos: int) -> tuple[HourAgg, int]:
    f = _HOUR.unpack_from(buf, pos)
    agg = HourAgg(
        f[0], list(f[1:_MINUTES]), list(f[_MINUTES:_ALARMS]), list(f[_ALARMS:_CO]),
        Stat(f[_CO], f[_CO + 1], f[_CO + 2], f[_CO + 3]),
        Stat(f[_TEMP], f[_TEMP + 1], f[_TEMP + 2], f[_TEMP + 3]),
    )  # fmt: skip
    return agg, pos + _HOUR.size


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
        "sum": stat.total / 1000,
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


def amendment_doc(agg: HourAgg) -> dict[str, Any]:
    """A closed entry (a closed hour, or a late amendment of one) as merged into its day document."""
    return {**hour_doc(agg), "rev": agg.rev, "stream": agg.stream}


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


def day_of(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%d")


def hh_of(hour: int) -> str:
    return f"{hour // 3600 % 24:02d}"


def _add_stat(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None or b is None:
        return a or b
    n, total = a["n"] + b["n"], round(a["sum"] * 1000) + round(b["sum"] * 1000)
    lo, hi = min(a["min"], b["min"]), max(a["max"], b["max"])
    return {"n": n, "min": lo, "max": hi, "mean": round(total / n) / 1000, "sum": total / 1000}


def _add_hour(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two rollups of one hour added (counts, per-minute counts saturating at 255, alarms, stats)."""
    counts = {t.value: a["counts"].get(t.value, 0) + b["counts"].get(t.value, 0) for t in SENSOR_TYPES}
    alarms = {t.value: a["alarms"].get(t.value, 0) + b["alarms"].get(t.value, 0) for t in ALARM_KINDS}
    return {
        "hour": a["hour"], "counts": {k: v for k, v in counts.items() if v}, "total": a["total"] + b["total"],
        "minutes": [min(x + y, 255) for x, y in zip(a["minutes"], b["minutes"], strict=True)],
        "alarms": {k: v for k, v in alarms.items() if v},
        "co_ppm": _add_stat(a["co_ppm"], b["co_ppm"]),
        "temperature_c": _add_stat(a["temperature_c"], b["temperature_c"]),
    }  # fmt: skip


def merge_day(
    existing: dict[str, Any] | None, home_id: str, day: str, amendments: Iterable[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Add closed entries (``("HH", amendment_doc)``, in stamp order) to a day document. An entry whose stamp
    the hour already carries (same stream, ``rev`` not newer) was merged before and changes nothing, so a
    retried or replayed merge is idempotent. ``existing`` is not modified."""
    doc: dict[str, Any] = (
        dict(existing) if existing else {"schema": DAY_SCHEMA, "home_id": home_id, "date": day}
    )
    hours: dict[str, dict[str, Any]] = dict(doc.get("hours", {}))
    for hh, entry in amendments:
        current = hours.get(hh)
        if current is None:
            hours[hh] = entry
        elif current.get("stream") != entry["stream"] or current.get("rev", -1) < entry["rev"]:
            hours[hh] = {**_add_hour(current, entry), "rev": entry["rev"], "stream": entry["stream"]}
    doc["hours"] = dict(sorted(hours.items()))
    return doc
