"""A round-robin TCP front for several producer processes on loopback: what a Kubernetes Service does for
the pods behind it. Each client connection goes to the next backend that accepts one (a backend that
refuses, being restarted, is skipped), then bytes flow both ways unchanged until either side closes. HTTP
keep-alive connections therefore stay on one backend until it closes them, as through a Service.

``python -m homesec_devstack.front --port 8080 --backend 8180 --backend 8181`` (``FrontProcess`` starts it
as a child process). Its stats port answers ``GET /`` with JSON ``{"connections": {"<port>": n},
"refused": {"<port>": n}, "unavailable": n}`` (connections with no backend to go to).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from homesec_devstack.procs import ManagedProcess, free_port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


class Front:
    """The front's connection handler and stats, in this event loop."""

    def __init__(self, backends: Sequence[int]) -> None:
        self.backends = list(backends)
        self._next = 0
        self.connections: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.unavailable = 0

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
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
                "unavailable": self.unavailable}  # fmt: skip

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
            await asyncio.gather(front.serve_forever(), stats.serve_forever())


class FrontProcess:
    """``python -m homesec_devstack.front`` on free ports in front of ``backends``; stopped on exit."""

    def __init__(self, backends: Sequence[int], log_dir: Path | None = None) -> None:
        self.port, self.stats_port = free_port(), free_port()
        args = ["--port", str(self.port), "--stats-port", str(self.stats_port)]
        for backend in backends:
            args += ["--backend", str(backend)]
        self.process = ManagedProcess.python_module("front", "homesec_devstack.front", args, log_dir=log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FrontProcess:
        self.process.start()
        self.process.wait_tcp(self.port, owned=True)
        self.process.wait_tcp(self.stats_port, owned=True)
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
    parser.add_argument("--backend", type=int, action="append", required=True, help="a backend's port")
    args = parser.parse_args(argv)
    front = Front(args.backend)
    try:
        import uvloop

        uvloop.run(front.serve(args.port, args.stats_port))
    except ImportError:  # pragma: no cover - uvloop is a dependency of the services
        asyncio.run(front.serve(args.port, args.stats_port))
    except KeyboardInterrupt:  # pragma: no cover
        pass


if __name__ == "__main__":
    main()
