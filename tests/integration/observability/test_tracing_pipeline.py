"""Tracing on, real processes: one POST yields one connected trace, request -> Event Hubs send -> consumer
batch -> rollup write; and under load the services' logs are JSON lines with the documented fields and no
home ID at info level.

The Event Hubs emulator, Azurite, the producer, the consumer and the simulator run as processes; the
services export over OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``) to a receiver thread of this test.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.otlp_receiver import OtlpReceiver, Span
from homesec_devstack.procs import ManagedProcess, free_port
from homesec_producer.auth import TokenAuthority
from homesec_runtime.logs import FIELDS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AUTH_KEYS = {"obs": "observability-test-signing-key-0123456789"}
HUB, GROUP = "telemetry", "rollups"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # the client's trace: the producer's request span joins it
HOME_ID = re.compile(r"home-\d{6}|traced-home-1")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUIRED = {"time", "level", "logger", "message"}
LEVELS = {"debug", "info", "warning", "error", "critical"}


@dataclass
class Pipeline:
    producer: ManagedProcess
    consumer: ManagedProcess
    url: str  # the producer's API port
    admin_url: str  # the producer's admin port (metrics)
    consumer_url: str  # the consumer's admin port (metrics)
    receiver: OtlpReceiver


SAMPLERS = {
    # every trace kept (the SDK's default sampler)
    "all-sampled": {},
    # the chart's default: 1% of new traces; the test's POST sends a sampled traceparent, which a
    # parent-based sampler follows from the request to the Blob write (how an operator traces one on purpose)
    "1%-sampled": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
}


def _otel(receiver: OtlpReceiver, service: str, sampler: dict[str, str]) -> dict[str, str]:
    # OTEL_BSP_SCHEDULE_DELAY: export every 0.5 s instead of 5 s, so the test does not wait on batching
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": service,
            "OTEL_BSP_SCHEDULE_DELAY": "500", **sampler}  # fmt: skip


@pytest.fixture(params=sorted(SAMPLERS))
def pipeline(
    emulator: EmulatorProcess, azurite: AzuriteProcess, container_name: str, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Pipeline]:  # fmt: skip
    sampler = SAMPLERS[request.param]
    logs = tmp_path / "logs"
    azurite.create_containers([f"{container_name}-checkpoints", f"{container_name}-rollups"])
    ports = free_port(), free_port()  # the admin ports
    api_port = free_port()
    with OtlpReceiver() as receiver:
        producer = ManagedProcess.python_module("producer", "homesec_producer", env={
            "HOMESEC_PRODUCER_HOST": "127.0.0.1", "HOMESEC_PRODUCER_PORT": str(api_port),
            "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1", "HOMESEC_PRODUCER_ADMIN_PORT": str(ports[0]),
            "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(HUB),
            "HOMESEC_PRODUCER_EVENTHUB_NAME": HUB, "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(AUTH_KEYS),
            "HOMESEC_PRODUCER_LOG_LEVEL": "info", **_otel(receiver, "homesec-producer", sampler),
        }, log_dir=logs)  # fmt: skip
        consumer = ManagedProcess.python_module("consumer", "homesec_consumer", env={
            "HOMESEC_CONSUMER_HOST": "127.0.0.1", "HOMESEC_CONSUMER_PORT": str(free_port()),
            "HOMESEC_CONSUMER_ADMIN_PORT": str(ports[1]),
            "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(HUB),
            "HOMESEC_CONSUMER_EVENTHUB_NAME": HUB, "HOMESEC_CONSUMER_CONSUMER_GROUP": GROUP,
            "HOMESEC_CONSUMER_AUTH_KEYS": json.dumps(AUTH_KEYS),
            "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": azurite.connection_string,
            "HOMESEC_CONSUMER_CHECKPOINT_CONTAINER": f"{container_name}-checkpoints",
            "HOMESEC_CONSUMER_ROLLUP_CONTAINER": f"{container_name}-rollups",
            "HOMESEC_CONSUMER_FLUSH_INTERVAL_SECONDS": "2", "HOMESEC_CONSUMER_LOG_LEVEL": "INFO",
            **_otel(receiver, "homesec-consumer", sampler),
        }, log_dir=logs)  # fmt: skip
        started: list[ManagedProcess] = []
        try:
            for proc, port in zip((producer, consumer), ports, strict=True):
                started.append(proc.start())
                proc.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
            yield Pipeline(
                producer, consumer, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ports[0]}",
                f"http://127.0.0.1:{ports[1]}", receiver,
            )  # fmt: skip
        finally:
            for proc in reversed(started):
                proc.stop(grace=15)


def _post_one(url: str) -> httpx.Response:
    authority = TokenAuthority({k: v.encode() for k, v in AUTH_KEYS.items()})
    token = authority.issue("obs", ["traced-home-1"], datetime.now(UTC) + timedelta(hours=1))
    reading = {"home_id": "traced-home-1", "sensor_id": "door-1", "sensor_type": "door",
               "ts": datetime.now(UTC).isoformat(), "state": "open"}  # fmt: skip
    headers = {"authorization": f"Bearer {token}", "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
               "x-request-id": "obs-request-1"}  # fmt: skip
    return httpx.post(f"{url}/v1/readings", json={"readings": [reading]}, headers=headers, timeout=30)


def _chain(spans: list[Span]) -> list[Span] | None:
    """request -> (child) EventHubs.message <- (link) EventHubs.send; message <- (link) consumer.batch
    <- (link) rollup.flush -> (child) rollup.write_snapshot; None while incomplete."""
    requests = [s for s in spans if s.trace_id == TRACE_ID and s.name == "POST /v1/readings"]
    if not requests:
        return None
    request = requests[0]
    messages = [s for s in spans if s.name == "EventHubs.message" and s.parent_id == request.span_id]
    for message in messages:
        sends = [s for s in spans if s.name == "EventHubs.send" and message.ref in s.links]
        batches = [s for s in spans if s.name == "consumer.batch" and message.ref in s.links]
        for batch in batches:
            for flush in (s for s in spans if s.name == "rollup.flush" and batch.ref in s.links):
                writes = [s for s in spans if s.name == "rollup.write_snapshot"
                          and s.parent_id == flush.span_id and s.trace_id == flush.trace_id]  # fmt: skip
                if sends and writes:
                    return [request, message, sends[0], batch, flush, writes[0]]
    return None


def _exemplars(url: str, histogram: str) -> set[str]:
    """The trace IDs of ``histogram``'s exemplars in the OpenMetrics exposition of ``url``/metrics."""
    accept = {"accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
    text = httpx.get(f"{url}/metrics", headers=accept, timeout=10).text
    return set(
        re.findall(rf'^{histogram}_bucket{{[^}}]*}} \S+ # {{trace_id="([0-9a-f]{{32}})"}}', text, re.M)
    )


def _json_lines(path: Path) -> list[dict[str, object]]:
    docs = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)  # every line one JSON object
        assert isinstance(doc, dict), line
        docs.append(doc)
    return docs


