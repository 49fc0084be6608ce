"""The load and the probes of ``bench/alarms.py``: a fleet of homes whose five sensors each POST one reading a
minute to the producer, alarm probes (a home's CO sensor raises, then clears an alarm), freshness samples
(ordinary readings until the status API shows them), and readers of the alarms hub and of a bare SDK hop."""

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
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from homesec_auth.tokens import OPERATOR_ROLE, READ_AUDIENCE, TokenAuthority
from homesec_domain.rollup import iso_ms

SENSORS = (("door-1", "door"), ("window-1", "window"), ("motion-1", "motion"), ("temp-1", "temperature"),
           ("co-1", "co"))  # fmt: skip
CO = 4
POLL_SECONDS = 0.1
WAIT_SECONDS = 30.0
FLIPS_PER_MINUTE = {"door": 3 / 60, "window": 3 / 60, "motion": 0.5}  # door/window: ~3 changes an hour


@dataclass
class Home:
    home_id: str
    token: str
    offset: float  # where in the minute its first sensor posts; the others follow every 12 s
    seq: list[int] = field(default_factory=lambda: [0] * len(SENSORS))
    states: dict[str, str] = field(default_factory=lambda: {"door": "closed", "window": "closed",
                                                            "motion": "clear"})  # fmt: skip
    probing: bool = False


@dataclass
class Results:
    alarm_status: list[tuple[str, float]] = field(default_factory=list)  # (raised|cleared, seconds)
    alarm_hub: list[tuple[str, float]] = field(default_factory=list)
    alarm_missed: Counter[str] = field(default_factory=Counter)  # "status raised", "hub cleared", ...
    freshness: list[float] = field(default_factory=list)
    freshness_missed: int = 0
    hop: list[float] = field(default_factory=list)  # bare SDK: send acknowledged -> received
    posts: Counter[int] = field(default_factory=Counter)  # answer status -> count (0: no answer)
    probes: int = 0
    loop_lag: list[float] = field(default_factory=list)


