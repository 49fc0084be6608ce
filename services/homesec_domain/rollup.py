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
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from operator import attrgetter, lt
from typing import Any, NoReturn

from homesec_domain.dedup import Pending, SeqRange
from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, TYPE_INDEX, HomeState, HourAgg, SensorState, Stat
from homesec_domain.models import SensorType

FORMAT_VERSION = 1
STATUS_SCHEMA = "homesec.rollup.status.v1"
DAY_SCHEMA = "homesec.rollup.day.v1"

_HEAD = struct.Struct("<BBqHHBB")  # version | wide << 4, has_wm, wm, n_sensors, n_window, n_hours, n_closed
_SENSOR = struct.Struct("<BqqdqqI")  # type, last_ts, last_seq, value, settled lo, hi - lo, n
_WINDOW = struct.Struct("<IBiq")  # wm - ts, sensor index, sensor's last seq - seq, id hash
_WINDOW_WIDE = struct.Struct("<IHqq")  # wm - ts, sensor index, seq, id hash (many sensors or far seqs)
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_NT, _NA = len(SENSOR_TYPES), len(ALARM_KINDS)
_HOUR = struct.Struct(f"<q{_NT}I60B{_NA}IIqqqIqqq")  # hour, counts, minutes, alarms, co, temperature
_HOUR_HEAD = struct.Struct(f"<q{_NT}I")  # ``_HOUR`` in three parts for packing: this, 60 minute bytes, tail
_HOUR_TAIL = struct.Struct(f"<{_NA}IIqqqIqqq")
_MINUTES, _ALARMS, _CO, _TEMP = 1 + _NT, 61 + _NT, 61 + _NT + _NA, 65 + _NT + _NA
_NONE = 255
_LEN = [bytes((n,)) for n in range(256)]  # length prefixes; _LEN[_NONE] also marks None
_NO_RANGE = SeqRange()
_WINDOW_KEY = attrgetter("ts", "sensor_id", "seq", "idh")  # the order of ``Pending``
_HOUR_OF = attrgetter("hour")
_TS_OF = attrgetter("ts")
# ``pack``/``unpack`` run for every touched home in every batch, so they avoid per-field struct calls,
# attribute lookups in loops and object sorting; the byte format is fixed (stored blobs embed it).


def _too_long(raw: bytes) -> NoReturn:
    raise ValueError(f"string of {len(raw)} bytes is too long to pack")


def pack(state: HomeState) -> bytes:
    """Canonical compact bytes of ``state`` (the home ID is not included: it is the key)."""
    sensors, window, open_hours, closed = state.sensors, state.window, state.hours, state.closed
    names = sorted(sensors)
    wm = state.watermark if state.watermark is not None else 0
    parts = [b""]  # the head, once the layout is known
    index, last_seq = _pack_sensors(parts, names, sensors, state.settled)
    window = _sorted_window(window)
    wide = len(names) > _NONE or not _pack_window(parts, window, wm, index, last_seq)
    if wide:
        row = _WINDOW_WIDE.pack
        parts += [row(wm - e.ts, index[e.sensor_id], e.seq, e.idh) for e in window]
    parts[0] = _HEAD.pack(
        FORMAT_VERSION | wide << 4, state.watermark is not None, wm, len(names), len(window), len(open_hours),
        len(closed),
    )  # fmt: skip
    _pack_hours(parts, open_hours.values())
    if closed:
        _pack_hours(parts, closed)
    return b"".join(parts)


def _sorted_window(window: list[Pending]) -> list[Pending]:
    """``sorted(window)``, without building keys when the timestamps already increase (the usual case)."""
    stamps = list(map(_TS_OF, window))
    if all(map(lt, stamps, islice(stamps, 1, None))):
        return window
    return sorted(window, key=_WINDOW_KEY)


def _pack_window(
    parts: list[bytes], window: list[Pending], wm: int, index: dict[str, int], last_seq: dict[str, int]
) -> bool:
    """Add the compact window rows; False (nothing added) if a sequence number is too far for them."""
    row = _WINDOW.pack
    try:
        parts += [row(wm - e.ts, index[e.sensor_id], last_seq[e.sensor_id] - e.seq, e.idh) for e in window]
    except struct.error:
        if all(_I32_MIN <= last_seq[e.sensor_id] - e.seq <= _I32_MAX for e in window):
            raise  # not the sequence numbers: the wide layout cannot pack this either
        return False
    return True


