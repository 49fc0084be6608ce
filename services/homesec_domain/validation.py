"""Strict validation of a batch of readings as a client posts it, into encoded, publishable readings.

The whole batch is validated in one pass by a pydantic ``TypeAdapter`` in strict mode (no string-to-number
or number-to-timestamp coercion, no unknown fields, timezone required). Rules no schema can express (the
timestamp window, "value or state", no ``reading_id`` twice in one batch) are checked afterwards. Any
failure rejects the whole batch with per-item detail, so nothing from a bad request is ever published.

``reading_id`` is the idempotency key. A client SHOULD send one. When it does not, the server derives a
deterministic UUIDv5 from the reading's content (home, sensor, type, timestamp, sequence, value, state), so a
client that retries the same batch after an error produces the same IDs and the consumer drops duplicates.

The event body produced here is byte-identical to ``homesec_domain.events.encode_reading`` (the unit tests
check it) but avoids building a pydantic model per reading.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple, NotRequired

import orjson
from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from typing_extensions import TypedDict

from homesec_domain.errors import HomesecError
from homesec_domain.models import SCHEMA_VERSION, HomeId, SensorId, SensorType

MAX_READINGS_PER_REQUEST = 500
# Namespace of server-assigned reading IDs (uuid5 of the reading's content).
READING_ID_NAMESPACE = uuid.UUID("5c1c7f0e-8d0a-5b5e-9a43-0b6f1d2a7c11")


# A UUID in its canonical text form (any version; upper case is accepted and lower-cased). Kept as text
# rather than uuid.UUID: parsing and re-printing 30,000 IDs a second is measurable.
ReadingId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
    Field(json_schema_extra={"format": "uuid"}),
]


class ReadingIn(TypedDict):
    """One reading as a client sends it (``reading_id`` optional)."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # type: ignore[misc]

    reading_id: NotRequired[ReadingId | None]
    home_id: HomeId
    sensor_id: SensorId
    sensor_type: SensorType
    ts: AwareDatetime  # any offset; the event body carries it in UTC
    value: NotRequired[Annotated[float, Field(allow_inf_nan=False)] | None]
    state: NotRequired[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] | None]
    seq: NotRequired[Annotated[int, Field(ge=0, le=2**63 - 1)] | None]


class ReadingBatchIn(TypedDict):
    """The body of ``POST /v1/readings``."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # type: ignore[misc]

    readings: Annotated[list[ReadingIn], Field(min_length=1, max_length=MAX_READINGS_PER_REQUEST)]


BATCH_ADAPTER: TypeAdapter[ReadingBatchIn] = TypeAdapter(ReadingBatchIn)


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one reading (``index`` in the request, -1 for the request itself) was rejected."""

    index: int
    field: str
    error: str
    message: str


class ReadingsRejectedError(HomesecError):
    """Base of validation failures; ``items`` says what was wrong where."""

    def __init__(self, items: Sequence[ItemError]) -> None:
        super().__init__(f"{len(items)} problem(s) in the request")
        self.items = list(items)


class MalformedBodyError(ReadingsRejectedError):
    """The body is not JSON (or not UTF-8)."""


