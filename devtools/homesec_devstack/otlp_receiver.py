"""Small OTLP trace receivers in a thread: ``OtlpReceiver`` (HTTP, ``POST /v1/traces``, protobuf) and
``OtlpGrpcReceiver`` (gRPC, ``TraceService/Export``). The tracing tests and ``bench/tracing_overhead.py``
export to them (dev/test only; production exports to a collector).

Decodes each ``ExportTraceServiceRequest`` with ``opentelemetry-proto`` and keeps the spans as ``Span``s.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    links: tuple[tuple[str, str], ...]  # (trace_id, span_id)
    attributes: dict[str, Any]

    @property
    def ref(self) -> tuple[str, str]:
        return self.trace_id, self.span_id


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def decode(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(Span(
                    service=str(resource.get("service.name", "")), name=s.name, trace_id=s.trace_id.hex(),
                    span_id=s.span_id.hex(), parent_id=s.parent_span_id.hex(),
                    links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in s.links),
                    attributes={a.key: _value(a.value) for a in s.attributes},
                ))  # fmt: skip
    return spans


class _SpanStore:
    """What both receivers share: the spans received (thread-safe), the endpoint, and ``with`` starting and
    stopping the server (``_start``/``_stop``)."""

    port: int

    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        self.requests = 0

    def _record(self, spans: list[Span]) -> None:
        with self._lock:
            self._spans.extend(spans)
            self.requests += 1

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()


class OtlpReceiver(_SpanStore):
    """``with OtlpReceiver() as rx:`` listens on 127.0.0.1:``rx.port``; ``rx.spans()`` is what arrived.
    ``keep=False`` (benchmarks): only count the requests and bytes, so the receiver costs next to nothing."""

    def __init__(self, *, keep: bool = True) -> None:
        super().__init__()
        self.bytes = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver._record(decode(body) if keep else [])
                with receiver._lock:
                    receiver.bytes += len(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    def _start(self) -> None:
        self._thread.start()

    def _stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class OtlpGrpcReceiver(_SpanStore):
    """``with OtlpGrpcReceiver() as rx:`` serves OTLP/gRPC on 127.0.0.1:``rx.port`` (plaintext);
    ``rx.spans()`` is what arrived."""

    SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"

    def __init__(self) -> None:
        import grpc

        super().__init__()

        def export(request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
            self._record(decode(request.SerializeToString()))
            return ExportTraceServiceResponse()

        handler = grpc.unary_unary_rpc_method_handler(
            export,
            request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(self.SERVICE, {"Export": handler}),)
        )
        self.port = int(self._server.add_insecure_port("127.0.0.1:0"))

    def _start(self) -> None:
        self._server.start()

    def _stop(self) -> None:
        self._server.stop(grace=None).wait(timeout=5)
