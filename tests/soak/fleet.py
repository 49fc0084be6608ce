"""The soak's fleet: every home's five sensors each POST one reading a minute, at the home's own second
(the per-home schedule of a 100,000-home fleet, fewer homes), with readings stamped by a shifted clock
(``plan.clock_shift``), and clients that behave as docs/producer.md says: on 429/503 they wait
``Retry-After`` and resend the readings the answer lists as unacknowledged, with the same reading IDs (the
whole request when the answer has no lists, or when no answer came at all). Smoke sensors now and then
report an alarm, cleared by their next reading.

It records every acknowledged reading (compactly, for the verifier's reference) and every answer."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from homesec_auth.tokens import TokenAuthority
from homesec_devstack.simulator import Answer
from homesec_domain.models import Reading, SensorType

SENSORS = (("door-1", SensorType.DOOR), ("window-1", SensorType.WINDOW), ("motion-1", SensorType.MOTION),
           ("smoke-1", SensorType.SMOKE), ("temp-1", SensorType.TEMPERATURE))  # fmt: skip
SMOKE = 3
ALARM_CHANCE = 0.01  # of a smoke reading reporting "alarm" (the next one clears it)
RETRYABLE = (0, 429, 503)
GIVE_UP_S = 180.0  # after the load stops, a reading still unacknowledged this long is given up


@dataclass(frozen=True, slots=True)
class Sent:
    """One reading as sent (compact: hundreds of thousands are kept)."""

    home: int
    sensor: int
    ts_ms: int
    seq: int
    state: str | None
    value: float | None

    def reading(self, rid: str, prefix: str) -> Reading:
        sensor_id, kind = SENSORS[self.sensor]
        ts = datetime.fromtimestamp(self.ts_ms / 1000, UTC)
        return Reading(reading_id=uuid.UUID(rid), home_id=f"{prefix}-{self.home:06d}", sensor_id=sensor_id,
                       sensor_type=kind, ts=ts, seq=self.seq, state=self.state, value=self.value)  # fmt: skip


@dataclass
class Stats:
    """What the producer answered: per status (0: no answer), and per sample window for the recorder."""

    statuses: Counter[int] = field(default_factory=Counter)
    no_retry_after_503: int = 0  # a 503 without Retry-After: a client could not know when to come back
    latencies: list[float] = field(default_factory=list)  # seconds, of every request, since the last take
    given_up: int = 0

    def take_latencies(self) -> list[float]:
        out, self.latencies = self.latencies, []
        return out


class Fleet:
    def __init__(self, url: str, keys: dict[str, str], homes: int, shift: timedelta, seed: int = 1) -> None:
        self.url, self.shift_ms = url, int(shift.total_seconds() * 1000)
        self.rng = random.Random(seed)
        self.prefix = "home"
        authority = TokenAuthority({kid: key.encode() for kid, key in keys.items()})
        expires = datetime.now(UTC) + timedelta(days=2)
        self.tokens = [authority.issue(f"gateway-{i}", [self.home_id(i)], expires) for i in range(homes)]
        self.seq = [[0] * len(SENSORS) for _ in range(homes)]
        self.smoke_alarm = [False] * homes
        offsets = [self.rng.uniform(0, 60) for _ in range(homes)]
        self.schedule = sorted(((offsets[h] + 12 * s) % 60, h, s) for h in range(homes) for s in range(5))
        self.acked: dict[str, Sent] = {}
        self.sent = 0
        self.stats = Stats()
        self.stopping = False
        self._stop_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def home_id(self, index: int) -> str:
        return f"{self.prefix}-{index:06d}"

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def references(self) -> list[Reading]:
        """Every acknowledged reading, as the verifier's reference takes them."""
        return [sent.reading(rid, self.prefix) for rid, sent in self.acked.items()]

    # -- the schedule ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Every sensor once a minute at its second until ``stop``; then wait for the deliveries under way
        (each gives up ``GIVE_UP_S`` after the stop)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, force_close=True),  # a connection per gateway post
            timeout=aiohttp.ClientTimeout(total=60),
        )
        try:
            await self._schedule(stop)
            self.stopping, self._stop_at = True, time.monotonic()
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        finally:
            await self._session.close()

    async def _schedule(self, stop: asyncio.Event) -> None:
        start, cycle = time.monotonic(), 0
        while True:
            for at, home, sensor in self.schedule:
                delay = start + cycle * 60 + at - time.monotonic()
                if delay > 0.002:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
                self._spawn(self._deliver(home, [self._reading(home, sensor)]))
            cycle += 1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reading(self, home: int, sensor: int) -> tuple[str, Sent]:
        self.seq[home][sensor] += 1
        kind = SENSORS[sensor][1]
        state: str | None = None
        value: float | None = None
        if kind is SensorType.SMOKE:
            alarm = not self.smoke_alarm[home] and self.rng.random() < ALARM_CHANCE
            self.smoke_alarm[home] = alarm
            state = "alarm" if alarm else "ok"
        elif kind is SensorType.TEMPERATURE:
            value = round(21 + self.rng.gauss(0, 1.5), 2)
        elif kind is SensorType.MOTION:
            state = self.rng.choice(("motion", "clear"))
        else:
            state = self.rng.choice(("open", "closed"))
        ts_ms = int(time.time() * 1000) - self.shift_ms
        return str(uuid.uuid4()), Sent(home, sensor, ts_ms, self.seq[home][sensor], state, value)

    # -- one delivery ------------------------------------------------------------------------------
    def _body(self, readings: list[tuple[str, Sent]]) -> bytes:
        docs = []
        for rid, s in readings:
            sensor_id, kind = SENSORS[s.sensor]
            ts = datetime.fromtimestamp(s.ts_ms / 1000, UTC).isoformat(timespec="milliseconds")
            doc: dict[str, Any] = {"reading_id": rid, "home_id": self.home_id(s.home), "sensor_id": sensor_id,
                                   "sensor_type": kind.value, "ts": ts, "seq": s.seq}  # fmt: skip
            if s.state is not None:
                doc["state"] = s.state
            if s.value is not None:
                doc["value"] = s.value
            docs.append(doc)
        return orjson.dumps({"readings": docs})

    async def _post(self, home: int, body: bytes) -> Answer:
        assert self._session is not None
        headers = {"content-type": "application/json", "authorization": f"Bearer {self.tokens[home]}"}
        started = time.monotonic()
        try:
            async with self._session.post(f"{self.url}/v1/readings", data=body, headers=headers) as resp:
                answer = Answer.parse(resp.status, resp.headers, await resp.read())
        except (aiohttp.ClientError, OSError, TimeoutError):
            answer = Answer(0)
        self.stats.latencies.append(time.monotonic() - started)
        self.stats.statuses[answer.status] += 1
        if answer.status == 503 and answer.retry_after is None:
            self.stats.no_retry_after_503 += 1
        return answer

    async def _deliver(self, home: int, pending: list[tuple[str, Sent]]) -> None:
        self.sent += len(pending)
        attempt = 0
        while pending:
            answer = await self._post(home, self._body(pending))
            if answer.status == 202:
                self.acked.update(pending)
                return
            if answer.status not in RETRYABLE:
                return  # final (4xx): the verifier's reference leaves them out, the table counts them
            if answer.unacknowledged is not None:
                done = set(answer.acknowledged or [])
                self.acked.update((rid, s) for rid, s in pending if rid in done)
                left = set(answer.unacknowledged)
                pending = [(rid, s) for rid, s in pending if rid in left]
            attempt += 1
            if self.stopping and time.monotonic() - self._stop_at > GIVE_UP_S:
                self.stats.given_up += len(pending)
                return
            wait = answer.retry_after if answer.retry_after is not None else min(5.0, 0.5 * attempt)
            await asyncio.sleep(wait * self.rng.uniform(1.0, 1.2))
