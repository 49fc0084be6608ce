"""``make run``: the whole pipeline on this machine, with live progress.

Starts the Event Hubs emulator, Azurite, the producer, the consumer and a sensor simulator for ``--homes``
homes, then prints one progress line (at most 100 columns, ``homesec_devstack.progress``) every
``--interval`` seconds: readings sent by the simulator (as counted by the producer), acknowledged by Event
Hubs, consumed, rolled up into Blob, the consumer's lag, and the requests answered 429 and 503.
Ctrl-C, SIGTERM or SIGHUP (the terminal closed), or ``--duration``, ends the run: the simulator stops, the
``final`` line comes once the consumer has rolled up every acknowledged reading (or after
``--drain-timeout``, which it reports; a second signal skips the wait), then everything stops, newest first.
During start-up a signal stops everything within about a second. A port already taken fails at once, naming
the port. Each run starts from fresh data in ``--data-dir`` unless ``--keep-data``. The run's token-signing
key is kept in ``--data-dir``: ``make token HOME=home-000123 [AUDIENCE=read]`` mints a token with it
(``homesec_devstack.devtoken``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from homesec_devstack import devtoken, progress
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
DEFAULT_DATA_DIR = Path(".cache/stack")


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


def token_command(data_dir: Path) -> str:
    """The ``make token`` command for this run's key (``STACK_DATA_DIR`` when not the default)."""
    default = data_dir == DEFAULT_DATA_DIR.resolve()
    return "make token HOME=home-000123 [AUDIENCE=read]" + ("" if default else f" STACK_DATA_DIR={data_dir}")


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
        a.auth_key = a.auth_key or devtoken.signing_key(data, keep=a.keep_data)
        prepare_data_dir(data, keep=a.keep_data)
        devtoken.save_key(data, a.auth_key)  # for make token while the stack runs
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

    def counts(self) -> progress.Counts:
        return progress.Counts.scrape(self.producer_admin_url, self.consumer_admin_url)

    def stop_simulator(self) -> None:
        """SIGTERM to the simulator (started last): it finishes its requests in flight."""
        if self.procs and self.procs[-1].name == "simulator":
            self.procs.pop().stop(grace=20)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(grace=30)
        self.procs.clear()
        if self.azurite:
            self.azurite.stop()
        if self.emulator:
            self.emulator.stop()


def home_status(stack: Stack, home: str = "home-000001") -> str:
    """What the resident website would show for one home (one blob read behind the consumer's API)."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{stack.consumer_url}/v1/homes/{home}/status",
        headers={"Authorization": f"Bearer {devtoken.read_token(stack.args.auth_key, home)}"},
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
        "--drain-timeout",
        type=float,
        default=60.0,
        help="at the end, wait up to N s for the consumer to roll up every acknowledged reading",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
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
    p.add_argument(
        "--auth-key",
        default=None,
        help="dev token-signing key (default: new each run; with --keep-data, the previous run's)",
    )
    args = p.parse_args(argv)
    if args.free_ports:
        for name in PORTS:
            setattr(args, name, free_port())
    return args


def banner(stack: Stack) -> str:
    """What is up and how to use it, printed once the stack is ready."""
    a = stack.args
    ws = f"            ws://127.0.0.1:{a.ws_port}/$servicebus/websocket\n" if a.ws_port else ""
    return (
        f"homesec-telemetry local stack is up ({a.homes} homes, {a.rate:g} readings/s). Ctrl-C stops it.\n"
        f"  producer  {stack.producer_url}/v1/readings   docs {stack.producer_admin_url}/docs\n"
        f"  consumer  {stack.consumer_url}/v1/homes/...   metrics {stack.consumer_admin_url}/metrics\n"
        f"  emulator  amqp://127.0.0.1:{a.amqp_port}  stats http://127.0.0.1:{a.admin_port}/stats\n{ws}"
        "  a home (read token for home-000001, valid 7 days):\n"
        + "".join(f"    {line}\n" for line in devtoken.status_curls(stack.consumer_url, a.auth_key))
        + "  post one reading (token for home-000001, valid 7 days):\n"
        f"    {devtoken.curl_example(stack.producer_url, a.auth_key)}\n"
        "  a token for any home while the stack runs (signed with this run's key):\n"
        f"    {token_command(a.data_dir)}\n"
        f"  logs      {a.data_dir / 'logs'}"
    )


def watch(stack: Stack, received: list[int]) -> None:
    """A progress line every ``--interval`` s until a signal or ``--duration``."""
    a = stack.args
    print(progress.LEGEND, flush=True)
    started, shown = time.monotonic(), 0
    while not received and (a.duration <= 0 or time.monotonic() - started < a.duration):
        CANCEL_WAITS.wait(a.interval)
        if not received:
            header = progress.header() + "\n" if shown % progress.HEADER_EVERY == 0 else ""
            when = f"{time.monotonic() - started:.0f}s"
            print(header + progress.line(stack.counts(), when), flush=True)
            shown += 1


def finish(stack: Stack, received: list[int]) -> None:
    """Stop the simulator, wait for the consumer to roll up what was acknowledged, print the final line."""
    stack.stop_simulator()
    timeout = stack.args.drain_timeout
    print(f"simulator stopped; rolling up what was acknowledged (up to {timeout:g}s; Ctrl-C again skips)"
          " ...", flush=True)  # fmt: skip
    already = len(received)
    counts, waited = progress.drain(stack.counts, timeout, give_up=lambda: len(received) > already)
    print(progress.header() + "\n" + progress.line(counts, "final"), flush=True)
    print(progress.drain_report(counts, waited, timeout), flush=True)
    print(f"home-000001 status: {home_status(stack)}", flush=True)


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
        print(banner(stack), flush=True)
        watch(stack, received)
        finish(stack, received)
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
