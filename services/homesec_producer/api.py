"""HTTP layer: routes, body limits, error -> status mapping, request metrics.

Statuses of ``POST /v1/readings``: 202 (every reading acknowledged by Event Hubs), 400 (not JSON),
401 (no/invalid token), 403 (a home outside the token's scope), 408 (body not complete in time:
``homesec_runtime.deadlines``), 413 (body too large), 415 (not JSON content type, or a charset other than
UTF-8),
422 (schema or rules, per-item detail), 429 + Retry-After (buffer full), 503 + Retry-After (Event Hubs
unavailable past the deadline, publish failed after retries, too many requests at once,
starting or shutting down; never 500 at shutdown: see ``shutdown.py``).
Nothing from a 4xx request is published. A 429/503 of the ingest route lists, per reading, what is already
acknowledged (``acknowledged``) and what is not (``unacknowledged``): the client resends only the latter with
the same ``reading_id`` values. A client that resends the whole batch is answered from the pod's memory of
what it acknowledged (``idempotency.py``) without a second publish; readings published twice anyway (another
pod, an evicted entry, an unknown send outcome) are deduplicated downstream by ``reading_id``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from homesec_auth.errors import AuthError, ForbiddenHomesError
from homesec_domain.validation import (
    MalformedBodyError,
    ReadingsRejectedError,
)
from homesec_runtime.openapi import markdown_descriptions

from homesec_producer import api_docs
from homesec_producer.errors import (
    BufferFullError,
    DeadlineExceededError,
    NotAcknowledgedError,
    ProducerError,
    PublishFailedError,
    ShuttingDownError,
)
from homesec_producer.ingest import IngestService, NotReadyError
from homesec_producer.observability import NO_TRACES, ReadingTraces, debug_accepted

JSON = api_docs.JSON
# The one answer to every token that fails verification (missing, too large, malformed, unknown key, bad
# signature, wrong audience, expired...): the reason goes to the log and to auth_failures_total{reason}.
UNAUTHORIZED_DETAIL = "invalid or missing token"
log = logging.getLogger(__name__)


class HttpError(Exception):
    """Internal to this module: an HTTP answer decided before the use case ran."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


def _json(status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=JSON, headers=headers)


