"""The SDK paths: accelerators on vs off, AMQP vs AMQP over WebSockets, through the Event Hubs emulator.

``python bench/sdk_paths.py [--events 20000] [--repeat 2] [--write FILE]`` (``make bench-sdk``). One emulator
with a plain AMQP and a WebSocket listener. Producer: the service's publisher (``EventHubsPublisher``, the
real adapter: batches of 500 readings per partition, 16 partitions sent concurrently) publishes
``--events`` readings; consumer: an ``EventHubConsumerClient`` receives them in batches from all
partitions and converts each event with the service's decoder (``inbound``, or the ``decoder``
accelerator). Each of the 4 combinations per side runs ``--repeat`` times in alternating order, each in
its own process (the CPU figure is that process's user + system time over the timed part, after every
partition's link is open); the figure is the median, and the
ratios are against AMQP with the accelerators off in the same run. The emulator shares the 2 cores, so
events/s is bounded by it; CPU per 1,000 events is the client's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from docsection import Row, write_section
from homesec_devstack.emulator_process import EmulatorProcess, stack_hubs

TRANSPORTS = ("amqp", "amqp_websockets")
MODES = ("off", "auto")
PARTITIONS = 16
SECTION = "## SDK paths"
NOTES = (
    "Not measured here: TLS (the emulator's listeners are plain `amqp://` and `ws://` on loopback, so the "
    "WebSocket rows show the framing cost only, not a second TLS layer or a proxy), and the compiled fold "
    "(the consumer's third accelerator: compiled vs plain per-event cost in the Consumer section, "
    "`bench/consumer_stages.py`). The accelerators' start-up self-checks cost about 7 ms (encoder), 2 ms "
    "(decoder) and 70 ms (fold) once per process."
)


def body(n: int, home: str) -> bytes:
    return json.dumps({
        "schema_version": 1, "reading_id": str(uuid.UUID(int=n)), "home_id": home, "sensor_id": "door-1",
        "sensor_type": "door", "ts": "2026-12-05T01:00:00Z", "value": None, "state": "open", "seq": n,
    }).encode()  # fmt: skip


async def produce(events: int) -> tuple[float, float]:
    from homesec_domain.validation import AcceptedReading
    from homesec_producer.adapters.eventhub import EventHubsPublisher
    from homesec_producer.settings import ProducerSettings

    settings = ProducerSettings()  # from the environment measure() set
    publisher = EventHubsPublisher.from_settings(settings)
    per = events // PARTITIONS
    batches = {
        str(p): [AcceptedReading(str(uuid.uuid4()), f"home-{p}-{i % 50}", body(i, f"home-{p}")) for i in range(per)]
        for p in range(PARTITIONS)
    }  # fmt: skip
    try:
        # Connect and open every partition's link first: the figure is the steady state.
        await asyncio.gather(*(publisher.publish(pid, readings[:1]) for pid, readings in batches.items()))

        async def send(pid: str) -> None:
            readings = batches[pid]
            for i in range(0, len(readings), 500):
                await publisher.publish(pid, readings[i : i + 500])

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(send(pid) for pid in batches))
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await publisher.close()


async def consume(events: int) -> tuple[float, float]:
    from azure.eventhub.aio import EventHubConsumerClient
    from homesec_consumer.adapters import accelerated_decoding
    from homesec_consumer.adapters.clients import transport_options
    from homesec_consumer.settings import ConsumerSettings

    settings = ConsumerSettings()  # from the environment measure() set
    decode, _ = accelerated_decoding.load(settings.accelerators)
    assert settings.eventhub_connection_string is not None
    client = EventHubConsumerClient.from_connection_string(
        settings.eventhub_connection_string.get_secret_value(), consumer_group="$Default",
        **transport_options(settings),
    )  # fmt: skip
    seen = 0
    done = asyncio.Event()
    first: list[tuple[float, float]] = []

    async def on_batch(_ctx: Any, batch: list[Any]) -> None:
        nonlocal seen
        if not first:
            first.append((time.perf_counter(), time.process_time()))
        for event in batch:
            decode(event)
        seen += len(batch)
        if seen >= events:
            done.set()

    task = asyncio.create_task(
        client.receive_batch(on_batch, max_batch_size=300, prefetch=600, starting_position="-1")
    )
    try:
        await asyncio.wait_for(done.wait(), timeout=300)
        return time.perf_counter() - first[0][0], time.process_time() - first[0][1]
    finally:
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def child(side: str, events: int) -> None:
    run = produce if side == "producer" else consume
    seconds, cpu = asyncio.run(run(events))
    print(json.dumps({"seconds": seconds, "cpu": cpu}))


def measure(emulator: EmulatorProcess, side: str, transport: str, mode: str, events: int) -> dict[str, float]:
    prefix = f"HOMESEC_{side.upper()}_"
    env = {**os.environ, f"{prefix}EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
           f"{prefix}ACCELERATORS": mode, f"{prefix}TRANSPORT": transport, f"{prefix}LOG_LEVEL": "WARNING"}  # fmt: skip
    if side == "producer":
        env[f"{prefix}AUTH_KEYS"] = json.dumps({"bench": "benchmark-signing-key-0123456789abcdef"})
    if transport == "amqp_websockets":
        env[f"{prefix}EVENTHUB_CUSTOM_ENDPOINT_ADDRESS"] = f"sb://127.0.0.1:{emulator.ws_port}"
    argv = [sys.executable, __file__, "--child", side, "--events", str(events)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{side} {transport} {mode}: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"per_s": events / result["seconds"], "cpu_ms_per_1000": 1e6 * result["cpu"] / events}


def run(events: int, repeat: int) -> dict[str, dict[tuple[str, str], list[dict[str, float]]]]:
    results: dict[str, dict[tuple[str, str], list[dict[str, float]]]] = {"producer": {}, "consumer": {}}
    combos = [(t, m) for t in TRANSPORTS for m in MODES]
    with tempfile.TemporaryDirectory(prefix="bench-sdk-") as tmp:
        emulator = EmulatorProcess(Path(tmp) / "eh", hubs=stack_hubs(PARTITIONS), websocket=True,
                                   log_dir=Path(tmp) / "logs").start()  # fmt: skip
        try:
            for side in ("producer", "consumer"):
                for r in range(repeat):
                    for transport, mode in combos if r % 2 == 0 else combos[::-1]:
                        got = measure(emulator, side, transport, mode, events)
                        results[side].setdefault((transport, mode), []).append(got)
                        print(side, transport, mode, got, file=sys.stderr)
        finally:
            emulator.stop()
    return results


def table(results: dict[str, dict[tuple[str, str], list[dict[str, float]]]]) -> str:
    lines = ["| side | transport | accelerators | events/s | ratio | client CPU ms / 1,000 events | ratio |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for side, combos in results.items():
        med = {k: {f: statistics.median(r[f] for r in runs) for f in runs[0]} for k, runs in combos.items()}
        base = med[("amqp", "off")]
        for (transport, mode), m in med.items():
            lines.append(
                f"| {side} | {transport} | {'on' if mode == 'auto' else 'off'} | {m['per_s']:,.0f} | "
                f"{m['per_s'] / base['per_s']:.2f} | {m['cpu_ms_per_1000']:.1f} | "
                f"{m['cpu_ms_per_1000'] / base['cpu_ms_per_1000']:.2f} |"
            )
    return "\n".join(lines)


def summary(results: dict[str, dict[tuple[str, str], list[dict[str, float]]]]) -> list[Row]:
    """The summary table's rows: accelerators on against off over AMQP, per side (events/s, medians)."""
    rows = []
    for side, combos in results.items():
        on, off = (statistics.median(r["per_s"] for r in combos[("amqp", m)]) for m in ("auto", "off"))
        rows.append(Row(f"{side}, SDK path with the accelerators: {on:,.0f} events/s",
                        f"accelerators off: {off:,.0f} events/s", f"{on / off:.2f}x" if off else "-",
                        "`make bench-sdk`"))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", choices=["producer", "consumer"], default=None)
    parser.add_argument("--write", type=Path, default=None, help=f"update this file's '{SECTION}' section")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events)
        return
    load_before = os.getloadavg()[0]
    results = run(args.events, args.repeat)
    conditions = (
        f"On {os.cpu_count()} cores, {args.events:,} "
        f"events per measurement, median of {args.repeat}, 1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after (other work on the machine competes for the cores)."
    )
    print(conditions)
    print(table(results))
    if args.write:
        preamble = __doc__.split("\n\n", 1)[1].strip().replace("\n", " ").replace("``", "`")
        body = f"{preamble}\n\n{conditions}\n\n{table(results)}\n\n{NOTES}"
        write_section(args.write, SECTION, body, summary(results))


if __name__ == "__main__":
    main()
