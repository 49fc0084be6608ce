"""The dashboard's latency panels show trace exemplars: a real Prometheus (exemplar storage on) scrapes the
services' OpenMetrics with tracing on, and each exemplar query of the dashboard returns exemplars whose
trace IDs the services exported.

Real processes over loopback: the Event Hubs emulator, Azurite, producer, consumer, simulator, Debian's
prometheus, and an OTLP/HTTP receiver thread standing in for the trace backend.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.otlp_receiver import OtlpReceiver
from homesec_devstack.procs import ManagedProcess, free_port

from scripts.k8s import dashboard
from tests.chart.promql import instantiate
from tests.integration.dashboard import service_processes
from tests.integration.dashboard.prometheus import PrometheusServer, Target

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed"),
]

AUTH_KEYS = {"ex-1": "exemplar-test-signing-key-0123456789abcdef"}


@pytest.fixture
def traced(
    emulator: EmulatorProcess, azurite: AzuriteProcess, container_name: str, tmp_path: Path
) -> Iterator[tuple[dict[str, int], OtlpReceiver]]:
    """Producer and consumer with tracing on (every trace sampled) under ~15 s of simulator load."""
    logs = tmp_path / "logs"
    azurite.create_containers([f"{container_name}-checkpoints", f"{container_name}-rollups"])
    ports = {"homesec-producer": free_port(), "homesec-consumer": free_port()}  # the admin ports (metrics)
    api_port = free_port()
    with OtlpReceiver() as receiver:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "500"}
        producer = service_processes.producer(
            emulator,
            port=api_port,
            admin_port=ports["homesec-producer"],
            auth_keys=AUTH_KEYS,
            log_dir=logs,
            extra=otel,
        )
        consumer = service_processes.consumer(
            emulator,
            azurite,
            admin_port=ports["homesec-consumer"],
            prefix=container_name,
            auth_keys=AUTH_KEYS,
            log_dir=logs,
            extra={"HOMESEC_CONSUMER_FLUSH_INTERVAL_SECONDS": "2", **otel},
        )
        simulator = ManagedProcess.python_module(
            "simulator", "homesec_devstack.simulator",
            ["--url", f"http://127.0.0.1:{api_port}", "--homes", "100", "--rate", "200",
             "--duration", "15", "--retries", "3", "--alarm-fraction", "0.05",
             *[f"--auth-key={k}={v}" for k, v in AUTH_KEYS.items()]],
            log_dir=logs,
        )  # fmt: skip
        started: list[ManagedProcess] = []
        try:
            for proc, job in ((producer, "homesec-producer"), (consumer, "homesec-consumer")):
                started.append(proc.start())
                proc.wait_http(f"http://127.0.0.1:{ports[job]}/readyz", timeout=60)
            started.append(simulator.start())
            yield ports, receiver
        finally:
            for proc in reversed(started):
                proc.stop(grace=15)


def _exemplar_queries() -> dict[str, str]:
    """Panel title -> one of its queries, for the panels that show exemplars."""
    return {
        p["title"]: instantiate(p["targets"][0]["expr"], "10s")
        for p in dashboard.build()["panels"]
        if any(t.get("exemplar") for t in p.get("targets", []))
    }


def test_latency_panels_get_exemplars_of_exported_traces(
    traced: tuple[dict[str, int], OtlpReceiver], tmp_path: Path
) -> None:
    ports, receiver = traced
    queries = _exemplar_queries()
    assert len(queries) == 4  # request, publish, end-to-end and alarm latency
    targets = [Target(job, (f"127.0.0.1:{port}",)) for job, port in ports.items()]
    with PrometheusServer(
        tmp_path / "prometheus", targets, extra_args=["--enable-feature=exemplar-storage"]
    ) as prom:
        prom.wait_targets_up(list(ports), scrapes=2)
        deadline = time.monotonic() + 90
        found: dict[str, set[str]] = {}
        while set(found) != set(queries):
            assert time.monotonic() < deadline, f"no exemplars for {sorted(set(queries) - set(found))}"
            time.sleep(2)
            now = time.time()
            for title, expr in queries.items():
                data = prom.api("query_exemplars", query=expr, start=str(now - 300), end=str(now))
                ids = {e["labels"]["trace_id"] for series in data for e in series["exemplars"]}
                if ids:
                    found[title] = ids
    exported = {span.trace_id for span in receiver.spans()}
    for title, ids in found.items():
        assert all(len(i) == 32 for i in ids) and ids & exported, title  # they lead to exported traces
