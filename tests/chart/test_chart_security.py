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
        if "secretKeyRef" in e.get("valueFrom", {})
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
    policy = one(render(values), "NetworkPolicy", f"-{component}")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    return [rule.get("from") for rule in policy["spec"]["ingress"]]


def _ns(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _pods(component: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "homesec-telemetry",
                                            "app.kubernetes.io/instance": "homesec-telemetry",
                                            "app.kubernetes.io/component": component}}}  # fmt: skip


def _ingress_ports(values: dict[str, Any], component: str) -> list[list[str]]:
    policy = one(render(values), "NetworkPolicy", f"-{component}")
    return [[p["port"] for p in rule["ports"]] for rule in policy["spec"]["ingress"]]


def test_network_policies_are_on_by_default_and_open_each_port_to_its_peers_only() -> None:
    """Producer API: the ingress controller; consumer API: the status readers and the consumer pods
    (forwarded reads); admin ports: Prometheus and the `helm test` pod. Every rule names its peers."""
    assert _ingress_ports({}, "producer") == [["http"], ["admin"]]
    assert _ingress_ports({}, "consumer") == [["http"], ["admin"]]
    assert _ingress_peers({}, "producer") == [[_ns("ingress-nginx")], [_ns("monitoring"), _pods("test")]]
    assert _ingress_peers({}, "consumer") == [
        [_ns("homesec-web"), _pods("consumer")],
        [_ns("monitoring"), _pods("test")],
    ]
    names = {
        "ingressNamespace": "app-routing-system",
        "monitoringNamespace": "prom",
        "statusClientsNamespace": "web",
    }
    values: dict[str, Any] = {"networkPolicy": names}
    assert _ingress_peers(values, "producer") == [[_ns("app-routing-system")], [_ns("prom"), _pods("test")]]
    assert _ingress_peers(values, "consumer")[0] == [_ns("web"), _pods("consumer")]
    ingress = [{"namespaceSelector": {"matchLabels": {"name": "app-routing-system"}}}]
    monitoring = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    readers = [{"ipBlock": {"cidr": "10.1.0.0/16"}}]
    values = {
        "networkPolicy": {"producerIngressFrom": ingress, "metricsFrom": monitoring, "statusFrom": readers}
    }
    assert _ingress_peers(values, "producer") == [ingress, [*monitoring, _pods("test")]]
    assert _ingress_peers(values, "consumer") == [[*readers, _pods("consumer")], [*monitoring, _pods("test")]]
    # Only the consumer pods read status when no reader namespace is named.
    no_readers = {"networkPolicy": {"statusClientsNamespace": ""}}
    assert _ingress_peers(no_readers, "consumer")[0] == [_pods("consumer")]
    with pytest.raises(helm_python.HelmRenderError, match=r"networkPolicy\.ingressNamespace is empty"):
        render_files({"networkPolicy": {"ingressNamespace": ""}})


def test_egress_reaches_dns_azure_the_collector_and_the_other_consumer_pods() -> None:
    tracing = {"tracing": {"enabled": True, "otlpEndpoint": "http://otel-collector.monitoring:4318"}}
    for values, otlp in (({}, []), (tracing, [[4318]])):
        objects = render(values)
        producer = one(objects, "NetworkPolicy", "-producer")["spec"]["egress"]
        consumer = one(objects, "NetworkPolicy", "-consumer")["spec"]["egress"]
        ports = [[p["port"] for p in rule["ports"]] for rule in producer]
        assert ports == [[53, 53], [443, 5671], *otlp]
        assert all("to" not in rule for rule in producer)
        assert consumer[:-1] == producer
        assert consumer[-1] == {"ports": [{"port": 8081, "protocol": "TCP"}], "to": [_pods("consumer")]}


def test_the_admin_port_is_never_on_a_public_service() -> None:
    values = {"producer": {"service": {"type": "LoadBalancer"}}}
    ports = one(render(values), "Service", "-producer")["spec"]["ports"]
    assert [p["name"] for p in ports] == ["http"]
    with pytest.raises(
        helm_python.HelmRenderError, match=r"serviceMonitor needs producer\.service\.type ClusterIP"
    ):
        render_files({**values, "metrics": {"serviceMonitor": {"enabled": True}}})
    with pytest.raises(helm_python.HelmRenderError, match=r"adminPort \(8081\) must differ"):
        render_files({"consumer": {"adminPort": 8081}})
