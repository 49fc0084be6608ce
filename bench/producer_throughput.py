"""Producer throughput benchmark: readings/s acknowledged end to end through the emulator by ONE producer
process (one uvicorn worker), side by side with a bare ASGI baseline that parses the same bodies and
publishes nothing. Load: the simulator (batch POSTs, 100 readings of 20 homes each, 100,000 homes) in its
own process on loopback, open loop at each target rate, no client retries.

``python bench/producer_throughput.py [--duration 10] [--rates 8350,16700,33400] [--repeat 3] [--write FILE]``
(``make bench-producer``). The figure that matters is the ratio against the baseline of the same run. With
``--repeat N`` the whole run is repeated and a second table gives every repetition's p99.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from docsection import Row, write_section
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parents[1]

HEAD = "## Producer"
PREAMBLE = (
    "`make bench-producer` (`bench/producer_throughput.py`): acknowledged readings/s end to end, one "
    "producer process (one uvicorn worker) through the Event Hubs emulator; load from the simulator in its "
    "own process (batch POSTs of 100 readings of 20 homes, 100,000 homes, open loop at each target rate, "
    "no retries), after a warm-up in which every gateway posts once: the steady state of a fleet whose "
    "gateways post every minute, with tokens each pod has verified and homes whose partition it has looked "
    "up before (the cold-start cost: docs/producer.md#performance). Ratios are against the bare ASGI baseline of the same run at the same rate (it parses "
    "the same bodies and publishes nothing). The middle column is the full producer app with a publisher "
    "that encodes every batch like the Event Hubs adapter but does no I/O: the producer's own cost. "
    "Analysis and profile: docs/producer.md#performance."
)
KEYS = {"bench": "benchmark-signing-key-0123456789abcdef"}
MAX_RATE = 200_000.0
CONCURRENCY = 64  # "as fast as it goes": the generator's own ceiling bounds it
# Every simulator run of this process mints the same gateway tokens (same ``iat``), so a producer sees a
# gateway's token again in the next run, as it does in a fleet, where each gateway posts every minute.
ISSUED_AT = int(time.time())


def simulate(
    url: str, rate: float, duration: float, concurrency: int, warm_up: bool = False
) -> dict[str, Any]:
    argv = [
        sys.executable, "-m", "homesec_devstack.simulator", "--url", url, "--homes", "100000",
        "--rate", str(rate), "--duration", str(duration), "--readings-per-request", "100",
        "--homes-per-request", "20", "--concurrency", str(concurrency), "--retries", "0",
        "--issued-at", str(ISSUED_AT), *(["--warm-up"] if warm_up else []),
    ]  # fmt: skip
    env = {**os.environ, "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(KEYS)}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 120, check=False)
    if not out.stdout.strip():
        raise RuntimeError(f"simulator failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["target_rate"] = rate
    return result


def warm_up(url: str, concurrency: int) -> None:
    """A fleet's steady state before measuring: every gateway has posted once (its token verified, its homes'
    partitions looked up, as they are a minute into a pod's life), and the connections and links are open."""
    simulate(url, 2000, 2, concurrency, warm_up=True)


def start_producer(
    emulator: EmulatorProcess, logs: Path, extra: dict[str, str] | None = None
) -> tuple[ManagedProcess, str]:
    """The producer (``python -m homesec_producer``) on the emulator; ``extra``: more environment."""
    port, admin = free_port(), free_port()
    env = {
        "HOMESEC_PRODUCER_HOST": "127.0.0.1", "HOMESEC_PRODUCER_PORT": str(port),
        "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1", "HOMESEC_PRODUCER_ADMIN_PORT": str(admin),
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
        "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(KEYS), "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
        "HOMESEC_PRODUCER_BUFFER_CAPACITY_READINGS": "200000", **(extra or {}),
    }  # fmt: skip
    proc = ManagedProcess.python_module("producer", "homesec_producer", env=env, log_dir=logs).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(f"http://127.0.0.1:{admin}/readyz", timeout=60)
    return proc, url


