"""Hourly and daily rollup documents: an hour's aggregate as JSON, and the idempotent merge of closed hours
and their late amendments into one document per home and UTC day (by their stamp, ``HourAgg.rev``/
``stream``). ``homesec_domain.rollup`` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from homesec_domain.fold import ALARM_KINDS, SENSOR_TYPES, HourAgg, Stat

DAY_SCHEMA = "homesec.rollup.day.v1"


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
