"""Slow clients cannot hold the producer's slots: the real process over real sockets, DEFAULT timeouts.

Only ``MAX_CONCURRENT_REQUESTS`` is lowered (8, so eight clients fill every slot; uvicorn's backstop is then
32 connections); the header and body deadlines are the documented defaults (docs/producer.md).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_producer.auth import TokenAuthority
from homesec_producer.settings import ProducerSettings

from tests.integration.producer.harness import AUTH_KEYS, ProducerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOTS = 8
HEADER_TIMEOUT = ProducerSettings.model_fields["header_read_timeout_seconds"].default
BODY_TIMEOUT = ProducerSettings.model_fields["body_read_timeout_seconds"].default
MARGIN = 3.0  # scheduling slack on a shared machine


def _token() -> str:
    authority = TokenAuthority({k: v.encode() for k, v in AUTH_KEYS.items()})
    return authority.issue("slow", ["home-1"], datetime.now(UTC) + timedelta(hours=1))


def _reading_body() -> bytes:
    now = datetime.now(UTC).isoformat()
    doc = {
        "readings": [
            {"home_id": "home-1", "sensor_id": "s", "sensor_type": "smoke", "ts": now, "state": "ok"}
        ]
    }
    return json.dumps(doc).encode()


def _post(url: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {_token()}", "content-type": "application/json"}
    return httpx.post(f"{url}/v1/readings", content=_reading_body(), headers=headers, timeout=30)


class Trickle(threading.Thread):
    """A client sending ``head`` then one more byte every second (``every`` 0: nothing more), until the
    server answers or closes; ``answer`` is what it got, ``after`` how long after ``head`` it came."""

    def __init__(self, port: int, head: bytes, every: float = 1.0, limit: float = 90.0) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.head, self.every, self.limit = head, every, limit
        self.answer: bytes | None = None
        self.after = float("inf")

    def run(self) -> None:
        started = time.monotonic()
        sent_at = started
        self.sock.settimeout(0.2)
        try:
            if self.head:
                self.sock.sendall(self.head)
            while time.monotonic() - started < self.limit:
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    if self.every and time.monotonic() - sent_at >= self.every:
                        self.sock.sendall(b"x")
                        sent_at = time.monotonic()
                    continue
                self.answer, self.after = data, time.monotonic() - started
                return
        except OSError:  # reset by the server: closed
            self.answer, self.after = b"", time.monotonic() - started
        finally:
            self.sock.close()


@pytest.fixture
def producer(emulator: EmulatorProcess, tmp_path: Path) -> Iterator[ProducerProcess]:
    proc = ProducerProcess(emulator, tmp_path, env={"MAX_CONCURRENT_REQUESTS": str(SLOTS)}, fast=False)
    try:
        yield proc.start(timeout=60)
    finally:
        proc.proc.stop()


def _started(clients: list[Trickle]) -> list[Trickle]:
    for client in clients:
        client.start()
    return clients


def test_slow_bodies_get_408_within_the_body_timeout_and_free_their_slots(producer: ProducerProcess) -> None:
    head = (
        f"POST /v1/readings HTTP/1.1\r\nhost: producer\r\nauthorization: Bearer {_token()}\r\n"
        "content-type: application/json\r\ncontent-length: 100000\r\n\r\n{"
    ).encode()
    slow = _started([Trickle(producer.port, head) for _ in range(SLOTS)])
    time.sleep(1.0)
    held = _post(producer.url)
    assert held.status_code == 503 and held.json()["error"] == "shed", held.text  # every slot is held
    for client in slow:
        client.join(BODY_TIMEOUT + 2 * MARGIN)
    answers = [(c.answer or b"")[:12] for c in slow]
    assert answers == [b"HTTP/1.1 408"] * SLOTS, answers
    assert max(c.after for c in slow) <= BODY_TIMEOUT + MARGIN
    served = _post(producer.url)
    assert served.status_code == 202, served.text
    assert producer.metric('homesec_producer_request_timeouts_total{phase="body"}') == SLOTS


def test_slow_and_idle_headers_are_cut_off_within_the_header_timeout(producer: ProducerProcess) -> None:
    """Connections that never finish their headers (or send nothing) fill uvicorn's backstop (4 x slots):
    closed after the header timeout, then real requests are served."""
    partial = b"POST /v1/readings HTTP/1.1\r\nhost: producer\r\nx-slow: "
    backstop = 4 * SLOTS
    slow = _started([Trickle(producer.port, partial) for _ in range(backstop // 2)])
    idle = _started([Trickle(producer.port, b"", every=0) for _ in range(backstop // 2)])
    time.sleep(1.0)
    assert _post(producer.url).status_code == 503  # uvicorn's backstop: every connection is taken
    for client in slow + idle:
        client.join(HEADER_TIMEOUT + 2 * MARGIN)
    assert [(c.answer or b"")[:12] for c in slow] == [b"HTTP/1.1 408"] * len(slow)
    assert [c.answer for c in idle] == [b""] * len(idle)  # closed without a word: nothing was asked
    assert max(c.after for c in slow + idle) <= HEADER_TIMEOUT + MARGIN
    served = _post(producer.url)
    assert served.status_code == 202, served.text
    assert producer.metric('homesec_producer_request_timeouts_total{phase="headers"}') == backstop
