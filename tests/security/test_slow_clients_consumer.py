"""Slow clients cannot hold the consumer's API port: the real process over real sockets, DEFAULT timeouts.

The consumer runs with its documented header deadline and keep-alive timeout (docs/consumer.md); its
routes read no request body, so the rest of a body sent with a read is cut off by the header deadline too.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from homesec_consumer.settings import ConsumerSettings
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess

from tests.integration.consumer.harness import HUB, ConsumerProcess, Stack, dataset, publish
from tests.integration.producer.harness import operator_token

from .test_slow_clients import MARGIN, Trickle, _started

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADER_TIMEOUT = ConsumerSettings.model_fields["header_read_timeout_seconds"].default
CLIENTS = 8


@dataclass(frozen=True)
class Consumer:
    proc: ConsumerProcess
    status_path: str  # a home whose status the consumer answers (200, live)

    def served(self) -> bool:
        return _served(self.proc, self.status_path)


@pytest.fixture
def consumer(emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path) -> Iterator[Consumer]:
    """A started consumer with one home's reading folded (its status reads answer 200)."""
    stack = Stack(emulator, azurite, f"s{uuid.uuid4().hex[:12]}", tmp_path / "logs")
    with stack.consumer("consumer-slow") as proc:
        proc.start()
        readings = dataset(n_homes=1, minutes=1)
        asyncio.run(publish(emulator.connection_string(HUB), readings))
        path = f"/v1/homes/{readings[0].home_id}/status"
        deadline = time.monotonic() + 60
        while not _served(proc, path):
            assert time.monotonic() < deadline, proc.proc.log_tail()
            time.sleep(0.25)
        yield Consumer(proc, path)


def _served(consumer: ConsumerProcess, path: str) -> bool:
    try:
        return bool(consumer.get(path)["source"] == "live")
    except (urllib.error.HTTPError, KeyError):
        return False


def test_slow_and_idle_headers_are_cut_off_within_the_header_timeout(consumer: Consumer) -> None:
    partial = b"GET /v1/homes/home-1/status HTTP/1.1\r\nhost: consumer\r\nx-slow: "
    slow = _started([Trickle(consumer.proc.port, partial) for _ in range(CLIENTS)])
    idle = _started([Trickle(consumer.proc.port, b"", every=0) for _ in range(CLIENTS)])
    for client in slow + idle:
        client.join(HEADER_TIMEOUT + 2 * MARGIN)
    assert [(c.answer or b"")[:12] for c in slow] == [b"HTTP/1.1 408"] * CLIENTS
    assert [c.answer for c in idle] == [b""] * CLIENTS  # closed without a word: nothing was asked
    assert max(c.after for c in slow + idle) <= HEADER_TIMEOUT + MARGIN
    assert consumer.served()
    assert consumer.proc.metric("homesec_consumer_request_timeouts_total", phase="headers") == 2 * CLIENTS
    assert consumer.proc.metric("homesec_consumer_request_timeouts_total", phase="body") == 0


def _read_with_a_slow_body(port: int, path: str) -> tuple[bytes, float]:
    """A read announcing a large body, then one byte of it a second: the answer, and when the connection
    was closed (seconds after the answer)."""
    head = (
        f"GET {path} HTTP/1.1\r\nhost: consumer\r\nauthorization: Bearer {operator_token()}\r\n"
        "content-type: application/json\r\ncontent-length: 100000\r\n\r\n{"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)
        answered = time.monotonic()
        sock.settimeout(1.0)
        while time.monotonic() - answered < HEADER_TIMEOUT + 2 * MARGIN:
            try:
                sock.sendall(b"x")
                if not sock.recv(65536):
                    break
            except TimeoutError:
                continue
            except OSError:  # reset by the server: closed
                break
        return answer, time.monotonic() - answered


def test_a_slow_body_sent_with_a_read_is_cut_off_after_the_answer(consumer: Consumer) -> None:
    answer, closed_after = _read_with_a_slow_body(consumer.proc.port, consumer.status_path)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert closed_after <= HEADER_TIMEOUT + MARGIN
    assert consumer.proc.metric("homesec_consumer_request_timeouts_total", phase="headers") == 1
    assert consumer.served()
