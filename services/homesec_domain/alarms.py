"""Alarm transitions: a sensor's alarm raised or cleared, found while folding, and the alarm event that
announces it (docs/contracts.md#alarm-events). Pure: no I/O.

A sensor is *in alarm* when its newest reading (the fold's "last" order) says so: ``state == "alarm"``, or a
value at or above the threshold of an alarm kind (CO at ``co_alarm_ppm``, glass break and smoke at 1). The
same rule gives the status document's ``alarm`` flags and ``active_alarms``. A late reading never changes a
sensor's newest reading, so it never raises or clears an alarm.

A transition is identified by the reading that caused it: ``<home>/<sensor>/<raised|cleared>/<ts ms>/<seq>``.
Folding the same events again (a replay after a crash or a rebalance) finds the same transitions with the
same IDs, which is what makes publishing them exactly once possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from homesec_domain.fold import SensorState, alarm_of

ALARM_SCHEMA = 1


def sensor_alarm(s: SensorState, co_alarm_ppm: float) -> bool:
    """Whether a sensor's newest reading is an alarm."""
    return alarm_of(s.sensor_type, s.last_state, s.last_value, co_alarm_ppm)


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """A sensor's alarm raised (``raised``) or cleared, by its reading at ``ts`` (epoch ms) with ``seq``."""

    home_id: str
    sensor_id: str
    sensor_type: str
    raised: bool
    ts: int
    seq: int  # -1: the reading had no sequence number
    state: str | None
    value: float | None

    @property
    def message_id(self) -> str:
        kind = "raised" if self.raised else "cleared"
        return f"{self.home_id}/{self.sensor_id}/{kind}/{self.ts}/{self.seq}"

    def doc(self) -> dict[str, Any]:
        from homesec_domain.rollup import iso_ms

        return {
            "schema_version": ALARM_SCHEMA, "message_id": self.message_id, "home_id": self.home_id,
            "sensor_id": self.sensor_id, "sensor_type": self.sensor_type,
            "transition": "raised" if self.raised else "cleared", "ts": iso_ms(self.ts),
            "seq": self.seq if self.seq >= 0 else None, "value": self.value, "state": self.state,
        }  # fmt: skip

    def body(self) -> bytes:
        return orjson.dumps(self.doc())


def transition(home_id: str, sensor_id: str, s: SensorState, raised: bool) -> AlarmTransition:
    """The transition that sensor ``s`` (after its newest reading) makes."""
    return AlarmTransition(
        home_id, sensor_id, s.sensor_type.value, raised, s.last_ts, s.last_seq, s.last_state, s.last_value
    )
