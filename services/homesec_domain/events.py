"""The event codec: a ``Reading`` to Event Hubs event body bytes and back.

Body: UTF-8 JSON object, ``{"schema_version": 1, "reading_id": ..., "home_id": ..., "sensor_id": ...,
"sensor_type": ..., "ts": "<RFC 3339 UTC>", "value": ..., "state": ..., "seq": ...}``. The producer also sets
the event's message ID to ``reading_id``, its content type to ``CONTENT_TYPE`` and its partition key to
``home_id``. An event with another ``schema_version`` or an undecodable body raises ``InvalidEventError``
(the consumer dead-letters it).

Decoding is exactly as strict as ``encode_reading`` writes: pydantic's strict mode (``value`` a JSON number
or null, ``seq`` a JSON integer or null, no string-to-number coercion), ``ts`` an RFC 3339 string with an
offset (``models.UtcDatetime``: no epoch number, no epoch in a string), and a ``value`` or a ``state``.
Anything else is ``invalid``.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from homesec_domain.errors import InvalidEventError
from homesec_domain.models import SCHEMA_VERSION, Reading

CONTENT_TYPE = "application/json; schema=homesec.reading.v1"


def encode_reading(reading: Reading) -> bytes:
    """Serialise one reading as an event body."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **reading.model_dump(mode="json")}
    return orjson.dumps(doc)


def decode_reading(body: bytes) -> Reading:
    """Parse an event body; raise ``InvalidEventError`` with a bounded ``reason`` when it is poison.

    One ``model_validate_json`` call (JSON parsing and validation in pydantic-core) decodes a valid body;
    only a body it rejects takes the step-by-step path, which names the reason. Both give the same result
    (``tests/unit/domain/test_events.py`` checks them against each other)."""
    try:
        reading = Reading.model_validate_json(body, strict=True)
    except ValidationError:
        return _decode_stepwise(body)
    if "schema_version" not in reading.model_fields_set:
        return _decode_stepwise(body)  # no version in the body: poison, and that path names the reason
    return _require_value_or_state(reading)


def _decode_stepwise(body: bytes) -> Reading:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError("undecodable", str(exc)) from exc
    if not isinstance(doc, dict):
        raise InvalidEventError("undecodable", "body is not a JSON object")
    version = doc.pop("schema_version", None)
    if type(version) is not int or version != SCHEMA_VERSION:  # exactly the integer (not 1.0, not true)
        raise InvalidEventError("schema_version", f"unsupported schema_version {version!r}")
    try:  # strict mode takes UUIDs, enums and timestamps only as JSON text: validate the doc as JSON again
        reading = Reading.model_validate_json(orjson.dumps(doc), strict=True)
    except ValidationError as exc:
        raise InvalidEventError("invalid", exc.errors(include_url=False).__repr__()[:500]) from exc
    return _require_value_or_state(reading)


def _require_value_or_state(reading: Reading) -> Reading:
    if reading.value is None and reading.state is None:
        raise InvalidEventError("invalid", "a reading needs a value or a state")
    return reading