def _pack_sensors(
    parts: list[bytes], names: list[str], sensors: dict[str, SensorState], settled: dict[str, SeqRange]
) -> tuple[dict[str, int], dict[str, int]]:
    """Add the sensors; return each one's index and last sequence number."""
    row, type_index, get_range, lengths, append = _SENSOR.pack, TYPE_INDEX, settled.get, _LEN, parts.append
    index: dict[str, int] = {}
    last_seq: dict[str, int] = {}
    for i, name in enumerate(names):
        s = sensors[name]
        r = get_range(name, _NO_RANGE)
        raw = name.encode()
        append(lengths[len(raw)] if len(raw) <= _NONE else _too_long(raw))
        append(raw)
        if s.last_state is None:
            append(lengths[_NONE])
        else:
            raw = s.last_state.encode()
            append(lengths[len(raw)] if len(raw) <= _NONE else _too_long(raw))
            append(raw)
        value = math.nan if s.last_value is None else s.last_value
        append(row(type_index[s.sensor_type], s.last_ts, s.last_seq, value, r.lo, r.hi - r.lo, r.n))
        index[name] = i
        last_seq[name] = s.last_seq
    return index, last_seq


def _pack_hours(parts: list[bytes], hours: Iterable[HourAgg]) -> None:
    head, tail, append = _HOUR_HEAD.pack, _HOUR_TAIL.pack, parts.append
    for h in sorted(hours, key=_HOUR_OF):
        co, temp = h.co, h.temperature
        append(head(h.hour, *h.counts))
        append(bytes(h.minutes))
        append(tail(*h.alarms, co.n, co.total, co.lo, co.hi, temp.n, temp.total, temp.lo, temp.hi))


def unpack(home_id: str, buf: bytes) -> HomeState:
    """The inverse of ``pack``."""
    version, has_wm, wm, n_sensors, n_window, n_hours, n_closed = _HEAD.unpack_from(buf, 0)
    if version & 0x0F != FORMAT_VERSION:
        raise ValueError(f"unknown state format {version}")
    sensors: dict[str, SensorState] = {}
    settled: dict[str, SeqRange] = {}
    names: list[str] = []
    last_seqs: list[int] = []
    pos = _unpack_sensors(buf, _HEAD.size, n_sensors, sensors, settled, names, last_seqs)
    layout = _WINDOW_WIDE if version >> 4 else _WINDOW
    end = pos + n_window * layout.size
    window = _unpack_window(layout.iter_unpack(buf[pos:end]), wm, names, None if version >> 4 else last_seqs)
    hours: dict[int, HourAgg] = {}
    closed: list[HourAgg] = []
    for i in range(n_hours + n_closed):
        agg, end = _unpack_hour(buf, end)
        if i < n_hours:
            hours[agg.hour] = agg
        else:
            closed.append(agg)
    return HomeState(home_id, wm if has_wm else None, sensors, settled, window, hours, closed)


def _unpack_window(
    rows: Iterator[tuple[Any, ...]], wm: int, names: list[str], last_seqs: list[int] | None
) -> list[Pending]:
    """The window entries; ``last_seqs`` for the compact layout (sequence numbers relative to them)."""
    make = Pending._make
    if last_seqs is None:
        return [make((wm - age, names[si], seq, idh)) for age, si, seq, idh in rows]
    return [make((wm - age, names[si], last_seqs[si] - seq, idh)) for age, si, seq, idh in rows]


def _unpack_sensors(
    buf: bytes, pos: int, count: int, sensors: dict[str, SensorState], settled: dict[str, SeqRange],
    names: list[str], last_seqs: list[int],
) -> int:  # fmt: skip
    row, size, types = _SENSOR.unpack_from, _SENSOR.size, SENSOR_TYPES
    for _ in range(count):
        end = pos + 1 + buf[pos]
        assert buf[pos] != _NONE  # a sensor always has a name
        name = buf[pos + 1 : end].decode()
        n_text = buf[end]
        if n_text == _NONE:
            text, pos = None, end + 1
        else:
            pos = end + 1 + n_text
            text = buf[end + 1 : pos].decode()
        type_i, last_ts, last_seq, value, lo, span, n = row(buf, pos)
        pos += size
        names.append(name)
        last_seqs.append(last_seq)
        last_value = None if value != value else value  # noqa: PLR0124 (NaN, without a call)
        sensors[name] = SensorState(types[type_i], last_ts, last_seq, text, last_value)
        if n:
            settled[name] = SeqRange(lo, lo + span, n)
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
