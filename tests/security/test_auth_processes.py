"""Real processes over real sockets: the consumer's status API refuses unauthenticated reads and will not
start without a key; oversized forged tokens leave the producer's memory flat."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port

from tests.integration.producer.harness import AUTH_KEYS, ProducerProcess

from .auth_tokens import KEYS_JSON, REAL_NOW_TOKENS, legacy

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
UNAUTHORIZED = {"detail": "invalid or missing token"}


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object], str | None]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status, json.loads(resp.read()), None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("WWW-Authenticate")


@pytest.fixture
def consumer_url(emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path) -> Iterator[str]:
    port, admin, prefix = free_port(), free_port(), f"s{uuid.uuid4().hex[:12]}"
    env = {
        "HOMESEC_CONSUMER_HOST": "127.0.0.1", "HOMESEC_CONSUMER_PORT": str(port),
        "HOMESEC_CONSUMER_ADMIN_PORT": str(admin),
        "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(),
        "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": azurite.connection_string,
        "HOMESEC_CONSUMER_CHECKPOINT_CONTAINER": f"{prefix}-cp",
        "HOMESEC_CONSUMER_ROLLUP_CONTAINER": f"{prefix}-ro",
        "HOMESEC_CONSUMER_DEADLETTER_CONTAINER": f"{prefix}-dl",
        "HOMESEC_CONSUMER_AUTH_KEYS": KEYS_JSON,
    }  # fmt: skip
    proc = ManagedProcess.service("consumer-security", "homesec_consumer", env=env, log_dir=tmp_path)
    try:
        proc.start().wait_http(f"http://127.0.0.1:{admin}/readyz", timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop(grace=20)


def test_the_status_api_needs_a_read_token(consumer_url: str, tmp_path: Path) -> None:
    tokens = REAL_NOW_TOKENS()
    for path in ("/v1/homes/home-1/status", "/v1/homes/home-1/history?hours=2"):
        for token in (None, tokens["ingest"]):
            status, body, challenge = _get(consumer_url + path, token)
            assert (status, body, challenge) == (401, UNAUTHORIZED, "Bearer"), (path, token)
        status, body, _ = _get(consumer_url + path, tokens["read_other"])
        assert (status, body) == (403, {"detail": "home not in token scope"})
        # the operator's token gets through to the store, which has no such home
        assert _get(consumer_url + path, tokens["operator"])[:2] == (404, {"detail": "unknown home"})
    assert _get(consumer_url + "/healthz")[0] == 404  # the API port serves the home routes only
    # The refusals are logged with their reason, never with the token (nor a part of its signature).
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("consumer-security-*.log"))
    assert "read token refused" in logs
    for token in tokens.values():
        assert token not in logs and token.rsplit(".", 1)[-1][:16] not in logs


def test_the_consumer_refuses_to_start_without_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMESEC_")}
    env["HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING"] = (
        "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=a;SharedAccessKey=b"
    )
    env["HOMESEC_CONSUMER_BLOB_CONNECTION_STRING"] = "UseDevelopmentStorage=true"
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        [sys.executable, "-m", "homesec_consumer"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        "configuration error: set HOMESEC_CONSUMER_AUTH_PUBLIC_KEYS (JSON {key id: public key PEM}) or "
        "HOMESEC_CONSUMER_AUTH_KEYS (JSON {key id: HS256 secret}): no read token can be verified"
    ]


# --- memory under oversized forged tokens --------------------------------------------------------------


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _variants(count: int, size: int) -> Iterator[str]:
    """Distinct ``size``-byte spellings of ONE valid legacy token: characters outside the base64 alphabet
    appended to its signature (a lenient decoder drops them, so each verified and was remembered apart)."""
    [(kid, secret)] = AUTH_KEYS.items()  # the producer's dev key: the token really verified
    base = legacy("home-1", int(REAL_NOW_TOKENS.now().timestamp()) + 3600, kid, secret)
    digits = "!*~$"
    for i in range(count):
        tag = "".join(digits[(i >> (2 * k)) & 3] for k in range(8))
        pad = size - len(base) - len(tag)
        yield base + tag + "!" * (pad - pad % 4)


def _attack(producer: ProducerProcess, tokens: Iterator[str], limit: int) -> tuple[int, dict[int, int]]:
    """POST every token over 4 keep-alive connections; stop early once RSS grew past ``limit``. Returns the
    growth and the statuses seen (None: the server closed the connection instead of answering)."""
    body = json.dumps({"readings": []}).encode()
    conns = [http.client.HTTPConnection("127.0.0.1", producer.port, timeout=30) for _ in range(4)]
    before, statuses = _rss_bytes(producer.proc.pid), dict[int, int]()
    try:
        for i, token in enumerate(tokens):
            conn = conns[i % len(conns)]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            try:
                conn.request("POST", "/v1/readings", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            except (ConnectionError, http.client.HTTPException):
                statuses[0] = statuses.get(0, 0) + 1
                conn.close()  # reconnects on the next request
            if i % 50 == 49 and _rss_bytes(producer.proc.pid) - before > limit:
                break
    finally:
        for conn in conns:
            conn.close()
    return _rss_bytes(producer.proc.pid) - before, statuses


@pytest.fixture
def warm_producer(emulator: EmulatorProcess, tmp_path: Path) -> Iterator[ProducerProcess]:
    """The producer with its own defaults (only the dev key and the emulator set), after a warm-up."""
    proc = ProducerProcess(emulator, tmp_path, fast=False).start()
    try:
        _attack(proc, _variants(40, MIB), limit=1 << 40)  # allocator arenas, first-request imports
        yield proc
    finally:
        proc.stop()


@pytest.mark.slow
def test_a_thousand_1mib_forged_tokens_leave_memory_flat(warm_producer: ProducerProcess) -> None:
    grown, statuses = _attack(warm_producer, _variants(1000, MIB), limit=20 * MIB)
    assert grown <= 20 * MIB, (grown / MIB, statuses)
    assert set(statuses) == {401}, statuses  # uvicorn + httptools pass a 1 MiB header on; the app refuses
    assert warm_producer.metric("homesec_producer_auth_failures_total") >= 1000


@pytest.fixture
def legacy_producer(emulator: EmulatorProcess, tmp_path: Path) -> Iterator[ProducerProcess]:
    env = {"AUTH_ACCEPT_LEGACY_TOKENS": "true"}
    proc = ProducerProcess(emulator, tmp_path, env=env, fast=False).start()
    try:
        _attack(proc, _variants(40, 512 * 1024), limit=1 << 40)
        yield proc
    finally:
        proc.stop()


@pytest.mark.slow
def test_legacy_variants_do_not_grow_memory_even_when_legacy_tokens_are_on(
    legacy_producer: ProducerProcess,
) -> None:
    grown, statuses = _attack(legacy_producer, _variants(300, 512 * 1024), limit=20 * MIB)
    assert grown <= 20 * MIB, (grown / MIB, statuses)
    assert set(statuses) == {401}, statuses
