"""``python -m homesec_devstack.emulator``: a local, Event Hubs-compatible AMQP 1.0 endpoint (dev/test only).

Connect the unmodified azure-eventhub SDK with
``Endpoint=sb://127.0.0.1:<port>;SharedAccessKeyName=<k>;SharedAccessKey=<v>;UseDevelopmentEmulator=true;EntityPath=<hub>``;
over WebSocket (``--ws-port``) add the client keywords ``transport_type=TransportType.AmqpOverWebsocket,
custom_endpoint_address="sb://127.0.0.1:<ws-port>"``. ``--tls-port``/``--wss-port`` serve the same over TLS
with a certificate from a CA generated in ``<data-dir>/tls/ca.pem`` (pass ``connection_verify=`` that file).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
from pathlib import Path

from homesec_devstack.emulator import tls
from homesec_devstack.emulator.server import EmulatorServer
from homesec_devstack.emulator.throttle import ThroughputLimiter


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m homesec_devstack.emulator", description=__doc__)
    p.add_argument("--data-dir", type=Path, required=True, help="where partition logs are kept (durable)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5672, help="AMQP port (default 5672)")
    p.add_argument("--ws-port", type=int, default=None, help="AMQP over WebSocket port (default: off)")
    p.add_argument("--tls-port", type=int, default=None, help="AMQP over TLS (amqps) port (default: off)")
    p.add_argument(
        "--wss-port", type=int, default=None, help="AMQP over WebSocket over TLS port (default: off)"
    )
    p.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate chain (default: generated)")
    p.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    p.add_argument("--admin-port", type=int, default=None, help="HTTP admin/stats port (default: off)")
    p.add_argument(
        "--hubs",
        default="telemetry:16,alarms:16",
        help="hub:partitions[,hub:partitions] (default telemetry:16,alarms:16: the services' hubs)",
    )
    p.add_argument("--consumer-groups", default="$Default", help="comma-separated consumer groups ($Default)")
    p.add_argument("--throughput-units", type=int, default=None, help="enforce ingress limits of N TUs")
    p.add_argument("--auto-inflate-max", type=int, default=None, help="auto-inflate TUs up to this maximum")
    p.add_argument("--auto-inflate-delay", type=float, default=1.0, help="seconds between auto-inflate steps")
    p.add_argument("--check-sas", action="store_true", help="refuse SAS tokens not signed with a --key")
    p.add_argument("--key", action="append", default=[], metavar="NAME=KEY", help="SAS key for --check-sas")
    p.add_argument("--fsync", action="store_true", help="fsync each append (survive machine crashes too)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def parse_hubs(spec: str) -> dict[str, int]:
    hubs: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, count = item.partition(":")
        if any(other.casefold() == name.casefold() for other in hubs):
            raise SystemExit(f"--hubs: {name!r} is given twice (hub names are case-insensitive)")
        hubs[name] = int(count or 16)
        if not 1 <= hubs[name] <= 1024:
            raise SystemExit(f"--hubs: partition count of {name!r} must be 1..1024")
    return hubs


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The listeners' TLS context: ``--tls-cert``/``--tls-key``, or a CA and certificate generated once in
    ``<data-dir>/tls/`` (clients trust ``ca.pem``). ``None`` when no TLS listener is asked for."""
    if args.tls_port is None and args.wss_port is None:
        return None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise SystemExit("--tls-cert and --tls-key go together")
    if args.tls_cert is not None:
        return tls.server_context(args.tls_cert, args.tls_key)
    files = tls.ensure(args.data_dir / "tls")
    logging.getLogger("homesec.emulator").info("TLS: clients trust the CA in %s", files.ca)
    return tls.server_context(files.cert, files.key)


async def serve(args: argparse.Namespace) -> None:
    keys = dict(k.split("=", 1) for k in args.key) if args.check_sas else None
    limiter = ThroughputLimiter(args.throughput_units, args.auto_inflate_max, args.auto_inflate_delay)
    groups = [g.strip() for g in args.consumer_groups.split(",") if g.strip()]
    if "$default" not in {g.casefold() for g in groups}:  # consumer groups are case-insensitive
        groups.append("$Default")
    server = EmulatorServer(args.data_dir, parse_hubs(args.hubs), groups, limiter, keys, args.fsync)
    await server.start(
        args.host, args.port, args.admin_port, args.ws_port,
        tls=tls_context(args), tls_port=args.tls_port, wss_port=args.wss_port,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("homesec.emulator").info("shutting down")
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
