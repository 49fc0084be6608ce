"""The Helm chart, rendered by Helm's own engine (helm-python-sdk) and validated object by object."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest
import yaml

from scripts.k8s import dashboard
from tests.chart.support import (
    CHART,
    K8S_VERSIONS,
    SCENARIOS,
    container,
    env_names,
    find,
    lint_problems,
    one,
    render,
    render_files,
    validate,
)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_helm_lint_is_clean(scenario: str) -> None:
    assert lint_problems(SCENARIOS[scenario]) == []


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_object_validates(scenario: str, k8s_version: str) -> None:
    objects = render(SCENARIOS[scenario])
    assert objects
    for obj in objects:
        try:
            validate(obj, k8s_version)
        except Exception as exc:  # show which object failed
            raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']}: {exc}") from exc
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "homesec-telemetry"
        assert labels["app.kubernetes.io/part-of"] == "homesec-telemetry"


def test_validation_rejects_a_broken_object() -> None:
    """The validators really validate: a Deployment with a typo and a bad ScaledObject both fail."""
    deployment = one(render({}), "Deployment", "-producer")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    with pytest.raises(Exception, match="7"):
        validate(deployment)
    scaled = one(render(SCENARIOS["keda"]), "ScaledObject")
    del scaled["spec"]["triggers"]
    with pytest.raises(Exception, match="triggers"):
        validate(scaled)


def test_default_render_has_the_expected_objects() -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in render({}))
    expected = {
        (kind, f"homesec-telemetry-{c}")
        for kind in ("ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy",
                     "PodDisruptionBudget", "Service", "ServiceAccount")
        for c in ("producer", "consumer")
    } | {("Pod", "homesec-telemetry-test-readiness")}  # fmt: skip
    assert set(kinds) == expected


def test_hpa_scales_early_and_fast_up_slow_down() -> None:
    for hpa in find(render({}), "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        cpu = next(m for m in spec["metrics"] if m["resource"]["name"] == "cpu")
        assert cpu["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
        up, down = spec["behavior"]["scaleUp"], spec["behavior"]["scaleDown"]
        assert up["stabilizationWindowSeconds"] == 0
        assert down["stabilizationWindowSeconds"] >= 300
        assert max(p["periodSeconds"] for p in up["policies"]) < min(
            p["periodSeconds"] for p in down["policies"]
        )


def test_consumer_max_replicas_may_not_exceed_partitions() -> None:
    objects = render({})
    assert one(objects, "HorizontalPodAutoscaler", "-consumer")["spec"]["maxReplicas"] <= 32
    for engine in ("hpa", "keda"):
        values = {
            "eventHubs": {"partitionCount": 16},
            "consumer": {"autoscaling": {"maxReplicas": 17, "engine": engine}},
        }
        with pytest.raises(
            helm_python.HelmRenderError, match=r"consumer replicas \(17\) exceed .*partitionCount \(16\)"
        ):
            render_files(values)
    with pytest.raises(helm_python.HelmRenderError, match="exceed"):
        render_files(
            {
                "eventHubs": {"partitionCount": 4},
                "consumer": {"autoscaling": {"enabled": False}, "replicaCount": 5},
            }
        )
    # Exactly one pod per partition is allowed.
    render_files({"eventHubs": {"partitionCount": 16}, "consumer": {"autoscaling": {"maxReplicas": 16}}})


def test_keda_replaces_the_consumer_hpa_never_both() -> None:
    objects = render(SCENARIOS["keda"])
    assert [h["metadata"]["name"] for h in find(objects, "HorizontalPodAutoscaler")] == [
        "homesec-telemetry-producer"
    ]
    scaled = one(objects, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "homesec-telemetry-consumer"
    assert scaled["spec"]["maxReplicaCount"] == 16
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "azure-eventhub"
    assert trigger["metadata"]["blobContainer"] == "checkpoints"  # the same checkpoints the consumer writes
    assert trigger["metadata"]["consumerGroup"] == "rollups"
    auth = one(objects, "TriggerAuthentication")
    assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"connection", "storageConnection"}
    wi = render(SCENARIOS["keda-workload-identity"])
    assert one(wi, "TriggerAuthentication")["spec"] == {
        "podIdentity": {"provider": "azure-workload", "identityId": "11111111-2222-3333-4444-555555555555"}
    }
    assert one(wi, "ScaledObject")["spec"]["triggers"][0]["metadata"]["eventHubNamespace"] == "homesec-ehns"
    assert one(wi, "ScaledObject")["spec"]["triggers"][0]["metadata"]["storageAccountName"] == "homesecst"
    assert not find(
        render({"consumer": {"autoscaling": {"enabled": False, "engine": "keda"}}}), "ScaledObject"
    )


def _grace(objects: list[dict[str, Any]], component: str) -> tuple[int, int, int]:
    deployment = one(objects, "Deployment", f"-{component}")
    config = one(objects, "ConfigMap", f"-{component}")["data"]
    pre_stop = (
        container(deployment).get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    )
    app_grace = int(config[f"HOMESEC_{component.upper()}_SHUTDOWN_GRACE_SECONDS"])
    return int(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]), pre_stop, app_grace


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_termination_grace_leaves_time_to_drain_and_flush(scenario: str) -> None:
    objects = render(SCENARIOS[scenario])
    for component in ("producer", "consumer"):
        if not find(objects, "Deployment", f"-{component}"):
            continue
        total, pre_stop, app_grace = _grace(objects, component)
        assert app_grace < total and pre_stop + app_grace < total, (component, total, pre_stop, app_grace)


def test_termination_grace_is_computed_or_checked() -> None:
    assert _grace(render({}), "producer") == (5 + 30 + 10, 5, 30)
    assert _grace(render({"consumer": {"shutdownGraceSeconds": 50}}), "consumer") == (2 + 50 + 10, 2, 50)
    assert _grace(render({"producer": {"terminationGracePeriodSeconds": 90}}), "producer")[0] == 90
    with pytest.raises(
        helm_python.HelmRenderError, match=r"producer.terminationGracePeriodSeconds \(30\) must exceed"
    ):
        render_files({"producer": {"terminationGracePeriodSeconds": 30}})


def test_probes_ports_and_spread() -> None:
    objects = render({})
    for component, port, admin in (("producer", 8080, 9090), ("consumer", 8081, 9091)):
        deployment = one(objects, "Deployment", f"-{component}")
        c = container(deployment)
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"},
                              {"name": "admin", "containerPort": admin, "protocol": "TCP"}]  # fmt: skip
        probes = (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz"))
        for probe, path in probes:
            assert c[probe]["httpGet"] == {"path": path, "port": "admin"}, probe
        config = one(objects, "ConfigMap", f"-{component}")["data"]
        prefix = f"HOMESEC_{component.upper()}_"
        assert (config[f"{prefix}PORT"], config[f"{prefix}ADMIN_PORT"]) == (str(port), str(admin))
        service_ports = one(objects, "Service", f"-{component}")["spec"]["ports"]
        assert [(p["name"], p["targetPort"]) for p in service_ports] == [("http", "http"), ("admin", "admin")]
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {s["topologyKey"] for s in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert one(objects, "PodDisruptionBudget", f"-{component}")["spec"]["maxUnavailable"] == 1


def test_every_values_key_is_documented() -> None:
    """Every leaf key in values.yaml has a comment right above it or above one of its parent keys."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = [
        f"{i + 1}: {line.strip()}"
        for i, line in enumerate(lines)
        if _is_leaf_key(line) and not any(_commented(lines, j) for j in _ancestry(lines, i))
    ]
    assert undocumented == []


