"""The round-robin TCP front (homesec_devstack.front): connections alternate over the backends, a backend
that refuses connections is skipped, and bytes flow both ways unchanged."""

from __future__ import annotations

import asyncio

from homesec_devstack.front import Front
from homesec_devstack.procs import free_port


async def _echo_server(tag: bytes) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(tag + data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _ask(port: int, text: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text)
    await writer.drain()
    answer = await reader.read(1024)
    writer.close()
    return answer


async def test_round_robin_over_backends_skipping_one_that_refuses() -> None:
    a, b = await _echo_server(b"a:"), await _echo_server(b"b:")
    down = free_port()  # nothing listens there: a backend being restarted
    ports = [a.sockets[0].getsockname()[1], down, b.sockets[0].getsockname()[1]]
    front = Front(ports)
    server = await asyncio.start_server(front.handle, "127.0.0.1", 0)
    async with a, b, server:
        port = server.sockets[0].getsockname()[1]
        answers = [await _ask(port, b"ping") for _ in range(4)]
    assert answers == [b"a:ping", b"b:ping", b"a:ping", b"b:ping"]
    assert front.doc()["connections"] == {str(ports[0]): 2, str(ports[2]): 2}
    assert front.doc()["refused"] == {str(down): 2}


async def test_no_backend_closes_the_connection() -> None:
    front = Front([free_port()])
    server = await asyncio.start_server(front.handle, "127.0.0.1", 0)
    async with server:
        assert await _ask(server.sockets[0].getsockname()[1], b"ping") == b""
    assert front.doc()["unavailable"] == 1
