"""The sensor reading: the one record that flows from a sensor to a rollup.

Timestamps are timezone-aware UTC. ``reading_id`` is the idempotency key: the producer assigns one when the
client does not, carries it as the event's message ID, and the consumer drops duplicates by it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

HomeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
SensorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class SensorType(enum.StrEnum):
    MOTION = "motion"
    DOOR = "door"
    WINDOW = "window"
    GLASS_BREAK = "glass_break"
    SMOKE = "smoke"
    CO = "co"
    TEMPERATURE = "temperature"
    WATER_LEAK = "water_leak"


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


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
