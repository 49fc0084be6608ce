"""The OpenAPI description of the API port's routes: a response model for every documented status.

The routes answer with the documents ``reads.HomeReads`` and ``api.home_history`` build; these models only
describe them in ``/openapi.json`` (served on the admin port), and the descriptions here are what the API's
users read: plain Markdown.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

TIME = "UTC, milliseconds, `Z`: `2026-11-25T09:40:00.000Z`"


class Stat(BaseModel):
    """Statistics of the numeric readings of one hour."""

    n: int
    min: float
    max: float
    mean: float
    sum: float


class Hour(BaseModel):
    """One hourly rollup."""

    hour: str = Field(description=f"Start of the hour ({TIME}).")
    counts: dict[str, int] = Field(description="Readings per sensor type (types with none left out).")
    total: int = Field(description="Readings in the hour.")
    minutes: list[int] = Field(description="Readings per minute (index: minute), saturating at 255.")
    alarms: dict[str, int] = Field(description="Alarm readings per kind (kinds with none left out).")
    co_ppm: Stat | None = Field(description="CO concentration, in ppm; null without CO readings.")
    temperature_c: Stat | None = Field(description="Temperature, in °C; null without temperature readings.")


class Sensor(BaseModel):
    """A sensor's last reading."""

    sensor_id: str
    type: str = Field(description="The sensor type (`motion`, `door`, `smoke`, `co`, ...).")
    state: str | None = Field(description="Its last state, if it reports one.")
    value: float | None = Field(description="Its last value, if it reports one.")
    last_seen: str = Field(description=f"Timestamp of its last reading ({TIME}).")
    seq: int | None = Field(description="Sequence number of its last reading, if it sends them.")
    alarm: bool = Field(description="Its last reading raised an alarm.")
    lost_readings: int = Field(description="Readings missing from its sequence numbers.")


class Status(BaseModel):
    """A home's current status, and where it comes from."""

    schema_: str = Field(
        alias="schema", description="The status document's format: `homesec.rollup.status.v1`."
    )
    home_id: str
    watermark: str | None = Field(description=f"Newest reading timestamp applied ({TIME}).")
    sensors: list[Sensor]
    active_alarms: list[str] = Field(description="The sensors whose last reading raised an alarm.")
    lost_readings: int = Field(description="Readings missing from the home's sequence numbers.")
    open_hours: list[Hour] = Field(description="Hours still open to late readings.")
    source: Literal["live", "snapshot", "view"] = Field(
        description="`live`: the owning pod's current state; `snapshot`: the last durable state; `view`: "
        "the status blob."
    )
    partition: str = Field(description="The home's Event Hubs partition.")
    as_of: str | None = Field(default=None, description=f"When the state was current ({TIME}).")
    age_seconds: float | None = Field(default=None, description="How old the state is, in seconds.")


class History(BaseModel):
    """Hourly rollups up to the home's watermark."""

    home_id: str
    from_: str | None = Field(
        default=None, alias="from", description=f"First hour of the range ({TIME}); absent with no readings."
    )
    to: str | None = Field(
        default=None, description=f"Last hour of the range ({TIME}); absent with no readings."
    )
    hours: list[Hour] = Field(description="The hours of the range that have readings, oldest first.")


class Detail(BaseModel):
    """An error."""

    detail: str = Field(description="What went wrong.")


BEARER = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Detail, "headers": BEARER, "description": "No or invalid read token."},
    403: {"model": Detail, "description": "The token does not cover this home."},
    404: {"model": Detail, "description": "Unknown home."},
    503: {"model": Detail, "description": "The consumer is starting, or the rollup store does not answer."},
}
STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Status, "description": "The home's status."},
    **ERRORS,
    421: {
        "model": Detail,
        "description": "A read forwarded by another consumer pod (`x-homesec-forwarded`) reached a pod that "
        "does not own the home's partition.",
    },
}
HISTORY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": History, "description": "The home's hourly rollups."},
    **ERRORS,
}
STATUS_DESCRIPTION = (
    "The home's current status: its sensors' last readings, active alarms and open hours. Answered from "
    "the pod that owns the home's partition (the read is forwarded there), else from the last durable "
    "state; `source` and `age_seconds` say which and how old."
)
HISTORY_DESCRIPTION = (
    "The home's hourly rollups of the last `hours` hours (1 to 168) up to its newest reading, closed and "
    "open hours alike."
)
