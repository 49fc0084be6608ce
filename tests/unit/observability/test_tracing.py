"""Tracing on, in process, with the OpenTelemetry SDK's in-memory exporter: the producer's spans, the trace
context on each event (real ``EventDataBatch`` and the Azure SDK's plugin), the consumer's spans and links,
exemplars in the OpenMetrics exposition. Tracing off: nothing of the SDK is imported, no exporter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from azure.core.settings import settings as azure_settings
from azure.eventhub import EventData, EventDataBatch
from homesec_consumer.tracing import ConsumerSpans, TracingStore, producer_context
from homesec_domain.validation import AcceptedReading, encode_accepted, parse_batch
from homesec_producer.adapters import accelerated_encoding
from homesec_producer.adapters.eventhub import EventHubsPublisher
from homesec_producer.compose import build_app
from homesec_producer.tracing import RequestTraces, enable_azure_sdk_tracing
from homesec_runtime.tracing import Tracing, activate, traces_exporter
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from tests.unit.consumer.fakes import MemoryRollupStore
from tests.unit.producer.fakes import FakePublisher
from tests.unit.producer.helpers import NOW, body, reading, settings

from .spans import by_name, ids, linked_to

_PROVIDER = TracerProvider()
_EXPORTER = InMemorySpanExporter()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    """Tracing on for one test: the global provider (set once per process) exports to memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(_PROVIDER)  # the Azure plugin uses the global provider: set once, kept
    _EXPORTER.clear()
    enable_azure_sdk_tracing()
    on = activate(_PROVIDER, "homesec-test", "memory")
    yield on
    on.deactivate()
    azure_settings.tracing_implementation.unset_value()


def spans() -> list[ReadableSpan]:
    return list(_EXPORTER.get_finished_spans())


