"""Values that would render something dangerous are refused: by the schema, or by a template `fail`.

Each case renders (or validates) the bad value and expects a clear refusal, and renders a good neighbour to
show the guard is no wider than it needs to be.
"""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.chart.support import SCENARIOS, find, one, render, render_files, schema_errors

SCRAPE = ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")


# --- networkPolicy.egressPorts ------------------------------------------------------------------------


def test_empty_egress_ports_are_refused_not_rendered_as_allow_all() -> None:
    """`ports: null` in an egress rule (no `to`) allows ALL egress: an empty list must never render."""
    values = {"networkPolicy": {"enabled": True, "egressPorts": []}}
    assert "egressPorts" in schema_errors(values)
    with pytest.raises((helm_python.HelmValuesError, helm_python.HelmRenderError), match="egressPorts"):
        render_files(values)
    assert "egressPorts" in schema_errors({"networkPolicy": {"egressPorts": [443, 443]}})


def test_every_egress_rule_names_its_ports() -> None:
    values = {
        "eventHubs": {"transport": "amqp_websockets"},
        "networkPolicy": {"enabled": True, "egressPorts": [443]},
    }
    objects = render(values)
    for policy in find(objects, "NetworkPolicy"):
        for rule in policy["spec"]["egress"]:
            assert rule.get("ports"), f"{policy['metadata']['name']}: an egress rule without ports allows all"
        assert [p["port"] for p in policy["spec"]["egress"][1]["ports"]] == [443]


# --- eventHubs.transport -------------------------------------------------------------------------------


def _egress_ports(values: dict[str, Any]) -> dict[str, list[int]]:
    objects = render({**values, "networkPolicy": {"enabled": True, **values.get("networkPolicy", {})}})
    return {p["metadata"]["name"]: [port["port"] for port in p["spec"]["egress"][1]["ports"]]
            for p in find(objects, "NetworkPolicy")}  # fmt: skip


@pytest.mark.parametrize(("transport", "ports"), [("amqp", [443, 5671]), ("amqp_websockets", [443])])
def test_egress_follows_the_transport(transport: str, ports: list[int]) -> None:
    egress = _egress_ports({"eventHubs": {"transport": transport}})
    assert sorted(egress) == ["homesec-telemetry-consumer", "homesec-telemetry-producer"]
    assert all(p == ports for p in egress.values()), egress
    for config in find(render({"eventHubs": {"transport": transport}}), "ConfigMap"):
        component = config["metadata"]["name"].rsplit("-", 1)[1]
        if component in ("producer", "consumer"):
            assert config["data"][f"HOMESEC_{component.upper()}_TRANSPORT"] == transport


def test_default_transport_is_amqp_and_explicit_ports_still_win() -> None:
    assert set(map(tuple, _egress_ports({}).values())) == {(443, 5671)}
    explicit = {"eventHubs": {"transport": "amqp_websockets"}, "networkPolicy": {"egressPorts": [443, 8443]}}
    assert set(map(tuple, _egress_ports(explicit).values())) == {(443, 8443)}


def test_amqp_without_5671_in_the_egress_ports_fails_rendering() -> None:
    with pytest.raises(
        helm_python.HelmRenderError, match=r"egressPorts lacks 5671 but eventHubs\.transport is amqp"
    ):
        render_files({"networkPolicy": {"enabled": True, "egressPorts": [443]}})


def test_transport_and_proxy_values_are_checked() -> None:
    assert "transport" in schema_errors({"eventHubs": {"transport": "websockets"}})
    assert "httpProxy" in schema_errors({"eventHubs": {"httpProxy": "http://user:pw@proxy:3128"}})
    with pytest.raises(
        helm_python.HelmRenderError, match=r"httpProxy needs eventHubs\.transport amqp_websockets"
    ):
        render_files({"eventHubs": {"httpProxy": "http://proxy.corp:3128"}})
    values = {"eventHubs": {"transport": "amqp_websockets", "httpProxy": "http://proxy.corp:3128"}}
    proxies = {c["metadata"]["name"]: c["data"].get("HOMESEC_PRODUCER_EVENTHUB_HTTP_PROXY",
                                                     c["data"].get("HOMESEC_CONSUMER_EVENTHUB_HTTP_PROXY"))
               for c in find(render(values), "ConfigMap")}  # fmt: skip
    assert (
        proxies["homesec-telemetry-producer"]
        == proxies["homesec-telemetry-consumer"]
        == "http://proxy.corp:3128"
    )


