"""Every PromQL expression in the dashboard and the alert rules uses only metrics the services export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from homesec_consumer.metrics import ConsumerMetrics
from homesec_producer.metrics import ProducerMetrics
from homesec_runtime.process_metrics import register_process_metrics
from prometheus_client import CollectorRegistry, generate_latest

from scripts.k8s import dashboard
from tests.chart.promql import (
    DASHBOARD,
    TARGET_LABELS,
    Query,
    contract_metrics,
    dashboard_queries,
    instantiate,
    label_names,
    metric_names,
    rule_queries,
)

KSM_METRICS = frozenset(
    {
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
    }
)
ALL_QUERIES = dashboard_queries() + rule_queries()


def _exposed(create: Callable[[CollectorRegistry], object]) -> set[str]:
    registry = CollectorRegistry()
    create(registry)
    lines = generate_latest(registry).decode().splitlines()
    names = {line.split()[2] for line in lines if line.startswith("# TYPE ")}
    return {n for n in names if not n.endswith("_created")}  # the client's per-series creation times


def test_contract_parsing_found_every_table() -> None:
    metrics = contract_metrics()
    names = {m.name for m in metrics.values()}
    # The contract's tables name exactly the metrics the services register.
    assert {n for n in names if n.startswith("homesec_producer_")} == _exposed(ProducerMetrics.create)
    assert {n for n in names if n.startswith("homesec_consumer_")} == _exposed(ConsumerMetrics.create)
    assert {n for n in names if not n.startswith("homesec_")} == _exposed(register_process_metrics)
    assert metrics["homesec_producer_readings_rejected_total"].labels == {"reason"}
    assert metrics["homesec_producer_http_requests_total"].labels == {"route", "method", "status"}
    assert "homesec_producer_publish_duration_seconds_bucket" in metrics


def _primed(create: Callable[[CollectorRegistry], object]) -> dict[str, set[frozenset[tuple[str, str]]]]:
    """Sample name -> the label sets it is exposed with right after creation (before any traffic)."""
    registry = CollectorRegistry()
    create(registry)
    children: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                children.setdefault(sample.name, set()).add(frozenset(sample.labels.items()))
    return children


@pytest.mark.parametrize(
    ("prefix", "create"),
    [("homesec_producer_", ProducerMetrics.create), ("homesec_consumer_", ConsumerMetrics.create)],
    ids=["producer", "consumer"],
)
def test_every_counter_is_primed_with_exactly_the_contract_label_values(
    prefix: str, create: Callable[[CollectorRegistry], object]
) -> None:
    """The contract's enumerated label values are the children that exist from the first scrape, no more."""
    primed = _primed(create)
    checked = 0
    for name, metric in contract_metrics().items():
        if not name.startswith(prefix) or metric.kind != "counter":
            continue
        if not metric.labels:
            assert primed.get(name) == {frozenset()}, name
        elif metric.values:
            ((label, values),) = metric.values
            assert {dict(labels).get(label) for labels in primed.get(name, set())} == set(values), name
            assert all({k for k, _ in labels} == set(metric.labels) for labels in primed[name]), name
        else:
            continue  # free (bounded) label values, such as route: created on first use
        checked += 1
    assert checked >= 5


def test_extractor_is_not_fooled() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(homesec_x_bucket{namespace=~"$namespace",a="b c"}[5m])))'
        " / on (pod) group_left max without (partition) (foo:bar offset 5m) and bool up"
    )
    assert metric_names(expr) == {"homesec_x_bucket", "foo:bar", "up"}
    assert label_names(expr) == {"le", "namespace", "a", "pod", "partition"}


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.where)
def test_query_uses_only_contract_metrics_and_labels(query: Query) -> None:
    metrics = contract_metrics()
    names = metric_names(query.expr)
    assert names, f"{query.where}: no metric found in {query.expr!r}"
    unknown = names - set(metrics) - (KSM_METRICS if query.needs_kube_state_metrics else set())
    assert not unknown, f"{query.where}: not in docs/contracts.md: {sorted(unknown)}"
    allowed = (
        set(TARGET_LABELS) | {"horizontalpodautoscaler"}
        if query.needs_kube_state_metrics
        else set(TARGET_LABELS)
    )
    for name in names & set(metrics):
        allowed |= metrics[name].labels
    assert label_names(query.expr) <= allowed, (
        f"{query.where}: labels {sorted(label_names(query.expr) - allowed)}"
    )


def test_only_marked_panels_use_kube_state_metrics() -> None:
    for query in dashboard_queries():
        uses_ksm = any(n.startswith("kube_") for n in metric_names(query.expr))
        assert uses_ksm == query.needs_kube_state_metrics, query.where


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) is not installed")
def test_promtool_parses_every_expression(tmp_path: Path) -> None:
    rules = [
        {"record": f"homesec:check:{i}", "expr": instantiate(q.expr)}
        for i, q in enumerate(dashboard_queries())
    ] + [{"record": f"homesec:rule:{i}", "expr": q.expr} for i, q in enumerate(rule_queries())]
    path = tmp_path / "all-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "every-query", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return panels