def _problem(
    status: int,
    error: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return _json(status, {"error": error, "detail": detail, **(extra or {})}, headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HttpError(413, "too_large", f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_UTF8 = frozenset({"utf-8", "utf8"})


def _check_media_type(request: Request) -> None:
    """``application/json``, with no charset or UTF-8 (the body is parsed as UTF-8, RFC 8259), else 415."""
    media, *params = request.headers.get("content-type", "").lower().split(";")
    if media.strip() != JSON:
        raise HttpError(415, "unsupported_media_type", "Content-Type must be application/json")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in _UTF8:
            raise HttpError(415, "unsupported_media_type", "the body must be UTF-8 (charset=utf-8 or none)")


class ReadingsEndpoint:
    """``POST /v1/readings`` and its error mapping."""

    def __init__(
        self, service: IngestService, max_body_bytes: int, retry_after: int, traces: ReadingTraces = NO_TRACES
    ) -> None:
        self.service = service
        self.traces = traces  # tracing on: the send of each reading finds this request's trace context
        self.max_body_bytes = max_body_bytes
        self.retry_after = str(retry_after)
        self.metrics = service.runtime.metrics

    def _reject(self, reason: str, count: int) -> None:
        self.metrics.readings_rejected.labels(reason=reason).inc(count)

    async def __call__(self, request: Request) -> Response:
        count = 1  # readings of the request, once known (1 for a request rejected before parsing)
        try:
            scope = self.service.authorise(request.headers.get("authorization"))
            _check_media_type(request)
            parsed = self.service.parse(await _read_body(request, self.max_body_bytes))
            count = len(parsed)
            accepted = self.service.admit(scope, parsed)
            # The body and the parsed readings are freed before the request waits for its acknowledgement:
            # the cyclic collector's young generations do not walk them while it is in flight.
            del parsed
            debug_accepted(accepted)
            with self.traces.carry(accepted):
                ids = await self.service.publish(accepted)
        except AuthError as exc:
            return self._auth_error(exc, count)
        except HttpError as exc:
            self._reject(exc.reason, count)
            return _problem(exc.status, exc.reason, exc.detail)
        except ReadingsRejectedError as exc:
            return self._invalid(exc, count)
        except NotAcknowledgedError as exc:
            return self._not_acknowledged(exc)
        except ProducerError as exc:
            return self._producer_error(exc, count)
        self.metrics.readings_acknowledged.inc(len(ids))
        return _json(202, {"accepted": len(ids), "reading_ids": ids})

    def _invalid(self, exc: ReadingsRejectedError, count: int) -> Response:
        self._reject("validation", count)
        status, error = (400, "malformed") if isinstance(exc, MalformedBodyError) else (422, "invalid")
        items = [
            {"index": i.index, "field": i.field, "error": i.error, "message": i.message} for i in exc.items
        ]
        return _problem(status, error, str(exc), {"items": items[:100]})

    def _auth_error(self, exc: AuthError, count: int) -> Response:
        self._reject("auth", count)
        self.metrics.auth_failures.labels(reason=exc.reason).inc()
        log.info("token refused: %s (%s)", exc.reason, exc)
        if isinstance(exc, ForbiddenHomesError):
            return _problem(403, "forbidden", str(exc), {"homes": exc.homes[:20]})
        return _problem(401, "unauthorized", UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"})

    def _not_acknowledged(self, exc: NotAcknowledgedError) -> Response:
        """429/503 with the per-reading outcome: the client resends only ``unacknowledged``."""
        if exc.acknowledged:
            self.metrics.readings_acknowledged.inc(len(exc.acknowledged))
        extra = {"acknowledged": exc.acknowledged, "unacknowledged": exc.unacknowledged}
        return self._producer_error(exc.cause, len(exc.unacknowledged), extra)

    def _producer_error(
        self, exc: ProducerError, count: int, extra: dict[str, Any] | None = None
    ) -> Response:
        if isinstance(exc, BufferFullError):
            return self._shed(exc, 429, "shed", count, extra)
        if isinstance(exc, DeadlineExceededError):
            return self._shed(exc, 503, "deadline", count, extra)
        if isinstance(exc, ShuttingDownError):
            return self._shed(exc, 503, "shutting_down", count, extra)
        if isinstance(exc, PublishFailedError | NotReadyError):
            return self._shed(exc, 503, "publish_failed", count, extra)
        raise exc

    def _shed(
        self, exc: ProducerError, status: int, reason: str, count: int, extra: dict[str, Any] | None
    ) -> Response:
        if count:
            self._reject(reason, count)
        self.metrics.shed.labels(status=str(status)).inc()
        after = "1" if status == 429 else self.retry_after
        return _problem(status, reason, str(exc), extra, headers={"Retry-After": after})


def build_router(endpoint: ReadingsEndpoint) -> APIRouter:
    """The API port's one route: ``POST /v1/readings`` (probes, metrics and docs: ``admin.py``)."""
    router = APIRouter()
    router.add_api_route(
        "/v1/readings", endpoint, methods=["POST"], status_code=202, responses=api_docs.RESPONSES,
        summary="Post a batch of sensor readings", description=api_docs.DESCRIPTION,
        operation_id="post_readings",
        openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
            "$ref": "#/components/schemas/ReadingBatchIn"}}}}},
    )  # fmt: skip
    return router


def install_openapi_schemas(app: FastAPI) -> None:
    """Add the request body's JSON schema (from the validating TypeAdapter) to the OpenAPI components;
    every description in plain Markdown (``homesec_runtime.openapi``)."""
    from fastapi.openapi.utils import get_openapi
    from homesec_domain.validation import BATCH_ADAPTER

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            body = BATCH_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(body.pop("$defs", {}))
            components["ReadingBatchIn"] = body
            app.openapi_schema = markdown_descriptions(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
