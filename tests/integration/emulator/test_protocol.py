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
        assert _open_session(sock)[0] == b"homesec-eventhubs-emulator"


def test_unknown_protocol_header_is_refused(emulator: EmulatorProcess) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(b"HTTP/1.1")
        assert _read_exact(sock, 8) == codec.AMQP_HEADER  # the header the server supports, then close
        assert sock.recv(1) == b""
    assert emulator.stats()["connections_open"] == 0


def _open_session(sock: socket.socket) -> list[object]:
    """AMQP header, open and begin, after SASL; returns the fields of the server's open frame."""
    sock.sendall(codec.AMQP_HEADER)
    assert _read_exact(sock, 8) == codec.AMQP_HEADER
    sock.sendall(codec.frame_bytes(0, codec.P.OpenFrame(
        container_id="raw", hostname="127.0.0.1", max_frame_size=65536, channel_max=1,
        idle_timeout=None, outgoing_locales=None, incoming_locales=None, offered_capabilities=None,
        desired_capabilities=None, properties=None)))  # fmt: skip
    code, opened = _read_frame(sock)
    assert code == 0x10
    sock.sendall(codec.frame_bytes(0, codec.P.BeginFrame(
        remote_channel=None, next_outgoing_id=0, incoming_window=1000, outgoing_window=1000, handle_max=10,
        offered_capabilities=None, desired_capabilities=None, properties=None)))  # fmt: skip
    assert _read_frame(sock)[0] == 0x11
    return opened


@pytest.mark.parametrize(("client_is_receiver", "address", "entity"), [
    (False, "amqps://127.0.0.1/nosuchhub", "nosuchhub"),
    (True, "amqps://127.0.0.1/telemetry/ConsumerGroups/nosuchgroup/Partitions/0",
     "telemetry/ConsumerGroups/nosuchgroup/Partitions/0"),
])  # fmt: skip
def test_refused_attach_replies_with_a_null_terminus_then_detaches_with_the_error(
    emulator: EmulatorProcess, client_is_receiver: bool, address: str, entity: str
) -> None:
    """As Event Hubs: the refusing side's terminus is null (pyamqp fails the open on it), then the error."""
    from azure.eventhub._pyamqp.endpoints import Source, Target

    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        _open_session(sock)
        sock.sendall(codec.frame_bytes(0, codec.P.AttachFrame(
            name=b"l1", handle=0, role=client_is_receiver, send_settle_mode=0, rcv_settle_mode=0,
            source=Source(address=address if client_is_receiver else "l1-source"),  # type: ignore[call-arg]
            target=Target(address="l1-target" if client_is_receiver else address),  # type: ignore[call-arg]
            unsettled=None, incomplete_unsettled=None,
            initial_delivery_count=None if client_is_receiver else 0, max_message_size=None,
            offered_capabilities=None, desired_capabilities=None, properties=None)))  # fmt: skip
        code, attach = _read_frame(sock)
        assert code == 0x12 and attach[2] is (not client_is_receiver)
        ours, theirs = (attach[5], attach[6]) if client_is_receiver else (attach[6], attach[5])
        assert ours is None
        assert theirs is not None
        code, detach = _read_frame(sock)
        assert code == 0x16 and detach[0] == 0 and detach[1] is True
        condition, description = detach[2][0], detach[2][1]  # type: ignore[index]
        assert condition == b"amqp:not-found"
        assert description == f"The messaging entity '{entity}' could not be found.".encode()
