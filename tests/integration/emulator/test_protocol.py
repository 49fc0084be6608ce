"""Wire-level checks a non-SDK client would hit: SASL PLAIN and ANONYMOUS, header negotiation, bad headers."""

from __future__ import annotations

import socket

import pytest
from azure.eventhub._pyamqp._decode import decode_frame
from homesec_devstack.emulator import codec
from homesec_devstack.emulator_process import EmulatorProcess

pytestmark = pytest.mark.integration


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _read_frame(sock: socket.socket) -> tuple[int, list[object]]:
    header = _read_exact(sock, 8)
    size = int.from_bytes(header[:4], "big")
    code, fields = decode_frame(memoryview(_read_exact(sock, size - 8)))
    return code, fields


@pytest.mark.parametrize(("mechanism", "response"), [(b"PLAIN", b"\x00RootManageSharedAccessKey\x00secret"),
                                                      (b"ANONYMOUS", b"")])  # fmt: skip
def test_sasl_then_amqp_open(emulator: EmulatorProcess, mechanism: bytes, response: bytes) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(codec.SASL_HEADER)
        assert _read_exact(sock, 8) == codec.SASL_HEADER
        code, fields = _read_frame(sock)
        assert code == 0x40
        assert {b"PLAIN", b"ANONYMOUS"} <= set(fields[0])  # type: ignore[call-overload]
        init = codec.P.SASLInit(mechanism=mechanism, initial_response=response, hostname="127.0.0.1")
        sock.sendall(codec.frame_bytes(0, init, codec.FRAME_SASL))
        code, fields = _read_frame(sock)
        assert (code, fields[0]) == (0x44, 0)  # sasl-outcome: ok
        sock.sendall(codec.AMQP_HEADER)
        assert _read_exact(sock, 8) == codec.AMQP_HEADER
        sock.sendall(codec.frame_bytes(0, codec.P.OpenFrame(
            container_id="raw", hostname="127.0.0.1", max_frame_size=65536, channel_max=1,
            idle_timeout=None, outgoing_locales=None, incoming_locales=None, offered_capabilities=None,
            desired_capabilities=None, properties=None)))  # fmt: skip
        code, fields = _read_frame(sock)
        assert code == 0x10 and fields[0] == b"homesec-eventhubs-emulator"


def test_unknown_protocol_header_is_refused(emulator: EmulatorProcess) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(b"HTTP/1.1")
        assert _read_exact(sock, 8) == codec.AMQP_HEADER  # the header the server supports, then close
        assert sock.recv(1) == b""
    assert emulator.stats()["connections_open"] == 0
