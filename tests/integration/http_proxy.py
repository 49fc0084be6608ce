"""A minimal HTTP proxy on loopback for the tests: ``CONNECT host:port`` tunnels and absolute-form requests
(``GET http://host:port/path``, how aiohttp sends a plain ``ws://`` upgrade through a proxy), then bytes both
ways. Counts the tunnels it opened, so a test can tell its traffic went through it. Targets must be on
127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class LoopbackProxy:
    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> LoopbackProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, version = head.split(b"\r\n", 1)[0].decode().split(" ")
            if method == "CONNECT":
                host, port, rest = *target.rsplit(":", 1), b""
            else:  # absolute form: forward the request with its path only
                url = urlsplit(target)
                host, port = url.hostname or "", str(url.port or 80)
                rest = f"{method} {url.path or '/'}{'?' + url.query if url.query else ''} {version}".encode()
                rest += b"\r\n" + head.split(b"\r\n", 1)[1]
            if host != "127.0.0.1":
                raise ConnectionRefusedError(f"not a loopback target: {host}")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            writer.close()
            return
        self.tunnels.append(f"{method} {host}:{port}")
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(rest)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()