def test_one_post_yields_one_connected_trace_and_clean_logs(pipeline: Pipeline, tmp_path: Path) -> None:
    simulator = ManagedProcess.python_module(
        "simulator", "homesec_devstack.simulator",
        ["--url", pipeline.url, "--homes", "200", "--rate", "300", "--duration", "8", "--retries", "3",
         *[f"--auth-key={k}={v}" for k, v in AUTH_KEYS.items()]],
        log_dir=tmp_path / "logs",
    )  # fmt: skip
    with simulator.start():
        answer = _post_one(pipeline.url)
        assert answer.status_code == 202, answer.text
        assert answer.headers["x-request-id"] == "obs-request-1"
        assert simulator.wait(timeout=60) == 0, simulator.log_tail()
    deadline = time.monotonic() + 60
    while (chain := _chain(pipeline.receiver.spans())) is None:
        assert time.monotonic() < deadline, sorted({(s.service, s.name) for s in pipeline.receiver.spans()})
        time.sleep(0.5)
    request, message, send, batch, flush, write = chain
    assert (request.service, message.service, send.service) == ("homesec-producer",) * 3
    assert (batch.service, flush.service, write.service) == ("homesec-consumer",) * 3
    assert message.trace_id == TRACE_ID  # the event's context belongs to the request's trace
    publishes = [
        s for s in pipeline.receiver.spans() if s.name == "eventhubs.publish" and request.ref in s.links
    ]
    assert publishes and any(send.parent_id == p.span_id for p in publishes)

    traces = {s.trace_id for s in pipeline.receiver.spans()}
    latency = (
        (pipeline.admin_url, "homesec_producer_http_request_duration_seconds"),
        (pipeline.admin_url, "homesec_producer_publish_duration_seconds"),
        (pipeline.consumer_url, "homesec_consumer_end_to_end_latency_seconds"),
    )
    for url, histogram in latency:
        assert _exemplars(url, histogram) & traces, histogram  # exemplars name exported traces

    for proc in (pipeline.producer, pipeline.consumer):
        assert proc.stop(grace=15) == 0
        docs = _json_lines(proc.log_path)
        assert docs, proc.name
        for doc in docs:
            assert REQUIRED <= set(doc) <= {*REQUIRED, *FIELDS, "error"}, doc
            assert TIME.match(str(doc["time"])) and doc["level"] in LEVELS, doc
            if doc["level"] in {"info", "warning"}:
                assert not HOME_ID.search(json.dumps(doc)), doc  # no home ID in bulk logs
    uuid.UUID(int=int(TRACE_ID, 16))  # a well-formed trace ID (sanity of the constant)
