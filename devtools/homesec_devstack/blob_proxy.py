"""Blob requests counted at the wire: a reverse proxy on loopback in front of Azurite that classifies every
HTTP request by what it touches in the consumer's layout (docs/consumer.md) and by method, then forwards it
unchanged. Point a service's ``BlobEndpoint`` at the proxy's port; read the counts from its stats port
(``GET /``: JSON ``{"requests": {"<kind>|<action>|<METHOD>": n}, "bytes": {...}}``, request body bytes).
``POST /stall?seconds=N`` on the stats port makes the proxy hang for N seconds: every request that arrives
meanwhile waits, unanswered, until the stall ends (a Blob endpoint that stops answering), then goes on.

``python -m homesec_devstack.blob_proxy --upstream-port 10000 --port 10100 --stats-port 10101``
(``BlobProxyProcess`` starts it as a child process, as the benchmarks do).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from homesec_devstack.procs import ManagedProcess, free_port
from homesec_devstack.serving import run_forever

KINDS = ("state snapshot", "status view", "day blob", "checkpoint", "ownership", "peer directory",
         "dead letter", "container", "other")  # fmt: skip


@dataclass(frozen=True, slots=True)
class BlobLayout:
    """The account and container names the services use (their defaults)."""

    account: str = "devstoreaccount1"
    rollups: str = "rollups"
    checkpoints: str = "checkpoints"
    deadletters: str = "deadletters"


def _action(method: str) -> str:
    if method in ("GET", "HEAD"):
        return "read"
    return "delete" if method == "DELETE" else "write"


def _blob_kind(container: str, blob: str, layout: BlobLayout) -> str:
    if container == layout.deadletters:
        return "dead letter"
    if container == layout.checkpoints:
        found = [kind for kind in ("ownership", "checkpoint") if f"/{kind}/" in blob]
        return found[0] if found else "other"
    rules = (
        (blob.startswith("state/") and blob.endswith(".state"), "state snapshot"),
        (blob.startswith("members/"), "peer directory"),
        (blob.startswith("homes/") and blob.endswith("/status.json"), "status view"),
        (blob.startswith("homes/") and "/hourly/" in blob, "day blob"),
    )
    return next((kind for matched, kind in rules if matched and container == layout.rollups), "other")


def _list_kind(container: str, prefix: str, layout: BlobLayout) -> str:
    if container == layout.rollups:
        for start, kind in (
            ("members/", "peer directory"),
            ("state/", "state snapshot"),
            ("homes/", "other"),
        ):
            if prefix.startswith(start):
                return kind
        return "other"
    return _blob_kind(container, prefix, layout)


def classify(method: str, target: str, layout: BlobLayout = BlobLayout()) -> tuple[str, str]:
    """``(kind, action)`` of a request line's method and target (path-style URL, as Azurite takes it).
    Actions: ``read`` (GET, HEAD), ``write`` (PUT, POST, PATCH), ``delete``, ``list`` (a container listing;
    its kind from the listed prefix)."""
    url = urlsplit(target)
    parts = unquote(url.path).lstrip("/").split("/", 2)
    if len(parts) < 2 or parts[0] != layout.account or not parts[1]:
        return "other", _action(method)
    container, blob = parts[1], parts[2] if len(parts) > 2 else ""
    if blob:
        return _blob_kind(container, blob, layout), _action(method)
    query = parse_qs(url.query)
    if query.get("comp") == ["list"]:
        return _list_kind(container, query.get("prefix", [""])[0], layout), "list"
    return "container", _action(method)


class Counts:
    """Requests and request body bytes by ``kind|action|METHOD``."""

    def __init__(self, layout: BlobLayout) -> None:
        self.layout = layout
        self.requests: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    def add(self, method: str, target: str, body_bytes: int) -> None:
        kind, action = classify(method, target, self.layout)
        key = f"{kind}|{action}|{method}"
        self.requests[key] += 1
        self.bytes[key] += body_bytes

    def doc(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "bytes": dict(self.bytes)}


async def _copy_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]
) -> int:
    """Forward one request's body (Content-Length or chunked); its size in bytes."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        size = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            n = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if n == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    writer.write(trailer)
                writer.write(b"\r\n")
                return size
            writer.write(await reader.readexactly(n + 2))
            size += n
    left = size = int(headers.get("content-length", "0") or 0)
    while left > 0:
        chunk = await reader.read(min(left, 1 << 16))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", left)
        writer.write(chunk)
        left -= len(chunk)
        await writer.drain()
    return size


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


class BlobProxy:
    """The proxy and its stats listener, in this event loop."""

    def __init__(self, upstream_port: int, layout: BlobLayout = BlobLayout()) -> None:
        self.upstream_port = upstream_port
        self.counts = Counts(layout)
        self.stalled_until = 0.0  # event-loop time

    async def _stall(self) -> None:
        left = self.stalled_until - asyncio.get_running_loop().time()
        if left > 0:
            await asyncio.sleep(left)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        back = asyncio.create_task(_pipe(up_reader, writer))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)
                }
                await self._stall()
                up_writer.write(head)
                size = await _copy_body(reader, up_writer, headers)
                await up_writer.drain()
                self.counts.add(method, target, size)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(OSError):
                up_writer.close()
            await back
            with contextlib.suppress(OSError):
                writer.close()

    async def stats(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            head = await reader.readuntil(b"\r\n\r\n")
            method, target = head.decode("latin-1").split(" ")[:2]
            if method == "POST" and urlsplit(target).path == "/stall":
                seconds = float(parse_qs(urlsplit(target).query).get("seconds", ["0"])[0])
                self.stalled_until = asyncio.get_running_loop().time() + seconds
            body = orjson.dumps(self.counts.doc())
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
            await writer.drain()
        writer.close()

    async def serve(self, port: int, stats_port: int) -> None:
        proxy = await asyncio.start_server(self.handle, "127.0.0.1", port)
        stats = await asyncio.start_server(self.stats, "127.0.0.1", stats_port)
        async with proxy, stats:
            await asyncio.gather(proxy.serve_forever(), stats.serve_forever())


class BlobProxyProcess:
    """``python -m homesec_devstack.blob_proxy`` in front of Azurite on ``upstream_port``; stopped on exit."""

    def __init__(self, upstream_port: int, log_dir: Path | None = None) -> None:
        self.port, self.stats_port = free_port(), free_port()
        args = ["--upstream-port", str(upstream_port), "--port", str(self.port), "--stats-port",
                str(self.stats_port)]  # fmt: skip
        self.process = ManagedProcess.python_module("blob-proxy", "homesec_devstack.blob_proxy", args,
                                                    log_dir=log_dir)  # fmt: skip

    def start(self) -> BlobProxyProcess:
        self.process.start()
        self.process.wait_tcp(self.port, owned=True)
        self.process.wait_tcp(self.stats_port, owned=True)
        return self

    def stop(self) -> None:
        self.process.stop(grace=5)

    def counts(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/", timeout=10) as resp:
            doc: dict[str, Any] = orjson.loads(resp.read())
            return doc

    def stall(self, seconds: float) -> None:
        """Hang every Blob request for ``seconds`` from now (those arriving meanwhile wait until then)."""
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.stats_port}/stall?seconds={seconds}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
            pass

    def __enter__(self) -> BlobProxyProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats-port", type=int, required=True)
    args = parser.parse_args()
    proxy = BlobProxy(args.upstream_port)
    run_forever(proxy.serve(args.port, args.stats_port))


if __name__ == "__main__":
    main()