class HubWatch:
    """Reads every partition of a hub from the start (consumer group ``$Default``) and notes when each
    message ID arrived (monotonic seconds)."""

    def __init__(self, connection_string: str) -> None:
        self._client = EventHubConsumerClient.from_connection_string(
            connection_string, consumer_group="$Default"
        )
        self.arrived: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}

    async def run(self) -> None:
        await self._client.receive(self._on_event, starting_position="-1")

    async def close(self) -> None:
        await self._client.close()

    async def _on_event(self, ctx: Any, event: EventData | None) -> None:
        if event is None or event.message_id is None:
            return
        now, mid = time.monotonic(), str(event.message_id)
        self.arrived.setdefault(mid, now)
        waiter = self._waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def wait(self, message_id: str, timeout: float = WAIT_SECONDS) -> float | None:
        """When ``message_id`` arrived (monotonic), or None after ``timeout`` seconds."""
        if message_id in self.arrived:
            return self.arrived[message_id]
        waiter = self._waiters.setdefault(message_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return None


class Load:
    """The fleet, the probes and the samples; ``measuring`` turns probes and samples on."""

    def __init__(
        self, producer_url: str, consumer_url: str, keys: dict[str, str], homes: int, shift_s: float,
        samples_per_s: float, seed: int = 1,
    ) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.producer_url, self.consumer_url, self.shift_s = producer_url, consumer_url, shift_s
        authority = TokenAuthority({kid: key.encode() for kid, key in keys.items()})
        expires = datetime.now(UTC) + timedelta(hours=6)
        self.read_token = authority.issue("bench", [], expires, audience=READ_AUDIENCE, role=OPERATOR_ROLE)
        self.homes = []
        for i in range(homes):
            home_id = f"home-{i:06d}"
            token = authority.issue(f"gateway-{i}", [home_id], expires)
            self.homes.append(Home(home_id, token, self.rng.uniform(0, 60)))
        self.schedule = sorted(
            ((h.offset + 12 * s) % 60, i, s) for i, h in enumerate(self.homes) for s in range(len(SENSORS))
        )
        self.sample_p = samples_per_s / (homes * len(SENSORS) / 60)
        self.results = Results()
        self.measuring = False
        self.tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        return self._session

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- readings ------------------------------------------------------------------------------
    def reading(self, home: Home, sensor: int, co_ppm: float | None = None) -> tuple[dict[str, Any], int]:
        """The sensor's next reading (timestamp shifted by ``shift_s``) and its timestamp in epoch ms."""
        sensor_id, kind = SENSORS[sensor]
        home.seq[sensor] += 1
        ts_ms = int((time.time() - self.shift_s) * 1000)
        doc: dict[str, Any] = {"reading_id": str(uuid.uuid4()), "home_id": home.home_id, "sensor_id": sensor_id,
                               "sensor_type": kind, "ts": iso_ms(ts_ms), "seq": home.seq[sensor]}  # fmt: skip
        if kind in FLIPS_PER_MINUTE:
            if self.rng.random() < FLIPS_PER_MINUTE[kind]:
                pair = ("motion", "clear") if kind == "motion" else ("open", "closed")
                home.states[kind] = pair[1] if home.states[kind] == pair[0] else pair[0]
            doc["state"] = home.states[kind]
        elif kind == "temperature":
            doc["value"] = round(21 + self.rng.gauss(0, 1.5), 2)
        else:
            doc["value"] = co_ppm if co_ppm is not None else round(self.rng.uniform(0, 10), 1)
        return doc, ts_ms

    async def post(self, home: Home, doc: dict[str, Any]) -> float | None:
        """POST one reading; the monotonic time of the 202, or None."""
        headers = {"content-type": "application/json", "authorization": f"Bearer {home.token}"}
        body = orjson.dumps({"readings": [doc]})
        try:
            async with self.session.post(
                f"{self.producer_url}/v1/readings", data=body, headers=headers
            ) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            status = 0
        self.results.posts[status] += 1
        return time.monotonic() if status == 202 else None

    async def run_fleet(self, stop: asyncio.Event) -> None:
        """Every home's sensors, each once a minute at its own second, until ``stop``."""
        start, cycle = time.monotonic(), 0
        while True:
            for at, index, sensor in self.schedule:
                delay = start + cycle * 60 + at - time.monotonic()
                if delay > 0.002:
                    await asyncio.sleep(delay)
                if stop.is_set():
                    return
                home = self.homes[index]
                if not (sensor == CO and home.probing):  # a probe reports this home's CO meanwhile
                    self.spawn(self._ordinary(home, sensor))
            cycle += 1

    async def _ordinary(self, home: Home, sensor: int) -> None:
        doc, _ = self.reading(home, sensor)
        acked = await self.post(home, doc)
        if acked is not None and self.measuring and not home.probing and self.rng.random() < self.sample_p:
            seen = await self.wait_status(home.home_id, doc["sensor_id"], doc["ts"])
            if seen is None:
                self.results.freshness_missed += 1
            else:
                self.results.freshness.append(seen - acked)

    # -- the status API --------------------------------------------------------------------------
    async def status(self, home_id: str) -> dict[str, Any] | None:
        headers = {"authorization": f"Bearer {self.read_token}"}
        try:
            async with self.session.get(
                f"{self.consumer_url}/v1/homes/{home_id}/status", headers=headers
            ) as resp:
                body = await resp.read()
                return orjson.loads(body) if resp.status == 200 else None
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    async def wait_status(
        self, home_id: str, sensor_id: str, ts: str, alarm: bool | None = None
    ) -> float | None:
        """Poll every 100 ms until the sensor's ``last_seen`` is ``ts`` or later (and its ``alarm`` flag is
        ``alarm``, when given): the monotonic time of that answer, or None after 30 s."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            doc = await self.status(home_id)
            for s in (doc or {}).get("sensors", []):
                if s["sensor_id"] == sensor_id and s["last_seen"] >= ts and alarm in (None, s["alarm"]):
                    return time.monotonic()
            await asyncio.sleep(POLL_SECONDS)
        return None

    # -- alarm probes ----------------------------------------------------------------------------
    async def run_probes(self, hub: HubWatch, interval: float, stop: asyncio.Event) -> None:
        """A probe on a random home every ``interval`` seconds on average (uniform 0.5x-1.5x) until ``stop``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval * self.rng.uniform(0.5, 1.5))
            if stop.is_set():
                return
            home = self.rng.choice([h for h in self.homes if not h.probing])
            home.probing = True
            self.results.probes += 1
            self.spawn(self._probe(home, hub))

    async def _probe(self, home: Home, hub: HubWatch) -> None:
        """The home's CO sensor reports 60-90 ppm (raised), then 5-15 s later a normal level (cleared)."""
        try:
            for transition in ("raised", "cleared"):
                level = round(self.rng.uniform(60, 90), 1) if transition == "raised" else None
                doc, ts_ms = self.reading(home, CO, level)
                acked = await self.post(home, doc)
                if acked is None:
                    self.results.alarm_missed[f"post {transition}"] += 1
                    return
                message_id = f"{home.home_id}/co-1/{transition}/{ts_ms}/{doc['seq']}"
                seen, published = await asyncio.gather(
                    self.wait_status(home.home_id, "co-1", doc["ts"], alarm=transition == "raised"),
                    hub.wait(message_id),
                )
                for where, at, out in (("status", seen, self.results.alarm_status),
                                       ("hub", published, self.results.alarm_hub)):  # fmt: skip
                    if at is None:
                        self.results.alarm_missed[f"{where} {transition}"] += 1
                    else:
                        out.append((transition, at - acked))
                if transition == "raised":
                    await asyncio.sleep(self.rng.uniform(5, 15))
        finally:
            home.probing = False

    # -- baselines -----------------------------------------------------------------------------
    async def run_hop(
        self, connection_string: str, hub: HubWatch, stop: asyncio.Event, every: float = 2.0
    ) -> None:
        """Bare SDK: one event every ``every`` seconds to the baseline hub, timed from its acknowledged send
        to its arrival at ``hub`` (a reader of that hub)."""
        producer = EventHubProducerClient.from_connection_string(connection_string)
        async with producer:
            n = 0
            while not stop.is_set():
                event = EventData(b"hop")
                event.message_id = f"hop-{n}"
                await producer.send_batch([event])
                sent = time.monotonic()
                arrived = await hub.wait(f"hop-{n}", 10.0)
                if arrived is not None and self.measuring:
                    self.results.hop.append(arrived - sent)
                n += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)

    async def run_lag_monitor(self, stop: asyncio.Event) -> None:
        """How late this process's event loop wakes up (its own delay in every figure it measures)."""
        while not stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.1)
            if self.measuring:
                self.results.loop_lag.append(time.monotonic() - before - 0.1)
