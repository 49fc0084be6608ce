"""The event codec: ``decode_reading``'s one-call fast path gives exactly what the step-by-step path (parse,
check the version, validate) gives, for valid bodies and for every kind of poison."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from homesec_domain.errors import InvalidEventError
from homesec_domain.events import _decode_stepwise, decode_reading, encode_reading
from homesec_domain.models import SCHEMA_VERSION, Reading, SensorType
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


# The step-by-step path, which the fast path must agree with (it also names the reasons: pinned below).
reference = _decode_stepwise


def outcome(decode: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", decode(body)
    except InvalidEventError as exc:
        return exc.reason, None


def valid_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1, "reading_id": str(uuid.uuid4()), "home_id": "home-1", "sensor_id": "co-1",
        "sensor_type": "co", "ts": "2026-11-25T12:00:01.250000Z", "value": 12.5, "state": None, "seq": 3,
    }  # fmt: skip
    doc.update(overrides)
    return doc


def test_round_trip() -> None:
    r = Reading(reading_id=uuid.uuid4(), home_id="home-1", sensor_id="door-1", sensor_type=SensorType.DOOR,
                ts=T0, state="open", seq=9)  # fmt: skip
    decoded = decode_reading(encode_reading(r))
    assert decoded == r
    assert encode_reading(decoded) == encode_reading(r)
    assert orjson.loads(encode_reading(r))["schema_version"] == SCHEMA_VERSION
    assert "schema_version" not in r.model_dump()


def test_offsets_are_normalised_to_utc() -> None:
    decoded = decode_reading(orjson.dumps(valid_doc(ts="2026-11-25T14:00:00+02:00")))
    assert decoded.ts == T0
    assert decoded.ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "undecodable"),
        (b"[1, 2]", "undecodable"),
        (b"", "undecodable"),
        (orjson.dumps({k: v for k, v in valid_doc().items() if k != "schema_version"}), "schema_version"),
        (orjson.dumps(valid_doc(schema_version=2)), "schema_version"),
        (orjson.dumps(valid_doc(schema_version="1")), "schema_version"),
        (orjson.dumps(valid_doc(schema_version=1.0)), "schema_version"),
        (orjson.dumps(valid_doc(schema_version=True)), "schema_version"),
        (orjson.dumps(valid_doc(reading_id="nope")), "invalid"),
        (orjson.dumps(valid_doc(ts="2026-11-25T12:00:00")), "invalid"),
        (orjson.dumps(valid_doc(sensor_type="laser")), "invalid"),
        (orjson.dumps(valid_doc(extra=1)), "invalid"),
        (orjson.dumps(valid_doc(home_id="has space")), "invalid"),
        (orjson.dumps(valid_doc(seq=-1)), "invalid"),
        # The contract is what encode_reading writes: no coercion, no epoch times, a value or a state.
        (orjson.dumps(valid_doc(value=None, state=None)), "invalid"),
        (orjson.dumps({k: v for k, v in valid_doc().items() if k not in {"value", "state"}}), "invalid"),
        (orjson.dumps(valid_doc(value="12.5")), "invalid"),
        (orjson.dumps(valid_doc(value=True)), "invalid"),
        (orjson.dumps(valid_doc(seq="7")), "invalid"),
        (orjson.dumps(valid_doc(seq=7.0)), "invalid"),
        (orjson.dumps(valid_doc(ts=1764072001)), "invalid"),
        (orjson.dumps(valid_doc(ts=1764072001.25)), "invalid"),
        (orjson.dumps(valid_doc(ts="1764072001")), "invalid"),
        (orjson.dumps(valid_doc(ts="2026-11-25")), "invalid"),
        (orjson.dumps(valid_doc(ts="2026-11-25 12:00:01Z")), "invalid"),
        (orjson.dumps(valid_doc(ts="2026-11-25T12:00:01+0100")), "invalid"),
        (orjson.dumps(valid_doc(ts="2026-11-25T24:00:00Z")), "invalid"),
        (orjson.dumps(valid_doc(sensor_type="CO")), "invalid"),
        (orjson.dumps(valid_doc(state=1)), "invalid"),
    ],
)
def test_poison_reasons(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_reading(body)
    assert info.value.reason == reason
    assert outcome(reference, body) == (reason, None)


def test_what_the_contract_allows_decodes() -> None:
    assert decode_reading(orjson.dumps(valid_doc(value=12))).value == 12.0  # a JSON integer is a number
    assert decode_reading(orjson.dumps(valid_doc(value=None, state="open"))).state == "open"
    only_state = {k: v for k, v in valid_doc(state="open").items() if k not in {"value", "seq"}}
    assert decode_reading(orjson.dumps(only_state)).seq is None
    fine = decode_reading(orjson.dumps(valid_doc(ts="2026-11-25T12:00:01.123456789-00:00")))
    assert fine.ts == T0 + timedelta(seconds=1, microseconds=123456)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "1", "co", "open", "home-1", "x y", "2026-11-25T12:00:00Z", "2026-11-25T12:00:00",
                     "2026-11-25T13:00:00+01:00", str(uuid.UUID(int=7)), "NaN", "12.5", "7", 1764072000,
                     "1764072000", "2026-11-25 12:00:00Z", "2026-11-25T12:00:00+0100", 7.0]),
)  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    doc = valid_doc(
        reading_id=str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        ts=(T0 + timedelta(milliseconds=draw(st.integers(-(10**9), 10**9))))
        .astimezone(timezone(timedelta(minutes=draw(st.integers(-720, 720)))))
        .isoformat(),
        sensor_type=draw(st.sampled_from([t.value for t in SensorType])),
        value=draw(st.one_of(st.none(), st.floats(-1e6, 1e6))),
        state=draw(st.one_of(st.none(), st.sampled_from(["open", "closed", "alarm"]))),
    )
    for key in draw(st.lists(st.sampled_from([*doc, "extra"]), max_size=3)):  # mutate some fields
        if draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = draw(_scalars)
    raw = orjson.dumps(doc)
    if draw(st.integers(0, 9)) == 0:  # now and then, break the JSON itself
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.sampled_from([b"", b"}", b",", b"\xff", b" "])) + raw[cut:]
    return raw


@settings(max_examples=600, deadline=None)
@given(bodies())
def test_fast_path_agrees_with_the_reference(body: bytes) -> None:
    assert outcome(decode_reading, body) == outcome(reference, body)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    value = draw(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
    state = draw(st.sampled_from([None, "open", "closed", "alarm"]) if value is not None else st.just("ok"))
    return Reading(
        reading_id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))), home_id="home-1", sensor_id="s-1",
        sensor_type=draw(st.sampled_from(list(SensorType))), value=value, state=state,
        ts=T0 + timedelta(microseconds=draw(st.integers(-(10**12), 10**12))),
        seq=draw(st.one_of(st.none(), st.integers(0, 2**63 - 1))),
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(readings())
def test_everything_the_producer_encodes_decodes_strictly(reading: Reading) -> None:
    body = encode_reading(reading)
    assert decode_reading(body) == reading
    assert outcome(reference, body) == ("ok", reading)
