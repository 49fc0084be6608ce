"""The WebSocket adapter of the emulator: write coalescing, order, back-pressure, close and abort."""

from __future__ import annotations

import asyncio

import pytest
from homesec_devstack.emulator.websocket import WebSocketTransport, offers_subprotocol


class FakeSink:
    """An in-memory WebSocket: records messages; ``gate`` holds sends until set (a slow peer)."""

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[bytes] = []
        self.closed = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = fail

    async def send_bytes(self, data: bytes) -> None:
        await self.gate.wait()
        if self.fail:
            raise ConnectionResetError("peer gone")
        self.messages.append(data)

    async def close(self) -> bool:
        self.closed = True
        return True


class FakeProtocol:
    def __init__(self) -> None:
        self.events: list[str] = []

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")


def _transport(sink: FakeSink) -> tuple[WebSocketTransport, FakeProtocol, list[str]]:
    proto, aborted = FakeProtocol(), []
    return WebSocketTransport(sink, proto, lambda: aborted.append("abort")), proto, aborted


async def test_writes_of_one_turn_become_one_message_in_order() -> None:
    sink = FakeSink()
    transport, _, _ = _transport(sink)
    writer = asyncio.create_task(transport.run_writer())
    for part in (b"AMQP", b"\x00\x01", b"\x00\x00", b"frame"):
        transport.write(part)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    transport.write(b"next")
    transport.close()
    await asyncio.wait_for(writer, 1)
    assert sink.messages == [b"AMQP\x00\x01\x00\x00frame", b"next"]
    assert sink.closed


async def test_close_flushes_queued_data_before_closing() -> None:
    sink = FakeSink()
    transport, _, _ = _transport(sink)
    transport.write(b"close-frame")
    transport.close()
    transport.write(b"after close is dropped")
    assert transport.is_closing()
    await asyncio.wait_for(transport.run_writer(), 1)
    assert sink.messages == [b"close-frame"]
    assert sink.closed


async def test_pause_above_high_water_and_resume_after_sending() -> None:
    sink = FakeSink()
    sink.gate.clear()  # the peer is slow
    transport, proto, _ = _transport(sink)
    transport.set_write_buffer_limits(high=100)
    writer = asyncio.create_task(transport.run_writer())
    transport.write(b"a" * 60)
    assert proto.events == []
    transport.write(b"b" * 60)
    assert proto.events == ["pause"]
    assert transport.get_write_buffer_size() == 120
    transport.write(b"c")  # still paused: no second pause
    assert proto.events == ["pause"]
    sink.gate.set()
    await asyncio.sleep(0.01)
    assert proto.events == ["pause", "resume"]
    assert b"".join(sink.messages) == b"a" * 60 + b"b" * 60 + b"c"
    transport.close()
    await asyncio.wait_for(writer, 1)


async def test_abort_drops_queued_data_and_the_socket() -> None:
    sink = FakeSink()
    transport, _, aborted = _transport(sink)
    transport.write(b"lost")
    transport.abort()
    await asyncio.wait_for(transport.run_writer(), 1)
    assert sink.messages == []
    assert aborted == ["abort"]


async def test_a_failed_send_ends_the_writer_quietly() -> None:
    sink = FakeSink(fail=True)
    transport, _, _ = _transport(sink)
    transport.write(b"x")
    await asyncio.wait_for(transport.run_writer(), 1)
    assert transport.is_closing()
    transport.write(b"ignored")
    assert transport.get_write_buffer_size() == 0


@pytest.mark.parametrize(
    ("header", "offered"),
    [("AMQPWSB10", True), ("chat, AMQPWSB10", True), ("chat", False), ("", False), (None, False)],
)
def test_subprotocol_offer(header: str | None, offered: bool) -> None:
    assert offers_subprotocol(header) is offered
