"""Render the chart with Helm's own engine and validate what comes out (shared by the chart tests)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "homesec-telemetry"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
RELEASE = "homesec-telemetry"
NAMESPACE = "homesec"
# A Kubernetes version AKS supports today and kubernetes-validate ships strict schemas for, and the oldest
# the chart claims (Chart.yaml kubeVersion: the preStop `sleep` action needs 1.30).
K8S_VERSION = "1.33.0"
K8S_VERSIONS = ("1.30.0", K8S_VERSION)
CRD_GROUPS = ("monitoring.coreos.com/", "keda.sh/")

WI: dict[str, Any] = {
    "azure": {"workloadIdentity": {"enabled": True, "clientId": "11111111-2222-3333-4444-555555555555"}},
    "eventHubs": {"fullyQualifiedNamespace": "homesec-ehns.servicebus.windows.net"},
    "blobStorage": {"accountUrl": "https://homesecst.blob.core.windows.net"},
}
OBSERVABILITY = {
    "tracing": {"enabled": True, "otlpEndpoint": "http://otel-collector.monitoring:4318"},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
    "prometheusRule": {"enabled": True, "labels": {"release": "kps"}},
    "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Homesec"}},
    "networkPolicy": {
        "enabled": True,
        "producerIngressFrom": [{"namespaceSelector": {"matchLabels": {"name": "app-routing-system"}}}],
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
    },
    "producer": {
        "ingress": {
            "enabled": True,
            "className": "webapprouting.kubernetes.azure.com",
            "tls": [{"hosts": ["telemetry.example.com"], "secretName": "telemetry-tls"}],
        }
    },
}
MINIMAL = {
    "producer": {
        "autoscaling": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
        "topologySpread": {"enabled": False},
        "preStopSleepSeconds": 0,
        "terminationGracePeriodSeconds": 31,
        "image": {"digest": "sha256:" + "a" * 64},
        "config": {"MAX_BATCH_SIZE": 200},
    },
    "consumer": {"autoscaling": {"enabled": False}, "service": {"enabled": False}, "replicaCount": 4},
    "metrics": {"podAnnotations": False},
    "tests": {"enabled": False},
}


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge value layers (later wins), like repeated ``-f`` files."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


KEDA = {"consumer": {"autoscaling": {"engine": "keda"}}}
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "workload-identity": WI,
    "keda": KEDA,
    "keda-workload-identity": merge(KEDA, WI),
    "observability": OBSERVABILITY,
    "everything": merge(WI, KEDA, OBSERVABILITY),
    "minimal": MINIMAL,
    "producer-only": {"consumer": {"enabled": False}},
    # PodMonitors instead of ServiceMonitors (never both), for a consumer without a Service.
    "pod-monitor": {
        "metrics": {"podMonitor": {"enabled": True}},
        "consumer": {"service": {"enabled": False}},
    },
}


def render_files(values: dict[str, Any]) -> dict[str, str]:
    with helm_python.Chart.load(str(CHART)) as chart:
        files: dict[str, str] = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return files


def schema_errors(values: dict[str, Any]) -> str:
    """The schema's complaint about ``values`` merged over the defaults ('' when they validate)."""
    with helm_python.Chart.load(str(CHART)) as chart:
        try:
            chart.validate_schema(chart.merge_values(values))
        except helm_python.HelmValuesError as exc:
            return str(exc)
    return ""


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rendered object (test hooks included, NOTES.txt left out)."""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(render_files(values).items()):
        if not path.endswith("NOTES.txt"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def find(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and str(o["metadata"]["name"]).endswith(suffix)]


def one(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = find(objects, kind, suffix)
    assert len(found) == 1, f"expected one {kind} *{suffix}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def lint_problems(values: dict[str, Any]) -> list[str]:
    """``helm lint --strict`` findings of severity warning or error."""
    report = helm_python.lint(
        str(CHART), values, strict=True, kube_version=f"v{K8S_VERSION}", namespace=NAMESPACE
    )
    problems = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return problems + [str(e) for e in report["errors"]]


@cache
def _crd_registry() -> tuple[Registry, dict[str, dict[str, Any]]]:
    resources: list[tuple[str, Resource]] = []
    schemas: dict[str, dict[str, Any]] = {}
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(schema)))
        resources.append((schema["$id"], Resource.from_contents(schema)))
        schemas[path.stem] = schema
    return Registry().with_resources(resources), schemas


def is_crd(obj: dict[str, Any]) -> bool:
    return str(obj["apiVersion"]).startswith(CRD_GROUPS)


def validate(obj: dict[str, Any], k8s_version: str = K8S_VERSION) -> str:
    """Validate against the Kubernetes schemas, or a CRD against its vendored schema. Returns which."""
    if not is_crd(obj):
        kubernetes_validate.validate(obj, k8s_version, strict=True)
        return f"kubernetes {k8s_version}"
    registry, schemas = _crd_registry()
    key = re.sub(r"[/]", "_", str(obj["apiVersion"])) + "_" + str(obj["kind"])
    schema = schemas.get(key)
    assert schema is not None, f"no vendored schema for {obj['apiVersion']} {obj['kind']} in {SCHEMAS}"
    jsonschema.Draft202012Validator(schema, registry=registry).validate(obj)
    return f"vendored {key}"


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env_names(deployment: dict[str, Any], config_map: dict[str, Any] | None) -> set[str]:
    names = {e["name"] for e in container(deployment).get("env", [])}
    return names | set((config_map or {}).get("data", {}))
