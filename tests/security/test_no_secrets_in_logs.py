"""No secret reaches a log line on the services' error paths (the real processes, stdout and stderr).

Secrets: the Event Hubs SAS key (connection string), the storage account key (Blob connection string), the
HS256 token-signing secret, and the bearer tokens of refused requests. Error paths: invalid settings (a
malformed connection string), dependencies down (every endpoint a closed port), and authentication
failures (bad, forged, expired and oversized tokens). Every log line is scanned for each secret and for the
parts of it a careless message would keep (a token's signature, a key's first 16 characters).
"""

from __future__ import annotations

import base64
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from homesec_devstack.procs import ManagedProcess, free_port
from homesec_producer.auth import TokenAuthority

pytestmark = pytest.mark.integration

SAS_KEY = base64.b64encode(b"eventhubs-sas-key-that-must-stay-secret!").decode()
ACCOUNT_KEY = base64.b64encode(b"storage-account-key-that-must-stay-secret-0123456789").decode()
SIGNING_SECRET = "token-signing-secret-must-stay-secret-0123"
OTHER_SECRET = "another-signing-secret-nobody-here-knows-42"
GARBAGE_TOKEN = "hs1.aG9tZS0x.bm90LWEtcmVhbC1zaWduYXR1cmUtc2VjcmV0LXRva2Vu"


def eventhubs(port: int, key: str = SAS_KEY) -> str:
    return (
        f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
        f"SharedAccessKey={key};UseDevelopmentEmulator=true;EntityPath=telemetry"
    )


def blob(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


def _tokens() -> dict[str, str]:
    """Refused bearer tokens: forged (another key), expired, garbage, oversized."""
    forged = TokenAuthority({"k1": OTHER_SECRET.encode()}).issue(
        "gw", ["home-1"], datetime.now(UTC) + timedelta(hours=1)
    )
    expired = TokenAuthority({"k1": SIGNING_SECRET.encode()}).issue(
        "gw", ["home-1"], datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC) - timedelta(hours=1)
    )
    return {"forged": forged, "expired": expired, "garbage": GARBAGE_TOKEN, "huge": "eyJ" + "A" * 20_000}


def _fragments(secret: str) -> set[str]:
    """The secret and the pieces of it worth looking for on their own."""
    parts = {secret, secret[:16]}
    if secret.count(".") == 2:  # a JWT: its signature and its payload
        parts |= {p for p in secret.split(".")[1:] if len(p) >= 16}
    return {p[:64] for p in parts}


def assert_no_secret(log: str, secrets: dict[str, str]) -> None:
    assert log.strip(), "the process logged nothing: the scan would prove nothing"
    leaks = {
        name: line[:300]
        for line in log.splitlines()
        for name, secret in secrets.items()
        for fragment in _fragments(secret)
        if fragment in line
    }
    assert leaks == {}, f"secrets in the logs: {leaks}"


def test_the_scan_finds_a_secret_and_its_pieces() -> None:
    token = _tokens()["forged"]
    for line in (f"conn={eventhubs(1)}", f"key {SAS_KEY[:20]}...", f"sig={token.rsplit('.', 1)[1]}"):
        with pytest.raises(AssertionError, match="secrets in the logs"):
            assert_no_secret(f"ok\n{line}\n", {"sas_key": SAS_KEY, "token": token})


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def _producer_env(**over: str) -> dict[str, str]:
    env = {
        "HOMESEC_PRODUCER_HOST": "127.0.0.1", "HOMESEC_PRODUCER_PORT": str(free_port()),
        "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1", "HOMESEC_PRODUCER_ADMIN_PORT": str(free_port()),
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": eventhubs(free_port()),
        "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps({"k1": SIGNING_SECRET}),
        "HOMESEC_PRODUCER_LOG_LEVEL": "info", "HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS": "5",
        "HOMESEC_PRODUCER_PUBLISH_BACKOFF_INITIAL_SECONDS": "0.2",
        "HOMESEC_PRODUCER_PUBLISH_BACKOFF_MAX_SECONDS": "1",
        "HOMESEC_PRODUCER_PUBLISH_TRY_TIMEOUT_SECONDS": "2",
    }  # fmt: skip
    return {**env, **{f"HOMESEC_PRODUCER_{k}": v for k, v in over.items()}}


def _consumer_env(**over: str) -> dict[str, str]:
    env = {
        "HOMESEC_CONSUMER_HOST": "127.0.0.1", "HOMESEC_CONSUMER_PORT": str(free_port()),
        "HOMESEC_CONSUMER_ADMIN_HOST": "127.0.0.1", "HOMESEC_CONSUMER_ADMIN_PORT": str(free_port()),
        "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": eventhubs(free_port()),
        "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": blob(free_port()),
        "HOMESEC_CONSUMER_LOG_LEVEL": "INFO", "HOMESEC_CONSUMER_STARTUP_RETRY_MAX_SECONDS": "1",
        "HOMESEC_CONSUMER_BLOB_REQUEST_TIMEOUT_SECONDS": "1", "HOMESEC_CONSUMER_BLOB_RETRY_TOTAL": "0",
    }  # fmt: skip
    return {**env, **{f"HOMESEC_CONSUMER_{k}": v for k, v in over.items()}}


