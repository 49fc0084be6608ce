"""Optional OpenTelemetry tracing, off by default, configured by the SDK's own ``OTEL_*`` variables.

Exporters (``traces_exporters``): ``OTEL_TRACES_EXPORTER`` lists them, comma-separated, as the
specification says: ``otlp``, ``console``, or both (``otlp,console``); ``none`` alone turns tracing off.
Unset, the exporter is ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, else none: tracing is then OFF, this module imports nothing
from OpenTelemetry and creates no exporter (the specification's default is ``otlp``; ours is none, so that
a pod without a collector sends nothing anywhere). ``OTEL_SDK_DISABLED=true`` turns it off too.

``otlp`` speaks the protocol of ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``:
``http/protobuf`` (the default, ``opentelemetry-exporter-otlp-proto-http``) or ``grpc``
(``opentelemetry-exporter-otlp-proto-grpc``); ``http/json`` or anything else is a configuration error
(``start_or_exit``: one line naming the variable, exit 78), as is an unknown exporter name. The exporters
read ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout, certificates); the sampler comes from
``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``, the service name and resource from ``OTEL_SERVICE_NAME``
/``OTEL_RESOURCE_ATTRIBUTES``, batching from ``OTEL_BSP_*`` (the SDK reads them all).

When on, log records carry ``trace_id``/``span_id`` (``logs.set_trace_ids``) and the latency
histograms built with ``ExemplarHistogram`` carry the trace ID as an OpenMetrics exemplar.

No Azure or web framework here: the services enable the Azure SDKs' OpenTelemetry plugin themselves.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import Histogram

from homesec_runtime import logs
from homesec_runtime.config_errors import exit_with

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf", "grpc")
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_TRUE = ("true", "1", "yes")

# The trace ID of the last span a task finished, for exemplars observed just after it (see ``remember``).
_last_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("homesec_last_trace", default=None)
_exemplars_on = False


class TracingConfigError(ValueError):
    """An ``OTEL_*`` variable this module cannot honour."""


def traces_exporters(env: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The exporters to run, in order, without repeats (empty: tracing off); see the module docstring.
    Raises ``TracingConfigError`` for a name or an OTLP protocol this module does not support."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return ()
    listed = env.get("OTEL_TRACES_EXPORTER", "")
    names = list(dict.fromkeys(name.strip().lower() for name in listed.split(",") if name.strip()))
    for name in names:
        if name not in EXPORTERS:
            raise TracingConfigError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of {', '.join(EXPORTERS)}")
    if "none" in names and len(names) > 1:
        raise TracingConfigError("OTEL_TRACES_EXPORTER: 'none' cannot be listed with other exporters")
    if not names:
        names = ["otlp"] if any(env.get(name, "").strip() for name in _ENDPOINTS) else []
    if "otlp" in names:
        otlp_protocol(env)
    return tuple(name for name in names if name != "none")


def traces_exporter(env: Mapping[str, str] = os.environ) -> str:
    """``traces_exporters`` as one string: ``otlp``, ``console``, ``otlp,console``..., or ``none`` (off)."""
    return ",".join(traces_exporters(env)) or "none"


def otlp_protocol(env: Mapping[str, str] = os.environ) -> str:
    """``http/protobuf`` or ``grpc``: the traces-specific variable first, then the general one."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(name, "").strip()
        if protocol:
            if protocol not in PROTOCOLS:
                raise TracingConfigError(
                    f"{name}: {protocol!r} is not supported; use {' or '.join(PROTOCOLS)}"
                )
            return protocol
    return "http/protobuf"


@dataclass
class Tracing:
    """Tracing is on: the process's ``TracerProvider`` and this service's ``Tracer``."""

    provider: TracerProvider
    tracer: Tracer
    exporter: str

    def deactivate(self) -> None:
        """No more trace fields in logs, no more exemplars (the provider keeps running)."""
        global _exemplars_on  # noqa: PLW0603 - the process's tracing switch
        _exemplars_on = False
        logs.set_trace_ids(None)

    def shutdown(self) -> None:
        """Export what is buffered, then stop (bounded by ``OTEL_BSP_EXPORT_TIMEOUT``)."""
        self.deactivate()
        self.provider.shutdown()


def start_tracing(service_name: str, env: Mapping[str, str] = os.environ) -> Tracing | None:
    """Tracing on (a ``Tracing``, global provider set, exemplars and log fields on), or ``None``: off."""
    names = traces_exporters(env)
    if not names:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporters = [span_exporter(name, env) for name in names]  # all built before anything is switched on
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER(_ARG)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return activate(provider, service_name, ",".join(names))


def span_exporter(name: str, env: Mapping[str, str] = os.environ) -> SpanExporter:
    """The span exporter called ``name`` (``otlp`` over ``otlp_protocol``, or ``console``)."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if otlp_protocol(env) == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    except ImportError:
        raise TracingConfigError(
            "OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: 'grpc' needs opentelemetry-exporter-otlp-proto-grpc, "
            "which is not installed"
        ) from None
    exporter: SpanExporter = GrpcExporter()
    return exporter


def activate(provider: TracerProvider, service_name: str, exporter: str) -> Tracing:
    """Turn on the log fields and exemplars for ``provider``'s spans (``start_tracing``; tests that bring
    their own provider, e.g. with the SDK's in-memory exporter, call this directly)."""
    global _exemplars_on  # noqa: PLW0603 - the process's tracing switch
    _exemplars_on = True
    logs.set_trace_ids(current_ids)
    return Tracing(provider, provider.get_tracer(service_name), exporter)


def start_or_exit(service_name: str, env: Mapping[str, str] = os.environ) -> Tracing | None:
    """``start_tracing``; a bad ``OTEL_*`` value prints one ``configuration error:`` line, exits 78."""
    try:
        return start_tracing(service_name, env)
    except TracingConfigError as exc:
        problem = str(exc)
    exit_with([problem])


def current_ids() -> tuple[str, str] | None:
    """The current span's ``(trace_id, span_id)`` in hex, if it is sampled (tracing on only)."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def remember(span: Span) -> None:
    """Keep ``span``'s trace ID (None if not sampled) as this task's last one: the exemplar of a value
    observed in this task after the span ended (the producer's publish duration)."""
    ctx = span.get_span_context()
    _last_trace.set(f"{ctx.trace_id:032x}" if ctx.is_valid and ctx.trace_flags.sampled else None)


def exemplar() -> dict[str, str] | None:
    """``{"trace_id": ...}`` of the current span if sampled; with no current span, the task's last
    remembered one; None when tracing is off or the trace was not sampled (no exemplar then)."""
    if not _exemplars_on:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        return {"trace_id": f"{ctx.trace_id:032x}"} if ctx.trace_flags.sampled else None
    last = _last_trace.get()
    return None if last is None else {"trace_id": last}


class ExemplarHistogram(Histogram):
    """A ``Histogram`` whose observations carry the trace ID as an exemplar when tracing is on (served in
    the OpenMetrics exposition only). Off, it costs one global check per observation."""

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        if exemplar is None and _exemplars_on:
            exemplar = globals()["exemplar"]()
        super().observe(amount, exemplar)
