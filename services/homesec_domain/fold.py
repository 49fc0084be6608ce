"""The per-home aggregation fold: a pure function of the readings, no I/O.

``fold(state, reading, config)`` applies one reading to a home's state and says whether it was accepted,
a duplicate, or late. The result is a deterministic function of the *set* of readings as long as every
reading arrives before the home's watermark (the newest accepted timestamp) is more than
``config.lateness_ms`` ahead of it: any order and any duplication of the same readings give the same state.

What the state holds:

- per sensor: the last reading (state, value, last-seen time, sequence number; "last" is the greatest
  ``(ts, seq, state, value)``, so ties resolve the same way in any order) and the settled sequence range;
- open hourly windows: counts by sensor type, per-minute counts (1-minute windows rolled up to the hour,
  saturating at 255), alarm counts (glass break, smoke, CO at or above ``co_alarm_ppm``) and CO and
  temperature min/max/mean in fixed point (integer milli-units, so sums do not depend on order);
- closed hours (end older than the lateness bound): final, waiting in ``closed`` until the caller persists
  them and calls ``drain_closed``;
- the bounded dedup window (``homesec_domain.dedup``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from homesec_domain.dedup import Pending, SeqRange, id_hash, is_duplicate, settle
from homesec_domain.models import Reading, SensorType

SENSOR_TYPES: tuple[SensorType, ...] = tuple(SensorType)
ALARM_KINDS: tuple[SensorType, ...] = (SensorType.GLASS_BREAK, SensorType.SMOKE, SensorType.CO)
TYPE_INDEX = {t: i for i, t in enumerate(SENSOR_TYPES)}
ALARM_INDEX = {t: i for i, t in enumerate(ALARM_KINDS)}
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000
MINUTE_CAP = 255


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"


@dataclass(frozen=True, slots=True)
class FoldConfig:
    lateness_ms: int = 120_000
    co_alarm_ppm: float = 50.0


def to_ms(ts: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact integer arithmetic, no float rounding)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def to_milli(value: float) -> int:
    return round(value * 1000)


@dataclass(slots=True)
class Stat:
    """Count, sum, min and max of a measurement in integer milli-units."""

    n: int = 0
    total: int = 0
    lo: int = 0
    hi: int = 0

    def add(self, milli: int) -> None:
        if self.n == 0:
            self.lo = self.hi = milli
        else:
            self.lo = min(self.lo, milli)
            self.hi = max(self.hi, milli)
        self.n += 1
        self.total += milli


@dataclass(slots=True)
class HourAgg:
    hour: int  # epoch seconds of the hour's start
    counts: list[int] = field(default_factory=lambda: [0] * len(SENSOR_TYPES))
    minutes: list[int] = field(default_factory=lambda: [0] * 60)
    alarms: list[int] = field(default_factory=lambda: [0] * len(ALARM_KINDS))
    co: Stat = field(default_factory=Stat)
    temperature: Stat = field(default_factory=Stat)


@dataclass(slots=True)
class SensorState:
    sensor_type: SensorType
    last_ts: int
    last_seq: int
    last_state: str | None
    last_value: float | None

    def key(self) -> tuple[int, int, str, float]:
        return _last_key(self.last_ts, self.last_seq, self.last_state, self.last_value)


def _last_key(ts: int, seq: int, state: str | None, value: float | None) -> tuple[int, int, str, float]:
    return (ts, seq, state or "", float("-inf") if value is None else value)


@dataclass(slots=True)
class HomeState:
    home_id: str
    watermark: int | None = None  # newest accepted timestamp, epoch ms
    sensors: dict[str, SensorState] = field(default_factory=dict)
    settled: dict[str, SeqRange] = field(default_factory=dict)
    window: list[Pending] = field(default_factory=list)
    hours: dict[int, HourAgg] = field(default_factory=dict)
    closed: list[HourAgg] = field(default_factory=list)

    @property
    def gaps(self) -> int:
        """Readings lost for good: sequence numbers missing from settled ranges."""
        return sum(r.gaps for r in self.settled.values())

    def drain_closed(self) -> list[HourAgg]:
        """Hand over the closed hours (sorted) once the caller has them; they leave the state."""
        out = sorted(self.closed, key=lambda h: h.hour)
        self.closed = []
        return out


def is_alarm(reading: Reading, config: FoldConfig) -> bool:
    if reading.state == "alarm":
        return True
    if reading.value is None:
        return False
    if reading.sensor_type is SensorType.CO:
        return reading.value >= config.co_alarm_ppm
    return reading.sensor_type in ALARM_KINDS and reading.value >= 1


def fold(state: HomeState, reading: Reading, config: FoldConfig) -> Outcome:
    """Apply one reading of ``state.home_id``; return what became of it."""
    ts = to_ms(reading.ts)
    if state.watermark is not None and ts < state.watermark - config.lateness_ms:
        return Outcome.LATE
    seq = -1 if reading.seq is None else reading.seq
    idh = id_hash(reading.reading_id)
    if is_duplicate(state.window, idh, reading.sensor_id, seq):
        return Outcome.DUPLICATE
    settled = state.settled.get(reading.sensor_id)
    if seq >= 0 and settled is not None and settled.contains(seq):
        return Outcome.LATE  # its sequence number is already settled (counted as present or lost)
    _apply_sensor(state, reading, ts, seq)
    _apply_hour(state, reading, ts, config)
    state.window.append(Pending(ts, reading.sensor_id, seq, idh))
    if state.watermark is None or ts > state.watermark:
        state.watermark = ts
        _advance(state, ts - config.lateness_ms)
    return Outcome.ACCEPTED


def _apply_sensor(state: HomeState, reading: Reading, ts: int, seq: int) -> None:
    current = state.sensors.get(reading.sensor_id)
    if (
        current is None
        or ts > current.last_ts  # the usual case: a newer reading (the key's first field decides)
        or (ts == current.last_ts and _last_key(ts, seq, reading.state, reading.value) > current.key())
    ):
        state.sensors[reading.sensor_id] = SensorState(
            reading.sensor_type, ts, seq, reading.state, reading.value
        )


def _apply_hour(state: HomeState, reading: Reading, ts: int, config: FoldConfig) -> None:
    hour_ms = ts - ts % HOUR_MS
    agg = state.hours.get(hour_ms // 1000)
    if agg is None:
        agg = state.hours[hour_ms // 1000] = HourAgg(hour_ms // 1000)
    agg.counts[TYPE_INDEX[reading.sensor_type]] += 1
    minute = (ts - hour_ms) // MINUTE_MS
    agg.minutes[minute] = min(agg.minutes[minute] + 1, MINUTE_CAP)
    alarm = ALARM_INDEX.get(reading.sensor_type)
    if alarm is not None and is_alarm(reading, config):
        agg.alarms[alarm] += 1
    if reading.value is not None:
        if reading.sensor_type is SensorType.CO:
            agg.co.add(to_milli(reading.value))
        elif reading.sensor_type is SensorType.TEMPERATURE:
            agg.temperature.add(to_milli(reading.value))


def _advance(state: HomeState, horizon: int) -> None:
    """The watermark moved: settle old window entries and close hours that can get no more readings."""
    state.window = settle(state.window, horizon, state.settled)
    for hour in [h for h in state.hours if h * 1000 + HOUR_MS <= horizon]:
        state.closed.append(state.hours.pop(hour))
