"""The sensor reading: the one record that flows from a sensor to a rollup.

Timestamps are timezone-aware UTC. ``reading_id`` is the idempotency key: the producer assigns one when the
client does not, carries it as the event's message ID, and the consumer drops duplicates by it.
"""

from __future__ import annotations

import enum
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

SCHEMA_VERSION = 1

# A home ID names Blob paths and is a partition key: the whole string must match (no trailing newline).
HOME_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_HOME_ID = re.compile(HOME_ID_PATTERN.removeprefix("^").removesuffix("$"))
HomeId = Annotated[str, StringConstraints(pattern=HOME_ID_PATTERN)]
SensorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


def is_home_id(text: str) -> bool:
    """Whether ``text`` is a valid home ID: a full match (``re.match`` with ``$`` lets ``"home-1\\n"`` in)."""
    return _HOME_ID.fullmatch(text) is not None


class SensorType(enum.StrEnum):
    MOTION = "motion"
    DOOR = "door"
    WINDOW = "window"
    GLASS_BREAK = "glass_break"
    SMOKE = "smoke"
    CO = "co"
    TEMPERATURE = "temperature"
    WATER_LEAK = "water_leak"


# RFC 3339 date-time (section 5.6) with upper-case ``T`` and ``Z``, as the codec writes it. Text in any other
# form is refused: pydantic alone would also take "1764072000" (Unix time in a string), a space for the ``T``
# or an offset without its colon. A wrap validator's handler sees the text as a Python ``str``, which strict
# mode refuses, so the text is parsed here (``fromisoformat`` takes every string the pattern lets through).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


def _require_utc(value: object, handler: ValidatorFunctionWrapHandler) -> datetime:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError("timestamp must be an RFC 3339 date-time with an offset")
        # The pattern requires an offset, so the result is aware. ValueError (a validation error): hour 24.
        return datetime.fromisoformat(value).astimezone(UTC)
    parsed: datetime = handler(value)  # a datetime; numbers are refused in strict mode
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC)")
    return parsed.astimezone(UTC)


# Timezone-aware, normalised to UTC; as text, RFC 3339 only (one Python call per value).
UtcDatetime = Annotated[datetime, WrapValidator(_require_utc)]


class Reading(BaseModel):
    """One sensor reading as published to Event Hubs (schema version ``SCHEMA_VERSION``).

    ``value`` is numeric (CO ppm, temperature in degrees Celsius, 0/1 for binary sensors);
    ``state`` is the sensor's discrete state where it has one (``open``/``closed``, ``motion``/``clear``,
    ``alarm``/``ok``). At least one of the two is present.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The wire format's version. Never dumped (the codec writes it itself) and defaulted for readings built in
    # code; ``decode_reading`` requires it in an event body (``model_fields_set``), so a body without it is
    # still poison. Here so that one Rust-side ``model_validate_json`` call decodes a whole event body.
    schema_version: int = Field(
        default=SCHEMA_VERSION, ge=SCHEMA_VERSION, le=SCHEMA_VERSION, strict=True, exclude=True, repr=False
    )
    reading_id: uuid.UUID
    home_id: HomeId
    sensor_id: SensorId
    sensor_type: SensorType
    ts: UtcDatetime
    value: float | None = Field(default=None, allow_inf_nan=False)
    state: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] | None = None
    seq: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
