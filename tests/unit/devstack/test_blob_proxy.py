"""The counting Blob proxy (homesec_devstack.blob_proxy): request classification by the consumer's layout,
and counting at the wire with keep-alive, Content-Length and chunked bodies."""

from __future__ import annotations

import asyncio

import pytest
from homesec_devstack.blob_proxy import BlobProxy, classify

A = "/devstoreaccount1"
CP = f"{A}/checkpoints/127.0.0.1%3A5672/telemetry/rollups"


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("PUT", f"{A}/rollups/state/telemetry/rollups/7.state", ("state snapshot", "write")),
        ("GET", f"{A}/rollups/state/telemetry/rollups/7.state", ("state snapshot", "read")),
        ("PUT", f"{A}/rollups/homes/home-000001/status.json", ("status view", "write")),
        ("GET", f"{A}/rollups/homes/home-000001/hourly/2026-12-07.json", ("day blob", "read")),
        ("PUT", f"{A}/rollups/homes%2Fhome-000001%2Fhourly%2F2026-12-07.json", ("day blob", "write")),
        ("PUT", f"{CP}/checkpoint/3?comp=metadata", ("checkpoint", "write")),
        ("PUT", f"{CP}/ownership/3?comp=metadata", ("ownership", "write")),
        (
            "GET",
            f"{A}/checkpoints?restype=container&comp=list&prefix=127.0.0.1%3A5672%2Ftelemetry%2Frollups"
            "%2Fownership%2F&include=metadata",
            ("ownership", "list"),
        ),
        (
            "GET",
            f"{A}/checkpoints?restype=container&comp=list&prefix=x%2Fcheckpoint%2F",
            ("checkpoint", "list"),
        ),
        (
            "GET",
            f"{A}/rollups?restype=container&comp=list&prefix=members%2Ftelemetry%2Frollups%2F"
            "&include=metadata",
            ("peer directory", "list"),
        ),
        ("PUT", f"{A}/rollups/members/telemetry/rollups/abc", ("peer directory", "write")),
        ("DELETE", f"{A}/rollups/members/telemetry/rollups/abc", ("peer directory", "delete")),
        ("PUT", f"{A}/deadletters/3/00000000000000000012.json", ("dead letter", "write")),
        ("PUT", f"{A}/rollups?restype=container", ("container", "write")),
        ("GET", f"{A}/rollups?restype=container&comp=list", ("other", "list")),
        ("GET", f"{A}/rollups/something-else.json", ("other", "read")),
        ("GET", f"{A}?comp=properties&restype=service", ("other", "read")),
        ("GET", "/otheraccount/rollups/homes/h/status.json", ("other", "read")),
    ],
)
def test_classify(method: str, target: str, expected: tuple[str, str]) -> None:
    assert classify(method, target) == expected


async def test_counts_requests_at_the_wire_and_forwards_them_unchanged() -> None:
    received: list[bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
            if data.endswith(b"\r\n\r\n") or data.endswith(b"abc") or data.endswith(b"0\r\n\r\n"):
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    up = await asyncio.start_server(upstream, "127.0.0.1", 0)
    proxy = BlobProxy(up.sockets[0].getsockname()[1])
    front = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    async with up, front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        requests = [
            f"PUT {A}/rollups/homes/h/status.json HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            f"GET {A}/rollups/homes/h/hourly/2026-12-07.json HTTP/1.1\r\n\r\n",
            f"PUT {A}/rollups/state/t/g/0.state HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n",
        ]
        for request in requests:  # one keep-alive connection, one request at a time
            writer.write(request.encode())
            await writer.drain()
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 201")
        writer.close()
        await asyncio.sleep(0.05)
    assert proxy.counts.doc() == {
        "requests": {"status view|write|PUT": 1, "day blob|read|GET": 1, "state snapshot|write|PUT": 1},
        "bytes": {"status view|write|PUT": 3, "day blob|read|GET": 0, "state snapshot|write|PUT": 5},
    }
    assert b"".join(received) == "".join(requests).encode()


async def test_a_stall_holds_requests_unanswered_until_it_ends() -> None:
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    up = await asyncio.start_server(upstream, "127.0.0.1", 0)
    proxy = BlobProxy(up.sockets[0].getsockname()[1])
    front = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    stats = await asyncio.start_server(proxy.stats, "127.0.0.1", 0)
    async with up, front, stats:
        r, w = await asyncio.open_connection("127.0.0.1", stats.sockets[0].getsockname()[1])
        w.write(b"POST /stall?seconds=0.6 HTTP/1.1\r\n\r\n")
        assert (await r.read()).startswith(b"HTTP/1.1 200")
        reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(f"GET {A}/rollups/homes/h/status.json HTTP/1.1\r\n\r\n".encode())
        answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        done, _ = await asyncio.wait({answer}, timeout=0.3)
        assert not done  # hung: no answer while the stall lasts
        assert (await answer).startswith(b"HTTP/1.1 200")
        assert loop.time() - started >= 0.55
        writer.close()
