"""Both services as real processes: invalid settings give one line per problem naming the environment
variable, exit code 78 and no traceback; the producer logs every line, uvicorn's included, in one format."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from homesec_devstack.emulator_process import emulator_connection_string
from homesec_devstack.procs import free_port, http_status

from .harness import AUTH_KEYS

pytestmark = pytest.mark.integration

EX_CONFIG = 78
LOG_FIELDS = {"time", "level", "logger", "message"}
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _clean_env(**values: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HOMESEC_PRODUCER_", "HOMESEC_CONSUMER_"))
    }
    return {**env, **values}


def _run(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _assert_config_error(done: subprocess.CompletedProcess[str], expected: list[tuple[str, str]]) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EX_CONFIG, done.stderr
    assert "Traceback" not in done.stderr and "ValidationError" not in done.stderr, done.stderr
    assert len(lines) == len(expected), done.stderr
    for line, (variable, rule) in zip(lines, expected, strict=True):
        assert line.startswith("configuration error: ") and variable in line and rule in line, line


def test_producer_names_each_bad_variable_and_exits_78() -> None:
    done = _run("homesec_producer", _clean_env(
        HOMESEC_PRODUCER_AUTH_KEYS=json.dumps({"k1": "too-short"}),
        HOMESEC_PRODUCER_PORT="70000",
        HOMESEC_PRODUCER_PUBLISH_MAX_TRIES="many",
    ))  # fmt: skip
    _assert_config_error(done, [
        ("HOMESEC_PRODUCER_AUTH_KEYS", "shorter than 32 characters"),
        ("HOMESEC_PRODUCER_PORT", "less than or equal to 65535"),
        ("HOMESEC_PRODUCER_PUBLISH_MAX_TRIES", "valid integer"),
    ])  # fmt: skip
    assert "too-short" not in done.stderr  # values (secrets) are never printed


@pytest.mark.parametrize(
    ("env", "variable", "rule"),
    [
        ({"HOMESEC_PRODUCER_AUTH_KEYS": "{not json"}, "HOMESEC_PRODUCER_AUTH_KEYS", "not valid JSON"),
        ({}, "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING", "HOMESEC_PRODUCER_EVENTHUB_NAME"),
        ({"HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS": "2"}, "HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS",
         "at least"),
    ],
)  # fmt: skip
def test_producer_one_line_per_problem(env: dict[str, str], variable: str, rule: str) -> None:
    base = {"HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(AUTH_KEYS)}
    if env:
        base["HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING"] = emulator_connection_string(1)
    _assert_config_error(_run("homesec_producer", _clean_env(**{**base, **env})), [(variable, rule)])


def test_consumer_names_each_bad_variable_and_exits_78() -> None:
    done = _run("homesec_consumer", _clean_env(
        HOMESEC_CONSUMER_PORT="http", HOMESEC_CONSUMER_MAX_BATCH_SIZE="0",
        HOMESEC_CONSUMER_LOAD_BALANCING_STRATEGY="random",
    ))  # fmt: skip
    _assert_config_error(done, [
        ("HOMESEC_CONSUMER_PORT", "valid integer"),
        ("HOMESEC_CONSUMER_LOAD_BALANCING_STRATEGY", "'balanced' or 'greedy'"),
        ("HOMESEC_CONSUMER_MAX_BATCH_SIZE", "greater than 0"),
    ])  # fmt: skip


def test_producer_logs_one_format_for_every_line(tmp_path: Path) -> None:
    port = free_port()
    env = _clean_env(
        HOMESEC_PRODUCER_HOST="127.0.0.1", HOMESEC_PRODUCER_PORT=str(free_port()),
        HOMESEC_PRODUCER_LOG_LEVEL="info",
        HOMESEC_PRODUCER_ADMIN_HOST="127.0.0.1", HOMESEC_PRODUCER_ADMIN_PORT=str(port),
        # nothing listens there: the producer logs its connection retries too
        HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING=emulator_connection_string(free_port()),
        HOMESEC_PRODUCER_AUTH_KEYS=json.dumps(AUTH_KEYS), HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS="5",
        HOMESEC_PRODUCER_PUBLISH_BACKOFF_INITIAL_SECONDS="0.2",
        HOMESEC_PRODUCER_PUBLISH_BACKOFF_MAX_SECONDS="1",
    )  # fmt: skip
    err = (tmp_path / "stderr.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "homesec_producer"], env=env, stdout=err, stderr=err,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while http_status(f"http://127.0.0.1:{port}/healthz") != 200:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.log").read_text()
            time.sleep(0.1)
        time.sleep(1.0)  # a connection retry or two
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err.close()
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    docs = [json.loads(line) for line in lines]  # every line one JSON object (the default format)
    assert any(d["logger"] == "uvicorn.error" and "Uvicorn running" in d["message"] for d in docs), lines
    assert any(d["logger"].startswith("homesec_producer") for d in docs), lines
    assert [d for d in docs if not set(d) >= LOG_FIELDS or not LOG_TIME.match(d["time"])] == [], lines
