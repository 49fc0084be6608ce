"""Logs and traces through the chart: the log format per service, the OTEL_* variables of `tracing`, and the
dashboard's latency panels with trace exemplars linked to the `trace_datasource` variable."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from homesec_consumer.settings import ConsumerSettings
from homesec_producer.settings import ProducerSettings
from homesec_runtime.tracing import traces_exporter

from scripts.k8s import dashboard
from tests.chart.support import one, render, schema_errors

TRACING = {"tracing": {
    "enabled": True, "otlpEndpoint": "http://otel-collector.monitoring:4318", "samplerArg": 0.05,
    "env": {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod"},
}}  # fmt: skip
LATENCY_PANELS = {
    "Request latency": "homesec_producer_http_request_duration_seconds",
    "Publish latency (one batch send, retries included)": "homesec_producer_publish_duration_seconds",
    "End-to-end latency (enqueued → rollup durable)": "homesec_consumer_end_to_end_latency_seconds",
    "Alarm latency (enqueued → alarm event acknowledged)": "homesec_consumer_alarm_latency_seconds",
}


def _config(values: dict[str, Any], component: str) -> dict[str, str]:
    data: dict[str, str] = one(render(values), "ConfigMap", f"-{component}")["data"]
    return data


@pytest.mark.parametrize("component", ["producer", "consumer"])
def test_json_logs_and_no_tracing_by_default(component: str) -> None:
    data = _config({}, component)
    assert data[f"HOMESEC_{component.upper()}_LOG_FORMAT"] == "json"
    otel = {k: v for k, v in data.items() if k.startswith("OTEL_")}
    assert otel == {"OTEL_TRACES_EXPORTER": "none"}  # off, whatever the cluster injects
    assert traces_exporter({**otel, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://injected:4318"}) == "none"


def test_the_services_accept_the_rendered_log_format() -> None:
    values = {"producer": {"logFormat": "console"}, "consumer": {"logFormat": "console"}}
    for component, settings in (("producer", ProducerSettings), ("consumer", ConsumerSettings)):
        rendered = _config(values, component)[f"HOMESEC_{component.upper()}_LOG_FORMAT"]
        assert rendered == "console" and rendered in get_args(settings.model_fields["log_format"].annotation)


@pytest.mark.parametrize("component", ["producer", "consumer"])
def test_tracing_passes_the_sdk_variables(component: str) -> None:
    data = _config(TRACING, component)
    otel = {k: v for k, v in data.items() if k.startswith("OTEL_")}
    assert otel == {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.monitoring:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": f"homesec-{component}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.05",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod",
    }
    assert traces_exporter(otel) == "otlp"


def test_bad_tracing_values_are_refused() -> None:
    assert "otlpEndpoint" in schema_errors({"tracing": {"enabled": True}})
    assert "otlpEndpoint" in schema_errors({"tracing": {"otlpEndpoint": "otel-collector:4318"}})
    assert schema_errors({"tracing": {"sampler": "sometimes"}})
    assert schema_errors({"tracing": {"env": {"HOMESEC_PRODUCER_PORT": "1"}}})
    assert schema_errors({"producer": {"logFormat": "xml"}})
    assert schema_errors(TRACING) == ""


def test_latency_panels_show_exemplars_linked_to_the_trace_data_source() -> None:
    built = dashboard.build()
    variables = {v["name"]: v for v in built["templating"]["list"]}
    assert variables["trace_datasource"]["type"] == "datasource"
    panels = {p["title"]: p for p in built["panels"] if p["type"] != "row"}
    for title, metric in LATENCY_PANELS.items():
        panel = panels[title]
        assert all(t["exemplar"] is True and metric in t["expr"] for t in panel["targets"]), title
        (link,) = panel["fieldConfig"]["defaults"]["links"]
        assert "${trace_datasource}" in link["url"] and "${__data.fields.trace_id}" in link["url"]
    others = [p for title, p in panels.items() if title not in LATENCY_PANELS]
    assert not any(t.get("exemplar") for p in others for t in p["targets"])
