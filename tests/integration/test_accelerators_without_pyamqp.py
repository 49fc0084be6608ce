"""Both services start on the public path, as real processes, on an SDK whose private AMQP modules
(``azure.eventhub._pyamqp``) the services cannot import (tests/integration/no_pyamqp/sitecustomize.py): every
accelerator that reads them reports 0, the services are ready, and a reading goes through."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from homesec_auth.tokens import TokenAuthority
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess

from tests.integration.consumer.harness import Stack
from tests.integration.producer.harness import AUTH_KEYS, ProducerProcess

pytestmark = pytest.mark.integration

SHIM = Path(__file__).parent / "no_pyamqp"


def _shimmed() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(SHIM), os.environ.get("PYTHONPATH", "")) if p)}


def _post_one(producer: ProducerProcess) -> int:
    authority = TokenAuthority({kid: secret.encode() for kid, secret in AUTH_KEYS.items()})
    token = authority.issue("it", ["home-1"], datetime.now(UTC) + timedelta(hours=1))
    reading = {"reading_id": str(uuid.uuid4()), "home_id": "home-1", "sensor_id": "door-1",
               "sensor_type": "door", "ts": datetime.now(UTC).isoformat(), "state": "open"}  # fmt: skip
    body = json.dumps({"readings": [reading]})
    request = urllib.request.Request(
        f"{producer.url}/v1/readings", data=body.encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as resp:
        return int(resp.status)


def test_the_producer_starts_on_the_public_path(emulator: EmulatorProcess, tmp_path: Path) -> None:
    producer = ProducerProcess(emulator, tmp_path, env={"LOG_LEVEL": "info"})
    producer.proc.env.update(_shimmed())
    try:
        producer.start(timeout=60)
        for component in ("encoder", "payload"):
            assert producer.metric(f'homesec_producer_accelerated{{component="{component}"}}') == 0.0
        assert _post_one(producer) == 202  # published through EventData + EventDataBatch.add
    finally:
        producer.stop()
    log = producer.proc.log_path.read_text()
    assert "accelerator encoder: off (self-check failed: self-check raised ImportError" in log, log
    assert "accelerator payload: off (self-check failed: self-check raised ImportError" in log, log
    assert "Traceback" not in log, log


def test_the_consumer_starts_on_the_public_path(
    emulator: EmulatorProcess, azurite: AzuriteProcess, tmp_path: Path
) -> None:
    stack = Stack(emulator, azurite, f"np{uuid.uuid4().hex[:10]}", tmp_path)
    consumer = stack.consumer("consumer-no-pyamqp")
    consumer.proc.env.update(_shimmed())
    with consumer:
        consumer.start(timeout=90)
        for component in ("decoder", "receiver"):
            assert consumer.metric("homesec_consumer_accelerated", component=component) == 0.0
    log = consumer.proc.log_path.read_text()
    assert "accelerator decoder: off (self-check failed: self-check raised ImportError" in log, log
    assert "accelerator receiver: off (self-check failed: self-check raised ImportError" in log, log
    assert "Traceback" not in log, log