def start_app(script: str, logs: Path) -> tuple[ManagedProcess, str]:
    """``bench/<script>.py --port P``: the baseline or the offline producer."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--port", str(port)]
    # the offline app's admin port (the settings read it from the environment; the baseline has none)
    env = {"HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(KEYS), "HOMESEC_PRODUCER_ADMIN_PORT": str(free_port())}
    proc = ManagedProcess(script, argv, env=env, log_dir=logs).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_tcp(port, timeout=30)
    return proc, url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(
    producer: int, emulator: int, url: str, rate: float, duration: float, concurrency: int
) -> dict[str, Any]:
    """``simulate`` plus the CPU each process spent per 1,000 acknowledged readings."""
    before = (cpu_seconds(producer), cpu_seconds(emulator), children_cpu())
    result = simulate(url, rate, duration, concurrency)
    after = (cpu_seconds(producer), cpu_seconds(emulator), children_cpu())
    per_k = 1000.0 / max(1, result["acked"])
    result["cpu_ms_per_1000"] = {
        name: round((after[i] - before[i]) * 1000 * per_k, 1)
        for i, name in enumerate(("producer", "emulator", "simulator"))
    }
    return result


def run(rates: list[float], duration: float, concurrency: int) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {"baseline": [], "offline": [], "producer": []}
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "logs"
        for name, script in (("baseline", "producer_baseline"), ("offline", "producer_offline_app")):
            app, url = start_app(script, logs)
            try:
                warm_up(url, concurrency)
                for rate in [*rates, MAX_RATE]:
                    results[name].append(simulate(url, rate, duration, concurrency))
            finally:
                app.stop()
        emulator = EmulatorProcess(Path(tmp) / "eh", log_dir=logs).start()
        try:
            producer, url = start_producer(emulator, logs)
            try:
                warm_up(url, concurrency)
                for rate in [*rates, MAX_RATE]:
                    results["producer"].append(
                        measured(producer.pid, emulator.process.pid, url, rate, duration, concurrency)
                    )
            finally:
                producer.stop()
        finally:
            emulator.stop()
    return results


def _cell(run: dict[str, Any], base: dict[str, Any]) -> str:
    ratio = run["acked_per_s"] / base["acked_per_s"] if base["acked_per_s"] else float("nan")
    refused = run["readings"] - run["acked"]
    extra = f", {refused} not 202" if refused else ""
    return f"{run['acked_per_s']:,.0f} ({ratio:.2f}x; p50 {run['p50_ms']} / p99 {run['p99_ms']} ms{extra})"


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Acked readings/s per target rate; ratios against the baseline of the same run and rate."""
    lines = [
        "| target readings/s | baseline: parse only | producer, no AMQP I/O | producer via the emulator |",
        "|---|---|---|---|",
    ]
    for base, offline, prod in zip(results["baseline"], results["offline"], results["producer"], strict=True):
        target = "max" if base["target_rate"] == MAX_RATE else f"{base['target_rate']:,.0f}"
        base_cell = f"{base['acked_per_s']:,.0f} (p50 {base['p50_ms']} / p99 {base['p99_ms']} ms)"
        lines.append(f"| {target} | {base_cell} | {_cell(offline, base)} | {_cell(prod, base)} |")
    lines += [
        "",
        "CPU per 1,000 acknowledged readings through the emulator (ms; 1,000 ms = one core for one second):",
        "",
        "| target readings/s | producer | emulator | simulator |",
        "|---|---|---|---|",
    ]
    for prod in results["producer"]:
        target = "max" if prod["target_rate"] == MAX_RATE else f"{prod['target_rate']:,.0f}"
        cpu = prod["cpu_ms_per_1000"]
        lines.append(f"| {target} | {cpu['producer']} | {cpu['emulator']} | {cpu['simulator']} |")
    return "\n".join(lines)


def p99_table(runs: list[dict[str, list[dict[str, Any]]]]) -> str:
    """p99 (ms) of every repetition, per target rate and column."""
    lines = [
        "| target readings/s | baseline: parse only | producer, no AMQP I/O | producer via the emulator |",
        "|---|---|---|---|",
    ]
    for i, base in enumerate(runs[0]["baseline"]):
        target = "max" if base["target_rate"] == MAX_RATE else f"{base['target_rate']:,.0f}"
        cells = [
            " / ".join(f"{r[col][i]['p99_ms']:g}" for r in runs)
            for col in ("baseline", "offline", "producer")
        ]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    """The summary table's rows: the ceiling through the emulator, and p99 at the middle target rate."""
    by_rate = {r["target_rate"]: r for r in results["baseline"]}
    command = "`make bench-producer`"
    rows = []
    for prod in results["producer"]:
        base = by_rate[prod["target_rate"]]
        if prod["target_rate"] == MAX_RATE:
            ratio = prod["acked_per_s"] / base["acked_per_s"] if base["acked_per_s"] else float("nan")
            rows.append(Row(f"producer via the emulator, most readings/s: {prod['acked_per_s']:,.0f}/s",
                            f"parse-only app: {base['acked_per_s']:,.0f}/s", f"{ratio:.2f}x", command))  # fmt: skip
    rates = sorted(r for r in by_rate if r != MAX_RATE)
    if rates:
        middle = rates[len(rates) // 2]
        prod = next(r for r in results["producer"] if r["target_rate"] == middle)
        base = by_rate[middle]
        ratio = prod["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("nan")
        rows.append(Row(f"producer via the emulator, p99 at {middle:,.0f} readings/s: {prod['p99_ms']:g} ms",
                        f"parse-only app: {base['p99_ms']:g} ms", f"{ratio:.0f}x", command))  # fmt: skip
    return rows


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: the finally blocks stop the emulator, Azurite and the workers


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rates", default="8350,16700,33400")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of the whole run")
    parser.add_argument("--write", type=Path, default=None, help="update this file's '## Producer' section")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rates = [float(r) for r in args.rates.split(",")]
    runs = [run(rates, args.duration, args.concurrency) for _ in range(args.repeat)]
    conditions = (
        f"On {os.cpu_count()} cores, "
        f"{args.duration:.0f} s per rate, {args.repeat} repetition(s), 1-minute load average {load_before:.1f} "
        f"before and {os.getloadavg()[0]:.1f} after (other work on the machine competes for the cores)."
    )
    body = f"{conditions}\n\nFirst repetition:\n\n{table(runs[0])}"
    if args.repeat > 1:
        body += f"\n\np99 (ms) of each repetition, in order:\n\n{p99_table(runs)}"
    print(json.dumps(runs, indent=1))
    print(body)
    if args.write:
        write_section(args.write, HEAD, f"{PREAMBLE}\n\n{body}", summary(runs[0]))


if __name__ == "__main__":
    main()