def test_dashboard_top_row_is_the_loss_budget() -> None:
    panels = _panels()
    assert panels[0]["type"] == "row" and panels[0]["title"] == "Loss budget"
    top = [p for p in panels if p["gridPos"]["y"] < panels[1]["gridPos"]["y"] + panels[1]["gridPos"]["h"]][1:]
    flow = top[0]
    assert [t["legendFormat"] for t in flow["targets"]] == [
        "received",
        "acknowledged",
        "consumed",
        "rolled up",
    ]
    assert all(t["expr"].endswith("* 60") for t in flow["targets"]), "per minute"
    assert any("sequence_gaps" in t["expr"] for p in top for t in p["targets"])


def _row_panels(title: str) -> list[dict[str, Any]]:
    """The panels under the row called ``title``, up to the next row."""
    panels = _panels()
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and p["title"] == title)
    end = next((i for i, p in enumerate(panels) if i > start and p["type"] == "row"), len(panels))
    return panels[start + 1 : end]


def _grouped_by_reason(panels: list[dict[str, Any]], metric: str) -> bool:
    return any(
        metric in metric_names(t["expr"])
        and "reason" in label_names(t["expr"])
        and "{{reason}}" in t["legendFormat"]
        for p in panels
        for t in p["targets"]
    )


def test_loss_budget_row_shows_uncounted_readings_by_reason() -> None:
    """Every way an acknowledged reading goes uncounted is a dead-letter reason, shown by reason on top."""
    top = _row_panels("Loss budget")
    assert _grouped_by_reason(top, "homesec_consumer_dead_letters_total")
    reasons = dict(contract_metrics()["homesec_consumer_dead_letters_total"].values)["reason"]
    assert "outside_horizon" in reasons


def test_consumer_row_shows_duplicates_by_reason_late_readings_and_sensor_restarts() -> None:
    consumer = _row_panels("Consumer")
    assert _grouped_by_reason(consumer, "homesec_consumer_duplicates_dropped_total")
    exprs = [t["expr"] for p in consumer for t in p["targets"]]
    for metric in ("homesec_consumer_late_readings_total", "homesec_consumer_sensor_restarts_total"):
        assert any(metric in metric_names(e) for e in exprs), metric


def test_duplicates_are_only_ever_shown_by_reason() -> None:
    """Duplicates are only ever shown by reason: a total of them would hide a redelivery storm."""
    for query in dashboard_queries():
        if "homesec_consumer_duplicates_dropped_total" in metric_names(query.expr):
            assert "reason" in label_names(query.expr), query.where


def test_dashboard_covers_every_topic_of_the_issue() -> None:
    exprs = " ".join(t["expr"] for p in _panels() for t in p.get("targets", []))
    for metric in (
        "homesec_producer_http_requests_total", "homesec_producer_publish_duration_seconds_bucket",
        "homesec_producer_publish_retries_total", "homesec_producer_publish_throttled_total",
        "homesec_producer_buffer_readings", "homesec_producer_shed_total",
        "homesec_consumer_events_processed_total",
        "homesec_consumer_partition_lag_events", "homesec_consumer_partitions_owned",
        "homesec_consumer_end_to_end_latency_seconds_bucket", "homesec_consumer_checkpoint_age_seconds",
        "homesec_consumer_rollup_writes_total", "homesec_consumer_dead_letters_total",
        "kube_horizontalpodautoscaler_status_current_replicas",
    ):  # fmt: skip
        assert metric in exprs, metric


def test_pods_row_shows_cpu_and_memory_of_each_service() -> None:
    """One CPU and one memory panel per service, each keeping only that service's scrape targets."""
    pods = _row_panels("Pods and autoscaling")
    for service in ("producer", "consumer"):
        for metric in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
            exprs = [
                t["expr"]
                for p in pods
                for t in p["targets"]
                if metric in metric_names(t["expr"]) and f"homesec_{service}_ready" in metric_names(t["expr"])
            ]
            assert len(exprs) == 1, (service, metric, exprs)
            assert "on (job, instance)" in exprs[0] and "pod" in label_names(exprs[0]), exprs[0]


def test_dashboard_layout_is_valid() -> None:
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        covered = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not covered & cells, f"{p['title']} overlaps another panel"
        cells |= covered
        if p["type"] != "row":
            assert p["targets"] and p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_json_is_generated_from_the_source() -> None:
    assert DASHBOARD.read_text() == dashboard.render()


def test_every_dashboard_selector_follows_the_namespace_variable() -> None:
    """Each metric selector carries namespace=~"$namespace" (so one dashboard serves many installations)."""
    for query in dashboard_queries():
        for name in metric_names(query.expr):
            for match in re.finditer(rf"(?<![\w:]){re.escape(name)}(?![\w:])", query.expr):
                matchers = re.match(r"\{([^}]*)\}", query.expr[match.end() :])
                assert matchers, f"{query.where}: {name} has no label matchers"
                assert 'namespace=~"$namespace"' in matchers.group(1), f"{query.where}: {query.expr}"