@pytest.fixture
async def client(tracing: Tracing) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The API port's client and the admin port's."""
    apps = build_app(
        settings(),
        publisher=FakePublisher(),
        clock=lambda: NOW,
        registry=CollectorRegistry(),
        tracing=tracing,
    )
    async with apps.api.router.lifespan_context(apps.api):
        for _ in range(100):
            if apps.runtime.ready:
                break
            await asyncio_sleep(0.01)
        transport = httpx.ASGITransport(app=apps.api)
        admin_transport = httpx.ASGITransport(app=apps.admin)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://producer") as http,
            httpx.AsyncClient(transport=admin_transport, base_url="http://producer-admin") as admin,
        ):
            yield http, admin


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def _post_headers(**extra: str) -> dict[str, str]:
    from tests.unit.producer.apiclient import token

    return {"content-type": "application/json", **token("home-1", "home-2"), **extra}


async def test_request_span_is_linked_from_the_publish_span(
    client: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http, _ = client
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    answer = await http.post(
        "/v1/readings", content=body(reading("home-1"), reading("home-2")),
        headers=_post_headers(traceparent=parent, **{"x-request-id": "req-42"}),
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    assert answer.headers["x-request-id"] == "req-42"
    (request,) = by_name(spans(), "POST /v1/readings")
    assert request.kind is SpanKind.SERVER
    assert f"{ids(request)[0]:032x}" == "0af7651916cd43dd8448eb211c80319c"  # the client's trace
    assert request.parent is not None and request.parent.span_id == 0xB7AD6B7169203331
    assert request.attributes is not None and request.attributes.get("http.response.status_code") == 202
    publishes = by_name(spans(), "eventhubs.publish")
    assert publishes and all(linked_to(p, request) for p in publishes)
    counts = [str((p.attributes or {})["messaging.batch.message_count"]) for p in publishes]
    assert sum(int(c) for c in counts) == 2


async def test_a_request_id_is_made_up_when_missing_or_insane(
    client: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http, _ = client
    made = (await http.post("/v1/readings")).headers["x-request-id"]
    insane = (await http.post("/v1/readings", headers={"x-request-id": "bad id with spaces"})).headers[
        "x-request-id"
    ]
    assert len(made) == 32 and len(insane) == 32 and made != insane


async def test_openmetrics_carries_trace_exemplars_on_the_latency_histograms(
    client: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http, admin = client
    assert (
        await http.post("/v1/readings", content=body(reading()), headers=_post_headers())
    ).status_code == 202
    (request,) = by_name(spans(), "POST /v1/readings")
    openmetrics = await admin.get(
        "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    trace_id = f"{ids(request)[0]:032x}"
    lines = openmetrics.text.splitlines()
    assert any(
        line.startswith("homesec_producer_http_request_duration_seconds_bucket")
        and f'trace_id="{trace_id}"' in line
        for line in lines
    ), openmetrics.text
    publish = by_name(spans(), "eventhubs.publish")[-1]
    assert any(
        line.startswith("homesec_producer_publish_duration_seconds_bucket")
        and f'trace_id="{publish.context.trace_id:032x}"' in line
        for line in lines
    ), openmetrics.text
    plain = await admin.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain") and "trace_id" not in plain.text


class _BatchClient:
    """The two calls of ``EventHubProducerClient`` the adapter makes per send, with real batches."""

    def __init__(self) -> None:
        self.sent: list[EventDataBatch] = []

    async def create_batch(self, partition_id: str, max_size_in_bytes: int | None = None) -> EventDataBatch:
        return EventDataBatch(max_size_in_bytes=max_size_in_bytes or 1_048_576, partition_id=partition_id)

    async def send_batch(self, batch: EventDataBatch, timeout: float | None = None) -> None:
        self.sent.append(batch)

    async def close(self) -> None:
        return None


def _accepted(*homes: str) -> list[AcceptedReading]:
    return [encode_accepted(r) for r in parse_batch(body(*(reading(h) for h in homes)), 100)]


async def test_each_event_of_a_sampled_request_carries_a_child_context(tracing: Tracing) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    client, traces = _BatchClient(), RequestTraces()
    # the encoder accelerator, as a producer runs by default: its self-check passes with SDK tracing on
    fast, _ = accelerated_encoding.load("auto")
    assert fast is not None
    publisher = EventHubsPublisher(
        client,  # type: ignore[arg-type]
        try_timeout=5,
        max_batch_bytes=1_048_576,
        add=fast,
        traces=traces,
    )
    traced, untraced = _accepted("home-1", "home-2"), _accepted("home-3")
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    with tracing.tracer.start_as_current_span("request") as request, traces.carry(traced):  # noqa: SIM117
        with unsampled.start_as_current_span("unsampled request"), traces.carry(untraced):
            assert [traces.sampled(r.reading_id) for r in traced + untraced] == [True, True, False]
            await publisher.publish("0", [traced[0], untraced[0], traced[1]])
    (batch,) = client.sent
    assert len(batch) == 3 and len(batch._message.data) == 3  # one batch, the order kept
    assert b"traceparent" not in batch._message.data[1]  # the unsampled request's event: fast encoder
    events: Sequence[Any] = batch._internal_events  # the SDK path's events: the traced ones
    messages = by_name(spans(), "EventHubs.message")
    assert len(events) == len(messages) == 2
    assert all(m.parent is not None and m.parent.span_id == ids(request)[1] for m in messages)
    for event, message in zip(events, messages, strict=True):
        sent = event._message.application_properties  # what goes on the wire (the plugin's stamp)
        traceparent = sent[b"traceparent"]
        assert traceparent == sent[b"Diagnostic-Id"]
        trace_id, span_id = ids(message)
        assert str(traceparent).split("-")[1:3] == [f"{trace_id:032x}", f"{span_id:016x}"]


async def test_consumer_batch_flush_and_write_are_linked(tracing: Tracing) -> None:
    with tracing.tracer.start_as_current_span("producer message") as message:
        header: dict[str, str] = {}
        from opentelemetry import propagate

        propagate.inject(header)
    event = EventData(b"{}")
    event.properties = {b"Diagnostic-Id": header["traceparent"].encode()}
    found = producer_context(event)
    assert found is not None and (found.trace_id, found.span_id) == ids(message)
    assert producer_context(EventData(b"{}")) is None
    consumer = ConsumerSpans(tracing.tracer)
    store = TracingStore(MemoryRollupStore(), tracing.tracer)
    with consumer.batch("3", [event, EventData(b"{}")]):
        pass
    with consumer.flush("3", 0):  # nothing to write: no span
        pass
    with consumer.flush("3", 1):
        await store.put_snapshot("3", b"state", None)
    (batch,) = by_name(spans(), "consumer.batch")
    (flush,) = by_name(spans(), "rollup.flush")
    (write,) = by_name(spans(), "rollup.write_snapshot")
    assert linked_to(batch, message) and linked_to(flush, batch)
    # sampling follows the producer: one trace from the producer's message to the Blob write
    assert batch.parent is not None and batch.parent.span_id == ids(message)[1]
    assert flush.parent is not None and flush.parent.span_id == ids(batch)[1]
    assert ids(write)[0] == ids(flush)[0] == ids(batch)[0] == ids(message)[0]
    assert write.parent is not None and write.parent.span_id == ids(flush)[1]


def test_off_by_default_and_per_the_otel_variables() -> None:
    assert traces_exporter({}) == "none"
    assert traces_exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == "otlp"
    assert traces_exporter({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    assert (
        traces_exporter({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}) == "none"
    )
    assert traces_exporter({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}) == "none"


_OFF_PROBE = """
import asyncio, json, sys
from homesec_runtime import tracing
from homesec_producer.compose import build_app
from homesec_producer.settings import ProducerSettings
from homesec_consumer.compose import ConsumerService
from homesec_consumer.settings import ConsumerSettings
from prometheus_client import CollectorRegistry
from azure.core.settings import settings as azure_settings
on = tracing.start_tracing("probe")
build_app(ProducerSettings(eventhub_connection_string=sys.argv[1], auth_keys={"k": "k" * 40}), tracing=on)
ConsumerService(ConsumerSettings(), CollectorRegistry(), tracing=on)
print(json.dumps({"on": on is not None, "azure": azure_settings.tracing_implementation() is not None,
    "sdk": sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))}))
