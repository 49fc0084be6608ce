"""A deterministic replay through the fold, the dedup window and the packed state, reduced to one digest.

The compiled-fold accelerator (``homesec_runtime.native``) runs it at start-up through the plain modules and
through the compiled ones and compares the digests; ``tests/unit/runtime/native_replay.py`` runs a longer one.
Covers: every sensor type, values and states, CO alarms, duplicates (same id and same sequence number),
sequence gaps and restarts, out-of-order and late readings (amendments), redeliveries, hour closing, and
pack/unpack/status/day documents. The modules are arguments: the plain and the compiled ones load side by side
only during the check.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import orjson

from homesec_domain.models import Reading, SensorType

T0 = datetime(2026, 11, 25, 9, 40, tzinfo=UTC)
STATES = {SensorType.DOOR: ["open", "closed"], SensorType.WINDOW: ["open", "closed"],
          SensorType.MOTION: ["motion", "clear"], SensorType.GLASS_BREAK: ["alarm", "ok"]}  # fmt: skip


def _reading(rng: random.Random, home_id: str, sensor: tuple[str, SensorType], minute: int) -> Reading:
    sensor_id, stype = sensor
    states = STATES.get(stype)
    value = None if states and rng.random() < 0.7 else round(rng.uniform(-5, 80), 3)
    state = rng.choice(states) if states and (value is None or rng.random() < 0.5) else None
    return Reading(
        reading_id=uuid.UUID(int=rng.getrandbits(128)), home_id=home_id, sensor_id=sensor_id,
        sensor_type=stype, ts=T0 + timedelta(minutes=minute, milliseconds=rng.randint(0, 59_999)),
        value=value, state=state, seq=None if rng.random() < 0.05 else minute,
    )  # fmt: skip


def stream(rng: random.Random, home_id: str, minutes: int) -> list[Reading]:
    sensors = [(f"{t.value}-{i}", t) for i, t in enumerate(SensorType)]
    out = [_reading(rng, home_id, s, m) for m in range(minutes) for s in sensors if rng.random() >= 0.1]
    for _ in range(len(out) // 10):  # redeliveries and re-sends
        i = rng.randrange(len(out))
        new_id = uuid.UUID(int=rng.getrandbits(128))
        copy = out[i] if rng.random() < 0.5 else out[i].model_copy(update={"reading_id": new_id})
        out.insert(min(len(out), i + rng.randint(0, 16)), copy)
    for _ in range(len(out) // 20):  # out of order, some far beyond the lateness bound
        i = rng.randrange(len(out))
        j = min(len(out) - 1, i + rng.randint(1, 160))
        out[i], out[j] = out[j], out[i]
    for _ in range(3):  # a sensor restarts: its sequence numbers start again
        i = rng.randrange(len(out))
        out[i] = out[i].model_copy(update={"seq": rng.randint(0, 3)})
    return out


def replay(seed: int, fold: ModuleType, rollup: ModuleType, homes: int = 6, minutes: int = 150) -> str:
    """The digest of every outcome, status document, packed state and day document of the replay."""
    rng = random.Random(seed)
    config = fold.FoldConfig(lateness_ms=120_000, co_alarm_ppm=50.0)
    digest = hashlib.sha256()
    for h in range(homes):
        home_id = f"home-{h}"
        state = fold.HomeState(home_id)
        days: dict[str, dict[str, Any]] = {}
        readings = stream(rng, home_id, minutes)
        arrived = max(fold.to_ms(r.ts) for r in readings[:40])
        for n, reading in enumerate(readings):
            arrived += rng.randint(0, 2000)
            position = n - rng.randint(1, 10) if n > 10 and rng.random() < 0.05 else n  # a redelivery
            digest.update(fold.fold(state, reading, config, h % 2, position, arrived).value.encode())
            if n % 7 == 0:  # the consumer unpacks and repacks a home once per batch
                state = rollup.unpack(home_id, rollup.pack(state))
            if n % 50 == 0:
                for agg in state.drain_closed():
                    day = rollup.day_of(agg.hour)
                    entry = (rollup.hh_of(agg.hour), rollup.amendment_doc(agg))
                    days[day] = rollup.merge_day(days.get(day), home_id, day, [entry])
                digest.update(orjson.dumps(rollup.status_doc(state), option=orjson.OPT_SORT_KEYS))
        digest.update(rollup.pack(state))
        digest.update(orjson.dumps(days, option=orjson.OPT_SORT_KEYS))
        digest.update(str(state.gaps).encode())
    return digest.hexdigest()
