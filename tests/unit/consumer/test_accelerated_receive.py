"""The ``receiver`` accelerator: received events built lazily read exactly as the SDK's own, the SDK's
receiver builds them once installed, and anything else is refused with the SDK left as it was."""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, Literal

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio._consumer_async import EventHubConsumer
from homesec_consumer.adapters import accelerated_receive
from homesec_consumer.adapters.accelerated_decoding import received
from homesec_consumer.adapters.accelerated_receive import LazyEventData, installed, load, restore, self_check
from homesec_consumer.adapters.eventhub import inbound
from homesec_consumer.compose import ConsumerService
from homesec_consumer.settings import ConsumerSettings
from prometheus_client import CollectorRegistry


@pytest.fixture(autouse=True)
def _sdk_restored() -> Iterator[None]:
    restore()
    yield
    restore()


def _next_event(message: Any) -> EventData:
    """What the SDK's receiver hands over for ``message`` (its own ``_next_message_in_buffer``)."""
    consumer = SimpleNamespace(
        _message_buffer=collections.deque([message]), _last_received_event=None,
        _client=SimpleNamespace(_config=SimpleNamespace(network_tracing=False)),
        _amqp_transport=SimpleNamespace(KIND="pyamqp"),
    )  # fmt: skip
    next_message: Any = EventHubConsumer._next_message_in_buffer  # untyped in the SDK
    event: EventData = next_message(consumer)
    return event


def test_the_self_check_passes_on_the_installed_sdk_and_leaves_it_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert self_check() is None and not installed()
    with caplog.at_level(logging.INFO):
        decision = load("auto")
    assert decision.enabled and installed()
    assert [r.getMessage() for r in caplog.records if r.name == accelerated_receive.__name__] == [
        "accelerator receiver: on (self-check passed: identical to the public path)"
    ]


def test_installed_the_sdks_receiver_builds_lazy_events_that_read_as_its_own() -> None:
    messages = accelerated_receive._messages()
    eager = [_next_event(m) for m in messages]
    load("auto")
    lazy = [_next_event(m) for m in messages]
    assert [type(e) for e in eager] == [EventData] * len(messages)
    assert [type(e) for e in lazy] == [LazyEventData] * len(messages)
    for a, b in zip(lazy, eager, strict=True):
        assert accelerated_receive._view(a) == accelerated_receive._view(b)
        assert inbound(a) == inbound(b) and received(a) == received(b)
        assert isinstance(a, EventData)


def test_the_annotated_message_is_built_once_on_first_use_and_can_be_set() -> None:
    message = accelerated_receive._messages()[-1]
    event = LazyEventData._from_message(message)
    assert event.__dict__["_raw_amqp"] is None
    raw = event.raw_amqp_message
    assert event.raw_amqp_message is raw and event.message_id == EventData._from_message(message).message_id
    event.message_id = "changed"
    assert event.raw_amqp_message.properties is not None
    assert event.raw_amqp_message.properties.message_id == "changed"


class _Forgetful(LazyEventData):
    """Loses the message's properties when it builds the annotated message."""

    @classmethod
    def _from_message(cls, message: Any, raw_amqp_message: Any = None) -> EventData:
        return super()._from_message(message._replace(properties=None), raw_amqp_message)


class _NoLastEnqueued(LazyEventData):
    """Keeps a message without its delivery annotations (the last enqueued event's properties)."""

    @classmethod
    def _from_message(cls, message: Any, raw_amqp_message: Any = None) -> EventData:
        return super()._from_message(message._replace(delivery_annotations=None), raw_amqp_message)


def _no_from_message(self: Any) -> EventData:
    return EventData(body=self._message_buffer.popleft().data[0])


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        (("lazy", _Forgetful), "self-check failed: sample 10 reads otherwise when built lazily"),
        (("lazy", _NoLastEnqueued), "self-check failed: sample 10 reads otherwise when built lazily"),
        (("sdk_class", object), "self-check failed: azure.eventhub.aio._consumer_async.EventData is not"),
        (("receiver", _no_from_message), "self-check failed: the SDK's receiver does not build events"),
    ],
)
def test_a_broken_or_moved_path_is_refused_with_one_line_and_nothing_installed(
    patch: tuple[str, Any], reason: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    what, value = patch
    if what == "lazy":
        monkeypatch.setattr(accelerated_receive, "LazyEventData", value)
    elif what == "sdk_class":
        monkeypatch.setattr(accelerated_receive._sdk_module(), "EventData", value)
    else:
        monkeypatch.setattr(EventHubConsumer, "_next_message_in_buffer", value)
    with caplog.at_level(logging.INFO):
        decision = load("auto")
    assert not decision.enabled and decision.reason.startswith(reason), decision.reason
    assert accelerated_receive._sdk_module().EventData is not LazyEventData
    lines = [r for r in caplog.records if r.name == accelerated_receive.__name__]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


def test_off_skips_the_check_and_installs_nothing() -> None:
    decision = load("off")
    assert not decision.enabled and decision.reason == "switched off: ACCELERATORS=off" and not installed()


@pytest.mark.parametrize(("mode", "exported"), [("auto", 1.0), ("off", 0.0)])
def test_the_service_exports_its_decision(mode: Literal["auto", "off"], exported: float) -> None:
    registry = CollectorRegistry()
    ConsumerService(ConsumerSettings(accelerators=mode), registry)
    assert registry.get_sample_value("homesec_consumer_accelerated", {"component": "receiver"}) == exported
    assert installed() is (mode == "auto")
