"""A round-robin TCP front for several producer processes on loopback: what a Kubernetes Service does for
the pods behind it. Each client connection goes to the next *ready* backend that accepts one (a backend
that refuses, being restarted, is skipped), then bytes flow both ways unchanged until either side closes.
HTTP keep-alive connections therefore stay on one backend until it closes them, as through a Service.

Readiness is polled like the kubelet's probe feeds a Service's endpoints: ``GET /readyz`` on each
backend's admin port every ``probe_interval`` seconds; a backend counts while it answers 200, and a
connection with no ready backend is closed at once (a Service without endpoints). Without admin ports
every backend counts as ready.

``python -m homesec_devstack.front --port 8080 --backend 8180:9190 --backend 8181:9191`` (API port, then
admin port; ``FrontProcess`` starts it as a child process). Its stats port answers ``GET /`` with JSON
``{"connections": {"<port>": n}, "refused": {"<port>": n}, "unavailable": n, "ready": ["<port>", ...]}``
(``unavailable``: connections with no backend to go to).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from homesec_devstack.procs import ManagedProcess, free_port
from homesec_devstack.serving import run_forever


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


async def _ready(admin_port: int, timeout: float) -> bool:
    """Whether ``GET /readyz`` on ``admin_port`` answers 200 within ``timeout`` seconds."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", admin_port), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), timeout)
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


class Front:
    """The front's connection handler and stats, in this event loop. ``backends``: API port -> admin port
    (None: not probed, always ready)."""

    def __init__(self, backends: dict[int, int | None], probe_interval: float = 0.5) -> None:
        self.backends = backends
        self.probe_interval = probe_interval
        self.ready = {port for port, admin in backends.items() if admin is None}
        self._next = 0
        self.connections: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.unavailable = 0

    async def probe(self) -> None:
        """Poll every probed backend's readiness until cancelled."""
        probed = {port: admin for port, admin in self.backends.items() if admin is not None}
        while True:
            answers = await asyncio.gather(*(_ready(a, self.probe_interval) for a in probed.values()))
            for port, ok in zip(probed, answers, strict=True):
                (self.ready.add if ok else self.ready.discard)(port)
            await asyncio.sleep(self.probe_interval)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        ports = [port for port in self.backends if port in self.ready]
        for _ in range(len(ports)):
            port = ports[self._next % len(ports)]
            self._next += 1
            try:
                pair = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                self.refused[str(port)] += 1
                continue
            self.connections[str(port)] += 1
            return pair
        self.unavailable += 1
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def doc(self) -> dict[str, Any]:
        return {"connections": dict(self.connections), "refused": dict(self.refused),
                "unavailable": self.unavailable, "ready": sorted(map(str, self.ready))}  # fmt: skip

    async def stats(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await reader.readuntil(b"\r\n\r\n")
            body = orjson.dumps(self.doc())
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
            await writer.drain()
        writer.close()

    async def serve(self, port: int, stats_port: int) -> None:
        front = await asyncio.start_server(self.handle, "127.0.0.1", port, backlog=1024)
        stats = await asyncio.start_server(self.stats, "127.0.0.1", stats_port)
        async with front, stats:
            await asyncio.gather(front.serve_forever(), stats.serve_forever(), self.probe())


class FrontProcess:
    """``python -m homesec_devstack.front`` on free ports in front of ``backends`` (API port -> admin port,
    or None); stopped on exit."""

    def __init__(self, backends: dict[int, int | None], log_dir: Path | None = None) -> None:
        self.port, self.stats_port = free_port(), free_port()
        self.backends = len(backends)
        args = ["--port", str(self.port), "--stats-port", str(self.stats_port)]
        for port, admin in backends.items():
            args += ["--backend", str(port) if admin is None else f"{port}:{admin}"]
        self.process = ManagedProcess.python_module("front", "homesec_devstack.front", args, log_dir=log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> FrontProcess:
        """Start it and wait until its first probes found every backend ready (no connection is closed
        for want of a backend while they run)."""
        self.process.start()
        self.process.wait_tcp(self.port, owned=True)
        self.process.wait_tcp(self.stats_port, owned=True)
        deadline = time.monotonic() + timeout
        while len(self.stats()["ready"]) < self.backends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"front: backends not ready after {timeout} s: {self.stats()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        self.process.stop(grace=5)

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/", timeout=10) as resp:
            doc: dict[str, Any] = orjson.loads(resp.read())
            return doc


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats-port", type=int, required=True)
    parser.add_argument(
        "--backend", action="append", required=True, help="a backend: API port[:admin port for /readyz]"
    )
    args = parser.parse_args(argv)
    backends: dict[int, int | None] = {}
    for backend in args.backend:
        port, _, admin = backend.partition(":")
        backends[int(port)] = int(admin) if admin else None
    front = Front(backends)
    run_forever(front.serve(args.port, args.stats_port))


if __name__ == "__main__":
    main()
