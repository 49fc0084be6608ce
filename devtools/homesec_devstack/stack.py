"""``make run``: the whole pipeline on this machine, with live progress.

Starts the Event Hubs emulator, Azurite, the producer, the consumer and a sensor simulator for ``--homes``
homes, then prints one progress line every ``--interval`` seconds: readings sent by the simulator (as
counted by the producer), acknowledged by Event Hubs, consumed, rolled up into Blob, and the consumer's lag.
Ctrl-C, SIGTERM or SIGHUP (the terminal closed), or ``--duration``, stops everything, newest first; during
start-up too, within about a second. A port already taken fails at once, naming the port. Each run starts
from fresh data in ``--data-dir`` unless ``--keep-data``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import shutil
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from homesec_producer.auth import READ_AUDIENCE, TokenAuthority
from prometheus_client.parser import text_string_to_metric_families

from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess, stack_hubs
from homesec_devstack.procs import (
    CANCEL_WAITS,
    ManagedProcess,
    PortInUseError,
    WaitCancelledError,
    free_port,
    port_is_free,
)

PORTS = {"amqp_port": "Event Hubs emulator AMQP", "admin_port": "Event Hubs emulator admin",
         "blob_port": "Azurite blob", "producer_port": "producer", "consumer_port": "consumer",
         "producer_admin_port": "producer admin", "consumer_admin_port": "consumer admin"}  # fmt: skip
DATA_SUBDIRS = ("eventhubs", "azurite", "logs")  # all a run writes in --data-dir; nothing else is removed


def check_ports(args: argparse.Namespace) -> None:
    """Fail at once when a port of the stack is taken (another ``make run``?) or named twice."""
    seen: dict[int, str] = {}
    for attr, what in PORTS.items():
        port: int = getattr(args, attr)
        flag = "--" + attr.replace("_", "-")
        if port in seen:
            raise PortInUseError(
                port, what, f": {seen[port]} uses it too; pass another {flag} or --free-ports"
            )
        seen[port] = what
        if not port_is_free(port):
            raise PortInUseError(
                port, what, f" (another make run?): stop it, or pass --free-ports (or {flag} N)"
            )


def prepare_data_dir(data_dir: Path, keep: bool) -> None:
    """Fresh data unless ``keep``: remove what the previous run left (emulator log, blobs, logs)."""
    if not keep:
        for name in DATA_SUBDIRS:
            shutil.rmtree(data_dir / name, ignore_errors=True)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)


def curl_example(producer_url: str, auth_key: str, home: str = "home-000001") -> str:
    """A ready-to-paste ``curl`` that POSTs one reading for ``home`` with a token valid for 7 days
    (signed with this run's key); the reading's timestamp is taken by the shell when it runs."""
    expires = datetime.now(UTC) + timedelta(days=7)
    token = TokenAuthority({"dev": auth_key.encode()}).issue("make-run", [home], expires)
    body_head = (
        f'{{"readings":[{{"home_id":"{home}","sensor_id":"door-1","sensor_type":"door","state":"open","ts":"'
    )
    body_tail = '"}]}'
    return (
        f"curl -sS -X POST {producer_url}/v1/readings -H 'content-type: application/json'"
        f" -H {shlex.quote('authorization: Bearer ' + token)}"
        f" -d '{body_head}'\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"'{body_tail}'"
    )


def read_token(auth_key: str, home: str = "home-000001") -> str:
    """A read token for ``home`` (the consumer's status API), valid 7 days, signed with this run's key."""
    expires = datetime.now(UTC) + timedelta(days=7)
    return TokenAuthority({"dev": auth_key.encode()}).issue(
        "make-run-reader", [home], expires, audience=READ_AUDIENCE
    )


def status_curls(consumer_url: str, auth_key: str, home: str = "home-000001") -> list[str]:
    """Ready-to-paste ``curl`` commands reading ``home``'s status and history with a read token."""
    header = shlex.quote(f"authorization: Bearer {read_token(auth_key, home)}")
    return [
        f"curl -sS -H {header} {consumer_url}/v1/homes/{home}/status",
        f"curl -sS -H {header} '{consumer_url}/v1/homes/{home}/history?hours=24'",
    ]


@dataclass
class Stack:
    args: argparse.Namespace
    procs: list[ManagedProcess] = field(default_factory=list)
    emulator: EmulatorProcess | None = None
    azurite: AzuriteProcess | None = None

    @property
    def producer_url(self) -> str:
        return f"http://127.0.0.1:{self.args.producer_port}"

    @property
    def consumer_url(self) -> str:
        return f"http://127.0.0.1:{self.args.consumer_port}"

    @property
    def producer_admin_url(self) -> str:
        """Probes, metrics and the OpenAPI docs."""
        return f"http://127.0.0.1:{self.args.producer_admin_port}"

    @property
    def consumer_admin_url(self) -> str:
        """Probes and metrics."""
        return f"http://127.0.0.1:{self.args.consumer_admin_port}"

    def start(self) -> None:
        """Check the ports, prepare the data directory, start everything and wait until it is ready.
        Raises ``PortInUseError`` (a port taken), ``WaitCancelledError`` (interrupted) or the failure; what
        was started is stopped by ``stop()``."""
        a, data, logs = self.args, self.args.data_dir, self.args.data_dir / "logs"
        check_ports(a)
        prepare_data_dir(data, keep=a.keep_data)
        self.emulator = EmulatorProcess(data / "eventhubs", port=a.amqp_port, admin_port=a.admin_port,
                                        ws_port=a.ws_port, hubs=stack_hubs(),
                                        consumer_groups="$Default,rollups", log_dir=logs)  # fmt: skip
        self.emulator.start()
        self.azurite = AzuriteProcess(data / "azurite", port=a.blob_port, log_dir=logs)
        self.azurite.start()
        keys = json.dumps({"dev": a.auth_key})
        producer_env = {
            "HOMESEC_PRODUCER_HOST": "127.0.0.1", "HOMESEC_PRODUCER_PORT": str(a.producer_port),
            "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1",
            "HOMESEC_PRODUCER_ADMIN_PORT": str(a.producer_admin_port),
            "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": self.emulator.connection_string(),
            "HOMESEC_PRODUCER_AUTH_KEYS": keys, "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
            "HOMESEC_PRODUCER_LOG_FORMAT": "console",  # readable logs for make run (images: json)
        }  # fmt: skip
        consumer_env = {
            "HOMESEC_CONSUMER_HOST": "127.0.0.1", "HOMESEC_CONSUMER_PORT": str(a.consumer_port),
            "HOMESEC_CONSUMER_ADMIN_HOST": "127.0.0.1",
            "HOMESEC_CONSUMER_ADMIN_PORT": str(a.consumer_admin_port),
            "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": self.emulator.connection_string(),
            "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": self.azurite.connection_string,
            "HOMESEC_CONSUMER_FLUSH_INTERVAL_SECONDS": str(a.flush_interval),
            "HOMESEC_CONSUMER_LOG_LEVEL": "WARNING", "HOMESEC_CONSUMER_LOG_FORMAT": "console",
            "HOMESEC_CONSUMER_AUTH_KEYS": keys,  # the same dev key verifies the read tokens
        }  # fmt: skip
        producer = ManagedProcess.python_module(
            "producer", "homesec_producer", env=producer_env, log_dir=logs
        )
        consumer = ManagedProcess.python_module(
            "consumer", "homesec_consumer", env=consumer_env, log_dir=logs
        )
        for proc, url in ((producer, self.producer_admin_url), (consumer, self.consumer_admin_url)):
            self.procs.append(proc.start())
            proc.wait_http(f"{url}/readyz", timeout=90, owned=True)
        sim_args = ["--url", self.producer_url, "--homes", str(a.homes), "--rate", str(a.rate),
                    "--duration", "0", "--auth-key", f"dev={a.auth_key}"]  # fmt: skip
        sim = ManagedProcess.python_module("simulator", "homesec_devstack.simulator", sim_args, log_dir=logs)
        self.procs.append(sim.start())

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(grace=30)
        self.procs.clear()
        if self.azurite:
            self.azurite.stop()
        if self.emulator:
            self.emulator.stop()


def scrape(url: str) -> dict[str, float]:
    """Sum every sample of each metric family (labels folded) from a /metrics endpoint."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=3) as resp:  # noqa: S310 - loopback
            text = resp.read().decode()
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def progress_line(stack: Stack, started: float) -> str:
    p, c = scrape(stack.producer_admin_url), scrape(stack.consumer_admin_url)
    elapsed = time.monotonic() - started
    return (
        f"[{elapsed:6.0f}s] received {p.get('homesec_producer_readings_received_total', 0):>9,.0f}"
        f"  acknowledged {p.get('homesec_producer_readings_acknowledged_total', 0):>9,.0f}"
        f"  consumed {c.get('homesec_consumer_events_processed_total', 0):>9,.0f}"
        f"  rolled up {c.get('homesec_consumer_readings_rolled_up_total', 0):>9,.0f}"
        f"  lag {c.get('homesec_consumer_partition_lag_events', 0):>6,.0f}"
        f"  partitions owned {c.get('homesec_consumer_partitions_owned', 0):.0f}"
        f"  503s {p.get('homesec_producer_shed_total', 0):,.0f}"
    )


def home_status(stack: Stack, home: str = "home-000001") -> str:
    """What the resident website would show for one home (one blob read behind the consumer's API)."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{stack.consumer_url}/v1/homes/{home}/status",
        headers={"Authorization": f"Bearer {read_token(stack.args.auth_key, home)}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            body: bytes = resp.read()
            return body.decode()[:600]
    except OSError as exc:
        return f"unavailable ({exc})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m homesec_devstack.stack", description=__doc__)
    p.add_argument("--homes", type=int, default=2000, help="simulated homes (default 2000)")
    p.add_argument("--rate", type=float, default=500.0, help="readings per second, all homes (default 500)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (default: until Ctrl-C)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between progress lines")
    p.add_argument("--flush-interval", type=float, default=5.0, help="consumer rollup flush interval (s)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".cache/stack"),
        help="state and logs of this run (default .cache/stack), emptied at start unless --keep-data",
    )
    p.add_argument(
        "--keep-data",
        action="store_true",
        help="start from the previous run's data (events, checkpoints, rollups) instead of fresh",
    )
    p.add_argument("--amqp-port", type=int, default=5672)
    p.add_argument("--admin-port", type=int, default=5673)
    p.add_argument(
        "--ws-port", type=int, default=None, help="also serve AMQP over WebSocket on this port (default: off)"
    )
    p.add_argument("--blob-port", type=int, default=10000)
    p.add_argument("--producer-port", type=int, default=8080)
    p.add_argument("--consumer-port", type=int, default=8081)
    p.add_argument("--producer-admin-port", type=int, default=9090, help="probes, metrics, docs")
    p.add_argument("--consumer-admin-port", type=int, default=9091, help="probes, metrics")
    p.add_argument("--free-ports", action="store_true", help="pick free ports instead of the defaults")
    p.add_argument("--auth-key", default=secrets.token_urlsafe(24), help="dev token-signing key")
    args = p.parse_args(argv)
    if args.free_ports:
        for name in PORTS:
            setattr(args, name, free_port())
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    stack = Stack(args)
    received: list[int] = []
    CANCEL_WAITS.clear()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        CANCEL_WAITS.set()  # start-up gives up within about a second; the progress loop stops

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    data = args.data_dir
    fresh = "kept from the previous run" if args.keep_data else "fresh; --keep-data keeps it"
    print(f"data      {data} ({fresh})\n"
          f"logs      {data / 'logs'} (one file per process)", flush=True)  # fmt: skip
    try:
        stack.start()
        print(f"homesec-telemetry local stack is up ({args.homes} homes, {args.rate:g} readings/s). "
              "Ctrl-C stops it.\n"
              f"  producer  {stack.producer_url}/v1/readings   docs {stack.producer_admin_url}/docs\n"
              f"  consumer  {stack.consumer_url}/v1/homes/...   metrics {stack.consumer_admin_url}/metrics\n"
              f"  emulator  amqp://127.0.0.1:{args.amqp_port}  stats http://127.0.0.1:{args.admin_port}/stats\n"
              + (f"            ws://127.0.0.1:{args.ws_port}/$servicebus/websocket\n" if args.ws_port else "")
              + "  a home (read token for home-000001, valid 7 days):\n"
              + "".join(f"    {line}\n" for line in status_curls(stack.consumer_url, args.auth_key))
              + f"  post one reading (token for home-000001, valid 7 days):\n"
              f"    {curl_example(stack.producer_url, args.auth_key)}\n"
              f"  logs      {data / 'logs'}", flush=True)  # fmt: skip
        started = time.monotonic()
        while not received and (args.duration <= 0 or time.monotonic() - started < args.duration):
            CANCEL_WAITS.wait(args.interval)
            if not received:
                print(progress_line(stack, started), flush=True)
        print("final: " + progress_line(stack, started), flush=True)
        print(f"home-000001 status: {home_status(stack)}", flush=True)
        print("stopping ...", flush=True)
    except PortInUseError as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        return 2
    except WaitCancelledError:
        print(f"interrupted ({signal.Signals(received[0]).name}) during start-up: stopping ...", flush=True)
        return 128 + received[0]
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
