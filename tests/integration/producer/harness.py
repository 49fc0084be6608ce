"""Integration harness: the producer as a real process, and reading the hub back through the SDK."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from homesec_auth.tokens import OPERATOR_ROLE, READ_AUDIENCE, TokenAuthority
from homesec_devstack import hub_reader
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.hub_reader import HubContents
from homesec_devstack.procs import ManagedProcess, free_port, http_status

from tests.integration.transport import service_env

AUTH_KEYS = {"it": "integration-test-key-0123456789abcdef"}


def operator_token(keys: dict[str, str] = AUTH_KEYS) -> str:
    """A read token of the operator role (reads every home) for the consumer, signed with ``keys``."""
    authority = TokenAuthority({kid: secret.encode() for kid, secret in keys.items()})
    expires = datetime.now(UTC) + timedelta(hours=6)
    return authority.issue("it-operator", [], expires, audience=READ_AUDIENCE, role=OPERATOR_ROLE)


# Fast retries for tests: the defaults (1 s .. 30 s, 30 s deadline) follow the source documents.
FAST = {
    "PUBLISH_MAX_TRIES": "8",
    "PUBLISH_BACKOFF_INITIAL_SECONDS": "0.2",
    "PUBLISH_BACKOFF_MAX_SECONDS": "2",
    "PUBLISH_TRY_TIMEOUT_SECONDS": "5",
    "REQUEST_DEADLINE_SECONDS": "10",
    "SHUTDOWN_GRACE_SECONDS": "15",
    "RETRY_AFTER_SECONDS": "1",
}


class ProducerProcess:
    """``python -m homesec_producer`` on a free loopback port against ``emulator``."""

    def __init__(
        self,
        emulator: EmulatorProcess,
        log_dir: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        fast: bool = True,
        transport: str = "amqp",
    ) -> None:
        """``fast=False`` runs the service's own defaults (only ``env`` overrides them); ``transport`` as in
        tests/integration/transport.py."""
        self.port = port or free_port()
        self.admin_port = free_port()
        values = {**(FAST if fast else {}), **service_env(emulator, transport), **(env or {})}
        full_env = {
            "HOMESEC_PRODUCER_HOST": "127.0.0.1",
            "HOMESEC_PRODUCER_PORT": str(self.port),
            "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1",
            "HOMESEC_PRODUCER_ADMIN_PORT": str(self.admin_port),
            "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
            "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(AUTH_KEYS),
            "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
            **{f"HOMESEC_PRODUCER_{k}": v for k, v in values.items()},
        }
        self.proc = ManagedProcess.service("producer", "homesec_producer", env=full_env, log_dir=log_dir)

    @property
    def url(self) -> str:
        """The API port."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin port: probes and metrics."""
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 30.0) -> ProducerProcess:
        self.proc.start()
        self.proc.wait_http(f"{self.admin_url}/readyz", timeout=timeout)
        return self

    def terminate(self) -> float:
        """SIGTERM; returns the monotonic time it was sent."""
        self.proc.send_signal(signal.SIGTERM)
        return time.monotonic()

    def ready(self) -> bool:
        return http_status(f"{self.admin_url}/readyz") == 200

    def metric(self, name: str) -> float:
        """Sum of all samples of ``name`` on /metrics (0 when absent)."""
        import urllib.request

        with urllib.request.urlopen(f"{self.admin_url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in {" ", "{"}:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> int | None:
        return self.proc.stop(grace=20)


async def read_hub(emulator: EmulatorProcess, timeout: float = 120.0) -> HubContents:
    """``hub_reader.read_hub``, failing on an event whose message ID is not its reading's ID."""
    hub = await hub_reader.read_hub(emulator, timeout)
    assert not hub.id_mismatches, hub.id_mismatches[:5]
    return hub
