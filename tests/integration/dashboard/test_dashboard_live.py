"""Every dashboard query returns data from a real Prometheus scraping the real services under load.

Real processes over loopback: the Event Hubs emulator, Azurite, the producer, the consumer and the sensor
simulator (all ManagedProcess), and Debian's prometheus scraping both services every second. Panels marked
as needing kube-state-metrics are left out explicitly (there is no cluster here).
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port

from tests.chart.promql import RULES, dashboard_queries, instantiate, metric_names
from tests.integration.dashboard import service_processes
from tests.integration.dashboard.prometheus import (
    PrometheusServer,
    Target,
    assert_expositions_pass_promtool,
    has_data,
)

REQUIRED_MODULES = (
    "homesec_devstack.emulator.__main__",
    "homesec_devstack.simulator",
    "homesec_producer.__main__",
    "homesec_consumer.__main__",
)


def _missing(modules: tuple[str, ...]) -> list[str]:
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(module)
    return missing


MISSING = _missing(REQUIRED_MODULES)
AUTH_KEYS = {"dash-1": "dashboard-test-signing-key-0123456789abcdef"}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"not written yet: {', '.join(MISSING)}"),
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed"),
]


@pytest.fixture
def pipeline(
    emulator: EmulatorProcess, azurite: AzuriteProcess, container_name: str, tmp_path: Path
) -> Iterator[dict[str, int]]:
    """Producer and consumer against the emulator and Azurite, plus a simulator sending load for ~60 s."""
    logs = tmp_path / "logs"
    azurite.create_containers([f"{container_name}-checkpoints", f"{container_name}-rollups"])
    ports = {"homesec-producer": free_port(), "homesec-consumer": free_port()}  # the admin ports (metrics)
    api_port = free_port()
    producer = service_processes.producer(
        emulator, port=api_port, admin_port=ports["homesec-producer"], auth_keys=AUTH_KEYS, log_dir=logs
    )
    consumer = service_processes.consumer(
        emulator,
        azurite,
        admin_port=ports["homesec-consumer"],
        prefix=container_name,
        auth_keys=AUTH_KEYS,
        log_dir=logs,
    )
    simulator = ManagedProcess.python_module(
        "simulator", "homesec_devstack.simulator",
        ["--url", f"http://127.0.0.1:{api_port}", "--homes", "200", "--rate", "400",
         "--duration", "60", "--retries", "3", "--alarm-fraction", "0.05",
         *[f"--auth-key={k}={v}" for k, v in AUTH_KEYS.items()]],
        log_dir=logs,
    )  # fmt: skip
    started = [producer, consumer]
    try:
        producer.start().wait_http(f"http://127.0.0.1:{ports['homesec-producer']}/readyz", timeout=60)
        consumer.start().wait_http(f"http://127.0.0.1:{ports['homesec-consumer']}/readyz", timeout=60)
        started.append(simulator.start())
        yield ports
    finally:
        for proc in reversed(started):
            proc.stop(grace=15)


def _wait_for(prom: PrometheusServer, expr: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not prom.query(expr):
        if time.monotonic() > deadline:
            raise TimeoutError(f"never true: {expr}")
        time.sleep(1)


def test_every_dashboard_query_returns_data_under_load(pipeline: dict[str, int], tmp_path: Path) -> None:
    targets = [Target(job, (f"127.0.0.1:{port}",)) for job, port in pipeline.items()]
    with PrometheusServer(tmp_path / "prometheus", targets, rule_files=[RULES]) as prom:
        prom.wait_targets_up(list(pipeline), scrapes=3)
        _wait_for(prom, "sum(homesec_consumer_readings_rolled_up_total) > 0", timeout=60)
        time.sleep(5)  # a few more scrapes so every rate window holds two points of the flow
        queries = [q for q in dashboard_queries() if not q.needs_kube_state_metrics]
        empty = [q for q in queries if not has_data(prom.query(instantiate(q.expr, "10s")))]
        present = {m["__name__"] for m in prom.api("series", **{"match[]": '{__name__=~"homesec_.+"}'})}
        assert set(prom.rule_health().values()) <= {"ok", "unknown"}
        # The services' /metrics pass promtool's lint.
        assert_expositions_pass_promtool(list(pipeline.values()))
    # Both services pre-create the children of every bounded label value, so every query has data.
    missing = {q.where: sorted(metric_names(q.expr) - present) for q in empty}
    assert missing == {}, f"dashboard queries without data (series missing in brackets): {missing}"
