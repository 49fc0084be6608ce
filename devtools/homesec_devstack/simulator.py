"""Sensor simulator / load generator: home gateways POSTing batches of readings to the producer.

Python API: ``await run_load(SimulatorConfig(...))`` returns a ``LoadResult`` that records, per reading ID,
whether the producer acknowledged it (202) or answered something else; tests compare it with what is in
the hub. CLI::

    python -m homesec_devstack.simulator --url http://127.0.0.1:8080 --homes 1000 --rate 2000 --duration 30

Each home has five sensors (door, window, motion, smoke, temperature) with per-sensor sequence numbers.
A request carries ``readings_per_request`` readings of ``homes_per_request`` homes (a gateway) with
client-chosen ``reading_id``s, and a gateway JWT minted from ``HOMESEC_PRODUCER_AUTH_KEYS`` (HS256), or from
an ES256/EdDSA private key (``--private-key FILE --kid KID``; ``SimulatorConfig.signing_key_pem``) whose
public key the producer has in ``HOMESEC_PRODUCER_AUTH_PUBLIC_KEYS`` (dev tooling only). The generator
is open-loop at ``rate`` readings/s, with at most ``concurrency`` requests in flight. With ``retries`` > 0
it retries 429/503/connection errors with the same IDs, like a well-behaved gateway, rotating over ``urls``
(a list the caller may edit while it runs: pods joining and leaving a Service). It waits ``retry_backoff``
times the attempt number, or the answer's ``Retry-After`` with ``honour_retry_after``. A retry resends only
the readings a 429/503 listed as ``unacknowledged`` (docs/producer.md, "Per-reading acknowledgement");
``resend="batch"`` resends the whole batch, as clients written before the per-reading answer do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
from homesec_producer.auth import TokenAuthority
from homesec_producer.auth_keys import SigningKey

SENSORS = (("door-1", "door"), ("window-1", "window"), ("motion-1", "motion"), ("smoke-1", "smoke"),
           ("temp-1", "temperature"))  # fmt: skip
RETRYABLE = {0, 429, 502, 503, 504}


@dataclass
class SimulatorConfig:
    urls: Sequence[str]
    auth_keys: dict[str, str]
    homes: int = 100
    rate: float = 1000.0
    duration: float = 10.0
    readings_per_request: int = 50
    homes_per_request: int = 5
    concurrency: int = 64
    retries: int = 0
    retry_backoff: float = 0.2
    request_timeout: float = 60.0
    seed: int = 1
    home_prefix: str = "home"
    # The share of smoke readings that report an alarm (raised, then cleared by the sensor's next ``ok``).
    alarm_fraction: float = 0.0
    # An ES256/EdDSA private key (PEM) and its key ID; when set it signs instead of ``auth_keys``.
    signing_key_pem: str | None = None
    signing_kid: str | None = None
    # "unacknowledged": a retry resends what a 429/503 left unacknowledged; "batch": all of it (old clients).
    resend: Literal["unacknowledged", "batch"] = "unacknowledged"
    honour_retry_after: bool = False  # wait the answer's Retry-After (when it has one) instead of the backoff
    # The gateway tokens' ``iat`` (default: now); they expire a day later. Runs given the same value send the
    # same tokens, as a fleet does between runs of a benchmark against one producer.
    issued_at: datetime | None = None
    # Before the timed load, every gateway posts once, one reading per home (not counted in the result): the
    # steady state of a fleet, where each gateway posts every minute with a token the producer has verified
    # before and homes whose partition it has looked up before.
    warm_up: bool = False

    def authority(self) -> TokenAuthority:
        if self.signing_key_pem is not None:
            return TokenAuthority(
                signing_key=SigningKey.from_pem(self.signing_kid or "", self.signing_key_pem)
            )
        return TokenAuthority({k: v.encode() for k, v in self.auth_keys.items()})


@dataclass
class LoadResult:
    """What the producer answered, per request and per reading."""

    acked: set[str] = field(default_factory=set)
    refused: dict[str, int] = field(default_factory=dict)  # reading ID -> last non-2xx status (0 = no answer)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, of 202 answers
    requests: int = 0
    readings: int = 0
    elapsed: float = 0.0
    late_starts: int = 0  # requests started >100 ms after their schedule (generator or server saturated)

    @property
    def non_retryable(self) -> dict[str, int]:
        return {rid: st for rid, st in self.refused.items() if st not in RETRYABLE}

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "readings": self.readings, "acked": len(self.acked),
            "refused": len(self.refused), "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "elapsed_s": round(self.elapsed, 3),
            "acked_per_s": round(len(self.acked) / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": round(self.percentile(0.50) * 1000, 1),
            "p99_ms": round(self.percentile(0.99) * 1000, 1),
            "late_starts": self.late_starts,
        }  # fmt: skip


class Fleet:
    """Homes, their sensors' sequence counters and the gateway tokens."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.homes = [f"{config.home_prefix}-{i:06d}" for i in range(config.homes)]
        self.seq: dict[tuple[str, str], int] = {}
        authority = config.authority()
        issued = config.issued_at or datetime.now(UTC)
        expires = issued + timedelta(days=1)
        size = max(1, config.homes_per_request)
        self.groups = [self.homes[i : i + size] for i in range(0, len(self.homes), size)]
        self.tokens = [authority.issue("simulator", group, expires, issued) for group in self.groups]
        self.next_group = 0

    def reading(self, home: str, now: datetime) -> dict[str, Any]:
        sensor_id, kind = SENSORS[self.rng.randrange(len(SENSORS))]
        seq = self.seq.get((home, sensor_id), 0) + 1
        self.seq[home, sensor_id] = seq
        doc: dict[str, Any] = {"reading_id": str(uuid.uuid4()), "home_id": home, "sensor_id": sensor_id,
                               "sensor_type": kind, "ts": now, "seq": seq}  # fmt: skip
        if kind == "temperature":
            doc["value"] = round(20 + self.rng.gauss(0, 2), 2)
        elif kind == "smoke":
            alarm = self.config.alarm_fraction > 0 and self.rng.random() < self.config.alarm_fraction
            doc["state"], doc["value"] = ("alarm", 1.0) if alarm else ("ok", 0.0)
        else:
            doc["state"] = self.rng.choice(("open", "closed") if kind != "motion" else ("motion", "clear"))
        return doc

    def batch(self) -> tuple[list[dict[str, Any]], str]:
        """The next gateway's readings and token."""
        index = self.next_group
        self.next_group = (index + 1) % len(self.groups)
        group, now = self.groups[index], datetime.now(UTC)
        readings = [self.reading(group[i % len(group)], now) for i in range(self.config.readings_per_request)]
        return readings, self.tokens[index]

    def warm_up_requests(self) -> list[tuple[bytes, str]]:
        """One body per gateway with one reading of each of its homes, and the gateway's token."""
        now = datetime.now(UTC)
        return [
            (encode([self.reading(h, now) for h in group]), token)
            for group, token in zip(self.groups, self.tokens, strict=True)
        ]

    def request(self) -> tuple[bytes, str, list[str]]:
        """The next gateway's body, token and reading IDs."""
        readings, token = self.batch()
        return encode(readings), token, [r["reading_id"] for r in readings]


