"""Duplicates in the hub under the throttled 1 -> 2 scale-out, with and without per-reading resends.

The scenario of ``tests/integration/producer/test_producer_shutdown_defaults.py``: the emulator at 1 TU,
producer A with its default settings takes a burst (2,000 homes, 4,000 readings/s offered, batches of 50
readings of 10 homes, up to 256 batches in flight), B starts after 2 s and joins the endpoints, A leaves them
after 3 s and gets SIGTERM 0.5 s later. Clients honour Retry-After and retry 429/503 (up to 40 times). Three
configurations, each on a fresh emulator, in the same run:

- ``no memory``: the producer's memory of acknowledged readings off (``IDEMPOTENCY_MAX_READINGS=0``) and
  clients that resend the whole batch (the baseline);
- ``whole-batch clients``: the memory on (the default), clients resending the whole batch;
- ``per-reading clients``: the memory on, clients resending only the readings a 429/503 listed as
  ``unacknowledged`` (what the producer's answers ask for).

Duplicate ratio = (events in the hub - distinct reading IDs in it) / acknowledged readings. "Lost" counts
acknowledged readings missing from the hub (must be 0).

``python bench/producer_duplicates.py [--repeat 1] [--duration 24] [--write docs/benchmarks.md]``
(``make bench-producer-duplicates``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from docsection import Row, write_section
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.hub_reader import read_hub
from homesec_devstack.procs import ManagedProcess, free_port
from homesec_devstack.simulator import LoadResult, SimulatorConfig, run_load

KEYS = {"bench": "benchmark-signing-key-0123456789abcdef"}
SECTION = "## Producer: duplicates under throttled scale-out"
Resend = Literal["unacknowledged", "batch"]
MODES: list[tuple[str, dict[str, str], Resend]] = [
    ("no memory (memory off, whole-batch resends)", {"IDEMPOTENCY_MAX_READINGS": "0"}, "batch"),
    ("whole-batch clients (memory on, whole-batch resends)", {}, "batch"),
    ("per-reading clients (memory on, per-reading resends)", {}, "unacknowledged"),
]


@dataclass
class Outcome:
    mode: str
    acked: int
    refused: int
    events: int
    distinct: int
    lost: int
    resends: dict[str, float]

    @property
    def duplicates(self) -> int:
        return self.events - self.distinct

    @property
    def ratio(self) -> float:
        return self.duplicates / self.acked if self.acked else float("nan")


def producer(emulator: EmulatorProcess, logs: Path, env: dict[str, str]) -> tuple[ManagedProcess, str, str]:
    """The producer process, its API URL and its admin URL (probes, metrics)."""
    port, admin = free_port(), free_port()
    full = {
        "HOMESEC_PRODUCER_HOST": "127.0.0.1", "HOMESEC_PRODUCER_PORT": str(port),
        "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1", "HOMESEC_PRODUCER_ADMIN_PORT": str(admin),
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
        "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(KEYS), "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
        **{f"HOMESEC_PRODUCER_{k}": v for k, v in env.items()},
    }  # fmt: skip
    proc = ManagedProcess.python_module("producer", "homesec_producer", env=full, log_dir=logs)
    return proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"


def metric(url: str, name: str) -> dict[str, float]:
    """Samples of ``name`` on ``url``/metrics by their label text (empty when unreachable)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            out[labels] = float(value)
    return out


async def scale_out(
    tmp: Path, env: dict[str, str], resend: Resend, duration: float
) -> tuple[LoadResult, Any]:
    emulator = EmulatorProcess(tmp / "eh", log_dir=tmp / "logs", throughput_units=1).start()
    first, first_url, first_admin = producer(emulator, tmp / "logs", env)
    second, second_url, second_admin = producer(emulator, tmp / "logs", env)
    urls = [first_url]
    config = SimulatorConfig(
        urls=urls, auth_keys=KEYS, homes=2000, rate=4000, duration=duration, readings_per_request=50,
        homes_per_request=10, concurrency=256, retries=40, request_timeout=60, resend=resend,
        honour_retry_after=True,
    )  # fmt: skip
    try:
        first.start().wait_http(f"{first_admin}/readyz", timeout=60)
        load = asyncio.create_task(run_load(config))
        await asyncio.sleep(2)
        await asyncio.to_thread(lambda: second.start().wait_http(f"{second_admin}/readyz", timeout=60))
        urls.append(second_url)
        await asyncio.sleep(1)
        urls.remove(first_url)
        await asyncio.sleep(0.5)
        first.send_signal(signal.SIGTERM)
        await asyncio.to_thread(first.wait, 40)
        result = await load
        resends = metric(second_admin, "homesec_producer_resends_total")
        return result, (emulator, resends)
    except BaseException:
        emulator.stop()
        raise
    finally:
        first.stop()
        second.stop()


async def one(mode: str, env: dict[str, str], resend: Resend, duration: float) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        result, (emulator, resends) = await scale_out(Path(tmp), env, resend, duration)
        try:
            ids = (await read_hub(emulator, timeout=180.0)).ids
        finally:
            emulator.stop()
    lost = sum(1 for rid in result.acked if ids[rid] == 0)
    return Outcome(mode, len(result.acked), len(result.refused), sum(ids.values()), len(ids), lost, resends)


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| configuration | acknowledged | events in the hub | duplicates | duplicate ratio | lost | "
        "not acknowledged at the end | resends answered by pod B (acknowledged / joined) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        acked = o.resends.get('{outcome="acknowledged"}', 0.0)
        joined = o.resends.get('{outcome="joined_in_flight"}', 0.0)
        lines.append(
            f"| {o.mode} | {o.acked:,} | {o.events:,} | {o.duplicates:,} | **{o.ratio:.2%}** | {o.lost} | "
            f"{o.refused:,} | {acked:,.0f} / {joined:,.0f} |"
        )
    return "\n".join(lines)


def summary(outcomes: list[Outcome]) -> list[Row]:
    """The summary table's row: the duplicate ratio with per-reading resends against no memory (all runs)."""

    def ratio(mode: str) -> float:
        mine = [o for o in outcomes if o.mode == mode]
        acked = sum(o.acked for o in mine)
        return sum(o.duplicates for o in mine) / acked if acked else float("nan")

    per_reading, baseline = ratio(MODES[2][0]), ratio(MODES[0][0])
    return [Row(f"producer, duplicates in the hub after a throttled scale-out: {per_reading:.2%}",
                f"no resend memory, whole-batch resends: {baseline:.2%}",
                f"{per_reading / baseline:.2f}x" if baseline else "-", "`make bench-producer-duplicates`")]  # fmt: skip


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=24.0, help="seconds of load (the test's 24)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--write", type=Path, default=None, help=f"update this file's '{SECTION[3:]}' section"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    outcomes = [
        asyncio.run(one(mode, env, resend, args.duration))
        for _ in range(args.repeat)
        for mode, env, resend in MODES
    ]
    conditions = (
        f"On {os.cpu_count()} cores, "
        f"{args.duration:.0f} s of load per configuration, 1-minute load average {load_before:.1f} before "
        f"and {os.getloadavg()[0]:.1f} after."
    )
    print(conditions)
    print(table(outcomes))
    if args.write:
        preamble = (__doc__ or "").split("\n\n")[1].replace("\n", " ")
        body = f"`make bench-producer-duplicates` (`bench/producer_duplicates.py`). {preamble}"
        write_section(args.write, SECTION, f"{body}\n\n{conditions}\n\n{table(outcomes)}", summary(outcomes))


if __name__ == "__main__":
    main()
