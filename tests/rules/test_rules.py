"""The alert rules: promtool checks them, promtool unit tests cover every alert both ways, and they bite."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from tests.chart.support import CHART, ROOT, one, render

RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
UNIT_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "alerts_test.yaml"
RUNBOOK = ROOT / "docs" / "operations.md"
# The list: publish failures, throttling, 503 shedding, lag growing, unowned, stale, dead letters.
REQUIRED = {
    "HomesecProducerPublishFailures", "HomesecProducerThrottled", "HomesecProducerShedding",
    "HomesecConsumerLagGrowing", "HomesecConsumerPartitionsUnowned", "HomesecConsumerCheckpointStale",
    "HomesecConsumerDeadLetters",
}  # fmt: skip

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing"
)


def _alerts(path: Path = RULES) -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], check=False, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_required_alerts_exist() -> None:
    assert {a["alert"] for a in _alerts()} >= REQUIRED


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"


@pytest.mark.parametrize("alert", sorted(a["alert"] for a in _alerts()))
@pytest.mark.parametrize("mutant", ["vector(1)", "vector(0) > 1"], ids=["always", "never"])
def test_unit_tests_catch_a_broken_rule(alert: str, mutant: str, tmp_path: Path) -> None:
    """Replacing an alert's expression with one that always (or never) fires makes the unit tests fail."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = mutant
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests").mkdir()
    shutil.copy(UNIT_TESTS, tmp_path / "tests" / UNIT_TESTS.name)
    result = _promtool("test", "rules", str(tmp_path / "tests" / UNIT_TESTS.name))
    assert result.returncode != 0, f"{alert} with expr {mutant!r} still passes the unit tests"
    assert alert in result.stdout + result.stderr


def test_every_alert_has_a_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    headings = {h.strip().lower() for h in re.findall(r"^### (.+)$", runbook, flags=re.MULTILINE)}
    for alert in _alerts():
        assert alert["alert"].lower() in headings, f"docs/operations.md has no '### {alert['alert']}'"
        assert alert["annotations"]["runbook_url"].endswith(f"docs/operations.md#{alert['alert'].lower()}")
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description"} <= set(alert["annotations"])


def test_chart_prometheusrule_carries_the_same_rules() -> None:
    values = {"prometheusRule": {"enabled": True, "disabledAlerts": ["HomesecSequenceGaps"],
                                 "additionalAlertLabels": {"team": "platform"}}}  # fmt: skip
    rule = one(render(values), "PrometheusRule")
    rendered = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    source = {a["alert"]: a for a in _alerts()}
    assert set(rendered) == set(source) - {"HomesecSequenceGaps"}
    for name, r in rendered.items():
        assert r["expr"] == source[name]["expr"]
        assert r["annotations"] == source[name]["annotations"]
        assert r["labels"] == {**source[name]["labels"], "team": "platform"}


def _default_runbook_base() -> str:
    base: str = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]["runbookBaseUrl"]
    return base


def test_rule_files_link_the_charts_default_runbook() -> None:
    """deploy/prometheus/rules.yaml (and its source) link the chart's default runbook page: this
    repository's docs/operations.md, as Chart.yaml's ``home`` names it."""
    base = _default_runbook_base()
    home = yaml.safe_load((CHART / "Chart.yaml").read_text())["home"]
    assert base == f"{home}/blob/main/docs/operations.md"
    for path in (RULES, CHART / "files" / "prometheus-rules.yaml"):
        for alert in _alerts(path):
            assert alert["annotations"]["runbook_url"] == f"{base}#{alert['alert'].lower()}", path


def test_chart_links_the_runbook_page_it_is_given() -> None:
    base = "https://wiki.example.com/ops/homesec-runbook"
    rule = one(render({"prometheusRule": {"enabled": True, "runbookBaseUrl": base}}), "PrometheusRule")
    rendered = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    source = {a["alert"]: a for a in _alerts()}
    assert set(rendered) == set(source)
    for name, r in rendered.items():
        assert r["annotations"] == {**source[name]["annotations"], "runbook_url": f"{base}#{name.lower()}"}


@pytest.mark.parametrize("base", ["", "wiki/runbook", "https://wiki.example.com/runbook#alerts"])
def test_chart_refuses_a_runbook_base_that_is_not_a_page_url(base: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="runbookBaseUrl"):
        render({"prometheusRule": {"enabled": True, "runbookBaseUrl": base}})
