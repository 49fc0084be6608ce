"""The dashboard harness against a real Prometheus scraping fake exporters of every contract metric.

This proves, without the services, that every dashboard query is valid PromQL that returns data when the
metrics exist with the contract's names and labels, that Prometheus loads and evaluates the alert rules,
and that the harness notices a query without data. test_dashboard_live.py repeats it against the services.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from homesec_devstack.procs import ManagedProcess, free_port

from tests.chart.promql import RULES, dashboard_queries, instantiate
from tests.integration.dashboard.prometheus import (
    PrometheusServer,
    Target,
    assert_expositions_pass_promtool,
    has_data,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed"),
]
JOBS = {"homesec-producer": "homesec_producer_", "homesec-consumer": "homesec_consumer_"}


@pytest.fixture
def exporters(tmp_path: Path) -> Iterator[dict[str, int]]:
    """One fake exporter per service, on free loopback ports; stopped at teardown."""
    ports = {job: free_port() for job in JOBS}
    procs = [
        ManagedProcess.python_module(
            f"fake-{job}",
            "tests.integration.dashboard.fake_exporter",
            ["--port", str(ports[job]), "--prefix", prefix],
            log_dir=tmp_path / "logs",
        )
        for job, prefix in JOBS.items()
    ]
    try:
        for proc, port in zip(procs, ports.values(), strict=True):
            proc.start().wait_http(f"http://127.0.0.1:{port}/metrics", timeout=30)
        yield ports
    finally:
        for proc in procs:
            proc.stop(grace=5)


def test_exposition_passes_promtool_check_metrics(exporters: dict[str, int]) -> None:
    assert_expositions_pass_promtool(list(exporters.values()))


def test_every_dashboard_query_returns_data(exporters: dict[str, int], tmp_path: Path) -> None:
    targets = [Target(job, (f"127.0.0.1:{port}",)) for job, port in exporters.items()]
    with PrometheusServer(tmp_path / "prometheus", targets, rule_files=[RULES]) as prom:
        prom.wait_targets_up(list(JOBS), scrapes=8)
        queries = [q for q in dashboard_queries() if not q.needs_kube_state_metrics]
        assert len(queries) > 40
        empty = [q.where for q in queries if not has_data(prom.query(instantiate(q.expr, "5s")))]
        assert empty == [], f"dashboard queries without data: {empty}"
        # The harness can fail: a misspelt metric has no data.
        assert not has_data(
            prom.query('sum(rate(homesec_producer_readings_recieved_total{namespace=~".*"}[5s]))')
        )
        health = prom.rule_health()
        assert len(health) >= 10
        assert set(health.values()) <= {"ok", "unknown"}, health


def test_prometheus_is_a_process_of_the_tests_own(tmp_path: Path) -> None:
    """Its own port and data directory, answered by the child the harness started (not a system unit)."""
    with PrometheusServer(tmp_path / "prometheus", []) as prom:
        flags = prom.api("status/flags")
        assert flags["storage.tsdb.path"] == str(tmp_path / "prometheus" / "data")
        assert flags["web.listen-address"] == f"127.0.0.1:{prom.port}"
        assert (tmp_path / "prometheus" / "data").is_dir()
