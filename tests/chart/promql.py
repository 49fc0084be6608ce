"""PromQL helpers for the dashboard and rule tests: contract metrics, and the names an expression uses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "docs" / "contracts.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
KSM_MARK = "kube-state-metrics"
# Labels Prometheus itself attaches (target labels) or histogram buckets carry; never a home ID.
TARGET_LABELS = frozenset({"le", "instance", "job", "pod", "namespace"})
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
)
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    labels: frozenset[str]
    # Values the contract enumerates, e.g. {"reason": ("validation", ...)}; other labels are free (bounded).
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()


@cache
def contract_metrics() -> dict[str, Metric]:
    """Exported series names (histograms expanded) -> the contract row, parsed from docs/contracts.md."""
    metrics: dict[str, Metric] = {}
    name = r"(?:homesec|process|python)_[a-z0-9_]+"  # the services' own, and the process/interpreter ones
    row = re.compile(rf"^\|\s*`({name})`\s*\|\s*(counter|gauge|histogram)\s*\|(.*)\|\s*$")
    for line in CONTRACTS.read_text().splitlines():
        match = row.match(line)
        if not match:
            continue
        name, kind, label_cell = match.groups()
        labels, values = _parse_labels(label_cell)
        for suffix in SUFFIXES[kind]:
            metrics[name + suffix] = Metric(name, kind, labels, values)
    return metrics


def _parse_labels(cell: str) -> tuple[frozenset[str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """A contract label cell -> (label names, enumerated values of the label before a ``=``, if any)."""
    if "=" not in cell:
        return frozenset(re.findall(r"`([a-z_]+)`", cell)), ()
    head, tail = cell.split("=", 1)
    label = re.findall(r"`([a-z_]+)`", head)[-1]
    return frozenset({label}), ((label, tuple(re.findall(r"`([^`]+)`", tail))),)


def _strip(expr: str) -> str:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return re.sub(r"\[[^\]]*\]", "", expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels and durations left out)."""
    text = GROUPING.sub(" ", re.sub(r"\{[^}]*\}", "", _strip(expr)))
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if match.group() in KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(match.group())
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    text = _strip(expr)
    labels = {
        label.strip() for m in GROUPING.finditer(text) for label in m.group(2).split(",") if label.strip()
    }
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    return labels


@dataclass(frozen=True)
class Query:
    where: str
    expr: str
    needs_kube_state_metrics: bool = False


def dashboard_queries(path: Path = DASHBOARD) -> list[Query]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    queries = []
    for panel in dashboard["panels"]:
        ksm = KSM_MARK in panel.get("description", "")
        for target in panel.get("targets", []):
            queries.append(Query(f"panel {panel['title']!r} {target['refId']}", target["expr"], ksm))
    return queries


def rule_queries(path: Path = RULES) -> list[Query]:
    rules = yaml.safe_load(path.read_text())
    return [
        Query(f"rule {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def instantiate(expr: str, rate_interval: str = "1m") -> str:
    """Substitute the dashboard's Grafana variables the way Grafana would."""
    return expr.replace("$__rate_interval", rate_interval).replace("$namespace", ".*")
