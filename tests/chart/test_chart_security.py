"""Chart security: no secrets in values, Workload Identity, locked-down pods, NetworkPolicies."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.chart.support import CHART, SCENARIOS, WI, container, find, merge, one, render, render_files


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_pods_are_locked_down(scenario: str) -> None:
    objects = render(SCENARIOS[scenario])
    pods = [d["spec"]["template"]["spec"] for d in find(objects, "Deployment")] + [
        p["spec"] for p in find(objects, "Pod")
    ]
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert "limits" in c["resources"] and "requests" in c["resources"]


def _secret_refs(deployment: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in container(deployment).get("env", [])
        if "valueFrom" in e
    }


def test_connection_strings_come_only_from_the_existing_secret() -> None:
    objects = render({})
    assert _secret_refs(one(objects, "Deployment", "-producer")) == {
        "HOMESEC_PRODUCER_AUTH_KEYS": "producer-auth-keys",
        "HOMESEC_PRODUCER_AUTH_PUBLIC_KEYS": "producer-auth-public-keys",
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": "eventhubs-producer-connection-string",
    }
    assert _secret_refs(one(objects, "Deployment", "-consumer")) == {
        "HOMESEC_CONSUMER_AUTH_KEYS": "producer-auth-keys",  # the same token keys verify read tokens
        "HOMESEC_CONSUMER_AUTH_PUBLIC_KEYS": "producer-auth-public-keys",
        "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": "eventhubs-consumer-connection-string",
        "HOMESEC_CONSUMER_ALARMS_EVENTHUB_CONNECTION_STRING": "eventhubs-consumer-alarms-connection-string",
        "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": "blob-connection-string",
    }
    assert not find(objects, "Secret"), "the chart never creates a Secret"


def test_the_alarms_hub_is_rendered_into_the_consumer_and_its_connection_string_is_optional() -> None:
    objects = render({})
    config = one(objects, "ConfigMap", "-consumer")["data"]
    assert config["HOMESEC_CONSUMER_ALARMS_EVENTHUB_NAME"] == "alarms"
    env = {e["name"]: e for e in container(one(objects, "Deployment", "-consumer"))["env"]}
    assert env["HOMESEC_CONSUMER_ALARMS_EVENTHUB_CONNECTION_STRING"]["valueFrom"]["secretKeyRef"]["optional"]
    off = render({"eventHubs": {"alarmsName": ""}})
    assert one(off, "ConfigMap", "-consumer")["data"]["HOMESEC_CONSUMER_ALARMS_EVENTHUB_NAME"] == ""
    off_env = {e["name"] for e in container(one(off, "Deployment", "-consumer"))["env"]}
    assert "HOMESEC_CONSUMER_ALARMS_EVENTHUB_CONNECTION_STRING" not in off_env
    assert "HOMESEC_CONSUMER_ALARMS_EVENTHUB_NAME" not in one(objects, "ConfigMap", "-producer")["data"]


def test_token_keys_are_optional_secret_keys_so_pods_can_hold_only_public_keys() -> None:
    for component in ("producer", "consumer"):
        env = {e["name"]: e for e in container(one(render({}), "Deployment", f"-{component}"))["env"]}
        prefix = f"HOMESEC_{component.upper()}_"
        for name in (f"{prefix}AUTH_KEYS", f"{prefix}AUTH_PUBLIC_KEYS"):
            assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is True
    env = {e["name"]: e for e in container(one(render({}), "Deployment", "-producer"))["env"]}
    assert "optional" not in env["HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING"]["valueFrom"]["secretKeyRef"]


def test_workload_identity_uses_no_connection_strings() -> None:
    objects = render(WI)
    for component in ("producer", "consumer"):
        deployment = one(objects, "Deployment", f"-{component}")
        assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        sa = one(objects, "ServiceAccount", f"-{component}")
        assert (
            sa["metadata"]["annotations"]["azure.workload.identity/client-id"]
            == WI["azure"]["workloadIdentity"]["clientId"]
        )
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
        assert not any(k.endswith("CONNECTION_STRING") for k in _secret_refs(deployment))
        data = one(objects, "ConfigMap", f"-{component}")["data"]
        assert (
            data[f"HOMESEC_{component.upper()}_EVENTHUB_FULLY_QUALIFIED_NAMESPACE"]
            == "homesec-ehns.servicebus.windows.net"
        )
    consumer_config = one(objects, "ConfigMap", "-consumer")["data"]
    assert consumer_config["HOMESEC_CONSUMER_BLOB_ACCOUNT_URL"] == "https://homesecst.blob.core.windows.net"
    with pytest.raises(helm_python.HelmRenderError, match="clientId is required"):
        render_files({"azure": {"workloadIdentity": {"enabled": True}}})
    with pytest.raises(helm_python.HelmRenderError, match="accountUrl is required"):
        render_files(merge(WI, {"blobStorage": {"accountUrl": ""}}))


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"eventHubs": {"connectionString": "Endpoint=sb://x"}}, "connectionString"),
        ({"producer": {"config": {"EVENTHUB_CONNECTION_STRING": "Endpoint=sb://x"}}}, "CONNECTION_STRING"),
        ({"producer": {"extraEnv": [{"name": "HOMESEC_PRODUCER_AUTH_KEYS", "value": "k"}]}}, "extraEnv"),
        ({"producer": {"securityContext": {"runAsNonRoot": False}}}, "runAsNonRoot"),
        ({"consumer": {"autoscaling": {"engine": "both"}}}, "engine"),
        ({"consumer": {"autoscaling": {"mystery": 1}}}, "mystery"),
        ({"producer": {"autoscaling": {"mystery": 1}}}, "mystery"),
        ({"blobStorage": {"checkpointContainer": "Bad_Name"}}, "checkpointContainer"),
        ({"azure": {"workloadIdentity": {"enabled": True, "clientId": "not-a-uuid"}}}, "clientId"),
    ],
)
def test_schema_rejects_secrets_and_unknown_keys(values: dict[str, Any], match: str) -> None:
    with helm_python.Chart.load(str(CHART)) as chart, pytest.raises(helm_python.HelmValuesError, match=match):
        chart.validate_schema(chart.merge_values(values))


def test_a_component_can_use_its_own_identity() -> None:
    other = "22222222-3333-4444-5555-666666666666"
    values = merge(
        WI, {"consumer": {"serviceAccount": {"annotations": {"azure.workload.identity/client-id": other}}}}
    )
    objects = render(values)
    annotation = "azure.workload.identity/client-id"
    assert one(objects, "ServiceAccount", "-consumer")["metadata"]["annotations"][annotation] == other
    producer_sa = one(objects, "ServiceAccount", "-producer")
    assert producer_sa["metadata"]["annotations"][annotation] == WI["azure"]["workloadIdentity"]["clientId"]


def _ingress_peers(values: dict[str, Any], component: str) -> list[list[dict[str, Any]] | None]:
    policy = one(
        render(merge({"networkPolicy": {"enabled": True}}, values)), "NetworkPolicy", f"-{component}"
    )
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    return [rule.get("from") for rule in policy["spec"]["ingress"]]


def test_network_policies_keep_metrics_reachable() -> None:
    test_pod = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "homesec-telemetry",
                                                "app.kubernetes.io/instance": "homesec-telemetry",
                                                "app.kubernetes.io/component": "test"}}}  # fmt: skip
    everyone_in_cluster: dict[str, Any] = {"namespaceSelector": {}}
    assert _ingress_peers({}, "producer") == [None, [everyone_in_cluster, test_pod]]
    assert _ingress_peers({}, "consumer") == [[everyone_in_cluster, test_pod]]
    ingress = [{"namespaceSelector": {"matchLabels": {"name": "app-routing-system"}}}]
    monitoring = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    values = {"networkPolicy": {"producerIngressFrom": ingress, "metricsFrom": monitoring}}
    assert _ingress_peers(values, "producer") == [ingress, [*monitoring, test_pod]]
    assert _ingress_peers(values, "consumer") == [[*monitoring, test_pod]]