SECRETS = {"sas_key": SAS_KEY, "account_key": ACCOUNT_KEY, "signing_secret": SIGNING_SECRET}


def _run_for(proc: ManagedProcess, seconds: float) -> str:
    """Run ``proc`` until it exits or ``seconds`` pass (then SIGTERM); its whole log."""
    proc.start()
    try:
        deadline = time.monotonic() + seconds
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if proc.alive():
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        proc.stop()
    return proc.log_path.read_text(errors="replace")


SECRETS = {"sas_key": SAS_KEY, "account_key": ACCOUNT_KEY, "signing_secret": SIGNING_SECRET}
MALFORMED_EVENTHUBS = f"Endpoint=sb://;SharedAccessKey={SAS_KEY};EntityPath"
MALFORMED_BLOB = f"AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};BlobEndpoint=::bad"


@pytest.mark.parametrize(
    "over",
    [
        # Invalid settings next to the secrets: exit 78 naming the variables, never their values.
        {"PORT": "70000", "AUTH_KEYS": json.dumps({"k1": SIGNING_SECRET[:20]})},
        {"AUTH_KEYS": "{" + SIGNING_SECRET},  # not JSON
        {"EVENTHUB_CONNECTION_STRING": f"SharedAccessKey={SAS_KEY};Endpoint=nonsense", "TRANSPORT": "nope"},
        # A malformed connection string the settings take: the SDK refuses it at start-up.
        {"EVENTHUB_CONNECTION_STRING": MALFORMED_EVENTHUBS},
    ],
    ids=["short-secret", "keys-not-json", "bad-transport", "malformed-connection-string"],
)
def test_producer_config_errors(logs: Path, over: dict[str, str]) -> None:
    proc = ManagedProcess.service(
        "producer-config", "homesec_producer", env=_producer_env(**over), log_dir=logs
    )
    assert_no_secret(_run_for(proc, 6.0), SECRETS)  # exits, or logs its failing connection attempts


def _refuse_tokens(url: str, tokens: dict[str, str]) -> None:
    reading = {"home_id": "home-1", "sensor_id": "s", "sensor_type": "smoke",
               "ts": datetime.now(UTC).isoformat(), "state": "ok"}  # fmt: skip
    with httpx.Client(timeout=10) as http:
        for name, token in tokens.items():
            for header in (f"Bearer {token}", token, f"Basic {token}"):
                resp = http.post(f"{url}/v1/readings", json={"readings": [reading]},
                                 headers={"authorization": header, "x-request-id": name})  # fmt: skip
                assert resp.status_code in (401, 431), (name, resp.status_code, resp.text)
                assert not any(f in resp.text for f in _fragments(token)), resp.text


def test_producer_dependency_down_and_auth_failures(logs: Path) -> None:
    """Event Hubs a closed port (its connection retries logged) and refused tokens, then SIGTERM."""
    env = _producer_env()
    proc = ManagedProcess.service("producer-down", "homesec_producer", env=env, log_dir=logs)
    tokens = _tokens()
    proc.start()
    try:
        proc.wait_http(f"http://127.0.0.1:{env['HOMESEC_PRODUCER_ADMIN_PORT']}/healthz", timeout=30)
        _refuse_tokens(f"http://127.0.0.1:{env['HOMESEC_PRODUCER_PORT']}", tokens)
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.stop()
    assert_no_secret(proc.log_path.read_text(errors="replace"), {**SECRETS, **tokens})


@pytest.mark.parametrize(
    "over",
    [
        {},  # Event Hubs and Blob both closed ports
        {"BLOB_CONNECTION_STRING": MALFORMED_BLOB},
        {"EVENTHUB_CONNECTION_STRING": MALFORMED_EVENTHUBS},
    ],
    ids=["dependencies-down", "malformed-blob-connection-string", "malformed-eventhubs-connection-string"],
)
def test_consumer_error_paths(logs: Path, over: dict[str, str]) -> None:
    proc = ManagedProcess.service(
        "consumer-errors", "homesec_consumer", env=_consumer_env(**over), log_dir=logs
    )
    assert_no_secret(_run_for(proc, 8.0), SECRETS)  # start-up attempts fail and are retried, or it exits


def test_consumer_config_error(logs: Path) -> None:
    env = _consumer_env(PORT="http", TRANSPORT="amqp", EVENTHUB_HTTP_PROXY=f"http://u:{SAS_KEY}@proxy:3128")
    proc = ManagedProcess.service("consumer-config", "homesec_consumer", env=env, log_dir=logs)
    assert_no_secret(_run_for(proc, 10.0), SECRETS)
