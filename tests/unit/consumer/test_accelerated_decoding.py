"""The ``decoder`` accelerator: reads received events exactly as the public path does, or is refused."""

from __future__ import annotations

import logging
from typing import Any, Literal

import pytest
from azure.eventhub import EventData
from azure.eventhub._pyamqp.message import Message
from homesec_consumer.adapters import accelerated_decoding
from homesec_consumer.adapters.accelerated_decoding import as_received, decoder, load, received, self_check
from homesec_consumer.adapters.eventhub import inbound
from homesec_consumer.compose import ConsumerService
from homesec_consumer.partition import InboundEvent
from homesec_consumer.ports import Position
from homesec_consumer.settings import ConsumerSettings
from prometheus_client import CollectorRegistry


def _received(**fields: Any) -> EventData:
    """An event the way the SDK's receiver builds it from a decoded pyamqp message."""
    return EventData._from_message(Message(**fields))


_ANN = {b"x-opt-sequence-number": 7, b"x-opt-offset": b"700", b"x-opt-enqueued-time": 1_795_600_000_123,
        b"x-opt-partition-key": b"home-1"}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "fast"),
    [
        ({"data": [b'{"a": 1}'], "message_annotations": _ANN}, True),
        ({"data": [b'{"a": 1}'], "message_annotations": {**_ANN, b"x-opt-enqueued-time": None}}, True),
        ({"data": [b'{"a": 1}'], "message_annotations": {**_ANN, b"x-opt-enqueued-time": 0}}, True),
        ({"data": [b'{"a":', b" 1}"], "message_annotations": _ANN}, False),  # two data sections
        ({"value": {"k": 1}, "message_annotations": _ANN}, False),
        ({"sequence": [[1, 2]], "message_annotations": _ANN}, False),
        ({"data": [b"x"], "message_annotations": {**_ANN, b"x-opt-offset": "700"}}, False),
        ({"data": [b"x"], "message_annotations": None}, False),
        ({"data": [b"x"], "message_annotations": {b"x-opt-offset": b"1"}}, False),
    ],
)
def test_the_accelerated_read_agrees_with_the_public_api(fields: dict[str, Any], fast: bool) -> None:
    event = _received(**fields)
    assert (received(event) is not None) is fast
    assert decoder()(event) == inbound(event)


def test_the_sdk_keeps_the_received_message_where_the_accelerator_reads_it() -> None:
    event = _received(data=[b"{}"], message_annotations=_ANN)
    assert received(event) == InboundEvent(b"{}", Position(7, "700"), 1_795_600_000_123)
    assert (event.sequence_number, event.offset) == (7, "700")


def test_samples_go_through_the_sdks_receive_path() -> None:
    message, _ = accelerated_decoding.sample_messages()[0]
    event = as_received(message)
    assert (event.sequence_number, event.offset, event.partition_key) == (0, "0", b"home-000001")


def test_the_self_check_passes_on_the_installed_sdk(caplog: pytest.LogCaptureFixture) -> None:
    assert self_check() is None
    with caplog.at_level(logging.INFO):
        decode, decision = load("auto")
    assert decision.enabled and decode is not inbound
    assert [r.getMessage() for r in caplog.records if r.name == accelerated_decoding.__name__] == [
        "accelerator decoder: on (self-check passed: identical to the public path)"
    ]


def wrong_offset(event: EventData) -> InboundEvent | None:
    """A fast read that drops the offset's last digit."""
    got = received(event)
    return (
        None
        if got is None
        else got._replace(position=Position(got.position.sequence_number, got.position.offset[:-1]))
    )


def never(event: EventData) -> InboundEvent | None:
    """A fast read that finds nothing (an SDK release that moved the received message)."""
    return None


def wrong_body(event: EventData) -> InboundEvent | None:
    got = received(event)
    return None if got is None else got._replace(body=got.body.replace(b"open", b"shut"))


@pytest.mark.parametrize(
    ("fast", "reason"),
    [
        (wrong_offset, "self-check failed: sample 0 reads InboundEvent("),
        (wrong_body, "self-check failed: sample 0 reads InboundEvent("),
        (never, "self-check failed: sample 0: the received message is not where the accelerator reads it"),
    ],
)
def test_a_broken_accelerator_is_refused_with_one_line(
    fast: accelerated_decoding.FastRead, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        decode, decision = load("auto", fast=fast)
    assert decode is inbound and not decision.enabled
    assert decision.reason.startswith(reason)
    lines = [r for r in caplog.records if r.name == accelerated_decoding.__name__]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


def test_off_skips_the_check() -> None:
    decode, decision = load("off", fast=never)
    assert decode is inbound and decision.reason == "switched off: ACCELERATORS=off"


@pytest.mark.parametrize(("mode", "exported"), [("auto", 1.0), ("off", 0.0)])
def test_the_service_exports_its_decisions(mode: Literal["auto", "off"], exported: float) -> None:
    registry = CollectorRegistry()
    ConsumerService(ConsumerSettings(accelerators=mode), registry)
    assert registry.get_sample_value("homesec_consumer_accelerated", {"component": "decoder"}) == exported
    # This process never enabled the compiled fold (tests/unit/runtime/test_native.py runs it in processes).
    assert registry.get_sample_value("homesec_consumer_accelerated", {"component": "fold"}) == 0.0