class InvalidReadingsError(ReadingsRejectedError):
    """The body is JSON but the readings break the schema or the rules."""


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Accepted timestamps: not older than ``max_age``, not further ahead than ``max_future`` (clock skew)."""

    max_age: timedelta = timedelta(days=1)
    max_future: timedelta = timedelta(minutes=5)


class AcceptedReading(NamedTuple):
    """A validated reading ready to publish: its ID (the event's message ID), home (partition key), body."""

    reading_id: str
    home_id: str
    body: bytes


def _field_of(loc: tuple[int | str, ...]) -> tuple[int, str]:
    if len(loc) >= 2 and loc[0] == "readings" and isinstance(loc[1], int):
        return loc[1], ".".join(str(p) for p in loc[2:])
    return -1, ".".join(str(p) for p in loc)


def _schema_errors(exc: PydanticValidationError) -> list[ItemError]:
    items = []
    for err in exc.errors(include_url=False, include_input=False):
        index, field = _field_of(tuple(err["loc"]))
        items.append(ItemError(index, field, err["type"], err["msg"]))
    return items


def parse_batch(body: bytes, max_readings: int = MAX_READINGS_PER_REQUEST) -> list[ReadingIn]:
    """Decode and schema-check a request body. Raises ``MalformedBodyError`` / ``InvalidReadingsError``."""
    try:
        batch = BATCH_ADAPTER.validate_json(body)
    except PydanticValidationError as exc:
        errors = _schema_errors(exc)
        if any(e.error in {"json_invalid", "json_type"} for e in errors):
            raise MalformedBodyError(errors) from None
        raise InvalidReadingsError(errors) from None
    readings = batch["readings"]
    if len(readings) > max_readings:
        msg = f"at most {max_readings} readings per request"
        raise InvalidReadingsError([ItemError(-1, "readings", "too_long", msg)])
    return readings


def check_rules(readings: Sequence[ReadingIn], now: datetime, window: TimeWindow) -> None:
    """The rules beyond the schema; raises ``InvalidReadingsError`` listing every offending item."""
    oldest, newest = now - window.max_age, now + window.max_future
    items = repeated_ids(readings)
    for index, reading in enumerate(readings):
        ts = reading["ts"]
        if ts < oldest:
            items.append(ItemError(index, "ts", "too_old", f"timestamp older than {window.max_age}"))
        elif ts > newest:
            items.append(ItemError(index, "ts", "in_future", f"timestamp over {window.max_future} ahead"))
        if reading.get("value") is None and reading.get("state") is None:
            items.append(ItemError(index, "value", "missing", "a reading needs a value or a state"))
    if items:
        raise InvalidReadingsError(sorted(items, key=lambda item: item.index))


def repeated_ids(readings: Sequence[ReadingIn]) -> list[ItemError]:
    """One error per item whose client-supplied ``reading_id`` (case-insensitive) another item also uses.

    A repeated ID in one batch is refused rather than collapsed: the consumer would keep one of the readings
    and drop the others as duplicates, so a 202 for all of them would be a lie when their contents differ.
    IDs the server derives are not checked: two items with the same derived ID have the same content.
    """
    first: dict[str, int] = {}
    groups: dict[str, list[int]] = {}
    for index, reading in enumerate(readings):
        given = reading.get("reading_id")
        if given:
            key = given.lower()
            seen = first.setdefault(key, index)
            if seen != index:
                groups.setdefault(key, [seen]).append(index)
    items: list[ItemError] = []
    for indexes in groups.values():
        message = f"reading_id repeated in items {', '.join(map(str, indexes))} of the batch"
        items.extend(ItemError(i, "reading_id", "duplicate", message) for i in indexes)
    return items


def derive_reading_id(reading: ReadingIn) -> uuid.UUID:
    """The deterministic server-assigned ID: UUIDv5 of the reading's content (``ts`` taken in UTC)."""
    key = "\x1f".join(
        (
            reading["home_id"],
            reading["sensor_id"],
            reading["sensor_type"].value,
            reading["ts"].astimezone(UTC).isoformat(),
            repr(reading.get("seq")),
            repr(reading.get("value")),
            repr(reading.get("state")),
        )
    )
    return uuid.uuid5(READING_ID_NAMESPACE, key)


def encode_accepted(reading: ReadingIn) -> AcceptedReading:
    """Assign the ID if missing and encode the event body (same bytes as ``events.encode_reading``)."""
    given = reading.get("reading_id")
    reading_id = given.lower() if given else str(derive_reading_id(reading))
    ts = reading["ts"]
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "reading_id": reading_id,
        "home_id": reading["home_id"],
        "sensor_id": reading["sensor_id"],
        "sensor_type": reading["sensor_type"],  # a StrEnum: orjson writes its value
        "ts": ts,
        "value": reading.get("value"),
        "state": reading.get("state"),
        "seq": reading.get("seq"),
    }
    body = orjson.dumps(doc, option=orjson.OPT_UTC_Z)
    return AcceptedReading(reading_id, reading["home_id"], body)


def validate_batch(
    body: bytes, now: datetime, window: TimeWindow, max_readings: int = MAX_READINGS_PER_REQUEST
) -> list[AcceptedReading]:
    """Parse, check and encode a whole request body; all or nothing."""
    readings = parse_batch(body, max_readings)
    check_rules(readings, now, window)
    return [encode_accepted(r) for r in readings]