def encode(readings: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"readings": readings}, option=orjson.OPT_UTC_Z)


@dataclass
class Answer:
    """A producer's answer: status, ``Retry-After`` (seconds, if any), the per-reading lists of a 429/503."""

    status: int
    retry_after: float | None = None
    acknowledged: list[str] | None = None
    unacknowledged: list[str] | None = None

    @classmethod
    def parse(cls, status: int, headers: Any, body: bytes) -> Answer:
        after = headers.get("Retry-After", "")
        answer = cls(status, float(after) if after.isdigit() else None)
        if status in (429, 503):
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                return answer
            if isinstance(doc, dict) and isinstance(doc.get("unacknowledged"), list):
                answer.acknowledged = [str(i) for i in doc.get("acknowledged") or []]
                answer.unacknowledged = [str(i) for i in doc["unacknowledged"]]
        return answer


async def _post_once(session: aiohttp.ClientSession, url: str, body: bytes, token: str) -> Answer:
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    try:
        async with session.post(f"{url}/v1/readings", data=body, headers=headers) as resp:
            return Answer.parse(resp.status, resp.headers, await resp.read())
    except (aiohttp.ClientError, OSError, TimeoutError):
        return Answer(0)


async def _send(session: aiohttp.ClientSession, fleet: Fleet, result: LoadResult, attempt0: int) -> None:
    config = fleet.config
    readings, token = fleet.batch()
    body, ids = encode(readings), [r["reading_id"] for r in readings]
    status = 0
    for attempt in range(config.retries + 1):
        urls = config.urls
        started = time.monotonic()
        answer = await _post_once(session, urls[(attempt0 + attempt) % len(urls)], body, token)
        status = answer.status
        result.statuses[status] += 1
        if status == 202:
            result.latencies.append(time.monotonic() - started)
            _acked(result, ids)
            return
        if status not in RETRYABLE:
            break
        if config.resend == "unacknowledged" and answer.unacknowledged is not None:
            _acked(result, answer.acknowledged or [])
            pending = set(answer.unacknowledged)
            readings = [r for r in readings if r["reading_id"] in pending]
            body, ids = encode(readings), [r["reading_id"] for r in readings]
        wait = answer.retry_after if config.honour_retry_after else None
        await asyncio.sleep(config.retry_backoff * (attempt + 1) if wait is None else wait)
    for rid in ids:
        result.refused[rid] = status


def _acked(result: LoadResult, ids: list[str]) -> None:
    result.acked.update(ids)
    for rid in ids:
        result.refused.pop(rid, None)


