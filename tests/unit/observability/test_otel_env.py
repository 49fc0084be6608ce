"""``OTEL_*`` as the OpenTelemetry specification reads them: a list of trace exporters, the OTLP protocol
(``grpc`` or ``http/protobuf``), the traces-specific variable first; anything else a configuration error."""

from __future__ import annotations

import pytest
from homesec_runtime.tracing import TracingConfigError, otlp_protocol, span_exporter, traces_exporters

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ()),
        (ENDPOINT, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": " Console , OTLP ,console,"}, ("console", "otlp")),
        ({"OTEL_TRACES_EXPORTER": "none", **ENDPOINT}, ()),
        ({"OTEL_TRACES_EXPORTER": ""}, ()),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp,console"}, ()),
    ],
)
def test_the_exporter_list(env: dict[str, str], expected: tuple[str, ...]) -> None:
    assert traces_exporters(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp,zipkin"},
         "OTEL_TRACES_EXPORTER: 'zipkin' is not one of otlp, console, none"),
        ({"OTEL_TRACES_EXPORTER": "none,console"},
         "OTEL_TRACES_EXPORTER: 'none' cannot be listed with other"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
         "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' is not supported; use http/protobuf or grpc"),
        ({"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"},
         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' is not supported"),
    ],
)  # fmt: skip
def test_what_is_not_supported_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(TracingConfigError, match=message.replace("(", r"\(")):
        traces_exporters(env)


@pytest.mark.parametrize(
    ("env", "protocol"),
    [
        ({}, "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
         "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "grpc"),
    ],
)  # fmt: skip
def test_the_traces_protocol_wins_over_the_general_one(env: dict[str, str], protocol: str) -> None:
    assert otlp_protocol(env) == protocol


def test_a_protocol_matters_only_to_otlp() -> None:
    assert traces_exporters({"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}) == (
        "console",
    )


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_each_protocol_gets_its_exporter(protocol: str) -> None:
    env = {**ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    exporters = [span_exporter(name, env) for name in traces_exporters(env)]
    try:
        kinds = [type(exporter).__module__ for exporter in exporters]
        package = "grpc" if protocol == "grpc" else "http"
        assert kinds == [
            f"opentelemetry.exporter.otlp.proto.{package}.trace_exporter",
            "opentelemetry.sdk.trace.export",
        ]
    finally:
        for exporter in exporters:
            exporter.shutdown()