"""


def test_tracing_off_imports_no_sdk_and_creates_no_exporter() -> None:
    conn = "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=telemetry"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", _OFF_PROBE, conn], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"on": False, "azure": False, "sdk": []}


def test_a_bad_exporter_name_is_a_configuration_error() -> None:
    env = {**__import__("os").environ, "OTEL_TRACES_EXPORTER": "zipkin"}
    probe = "from homesec_runtime.tracing import start_or_exit; start_or_exit('probe')"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 78
    assert (
        done.stderr.strip()
        == "configuration error: OTEL_TRACES_EXPORTER: 'zipkin' is not one of otlp, console, none"
    )


def test_exemplars_only_for_sampled_traces() -> None:
    from homesec_runtime.tracing import exemplar, remember
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    assert exemplar() is None  # tracing off
    sampled = TracerProvider(sampler=ALWAYS_ON).get_tracer("t")
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    on = activate(_PROVIDER, "homesec-test", "memory")
    try:
        with sampled.start_as_current_span("kept") as kept:
            assert exemplar() == {"trace_id": f"{ids(kept)[0]:032x}"}
        with unsampled.start_as_current_span("dropped"):
            assert exemplar() is None  # never the trace ID of another observation
        assert exemplar() is None  # no span, nothing remembered
        remember(kept)
        assert exemplar() == {"trace_id": f"{ids(kept)[0]:032x}"}  # observed after the span ended
        with unsampled.start_as_current_span("dropped") as dropped:
            pass
        remember(dropped)
        assert exemplar() is None  # an unsampled publish does not keep the previous trace's ID
    finally:
        on.deactivate()
    assert exemplar() is None
