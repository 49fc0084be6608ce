"""The operator CLI (``python -m homesec_consumer.cli``) against a small canned HTTP server: clear errors
for consumers that do not answer and homes that do not exist, no traceback on Ctrl-C, a compact home."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from homesec_consumer import cli

from .test_api import READ, app_for, filled_store

METRICS = b"""# HELP homesec_consumer_events_received_total x
homesec_consumer_events_received_total 17.0
homesec_consumer_readings_rolled_up_total 17.0
homesec_consumer_dead_letters_total{reason="invalid"} 2.0
homesec_consumer_dead_letters_total{reason="undecodable"} 1.0
homesec_consumer_partition_lag_events{partition="0"} 4.0
homesec_consumer_partitions_owned 1.0
"""
Routes = dict[str, tuple[int, bytes]]
SEEN_AUTHORIZATION: list[str | None] = []  # the Authorization header of each request the server got


def serve(routes: Routes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            SEEN_AUTHORIZATION.append(self.headers.get("Authorization"))
            status, body = routes.get(self.path, (404, b'{"detail": "Not Found"}'))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main_interrupted(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except KeyboardInterrupt:  # would also end this test session
        pytest.fail("KeyboardInterrupt escaped main()")


@pytest.fixture
def routes() -> Routes:
    return {"/metrics": (200, METRICS)}


@pytest.fixture
def consumer(routes: Routes) -> Iterator[str]:
    yield from serve(routes)


@pytest.fixture
def not_a_consumer() -> Iterator[str]:
    yield from serve({"/metrics": (200, b"python_gc_objects_collected_total 1.0\n")})


@pytest.fixture
def closed() -> str:
    with socket.socket() as sock:  # a port nothing listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_progress_sums_what_the_consumers_answer(consumer: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["progress", "--url", consumer, "--url", consumer + "/"]) == 0
    out, err = capsys.readouterr()
    assert "received=34 " in out and "rolled_up=34 " in out and "dead_letters=6 " in out
    assert " lag=8 " in out and "partitions=2 " in out and not err


def test_progress_names_each_consumer_that_does_not_answer(
    consumer: str, closed: str, not_a_consumer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["progress", "--url", closed, "--url", not_a_consumer]) == 1  # none answers
    out, err = capsys.readouterr()
    assert out == ""  # no zeros that look like a quiet pipeline
    assert f"error: consumer {closed} unreachable: connection refused" in err
    assert f"error: consumer {not_a_consumer} unreachable: it answers, but /metrics has no" in err
    assert cli.main(["progress", "--url", consumer, "--url", "127.0.0.1:8081"]) == 0  # one answers
    out, err = capsys.readouterr()
    assert "rolled_up=17 " in out and "error: consumer 127.0.0.1:8081 unreachable: unknown url type" in err
    assert cli.progress_line([consumer, closed]).endswith(f"  DOWN: {closed} (connection refused)")
    assert cli.progress_line([closed]) == f"no consumer answers: {closed} (connection refused)"


def test_watch_says_who_is_down_on_every_line_and_ctrl_c_ends_it_quietly(
    consumer: str, closed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = []

    def sleep(seconds: float) -> None:
        ticks.append(seconds)
        if len(ticks) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("homesec_consumer.cli.time.sleep", sleep)
    assert main_interrupted(["progress", "--url", consumer, "--url", closed, "--watch", "2"]) == 130
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.endswith(f"DOWN: {closed} (connection refused)") for line in lines)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_ctrl_c_in_a_real_process_prints_no_traceback(closed: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "homesec_consumer.cli", "progress", "--url", closed, "--watch", "0.1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        assert "no consumer answers" in proc.stdout.readline()  # running, inside the loop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


@pytest.fixture
async def home_routes(routes: Routes) -> Routes:
    app = app_for(*await filled_store())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=READ) as client:
        for path in ("/v1/homes/h1/status", "/v1/homes/h1/history?hours=24"):
            routes[path] = (200, (await client.get(path)).content)
    routes["/v1/homes/h2/status"] = (503, b'{"detail": "rollup store unavailable"}')
    return routes


async def test_home_prints_compactly_and_json_prints_everything(
    home_routes: Routes, consumer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["home", "h1", "--url", consumer]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "home h1  watermark 2026-11-25T11:10:00.000Z  lost 64  active alarms: none"
    assert lines[1] == "sensors (1):"
    assert lines[2].split() == [
        "door-1", "door", "state=open", "value=-", "seq=80", "last", "2026-11-25T11:10:00.000Z", "lost", "64"
    ]  # fmt: skip
    assert lines[3].startswith("history 2026-11-24T12:00:00.000Z .. 2026-11-25T11:00:00.000Z: 17 readings")
    assert [line.split()[:5] for line in lines[4:]] == [
        ["2026-11-25T09:00Z", "total", "2", "door=2", "alarms"],
        ["2026-11-25T10:00Z", "total", "12", "door=12", "alarms"],
        ["2026-11-25T11:00Z", "total", "3", "door=3", "alarms"],
    ]
    assert cli.main(["home", "h1", "--url", consumer, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"]["sensors"][0]["sensor_id"] == "door-1"
    assert len(doc["history"]["hours"][0]["minutes"]) == 60


async def test_home_sends_the_read_token(
    home_routes: Routes, consumer: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    SEEN_AUTHORIZATION.clear()
    assert cli.main(["home", "h1", "--url", consumer, "--token", "tok-1"]) == 0
    monkeypatch.setenv("HOMESEC_READ_TOKEN", "tok-2")
    assert cli.main(["home", "h1", "--url", consumer]) == 0
    assert SEEN_AUTHORIZATION == ["Bearer tok-1"] * 2 + ["Bearer tok-2"] * 2
    capsys.readouterr()


async def test_home_errors_are_one_line_with_an_exit_code(
    home_routes: Routes, consumer: str, closed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["home", "nobody", "--url", consumer]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"error: unknown home 'nobody': the consumer at {consumer} has no rollup for it\n"
    assert cli.main(["home", "h2", "--url", consumer]) == 1
    assert capsys.readouterr().err.endswith("/h2/status answered HTTP 503: rollup store unavailable\n")
    assert cli.main(["home", "h1", "--url", closed]) == 1
    assert capsys.readouterr().err.startswith(f"error: consumer {closed}/v1/homes/h1/status unreachable: ")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["home", "h1", "--hours", "500"])
    assert exit_info.value.code == 2
    assert "not a number of hours from 1 to 168" in capsys.readouterr().err


def test_ctrl_c_during_home_prints_no_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(url: str, token: str | None = None) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_get", interrupted)
    assert main_interrupted(["home", "h1"]) == 130
    assert "Traceback" not in capsys.readouterr().err
