"""The round-robin TCP front (homesec_devstack.front): connections alternate over the ready backends, a
backend that refuses connections or whose /readyz does not answer 200 is skipped, and bytes flow both ways
unchanged."""

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
    """The answer to ``text``; empty when the front closed the connection (or reset it: unread data)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(text)
        await writer.drain()
        return await reader.read(1024)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_round_robin_over_backends_skipping_one_that_refuses() -> None:
    a, b = await _echo_server(b"a:"), await _echo_server(b"b:")
    down = free_port()  # nothing listens there: a backend being restarted
    ports = [a.sockets[0].getsockname()[1], down, b.sockets[0].getsockname()[1]]
    front = Front(dict.fromkeys(ports))
    server = await asyncio.start_server(front.handle, "127.0.0.1", 0)
    async with a, b, server:
        port = server.sockets[0].getsockname()[1]
        answers = [await _ask(port, b"ping") for _ in range(4)]
    assert answers == [b"a:ping", b"b:ping", b"a:ping", b"b:ping"]
    assert front.doc()["connections"] == {str(ports[0]): 2, str(ports[2]): 2}
    assert front.doc()["refused"] == {str(down): 2}


async def test_no_backend_closes_the_connection() -> None:
    front = Front({free_port(): None})
    server = await asyncio.start_server(front.handle, "127.0.0.1", 0)
    async with server:
        assert await _ask(server.sockets[0].getsockname()[1], b"ping") == b""
    assert front.doc()["unavailable"] == 1


async def test_only_backends_whose_readyz_answers_200_get_connections() -> None:
    ready = {"a": True, "b": False}

    def probe_server(name: str) -> asyncio.Future[asyncio.Server]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n" if ready[name] else b"HTTP/1.1 503 Unavailable\r\n\r\n")
            await writer.drain()
            writer.close()

        return asyncio.ensure_future(asyncio.start_server(handle, "127.0.0.1", 0))

    a, b = await _echo_server(b"a:"), await _echo_server(b"b:")
    admin_a, admin_b = await probe_server("a"), await probe_server("b")
    port_a, port_b = a.sockets[0].getsockname()[1], b.sockets[0].getsockname()[1]
    front = Front({port_a: admin_a.sockets[0].getsockname()[1], port_b: admin_b.sockets[0].getsockname()[1]},
                  probe_interval=0.05)  # fmt: skip
    server = await asyncio.start_server(front.handle, "127.0.0.1", 0)
    probing = asyncio.create_task(front.probe())
    try:
        async with a, b, admin_a, admin_b, server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.sleep(0.3)
            assert [await _ask(port, b"x") for _ in range(3)] == [b"a:x"] * 3  # b is not ready
            ready["a"], ready["b"] = False, True  # a drains (SIGTERM), b became ready
            await asyncio.sleep(0.3)
            assert [await _ask(port, b"y") for _ in range(2)] == [b"b:y"] * 2
            ready["b"] = False  # no endpoint at all: the connection is closed
            await asyncio.sleep(0.3)
            assert await _ask(port, b"z") == b""
    finally:
        probing.cancel()
