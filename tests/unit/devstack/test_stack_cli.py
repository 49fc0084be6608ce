"""``make run``'s checks that need no stack: a taken port fails at once, readiness refuses an answer from a
process the stack did not start, each run starts from fresh data, and the printed ``curl``."""

from __future__ import annotations

import http.server
import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from homesec_devstack.devtoken import curl_example, status_curls
from homesec_devstack.procs import ManagedProcess, PortInUseError, free_port
from homesec_devstack.stack import check_ports, parse_args, prepare_data_dir
from homesec_producer.auth import READ_AUDIENCE, TokenAuthority


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_taken_port_is_refused_with_its_number_and_free_ports(listening: int) -> None:
    ports = [str(free_port()) for _ in range(6)]
    args = parse_args(["--amqp-port", ports[0], "--admin-port", ports[1], "--blob-port", ports[2],
                       "--consumer-port", ports[3], "--producer-admin-port", ports[4],
                       "--consumer-admin-port", ports[5], "--producer-port", str(listening)])  # fmt: skip
    with pytest.raises(PortInUseError) as info:
        check_ports(args)
    assert f"port {listening} (producer)" in str(info.value)
    assert "--free-ports" in str(info.value)
    check_ports(parse_args(["--free-ports"]))  # free ones pass


def test_a_port_named_twice_is_refused() -> None:
    port = str(free_port())
    with pytest.raises(PortInUseError, match="--free-ports"):
        check_ports(parse_args(["--amqp-port", port, "--admin-port", port]))


def test_readiness_refuses_an_answer_from_a_process_it_did_not_start(tmp_path: Path) -> None:
    """The first stack answers on the port while the second's process (alive, still starting) does not
    own it: the wait must not report the second stack ready."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    impostor = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    port = impostor.server_address[1]
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    child = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], log_dir=tmp_path)
    try:
        child.start()
        with pytest.raises(PortInUseError, match=f"port {port}"):
            child.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=5, owned=True)
        with pytest.raises(PortInUseError, match=f"port {port}"):
            child.wait_tcp(port, timeout=5, owned=True)
    finally:
        child.stop(grace=1)
        impostor.shutdown()
        impostor.server_close()


def test_readiness_accepts_the_child_that_listens(tmp_path: Path) -> None:
    port = free_port()
    code = (
        "import http.server as h; "
        f"h.ThreadingHTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).serve_forever()"
    )
    child = ManagedProcess("server", [sys.executable, "-c", code], cwd=tmp_path, log_dir=tmp_path)
    try:
        child.start().wait_http(f"http://127.0.0.1:{port}/", timeout=20, owned=True)
    finally:
        child.stop(grace=1)


def test_each_run_starts_from_fresh_data_unless_kept(tmp_path: Path) -> None:
    for name in ("eventhubs", "azurite", "logs"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "old").write_text("previous run")
    (tmp_path / "mine.txt").write_text("not the stack's")
    prepare_data_dir(tmp_path, keep=True)
    assert (tmp_path / "azurite" / "old").exists()
    prepare_data_dir(tmp_path, keep=False)
    assert not any((tmp_path / name / "old").exists() for name in ("eventhubs", "azurite", "logs"))
    assert (tmp_path / "logs").is_dir()
    assert (tmp_path / "mine.txt").exists(), "only what the stack writes is removed"
    assert parse_args([]).keep_data is False
    assert parse_args(["--keep-data"]).keep_data is True


def test_status_curls_carry_a_read_token_for_the_home() -> None:
    for line in status_curls("http://127.0.0.1:8081", "k" * 32):
        words = shlex.split(line)
        assert words[-1].startswith("http://127.0.0.1:8081/v1/homes/home-000001/")
        token = words[words.index("-H") + 1].removeprefix("authorization: Bearer ")
        scope = TokenAuthority({"dev": b"k" * 32}).verify(token, datetime.now(UTC), READ_AUDIENCE)
        assert scope.homes == {"home-000001"}


def test_curl_carries_a_token_the_producer_accepts_for_the_home() -> None:
    line = curl_example("http://127.0.0.1:8080", "k" * 32)
    words = shlex.split(line)
    assert words[:5] == ["curl", "-sS", "-X", "POST", "http://127.0.0.1:8080/v1/readings"]
    header = next(w for w in words if w.startswith("authorization: Bearer "))
    token = header.removeprefix("authorization: Bearer ")
    scope = TokenAuthority({"dev": b"k" * 32}).verify(token, datetime.now(UTC))
    assert "home-000001" in str(scope)
    assert '"home_id":"home-000001"' in line
