"""The per-home aggregation fold: a pure function of the readings, no I/O.

``fold(state, reading, config, stream, position, arrived)`` applies one reading of a home, delivered at
``position`` of log ``stream`` (the Event Hubs partition and sequence number) and enqueued at ``arrived``.
What counts (docs/consumer.md#what-counted-means):

- An event at or below the home's last applied position of the same stream is a *redelivery* (a replay from a
  checkpoint): no effect, whatever its timestamp.
- A reading seen in the re-send window (``homesec_domain.dedup``) is a *duplicate*: no effect.
- Every other reading is applied exactly once, however late it is and whatever its sequence number. An hour
  stays *open* until the home's watermark (the newest timestamp applied) is ``config.lateness_ms`` past its
  end; then it is *closed*: moved to ``closed``, from where the caller persists it into the day blob. A
  reading for an hour already closed is applied to an *amendment* of that hour (outcome ``LATE``), which the
  caller merges into the day blob the same way. Each closed entry is stamped (``stamp_closed``) with the
  home's position when it is first persisted, so that merging it is idempotent under replay.
- A sensor's current state, value and last-seen time come from its reading with the greatest
  ``(ts, seq, state, value)``, so a late reading never hides a newer one. A sequence number at or below the
  newest reading's with a newer timestamp means the sensor restarted: a new run of gap accounting starts.

Hourly aggregates: counts by sensor type, per-minute counts (saturating at 255), alarm counts (glass break,
smoke, CO at or above ``co_alarm_ppm``), CO and temperature count/sum/min/max in integer milli-units (sums
do not depend on order). The result for a set of readings does not depend on their order or duplication.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from homesec_domain.dedup import Window, id_hash, key_hash
from homesec_domain.models import Reading, SensorType

SENSOR_TYPES: tuple[SensorType, ...] = tuple(SensorType)
ALARM_KINDS: tuple[SensorType, ...] = (SensorType.GLASS_BREAK, SensorType.SMOKE, SensorType.CO)
TYPE_INDEX = {t: i for i, t in enumerate(SENSOR_TYPES)}
ALARM_INDEX = {t: i for i, t in enumerate(ALARM_KINDS)}
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000
MINUTE_CAP = 255
UNSTAMPED = -1
NO_CHANGE, RAISED, CLEARED = 0, 1, 2  # ``HomeState.alarm_change``


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # applied to an open hour
    LATE = "late"  # applied to an hour already closed (an amendment of its day blob)
    DUPLICATE = "duplicate"  # a re-sent reading: no effect
    REDELIVERED = "redelivered"  # an event at or below the home's applied position: no effect


@dataclass(frozen=True, slots=True)
class FoldConfig:
    lateness_ms: int = 120_000  # how long past its end an hour stays open
    resend_window_ms: int = 300_000  # arrival-time window in which re-sent readings are recognised
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
    # A closed entry's identity once persisted: the home's stream and applied position (UNSTAMPED before).
    rev: int = UNSTAMPED
    stream: int = UNSTAMPED


@dataclass(slots=True)
class SensorState:
    sensor_type: SensorType
    last_ts: int
    last_seq: int  # -1: the newest reading carries no sequence number
    last_state: str | None
    last_value: float | None
    run_ts: int = 0  # timestamp of the first reading of the current run (since the last restart)
    lo: int = 0  # lowest, highest and number of distinct sequence numbers applied in the current run
    hi: int = 0
    n: int = 0
    lost: int = 0  # sequence numbers missing from earlier runs

    def key(self) -> tuple[int, int, str, float]:
        return _last_key(self.last_ts, self.last_seq, self.last_state, self.last_value)

    @property
    def gaps(self) -> int:
        """Sequence numbers missing: from earlier runs, and so far in the current one."""
        return self.lost + (max(0, self.hi - self.lo + 1 - self.n) if self.n else 0)


def _last_key(ts: int, seq: int, state: str | None, value: float | None) -> tuple[int, int, str, float]:
    return (ts, seq, state or "", float("-inf") if value is None else value)


@dataclass(slots=True)
class HomeState:
    home_id: str
    watermark: int | None = None  # newest applied timestamp, epoch ms
    stream: int = UNSTAMPED  # the log (partition) of ``applied``; UNSTAMPED: none yet
    applied: int = UNSTAMPED  # position (sequence number) of the last event folded for this home
    arrived: int | None = None  # newest arrival (enqueued) time folded, epoch ms: the re-send window's end
    sensors: dict[str, SensorState] = field(default_factory=dict)
    window: Window = field(default_factory=Window)
    hours: dict[int, HourAgg] = field(default_factory=dict)
    closed: list[HourAgg] = field(default_factory=list)  # closed hours and amendments, not yet in a day blob
    restarts: int = 0  # transient (never packed): sensor restarts seen since this object was built
    # Transient: the alarm transition the last ``fold`` made (RAISED, CLEARED or NO_CHANGE) of its sensor.
    alarm_change: int = 0

    @property
    def gaps(self) -> int:
        """Sequence numbers missing, over all sensors."""
        return sum(s.gaps for s in self.sensors.values())

    def stamp_closed(self) -> list[HourAgg]:
        """Give each closed entry not yet persisted its identity (the home's current position); return the
        closed entries in merge order (hour, then stamp). They stay in the state."""
        for agg in self.closed:
            if agg.rev == UNSTAMPED:
                agg.rev, agg.stream = self.applied, self.stream
        return sorted(self.closed, key=lambda h: (h.hour, h.rev))

    def drain_closed(self) -> list[HourAgg]:
        """Hand over the closed entries (stamped, in merge order); they leave the state."""
        out = self.stamp_closed()
        self.closed = []
        return out


def is_alarm(reading: Reading, config: FoldConfig) -> bool:
    return alarm_of(reading.sensor_type, reading.state, reading.value, config.co_alarm_ppm)


def alarm_of(sensor_type: SensorType, state: str | None, value: float | None, co_alarm_ppm: float) -> bool:
    """The alarm rule (docs/consumer.md#alarms): ``state`` "alarm", or a value at or above its kind's
    threshold (CO: ``co_alarm_ppm``; glass break, smoke: 1)."""
    if state == "alarm":
        return True
    if value is None:
        return False
    if sensor_type is SensorType.CO:
        return value >= co_alarm_ppm
    return sensor_type in ALARM_KINDS and value >= 1


def fold(
    state: HomeState, reading: Reading, config: FoldConfig, stream: int, position: int, arrived: int
) -> Outcome:
    """Apply one reading of ``state.home_id``; return what became of it."""
    if position <= state.applied and stream == state.stream and stream >= 0:
        state.alarm_change = NO_CHANGE
        return Outcome.REDELIVERED
    state.stream, state.applied = stream, position
    if state.arrived is None or arrived > state.arrived:
        state.arrived = arrived
        state.window.trim(arrived - config.resend_window_ms)
    ts = to_ms(reading.ts)
    seq = -1 if reading.seq is None else reading.seq
    idh = id_hash(reading.reading_id)
    keyh = key_hash(reading.sensor_id, seq, ts) if seq >= 0 else 0
    if state.window.holds(idh, keyh):
        state.alarm_change = NO_CHANGE
        return Outcome.DUPLICATE
    state.window.add(arrived, idh, keyh)
    alarm = is_alarm(reading, config)  # evaluated once: for the sensor's transition and the hour's count
    state.alarm_change = _apply_sensor(state, reading, ts, seq, alarm, config.co_alarm_ppm)
    late = _apply_hour(state, reading, ts, config, alarm)
    if state.watermark is None or ts > state.watermark:
        state.watermark = ts
        _close_hours(state, ts - config.lateness_ms)
    return Outcome.LATE if late else Outcome.ACCEPTED


def _apply_sensor(state: HomeState, reading: Reading, ts: int, seq: int, alarm: bool, ppm: float) -> int:
    """Update the reading's sensor; return the alarm transition it makes (``alarm``: the reading's own)."""
    current = state.sensors.get(reading.sensor_id)
    if current is None:
        state.sensors[reading.sensor_id] = SensorState(
            reading.sensor_type, ts, seq, reading.state, reading.value, ts, seq, seq, 1 if seq >= 0 else 0
        )
        return RAISED if alarm else NO_CHANGE
    if seq >= 0:
        _count_seq(state, current, ts, seq)
    if ts > current.last_ts or (  # the usual case: a newer reading (the key's first field decides)
        ts == current.last_ts and _last_key(ts, seq, reading.state, reading.value) > current.key()
    ):
        was = alarm_of(current.sensor_type, current.last_state, current.last_value, ppm)
        current.sensor_type, current.last_ts, current.last_seq = reading.sensor_type, ts, seq
        current.last_state, current.last_value = reading.state, reading.value
        if alarm != was:
            return RAISED if alarm else CLEARED
    return NO_CHANGE  # a late reading never changes the newest one, so never an alarm


def _count_seq(state: HomeState, s: SensorState, ts: int, seq: int) -> None:
    """Gap accounting of one sequenced reading (before ``s`` takes it as its newest, if it is)."""
    if ts > s.last_ts and 0 <= seq <= s.last_seq:  # numbers went back with a newer timestamp: a restart
        s.lost = s.gaps
        s.run_ts, s.lo, s.hi, s.n = ts, seq, seq, 1
        state.restarts += 1
    elif ts >= s.run_ts:
        if s.n == 0:
            s.lo = s.hi = seq
        else:
            s.lo = min(s.lo, seq)
            s.hi = max(s.hi, seq)
        s.n += 1
    # else: a reading from before the current run: counted in its hour, not in the run's gap accounting


def _apply_hour(state: HomeState, reading: Reading, ts: int, config: FoldConfig, alarm: bool) -> bool:
    """Add the reading to its hour; True when that hour had already closed (an amendment)."""
    hour_ms = ts - ts % HOUR_MS
    agg = state.hours.get(hour_ms // 1000)
    late = False
    if agg is None:
        wm = state.watermark
        if wm is not None and hour_ms + HOUR_MS <= wm - config.lateness_ms:
            agg, late = _amendment(state, hour_ms // 1000), True
        else:
            agg = state.hours[hour_ms // 1000] = HourAgg(hour_ms // 1000)
    agg.counts[TYPE_INDEX[reading.sensor_type]] += 1
    minute = (ts - hour_ms) // MINUTE_MS
    agg.minutes[minute] = min(agg.minutes[minute] + 1, MINUTE_CAP)
    kind = ALARM_INDEX.get(reading.sensor_type)
    if kind is not None and alarm:
        agg.alarms[kind] += 1
    if reading.value is not None:
        if reading.sensor_type is SensorType.CO:
            agg.co.add(to_milli(reading.value))
        elif reading.sensor_type is SensorType.TEMPERATURE:
            agg.temperature.add(to_milli(reading.value))
    return late


def _amendment(state: HomeState, hour: int) -> HourAgg:
    """The closed hour's entry that may still change (not yet persisted), or a new one."""
    for agg in state.closed:
        if agg.hour == hour and agg.rev == UNSTAMPED:
            return agg
    agg = HourAgg(hour)
    state.closed.append(agg)
    return agg


def _close_hours(state: HomeState, horizon: int) -> None:
    """The watermark moved: close the open hours that ended at or before ``horizon``."""
    for hour in [h for h in state.hours if h * 1000 + HOUR_MS <= horizon]:
        state.closed.append(state.hours.pop(hour))