# --- replica ranges and PodDisruptionBudgets ----------------------------------------------------------


@pytest.mark.parametrize("component", ["producer", "consumer"])
def test_min_replicas_above_max_fails_rendering(component: str) -> None:
    values = {component: {"autoscaling": {"minReplicas": 6, "maxReplicas": 4}}}
    with pytest.raises(
        helm_python.HelmRenderError,
        match=rf"{component}.autoscaling.minReplicas \(6\) exceeds {component}.autoscaling.maxReplicas \(4\)",
    ):
        render_files(values)
    # Equal is fine, and so is a range that autoscaling does not use.
    render_files({component: {"autoscaling": {"minReplicas": 4, "maxReplicas": 4}}})
    render_files({component: {"autoscaling": {"enabled": False, "minReplicas": 6, "maxReplicas": 4}}})


@pytest.mark.parametrize("bad", [-1, "-1", "-5%", "150%", "one", "1.5", 1.5, None])
def test_pdb_max_unavailable_must_be_a_count_or_percentage(bad: object) -> None:
    """-1 (or -5%, 150%) is no budget Kubernetes would keep; null would render `maxUnavailable: null`."""
    for component in ("producer", "consumer"):
        with pytest.raises(helm_python.HelmValuesError, match="maxUnavailable"):
            render_files({component: {"podDisruptionBudget": {"maxUnavailable": bad}}})


@pytest.mark.parametrize("good", [0, 1, 3, "0%", "25%", "100%"])
def test_pdb_max_unavailable_accepts_counts_and_percentages(good: object) -> None:
    values = {"producer": {"podDisruptionBudget": {"maxUnavailable": good}}}
    assert schema_errors(values) == ""
    pdb = one(render(values), "PodDisruptionBudget", "-producer")
    assert pdb["spec"]["maxUnavailable"] == good


# --- one scrape path per pod ----------------------------------------------------------------------------


def _scrape_annotations(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    deployment = one(objects, "Deployment", f"-{component}")
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"].get("annotations", {})
    return {k: v for k, v in annotations.items() if k in SCRAPE}


def test_scrape_annotations_only_when_no_monitor_scrapes_the_pod() -> None:
    """Annotations and a ServiceMonitor/PodMonitor would scrape each pod twice (two jobs), which doubles
    every sum(rate(...)) of the dashboard and the alerts: the chart renders exactly one scrape path."""
    plain = render({})
    assert _scrape_annotations(plain, "producer") == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"
    }  # fmt: skip
    assert _scrape_annotations(plain, "consumer")["prometheus.io/port"] == "9091"
    for monitor in ("serviceMonitor", "podMonitor"):
        objects = render({"metrics": {monitor: {"enabled": True}}})
        for component in ("producer", "consumer"):
            assert _scrape_annotations(objects, component) == {}, (monitor, component)
    # A consumer without a Service has no ServiceMonitor: its annotations stay its one scrape path.
    no_service = {"consumer": {"service": {"enabled": False}}}
    objects = render({"metrics": {"serviceMonitor": {"enabled": True}}, **no_service})
    assert [m["metadata"]["name"] for m in find(objects, "ServiceMonitor")] == ["homesec-telemetry-producer"]
    assert _scrape_annotations(objects, "producer") == {}
    assert _scrape_annotations(objects, "consumer")["prometheus.io/scrape"] == "true"


def test_service_and_pod_monitors_are_never_both_rendered() -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}
    both = r"serviceMonitor\.enabled and metrics\.podMonitor\.enabled are both true"
    with pytest.raises(helm_python.HelmRenderError, match=both):
        render_files(values)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_pod_has_exactly_one_scrape_path_or_none(scenario: str) -> None:
    objects = render(SCENARIOS[scenario])
    monitored = {
        str(m["metadata"]["name"]).rsplit("-", 1)[1]
        for m in find(objects, "ServiceMonitor") + find(objects, "PodMonitor")
    }
    for deployment in find(objects, "Deployment"):
        component = str(deployment["metadata"]["name"]).rsplit("-", 1)[1]
        annotated = bool(_scrape_annotations(objects, component))
        assert not (annotated and component in monitored), f"{scenario}: {component} is scraped twice"


def test_the_scenarios_cover_both_monitor_kinds() -> None:
    monitors = ("ServiceMonitor", "PodMonitor")
    kinds = {o["kind"] for s in SCENARIOS.values() for o in render(s) if o["kind"] in monitors}
    assert kinds == {"ServiceMonitor", "PodMonitor"}
