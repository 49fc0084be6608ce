"""The ``encoder`` accelerator: byte-identical to the SDK's public path, and refused when it is not."""

from __future__ import annotations

import logging
import uuid

import pytest
from azure.eventhub import EventDataBatch
from azure.eventhub._pyamqp._encode import encode_payload
from homesec_domain.events import CONTENT_TYPE
from homesec_domain.validation import AcceptedReading
from homesec_producer.adapters import accelerated_encoding
from homesec_producer.adapters.accelerated_encoding import EventEncoder, adder, load, self_check
from homesec_producer.adapters.batching import add_public, event_data
from homesec_producer.adapters.eventhub import EventHubsPublisher
from homesec_producer.metrics import ACCELERATORS, ProducerMetrics
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from . import helpers

ENCODER = EventEncoder(CONTENT_TYPE)
homes = st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", fullmatch=True)


def batch_of(readings: list[AcceptedReading], accelerated: bool) -> EventDataBatch:
    batch = EventDataBatch(max_size_in_bytes=10_000_000, partition_id="3")
    add = adder(ENCODER) if accelerated else add_public
    for reading in readings:
        assert add(batch, reading)
    return batch


@settings(max_examples=300)
@given(st.lists(st.tuples(homes, st.binary(max_size=1200)), min_size=1, max_size=5))
def test_byte_identical_to_the_sdk(items: list[tuple[str, bytes]]) -> None:
    readings = [AcceptedReading(str(uuid.uuid4()), home, body) for home, body in items]
    ours, theirs = batch_of(readings, True), batch_of(readings, False)
    assert [bytes(d) for d in ours._message.data] == [bytes(d) for d in theirs._message.data]
    assert (ours.size_in_bytes, len(ours)) == (theirs.size_in_bytes, len(theirs))
    out_ours, out_theirs = bytearray(), bytearray()
    encode_payload(out_ours, ours._message)
    encode_payload(out_theirs, theirs._message)
    assert out_ours == out_theirs


def test_large_fields_use_the_32_bit_forms() -> None:
    reading = AcceptedReading(str(uuid.uuid4()), "h" * 300, b"x" * 70_000)
    assert batch_of([reading], True)._message.data == batch_of([reading], False)._message.data


def test_a_full_batch_refuses_the_same_reading_on_both_paths() -> None:
    readings = [AcceptedReading(str(uuid.uuid4()), "home-1", b"x" * 100) for _ in range(20)]
    counts = []
    for add in (adder(ENCODER), add_public):
        batch = EventDataBatch(max_size_in_bytes=1_000, partition_id="0")
        counts.append(sum(1 for r in readings if add(batch, r)))
        assert batch.size_in_bytes <= 1_000
    assert counts[0] == counts[1] < len(readings)


def test_event_carries_id_content_type_and_partition_key() -> None:
    reading = AcceptedReading("6f1b5a4e-0000-4000-8000-000000000000", "home-9", b"{}")
    event = event_data(reading)
    assert event.message_id == reading.reading_id
    assert event.content_type == CONTENT_TYPE
    annotations = event.raw_amqp_message.annotations
    assert annotations is not None
    assert annotations[b"x-opt-partition-key"] == "home-9"


def test_the_self_check_passes_on_the_installed_sdk(caplog: pytest.LogCaptureFixture) -> None:
    assert self_check(ENCODER) is None
    with caplog.at_level(logging.INFO):
        add, decision = load("auto")
    assert add is not None and decision.enabled
    assert [r.getMessage() for r in caplog.records if r.name == accelerated_encoding.__name__] == [
        "accelerator encoder: on (self-check passed: identical to the public path)"
    ]


class OffByOneEncoder:
    """An accelerator that is wrong only for long bodies (a 32-bit length written one too large)."""

    def encode(self, message_id: str, partition_key: str, body: bytes) -> bytes:
        encoded = ENCODER.encode(message_id, partition_key, body)
        return encoded[:-1] + b"!" if len(body) > 255 else encoded


class RaisingEncoder:
    def encode(self, message_id: str, partition_key: str, body: bytes) -> bytes:
        raise AttributeError("'EventDataBatch' object has no attribute '_size'")


@pytest.mark.parametrize(
    ("encoder", "reason"),
    [
        (OffByOneEncoder(), "self-check failed: event bytes differ from EventDataBatch.add's"),
        (RaisingEncoder(), "self-check failed: self-check raised AttributeError("),
    ],
)
def test_a_broken_accelerator_is_refused_with_one_line(
    encoder: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        add, decision = load("auto", make_encoder=lambda: encoder)  # type: ignore[arg-type, return-value]
    assert add is None and not decision.enabled
    assert decision.reason.startswith(reason)
    lines = [r for r in caplog.records if r.name == accelerated_encoding.__name__]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert lines[0].getMessage().endswith("; using the public path")


def test_off_skips_the_check() -> None:
    add, decision = load("off", make_encoder=RaisingEncoder)
    assert add is None and decision.reason == "switched off: ACCELERATORS=off"


@pytest.mark.parametrize(("mode", "exported"), [("auto", 1.0), ("off", 0.0)])
async def test_the_publisher_exports_its_decisions(mode: str, exported: float) -> None:
    """Both SDK accelerators of the publisher (``encoder`` here, ``payload``: test_accelerated_payload.py)."""
    registry = CollectorRegistry()
    metrics = ProducerMetrics.create(registry)

    def exports() -> list[float | None]:
        return [
            registry.get_sample_value("homesec_producer_accelerated", {"component": c}) for c in ACCELERATORS
        ]

    assert ACCELERATORS == ("encoder", "payload") and exports() == [0.0, 0.0]
    publisher = EventHubsPublisher.from_settings(helpers.settings(accelerators=mode), metrics)
    try:
        assert exports() == [exported, exported]
    finally:
        await publisher.close()


def test_the_annotations_cache_is_bounded_and_does_not_change_the_bytes() -> None:
    cached, fresh = EventEncoder(CONTENT_TYPE), EventEncoder(CONTENT_TYPE)
    cached.ANNOTATIONS_CACHED = 8
    for n in range(30):
        key = f"home-{n % 12:06d}"
        fresh._annotations.clear()
        assert cached.encode(f"id-{n}", key, b"{}") == fresh.encode(f"id-{n}", key, b"{}")
        assert len(cached._annotations) <= 8
