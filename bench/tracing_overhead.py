"""What tracing costs: the producer and the consumer with tracing off (the default) and on, same run.

``python bench/tracing_overhead.py [--duration 8] [--repeat 2] --write docs/benchmarks.md``
(``make bench-tracing``). Tracing on exports OTLP/HTTP to a local receiver that only counts
(``homesec_devstack.otlp_receiver``), at two samplers: ``parentbased_traceidratio`` 0.01 (the chart's default)
and ``always_on`` (every request traced: the worst case). Producer: acknowledged readings/s through the
Event Hubs emulator at a fixed rate and as fast as it goes (``bench/producer_throughput.py``'s simulator
load). Consumer: events/s folding one backlog (``bench/consumer_throughput.py``'s consumer). Ratios are
against tracing off in the same repetition; the variants alternate, in a rotating order, so drift on the
shared machine hits all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import tempfile
from pathlib import Path
from typing import Any

import consumer_throughput as ct
import producer_throughput as pt
from docsection import Row, write_section
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.otlp_receiver import OtlpReceiver
from homesec_devstack.procs import ManagedProcess, free_port

FIXED_RATE = 8350.0
READING = (
    "Off (the default) creates nothing: no OpenTelemetry SDK, no exporter, no span. At 1% sampling the "
    "producer adds FastAPI's request span and one `eventhubs.publish` span per send, and only a sampled "
    "request's events leave the fast encoder for the SDK's public `EventDataBatch.add` (where the Azure "
    "plugin opens their message span and stamps `traceparent`). With every request sampled, every event takes "
    "that path (tens of times the fast encoder's cost per event, docs/producer.md) and gets a span, "
    "exported: a setting for debugging at low rates, not for production. The consumer reads each event's "
    "application properties once and makes a span per batch, flush and Blob write; its ratios move with "
    "the machine's load more than with tracing (each variant reads the same backlog from the start)."
)


def variants(endpoint: str) -> dict[str, dict[str, str]]:
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    return {
        "off": {},
        "on, 1% sampled": {
            **on,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        },
        "on, all sampled": {**on, "OTEL_TRACES_SAMPLER": "always_on"},
    }


def rotated(items: dict[str, dict[str, str]], shift: int) -> list[tuple[str, dict[str, str]]]:
    """The variants in a different order each repetition: none always runs first (cold) or last."""
    pairs = list(items.items())
    shift %= len(pairs)
    return pairs[shift:] + pairs[:shift]


def start_producer(emulator: EmulatorProcess, logs: Path, env: dict[str, str]) -> tuple[ManagedProcess, str]:
    port, admin = free_port(), free_port()
    full = {
        "HOMESEC_PRODUCER_HOST": "127.0.0.1", "HOMESEC_PRODUCER_PORT": str(port),
        "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1", "HOMESEC_PRODUCER_ADMIN_PORT": str(admin),
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
        "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(pt.KEYS), "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
        "HOMESEC_PRODUCER_BUFFER_CAPACITY_READINGS": "200000", **env,
    }  # fmt: skip
    proc = ManagedProcess.python_module("producer", "homesec_producer", env=full, log_dir=logs).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(f"http://127.0.0.1:{admin}/readyz", timeout=60)
    return proc, url


def producer_runs(root: Path, repeat: int, duration: float, endpoint: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    emulator = EmulatorProcess(root / "eh", log_dir=root / "logs").start()
    try:
        for i in range(repeat):
            run: dict[str, Any] = {}
            for name, env in rotated(variants(endpoint), i):
                proc, url = start_producer(emulator, root / "logs", env)
                try:
                    pt.warm_up(url, pt.CONCURRENCY)
                    run[name] = {str(rate): pt.measured(proc.pid, emulator.process.pid, url, rate, duration,
                                                        pt.CONCURRENCY)
                                 for rate in (FIXED_RATE, pt.MAX_RATE)}  # fmt: skip
                finally:
                    proc.stop()
            runs.append(run)
    finally:
        emulator.stop()
    return runs


def consumer_runs(root: Path, repeat: int, homes: int, minutes: int, endpoint: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    emulator = EmulatorProcess(root / "ceh", log_dir=root / "logs").start()
    azurite = AzuriteProcess(root / "az", log_dir=root / "logs").start()
    try:
        n = asyncio.run(ct.publish(emulator.connection_string(), homes, minutes, False))
        for i in range(repeat):
            runs.append({name: ct.consumer(emulator, azurite, n, root / "logs", 30.0, extra_env=env)
                         for name, env in rotated(variants(endpoint), i)})  # fmt: skip
    finally:
        azurite.stop()
        emulator.stop()
    return runs


def _ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({', '.join(f'{v:.2f}' for v in values)})"


def table(producer: list[dict[str, Any]], consumer: list[dict[str, Any]]) -> str:
    names = list(variants(""))
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for rate, label in (
        (FIXED_RATE, f"producer, {FIXED_RATE:,.0f} readings/s offered"),
        (pt.MAX_RATE, "producer, max"),
    ):
        key = str(rate)
        cells = []
        for name in names:
            rates = [r[name][key]["acked_per_s"] for r in producer]
            cpu = statistics.median(r[name][key]["cpu_ms_per_1000"]["producer"] for r in producer)
            ratio = [r[name][key]["acked_per_s"] / r["off"][key]["acked_per_s"] for r in producer]
            p99 = statistics.median(r[name][key]["p99_ms"] for r in producer)
            cells.append(
                f"{statistics.median(rates):,.0f}/s, {_ratio(ratio)}, p99 {p99:.1f} ms, CPU {cpu:.1f} ms/1k"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for name in names:
        rates = [r[name]["events_per_s"] for r in consumer]
        ratio = [r[name]["events_per_s"] / r["off"]["events_per_s"] for r in consumer]
        cpu = statistics.median(r[name]["cpu_seconds"] * 1000 / r[name]["events"] * 1000 for r in consumer)
        cells.append(f"{statistics.median(rates):,.0f} events/s, {_ratio(ratio)}, CPU {cpu:.1f} ms/1k")
    lines.append("| consumer, backlog | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(producer: list[dict[str, Any]], consumer: list[dict[str, Any]]) -> list[Row]:
    """The summary table's rows: the chart's sampling (1%) against tracing off, producer at the fixed rate
    and consumer, medians of the per-repetition ratios."""
    sampled = list(variants(""))[1]
    key = str(FIXED_RATE)
    prod = statistics.median(r[sampled][key]["acked_per_s"] for r in producer)
    off = statistics.median(r["off"][key]["acked_per_s"] for r in producer)
    prod_ratio = statistics.median(
        r[sampled][key]["acked_per_s"] / r["off"][key]["acked_per_s"] for r in producer
    )
    cons = statistics.median(r[sampled]["events_per_s"] for r in consumer)
    cons_off = statistics.median(r["off"]["events_per_s"] for r in consumer)
    cons_ratio = statistics.median(r[sampled]["events_per_s"] / r["off"]["events_per_s"] for r in consumer)
    command = "`make bench-tracing`"
    return [
        Row(f"producer with tracing on, 1% sampled, at {FIXED_RATE:,.0f} offered: {prod:,.0f} readings/s",
            f"tracing off: {off:,.0f} readings/s", f"{prod_ratio:.2f}x", command),
        Row(f"consumer with tracing on, 1% sampled: {cons:,.0f} events/s", f"tracing off: {cons_off:,.0f} events/s",
            f"{cons_ratio:.2f}x", command),
    ]  # fmt: skip


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: the finally blocks stop every process


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=8.0, help="seconds per producer rate")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--homes", type=int, default=200)
    p.add_argument("--minutes", type=int, default=30, help="readings per home and sensor (consumer backlog)")
    p.add_argument("--write", type=Path, default=None, help="update this file's '## Tracing' section")
    a = p.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver(keep=False) as receiver:
        producer = producer_runs(Path(tmp), a.repeat, a.duration, receiver.endpoint)
        consumer = consumer_runs(Path(tmp), a.repeat, a.homes, a.minutes, receiver.endpoint)
        exported = receiver.requests, receiver.bytes
    print(json.dumps({"producer": producer, "consumer": consumer}, indent=1))
    body = (
        "`make bench-tracing` (`bench/tracing_overhead.py`): "
        + (__doc__ or "").split("\n\n", 1)[1].split("\n\n", 1)[0].replace("\n", " ")
        + f"\n\nOn {os.cpu_count()} cores, "
        f"--repeat {a.repeat}, {a.duration:.0f} s per producer rate, consumer backlog {a.homes} homes x "
        f"{a.minutes} minutes x 5 sensors; 1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after. The receiver took {exported[0]:,} OTLP requests "
        f"({exported[1] / 1e6:,.1f} MB). Cells: median rate, ratio to tracing off (median and each "
        "repetition), the producer's p99 latency, CPU per 1,000 readings of the service process.\n\n"
        + table(producer, consumer)
        + "\n\n"
        + READING
    )
    print(body)
    if a.write is not None:
        write_section(a.write, "## Tracing", body, summary(producer, consumer))


if __name__ == "__main__":
    main()