async def _drive(
    session: aiohttp.ClientSession, fleet: Fleet, result: LoadResult, stop: asyncio.Event | None
) -> None:
    config = fleet.config
    interval = config.readings_per_request / config.rate
    limit = asyncio.Semaphore(config.concurrency)
    tasks: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    n = 0
    while (config.duration <= 0 or time.monotonic() - started < config.duration) and not (
        stop and stop.is_set()
    ):
        delay = started + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.1:
            result.late_starts += 1
        await limit.acquire()
        task = asyncio.create_task(_send(session, fleet, result, n))
        task.add_done_callback(tasks.discard)
        task.add_done_callback(lambda _: limit.release())
        tasks.add(task)
        result.requests += 1
        result.readings += config.readings_per_request
        n += 1
    if tasks:
        await asyncio.gather(*tasks)
    result.elapsed = time.monotonic() - started


async def _report(result: LoadResult, on_progress: Callable[[LoadResult], None], every: float) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(every)
        result.elapsed = time.monotonic() - started
        on_progress(result)


async def run_load(
    config: SimulatorConfig,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[LoadResult], None] | None = None,
    progress_every: float = 1.0,
) -> LoadResult:
    """Open-loop load at ``config.rate`` readings/s for ``config.duration`` s (<= 0: until ``stop`` is set).

    ``on_progress(result)`` is called every ``progress_every`` seconds while it runs.
    """
    result = LoadResult()
    timeout = aiohttp.ClientTimeout(total=config.request_timeout)
    connector = aiohttp.TCPConnector(limit=config.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        reporter = asyncio.create_task(_report(result, on_progress, progress_every)) if on_progress else None
        try:
            fleet = Fleet(config)
            if config.warm_up:
                await _warm_up(session, fleet)
            await _drive(session, fleet, result, stop)
        finally:
            if reporter is not None:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
    return result


async def _warm_up(session: aiohttp.ClientSession, fleet: Fleet) -> None:
    """``SimulatorConfig.warm_up``: every gateway once, ``concurrency`` at a time; a refusal stops the run."""
    limit = asyncio.Semaphore(fleet.config.concurrency)
    url = fleet.config.urls[0]

    async def post(body: bytes, token: str) -> None:
        async with limit:
            answer = await _post_once(session, url, body, token)
        if answer.status != 202:
            raise RuntimeError(f"warm-up: the producer answered {answer.status}")

    await asyncio.gather(*(post(body, token) for body, token in fleet.warm_up_requests()))


def _keys_from_env() -> dict[str, str]:
    raw = os.environ.get("HOMESEC_PRODUCER_AUTH_KEYS")
    if not raw:
        raise SystemExit(
            "set HOMESEC_PRODUCER_AUTH_KEYS (the producer's token-signing keys) or pass --auth-key"
        )
    keys = orjson.loads(raw)
    return {str(k): str(v) for k, v in keys.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m homesec_devstack.simulator", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", action="append", required=True, help="producer base URL (repeat to rotate)")
    parser.add_argument("--homes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="readings per second (all homes)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (0: until SIGINT/SIGTERM)")
    parser.add_argument("--progress", action="store_true", help="print a summary line to stderr every second")
    parser.add_argument("--readings-per-request", type=int, default=50)
    parser.add_argument("--homes-per-request", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument(
        "--resend", choices=("unacknowledged", "batch"), default="unacknowledged",
        help="on 429/503 resend what was not acknowledged, or the whole batch (older clients)",
    )  # fmt: skip
    parser.add_argument("--honour-retry-after", action="store_true", help="wait Retry-After before a retry")
    parser.add_argument("--auth-key", action="append", default=[], help="kid=secret (default: from the env)")
    parser.add_argument("--private-key", help="ES256/EdDSA private key PEM file (instead of HS256 keys)")
    parser.add_argument("--kid", default="", help="key ID of --private-key")
    parser.add_argument("--issued-at", type=int, help="the tokens' iat, Unix seconds (default: now)")
    parser.add_argument("--warm-up", action="store_true", help="every gateway posts once first (not counted)")
    parser.add_argument("--alarm-fraction", type=float, default=0.0, help="smoke readings that alarm (0-1)")
    args = parser.parse_args(argv)
    pem = Path(args.private_key).read_text() if args.private_key else None
    keys = dict(k.split("=", 1) for k in args.auth_key) if args.auth_key or pem else _keys_from_env()
    config = SimulatorConfig(
        urls=[u.rstrip("/") for u in args.url], auth_keys=keys, homes=args.homes, rate=args.rate,
        duration=args.duration, readings_per_request=args.readings_per_request,
        homes_per_request=args.homes_per_request, concurrency=args.concurrency, retries=args.retries,
        signing_key_pem=pem, signing_kid=args.kid, resend=args.resend,
        honour_retry_after=args.honour_retry_after, warm_up=args.warm_up, alarm_fraction=args.alarm_fraction,
        issued_at=None if args.issued_at is None else datetime.fromtimestamp(args.issued_at, UTC),
    )  # fmt: skip
    result = asyncio.run(_cli_run(config, args.progress))
    sys.stdout.write(orjson.dumps(result.summary()).decode() + "\n")
    return 0 if not result.refused else 1


async def _cli_run(config: SimulatorConfig, progress: bool) -> LoadResult:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def show(result: LoadResult) -> None:
        sys.stderr.write(orjson.dumps(result.summary()).decode() + "\n")

    return await run_load(config, stop, show if progress else None)


if __name__ == "__main__":
    raise SystemExit(main())
