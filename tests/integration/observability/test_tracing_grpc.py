"""Tracing on, a real producer process: ``OTEL_TRACES_EXPORTER=otlp,console`` with
``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` sends the request's span both to an OTLP/gRPC receiver of this test
and to the console (the process's stdout)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.otlp_receiver import OtlpGrpcReceiver
from homesec_producer.auth import TokenAuthority

from tests.integration.producer.harness import AUTH_KEYS, ProducerProcess

pytestmark = pytest.mark.integration

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def _post(producer: ProducerProcess) -> int:
    authority = TokenAuthority({kid: secret.encode() for kid, secret in AUTH_KEYS.items()})
    token = authority.issue("it", ["home-1"], datetime.now(UTC) + timedelta(hours=1))
    reading = {"reading_id": str(uuid.uuid4()), "home_id": "home-1", "sensor_id": "door-1",
               "sensor_type": "door", "ts": datetime.now(UTC).isoformat(), "state": "open"}  # fmt: skip
    request = urllib.request.Request(
        f"{producer.url}/v1/readings", data=json.dumps({"readings": [reading]}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as resp:
        return int(resp.status)


def test_otlp_over_grpc_and_the_console_at_once(emulator: EmulatorProcess, tmp_path: Path) -> None:
    with OtlpGrpcReceiver() as receiver:
        producer = ProducerProcess(emulator, tmp_path)
        producer.proc.env.update({
            "OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200",
        })  # fmt: skip
        try:
            producer.start(timeout=60)
            assert _post(producer) == 202
            deadline = time.monotonic() + 30
            while not [s for s in receiver.spans() if s.trace_id == TRACE_ID]:
                assert time.monotonic() < deadline, receiver.spans()
                time.sleep(0.2)
        finally:
            producer.stop()
        received = [s for s in receiver.spans() if s.trace_id == TRACE_ID]
    assert {s.service for s in received} == {"homesec-producer"}
    assert "POST /v1/readings" in {s.name for s in received}
    log = producer.proc.log_path.read_text()
    assert f'"trace_id": "0x{TRACE_ID}"' in log, log[-3000:]  # ConsoleSpanExporter's JSON, on stdout
