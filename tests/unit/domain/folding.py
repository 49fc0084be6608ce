"""Shared helpers for the fold tests: reading factories and an independent ground truth."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from homesec_domain.fold import FoldConfig, HomeState, HourAgg, Outcome, fold, to_ms
from homesec_domain.models import Reading, SensorType
from homesec_domain.rollup import hour_doc, pack

T0 = datetime(2026, 11, 25, 9, 58, 0, tzinfo=UTC)


def reading(
    sensor_id: str,
    sensor_type: SensorType,
    seconds: float,
    *,
    home_id: str = "home-1",
    seq: int | None = None,
    value: float | None = None,
    state: str | None = None,
    reading_id: uuid.UUID | None = None,
) -> Reading:
    if value is None and state is None:
        value = 1.0
    return Reading(
        reading_id=reading_id or uuid.uuid4(), home_id=home_id, sensor_id=sensor_id, sensor_type=sensor_type,
        ts=T0 + timedelta(seconds=seconds), value=value, state=state, seq=seq,
    )  # fmt: skip


class Log:
    """Delivers readings to one home's state as consecutive events of one partition (stream 0), each
    arriving at its reading's timestamp unless told otherwise."""

    def __init__(self, state: HomeState, config: FoldConfig) -> None:
        self.state, self.config, self.position = state, config, state.applied

    def deliver(self, r: Reading, arrived: int | None = None) -> Outcome:
        self.position += 1
        at = to_ms(r.ts) if arrived is None else arrived
        return fold(self.state, r, self.config, 0, self.position, at)


def fold_all(readings: list[Reading], config: FoldConfig, home_id: str = "home-1") -> HomeState:
    state = HomeState(home_id)
    log = Log(state, config)
    for r in readings:
        log.deliver(r)
    return state


@dataclass(frozen=True)
class Final:
    """A state in comparable form: the packed open state plus every hour that closed on the way."""

    packed: bytes
    closed: tuple[tuple[int, str], ...]


def closed_docs(hours: list[HourAgg]) -> tuple[tuple[int, str], ...]:
    return tuple((h.hour, orjson.dumps(hour_doc(h)).decode()) for h in hours)


def final_of(state: HomeState) -> Final:
    closed = closed_docs(state.drain_closed())
    return Final(pack(state), closed)


def truth(readings: list[Reading], co_alarm_ppm: float = 50.0) -> dict[str, Any]:
    """Expected aggregates computed directly from the distinct readings (no fold code involved)."""
    distinct = {r.reading_id: r for r in readings}.values()
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    alarms: dict[int, Counter[str]] = defaultdict(Counter)
    last: dict[str, Reading] = {}
    seqs: dict[str, set[int]] = defaultdict(set)
    for r in distinct:
        hour = int(r.ts.replace(minute=0, second=0, microsecond=0).timestamp())
        counts[hour][r.sensor_type.value] += 1
        is_alarm = r.state == "alarm" or (
            r.value is not None
            and (
                (r.sensor_type is SensorType.CO and r.value >= co_alarm_ppm)
                or (r.sensor_type in (SensorType.GLASS_BREAK, SensorType.SMOKE) and r.value >= 1)
            )
        )
        if is_alarm:
            alarms[hour][r.sensor_type.value] += 1
        prev = last.get(r.sensor_id)
        if prev is None or (r.ts, r.seq or -1) > (prev.ts, prev.seq or -1):
            last[r.sensor_id] = r
        if r.seq is not None:
            seqs[r.sensor_id].add(r.seq)
    gaps = {s: max(v) - min(v) + 1 - len(v) for s, v in seqs.items()}
    return {"counts": counts, "alarms": alarms, "last": last, "gaps": gaps}
