"""Start-up without dependencies, as real processes: the consumer serves /healthz at once, stays not ready
while Blob or Event Hubs does not answer (retrying, one log line per failure), exits 0 promptly on SIGTERM
at any moment, and becomes ready once the dependency appears. Production defaults except ports/names."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from homesec_devstack.azurite import AzuriteProcess, blob_connection_string
from homesec_devstack.emulator_process import EmulatorProcess, emulator_connection_string
from homesec_devstack.procs import ManagedProcess, free_port, http_status

from tests.integration.producer.harness import AUTH_KEYS

pytestmark = pytest.mark.integration

HUB, GROUP = "telemetry", "rollups"


class Consumer:
    def __init__(self, tmp_path: Path, eventhub: str, blob: str, **settings: str) -> None:
        self.admin_port = free_port()
        prefix = f"l{uuid.uuid4().hex[:12]}"
        env = {
            "HOMESEC_CONSUMER_PORT": str(free_port()), "HOMESEC_CONSUMER_ADMIN_PORT": str(self.admin_port),
            "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": eventhub,
            "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": blob, "HOMESEC_CONSUMER_CONSUMER_GROUP": GROUP,
            "HOMESEC_CONSUMER_CHECKPOINT_CONTAINER": f"{prefix}-cp",
            "HOMESEC_CONSUMER_ROLLUP_CONTAINER": f"{prefix}-ro",
            "HOMESEC_CONSUMER_DEADLETTER_CONTAINER": f"{prefix}-dl",
            "HOMESEC_CONSUMER_AUTH_KEYS": json.dumps(AUTH_KEYS),
            **{f"HOMESEC_CONSUMER_{k.upper()}": v for k, v in settings.items()},
        }  # fmt: skip
        self.proc = ManagedProcess.python_module(
            "consumer-liveness", "homesec_consumer", env=env, log_dir=tmp_path / "logs"
        )

    def url(self, path: str) -> str:
        """A URL of the admin port (probes, metrics)."""
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.proc.log_tail(10_000).splitlines() if needle in line]

    def wait_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.log_lines(needle):
            assert self.proc.alive(), self.proc.log_tail()
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.proc.log_tail()}"
            time.sleep(0.1)

    def terminate(self, within: float) -> int:
        """SIGTERM; the exit code, which must come within ``within`` seconds."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=within + 5)
        assert time.monotonic() - started < within, f"exit took {time.monotonic() - started:.1f} s"
        return rc


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[list[Consumer]]:
    started: list[Consumer] = []
    yield started
    for consumer in started:
        consumer.proc.stop(grace=10)


def _unready(consumer: Consumer) -> None:
    consumer.proc.start()
    # Served before any dependency: Event Hubs or Blob is unreachable here and readiness stays false. (The
    # timeout bounds a failing run: a loaded machine can take more than 8 s to start the interpreter.)
    consumer.proc.wait_http(consumer.url("/healthz"), timeout=60)
    assert http_status(consumer.url("/readyz")) == 503
    assert "homesec_consumer_ready 0.0" in _metrics(consumer)


def _metrics(consumer: Consumer) -> str:
    import urllib.request

    with urllib.request.urlopen(consumer.url("/metrics"), timeout=5) as resp:
        return str(resp.read().decode())


@pytest.mark.parametrize("missing", ["blob", "eventhubs"])
def test_unreachable_dependency_healthz_at_once_not_ready_sigterm_exits_0(
    missing: str, emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path,
    consumers: list[Consumer],
) -> None:  # fmt: skip
    """SIGTERM in the middle of a start-up attempt (the SDK retrying inside it) ends the process at once."""
    closed = free_port()
    eventhub = (
        emulator_connection_string(closed, HUB) if missing == "eventhubs" else emulator.connection_string()
    )
    blob = blob_connection_string(closed) if missing == "blob" else azurite.connection_string
    consumer = Consumer(tmp_path, eventhub, blob)
    consumers.append(consumer)
    _unready(consumer)
    time.sleep(1.0)
    assert consumer.proc.alive() and http_status(consumer.url("/readyz")) == 503
    assert consumer.terminate(within=5) == 0


def test_becomes_ready_when_blob_appears(
    emulator: EmulatorProcess, tmp_path: Path, consumers: list[Consumer]
) -> None:
    blob_port = free_port()
    consumer = Consumer(
        tmp_path,
        emulator.connection_string(),
        blob_connection_string(blob_port),
        startup_retry_max_seconds="2",
    )
    consumers.append(consumer)
    _unready(consumer)
    consumer.wait_log("start-up attempt 2 failed", timeout=20)  # retried with backoff, one line each
    failures = consumer.log_lines("start-up attempt")
    assert all(len(line) < 400 for line in failures) and "Blob storage is failing" in consumer.proc.log_tail()
    with AzuriteProcess(tmp_path / "azurite", port=blob_port, log_dir=tmp_path / "logs"):
        consumer.proc.wait_http(consumer.url("/readyz"), timeout=45)
        assert "homesec_consumer_ready 1.0" in _metrics(consumer)
        assert consumer.terminate(within=10) == 0


def test_becomes_ready_when_eventhubs_appears(
    azurite: AzuriteProcess, tmp_path: Path, consumers: list[Consumer]
) -> None:
    eh_port = free_port()
    consumer = Consumer(
        tmp_path, emulator_connection_string(eh_port, HUB), azurite.connection_string,
        startup_retry_max_seconds="2",
    )  # fmt: skip
    consumers.append(consumer)
    _unready(consumer)
    with EmulatorProcess(tmp_path / "eh", port=eh_port, log_dir=tmp_path / "logs"):
        consumer.proc.wait_http(consumer.url("/readyz"), timeout=45)
        assert consumer.terminate(within=10) == 0
