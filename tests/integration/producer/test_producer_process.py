"""The producer process on its own (Event Hubs unreachable): startup readiness, 503s, prompt SIGTERM exit."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from homesec_devstack.emulator_process import emulator_connection_string
from homesec_devstack.procs import ManagedProcess, free_port, wait_tcp
from homesec_producer.auth import TokenAuthority
from homesec_producer.auth_keys import SigningKey, generate_key_pair

from .harness import AUTH_KEYS

pytestmark = pytest.mark.integration


@pytest.fixture
def lonely_producer(tmp_path: Path) -> Iterator[tuple[ManagedProcess, str, str]]:
    """The producer, its API URL and its admin URL."""
    port, admin_port = free_port(), free_port()
    env = {
        "HOMESEC_PRODUCER_HOST": "127.0.0.1",
        "HOMESEC_PRODUCER_PORT": str(port),
        "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1",
        "HOMESEC_PRODUCER_ADMIN_PORT": str(admin_port),
        # nothing listens there: Event Hubs is unreachable
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator_connection_string(free_port()),
        "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(AUTH_KEYS),
        "HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS": "5",
        "HOMESEC_PRODUCER_PUBLISH_BACKOFF_INITIAL_SECONDS": "0.2",
        "HOMESEC_PRODUCER_PUBLISH_BACKOFF_MAX_SECONDS": "1",
        "HOMESEC_PRODUCER_PUBLISH_TRY_TIMEOUT_SECONDS": "2",
    }
    proc = ManagedProcess.python_module("producer", "homesec_producer", env=env, log_dir=tmp_path).start()
    try:
        proc.wait_tcp(port, timeout=30)
        proc.wait_tcp(admin_port, timeout=30)
        yield proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    finally:
        proc.stop()


def test_not_ready_answers_503_and_exits_promptly_on_sigterm(
    lonely_producer: tuple[ManagedProcess, str, str],
) -> None:
    proc, url, admin = lonely_producer
    token = TokenAuthority({k: v.encode() for k, v in AUTH_KEYS.items()}).issue(
        "it", ["home-1"], datetime.now(UTC) + timedelta(hours=1)
    )
    now = datetime.now(UTC).isoformat()
    reading = {"home_id": "home-1", "sensor_id": "s", "sensor_type": "smoke", "ts": now, "state": "ok"}
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{admin}/healthz").status_code == 200
        assert http.get(f"{admin}/readyz").status_code == 503
        assert http.get(f"{url}/healthz").status_code == 404  # the API port serves only the API
        resp = http.post(f"{url}/v1/readings", json={"readings": [reading]},
                         headers={"authorization": f"Bearer {token}"})  # fmt: skip
        assert resp.status_code == 503
        assert int(resp.headers["retry-after"]) >= 1
        assert "homesec_producer_ready 0.0" in http.get(f"{admin}/metrics").text
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    for closed in (url, admin):
        with pytest.raises(TimeoutError):
            wait_tcp(int(closed.rsplit(":", 1)[1]), timeout=0.5)


def test_a_producer_with_only_public_keys_verifies_es256_tokens(tmp_path: Path) -> None:
    """Production key setup: the pod holds a public key only; the issuer's ES256 tokens pass auth
    (503: not ready, Event Hubs unreachable), tokens it cannot verify get 401."""
    private_pem, public_pem = generate_key_pair("ES256")
    port = free_port()
    env = {
        "HOMESEC_PRODUCER_HOST": "127.0.0.1",
        "HOMESEC_PRODUCER_PORT": str(port),
        "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1",
        "HOMESEC_PRODUCER_ADMIN_PORT": str(free_port()),
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator_connection_string(free_port()),
        "HOMESEC_PRODUCER_AUTH_KEYS": "",
        "HOMESEC_PRODUCER_AUTH_PUBLIC_KEYS": json.dumps({"es-1": public_pem}),
        "HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS": "5",
    }
    proc = ManagedProcess.python_module("producer", "homesec_producer", env=env, log_dir=tmp_path).start()
    issuer = TokenAuthority(signing_key=SigningKey.from_pem("es-1", private_pem))
    hs = TokenAuthority({k: v.encode() for k, v in AUTH_KEYS.items()})
    expires = datetime.now(UTC) + timedelta(hours=1)
    reading = {"home_id": "home-1", "sensor_id": "s", "sensor_type": "smoke",
               "ts": datetime.now(UTC).isoformat(), "state": "ok"}  # fmt: skip
    try:
        proc.wait_tcp(port, timeout=30)
        with httpx.Client(timeout=10) as http:
            for token, status in [(issuer.issue("gw", ["home-1"], expires), 503),
                                  (hs.issue("gw", ["home-1"], expires), 401)]:  # fmt: skip
                resp = http.post(f"http://127.0.0.1:{port}/v1/readings", json={"readings": [reading]},
                                 headers={"authorization": f"Bearer {token}"})  # fmt: skip
                assert resp.status_code == status, resp.text
    finally:
        proc.stop()