def _is_leaf_key(line: str) -> bool:
    stripped = line.strip()
    return (
        bool(stripped)
        and not stripped.startswith(("#", "-"))
        and ":" in stripped
        and not stripped.endswith(":")
    )


def _commented(lines: list[str], index: int) -> bool:
    return index > 0 and lines[index - 1].strip().startswith("#")


def _ancestry(lines: list[str], index: int) -> list[int]:
    """The line itself and the lines of its parent keys."""
    chain, indent = [index], len(lines[index]) - len(lines[index].lstrip())
    for j in range(index - 1, -1, -1):
        text = lines[j]
        depth = len(text) - len(text.lstrip())
        if text.strip() and not text.strip().startswith("#") and depth < indent:
            chain.append(j)
            indent = depth
    return chain


def test_defaults_validate_against_the_schema() -> None:
    with helm_python.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.values)
        assert yaml.safe_load((CHART / "values.yaml").read_text()) == chart.values


def test_notes_render_for_every_scenario() -> None:
    for values in SCENARIOS.values():
        notes = render_files(values)["homesec-telemetry/templates/NOTES.txt"]
        assert "helm test homesec-telemetry" in notes


def test_helm_test_pod_checks_both_services() -> None:
    pod = one(render({}), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["args"] == [
        "http://homesec-telemetry-producer:9090/readyz",
        "http://homesec-telemetry-consumer:9091/readyz",
    ]


def test_env_vars_set_by_the_chart_are_documented() -> None:
    """docs/aks.md lists every environment variable the chart sets (the lead reconciles names with it)."""
    doc = (CHART.parents[1] / "docs" / "aks.md").read_text()
    names: set[str] = set()
    for values in (SCENARIOS["everything"], {}, SCENARIOS["minimal"]):
        objects = render(values)
        for component in ("producer", "consumer"):
            for deployment in find(objects, "Deployment", f"-{component}"):
                names |= env_names(deployment, one(objects, "ConfigMap", f"-{component}"))
    names.discard("HOMESEC_PRODUCER_MAX_BATCH_SIZE")  # from MINIMAL's producer.config example
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert missing == []


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_reference_resolves(scenario: str) -> None:
    """Selectors select pods, scale targets and config/service-account references name rendered objects."""
    objects = render(SCENARIOS[scenario])
    deployments = {d["metadata"]["name"]: d for d in find(objects, "Deployment")}
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    services = find(objects, "Service")
    for d in deployments.values():
        assert _matches(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
        pod = d["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] in {sa["metadata"]["name"] for sa in find(objects, "ServiceAccount")}
        assert container(d)["envFrom"][0]["configMapRef"]["name"] in {
            c["metadata"]["name"] for c in find(objects, "ConfigMap")
        }
    for svc in services:
        assert sum(_matches(svc["spec"]["selector"], labels) for labels in pod_labels) == 1
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in find(objects, kind):
            key = "selector" if kind == "PodDisruptionBudget" else "podSelector"
            assert sum(_matches(obj["spec"][key]["matchLabels"], labels) for labels in pod_labels) == 1
    for obj in find(objects, "HorizontalPodAutoscaler") + find(objects, "ScaledObject"):
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
    for monitor in find(objects, "ServiceMonitor"):
        assert (
            sum(
                _matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
                for s in services
            )
            == 1
        )
    for monitor in find(objects, "PodMonitor"):
        assert sum(_matches(monitor["spec"]["selector"]["matchLabels"], labels) for labels in pod_labels) == 1
    for scaled in find(objects, "ScaledObject"):
        auth = scaled["spec"]["triggers"][0]["authenticationRef"]["name"]
        assert auth in {t["metadata"]["name"] for t in find(objects, "TriggerAuthentication")}


def test_dashboard_configmap_carries_the_dashboard() -> None:
    cm = one(render(SCENARIOS["observability"]), "ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Homesec"}
    assert json.loads(cm["data"]["homesec-telemetry.json"]) == dashboard.build()
