from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from homesec_domain.events import decode_reading, encode_reading
from homesec_domain.validation import (
    InvalidReadingsError,
    MalformedBodyError,
    TimeWindow,
    validate_batch,
)

from ..producer.helpers import NOW, body, reading

WINDOW = TimeWindow(max_age=timedelta(hours=1), max_future=timedelta(minutes=5))


def test_valid_batch_encodes_like_the_codec() -> None:
    rid = str(uuid.uuid4())
    out = validate_batch(
        body(
            reading(reading_id=rid, value=1.0, seq=7, ts="2025-06-01T13:59:59.5+02:00"),
            reading("home-2", "temp-1", sensor_type="temperature", value=21.5, state=None),
        ),
        NOW,
        WINDOW,
    )
    assert [a.home_id for a in out] == ["home-1", "home-2"]
    assert out[0].reading_id == rid
    for accepted in out:
        decoded = decode_reading(accepted.body)
        assert str(decoded.reading_id) == accepted.reading_id
        assert encode_reading(decoded) == accepted.body
    assert orjson.loads(out[0].body)["ts"] == "2025-06-01T11:59:59.500000Z"


def test_client_ids_are_canonical_lower_case() -> None:
    rid = uuid.uuid4()
    (out,) = validate_batch(body(reading(reading_id=str(rid).upper())), NOW, WINDOW)
    assert out.reading_id == str(rid)


def test_same_instant_in_another_offset_gets_the_same_server_id() -> None:
    (utc,) = validate_batch(body(reading(ts="2025-06-01T11:59:00Z")), NOW, WINDOW)
    (cest,) = validate_batch(body(reading(ts="2025-06-01T13:59:00+02:00")), NOW, WINDOW)
    assert utc.reading_id == cest.reading_id
    assert utc.body == cest.body


def test_server_assigned_ids_are_deterministic_and_distinct() -> None:
    batch = body(reading(seq=1), reading(seq=2))
    first = validate_batch(batch, NOW, WINDOW)
    again = validate_batch(batch, NOW, WINDOW)
    assert [a.reading_id for a in first] == [a.reading_id for a in again]
    assert first[0].reading_id != first[1].reading_id
    assert uuid.UUID(first[0].reading_id).version == 5


@pytest.mark.parametrize(
    ("item", "field", "error"),
    [
        (reading(value="1.0"), "value", "float_type"),
        (reading(value=True), "value", "float_type"),
        (reading(ts=1_748_779_200), "ts", "datetime_type"),
        (reading(ts="2025-06-01T11:59:00"), "ts", "timezone_aware"),
        (reading(sensor_type="laser"), "sensor_type", "enum"),
        (reading(home="bad home!"), "home_id", "string_pattern_mismatch"),
        (reading(extra=1), "extra", "extra_forbidden"),
        (reading(seq=-1), "seq", "greater_than_equal"),
        (reading(reading_id="not-a-uuid"), "reading_id", "string_pattern_mismatch"),
        (reading(reading_id=str(uuid.uuid4()) + "0"), "reading_id", "string_pattern_mismatch"),
        (reading(state=None), "value", "missing"),
        (reading(ts=(NOW - timedelta(hours=2)).isoformat()), "ts", "too_old"),
        (reading(ts=(NOW + timedelta(minutes=6)).isoformat()), "ts", "in_future"),
    ],
)
def test_rejects_with_item_detail(item: dict[str, object], field: str, error: str) -> None:
    with pytest.raises(InvalidReadingsError) as info:
        validate_batch(body(reading(), item), NOW, WINDOW)
    assert [(e.index, e.field, e.error) for e in info.value.items] == [(1, field, error)]


def test_non_finite_value_is_rejected() -> None:
    raw = (
        b'{"readings":[{"home_id":"h","sensor_id":"s","sensor_type":"co",'
        b'"ts":"2025-06-01T11:59:00Z","value":1e999}]}'
    )
    with pytest.raises(InvalidReadingsError) as info:
        validate_batch(raw, NOW, WINDOW)
    assert info.value.items[0].error == "finite_number"


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b'{"readings": [}'])
def test_malformed_json(raw: bytes) -> None:
    with pytest.raises(MalformedBodyError):
        validate_batch(raw, NOW, WINDOW)


@pytest.mark.parametrize("raw", [b"[]", b"{}", b'{"readings": []}', b'{"readings": {}}', b"null"])
def test_wrong_shape(raw: bytes) -> None:
    with pytest.raises(InvalidReadingsError) as info:
        validate_batch(raw, NOW, WINDOW)
    assert info.value.items[0].index == -1


def test_batch_size_limits() -> None:
    with pytest.raises(InvalidReadingsError):
        validate_batch(body(*[reading(seq=i) for i in range(501)]), NOW, WINDOW)
    with pytest.raises(InvalidReadingsError) as info:
        validate_batch(body(*[reading(seq=i) for i in range(11)]), NOW, WINDOW, max_readings=10)
    assert info.value.items[0].error == "too_long"
    assert len(validate_batch(body(*[reading(seq=i) for i in range(500)]), NOW, WINDOW)) == 500


def test_a_repeated_client_id_rejects_the_batch_naming_every_item_that_uses_it() -> None:
    twice, thrice = str(uuid.uuid4()), str(uuid.uuid4())
    batch = body(
        reading(reading_id=twice, state="open"),
        reading(reading_id=thrice, seq=1),
        reading(reading_id=twice.upper(), state="closed"),  # the same ID in another case
        reading(reading_id=str(uuid.uuid4())),
        reading(reading_id=thrice, seq=2),
        reading(reading_id=thrice, seq=3, ts=(NOW - timedelta(hours=2)).isoformat()),
    )
    with pytest.raises(InvalidReadingsError) as info:
        validate_batch(batch, NOW, WINDOW)
    found = [(e.index, e.field, e.error) for e in info.value.items]
    assert found == [
        (0, "reading_id", "duplicate"), (1, "reading_id", "duplicate"), (2, "reading_id", "duplicate"),
        (4, "reading_id", "duplicate"), (5, "reading_id", "duplicate"), (5, "ts", "too_old"),
    ]  # fmt: skip
    assert "items 0, 2 " in info.value.items[0].message
    assert "items 1, 4, 5 " in info.value.items[1].message


def test_identical_readings_without_ids_are_not_refused() -> None:
    """Server-derived IDs repeat only for identical content: the consumer keeps one, nothing differs."""
    out = validate_batch(body(reading(seq=1), reading(seq=1), reading(seq=2)), NOW, WINDOW)
    assert out[0].reading_id == out[1].reading_id != out[2].reading_id
