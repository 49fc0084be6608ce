"""The OpenAPI description of ``POST /v1/readings``: a response model for every documented status.

The endpoint builds its answers itself (``api.py``, one ``orjson.dumps`` per answer); these models only
describe those bodies in ``/openapi.json`` (served on the admin port), and the descriptions here are what
the API's users read: plain Markdown.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

JSON = "application/json"


class Accepted(BaseModel):
    """Every reading of the batch is acknowledged by Event Hubs."""

    accepted: int = Field(description="Number of readings acknowledged (the whole batch).")
    reading_ids: list[UUID] = Field(
        description="The readings' IDs in request order: the client's `reading_id`, or the one derived "
        "by the server when the client sent none."
    )


class Problem(BaseModel):
    """A refused request: nothing of it was published."""

    error: str = Field(
        description="Machine-readable reason: `malformed`, `unauthorized`, `request_timeout`, "
        "`too_large`, `unsupported_media_type`."
    )
    detail: str = Field(description="Human-readable explanation.")


class Forbidden(Problem):
    """The token does not cover some homes of the batch: nothing of it was published."""

    homes: list[str] = Field(description="The homes outside the token's scope (at most 20).")


class ItemProblem(BaseModel):
    """One violation of the schema or of a rule, for one reading of the batch."""

    index: int | None = Field(description="Position of the reading in `readings`; null for the whole body.")
    field: str | None = Field(description="The reading's field at fault, if one is.")
    error: str = Field(description="Machine-readable kind of violation.")
    message: str = Field(description="Human-readable explanation.")


class Invalid(Problem):
    """The body breaks the schema or the rules (400: not JSON; 422: per-item violations)."""

    items: list[ItemProblem] = Field(description="The violations (at most 100).")


class NotAcknowledged(BaseModel):
    """Some or all readings are not acknowledged yet: resend the `unacknowledged` ones after `Retry-After`."""

    error: str = Field(description="`shed`, `deadline`, `publish_failed` or `shutting_down`.")
    detail: str
    acknowledged: list[UUID] | None = Field(
        default=None, description="Reading IDs (request order) in Event Hubs: do not resend them."
    )
    unacknowledged: list[UUID] | None = Field(
        default=None, description="Reading IDs (request order) not acknowledged yet: resend them, same IDs."
    )


DESCRIPTION = (
    "Post a batch of sensor readings. The answer is `202` only once Event Hubs has acknowledged every "
    "reading; a reading is never published for a `4xx` answer. A `429` or `503` lists which readings are "
    "acknowledged and which are not: resend the unacknowledged ones with the same `reading_id` after "
    "`Retry-After` seconds (resending the whole batch is harmless)."
)

RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before resending.", "schema": {"type": "integer"}}
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": Accepted, "description": "Every reading acknowledged by Event Hubs."},
    400: {"model": Invalid, "description": "The body is not JSON (`error`: `malformed`)."},
    401: {
        "model": Problem,
        "description": "No or invalid bearer token (`error`: `unauthorized`).",
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    },
    403: {"model": Forbidden, "description": "The token does not cover a home of the batch."},
    408: {
        "model": Problem,
        "description": "The body did not arrive within `BODY_READ_TIMEOUT_SECONDS` (the connection is "
        "closed).",
    },
    413: {"model": Problem, "description": "The body is larger than `MAX_BODY_BYTES`."},
    415: {
        "model": Problem,
        "description": "`Content-Type` is not `application/json`, or names a charset other than UTF-8.",
    },
    422: {"model": Invalid, "description": "Schema or rule violations, per reading (`items`)."},
    429: {
        "model": NotAcknowledged,
        "headers": RETRY_AFTER,
        "description": "Buffer full. After `Retry-After` resend the readings listed in `unacknowledged` "
        "(or the whole batch: those acknowledged are not published again).",
    },
    503: {
        "model": NotAcknowledged,
        "headers": RETRY_AFTER,
        "description": "Event Hubs unavailable past the deadline, publish failed, too many requests at once, "
        "starting or shutting down. After `Retry-After` resend the readings in `unacknowledged`; an answer "
        "without the lists (refused before the body was read) acknowledged nothing.",
    },
}
