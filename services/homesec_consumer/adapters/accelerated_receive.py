"""Accelerator ``receiver``: received events whose ``AmqpAnnotatedMessage`` is built on first use.

Why: for every received message the SDK's async consumer (``EventHubConsumer._next_message_in_buffer``) calls
``EventData._from_message``, which builds an empty ``AmqpAnnotatedMessage`` (with header and properties) and
then the real one from the message: about 10 us per event, a sixth of a bare receive loop's CPU. The consumer
reads its events from the pyamqp ``Message`` the event keeps (``accelerated_decoding``), so that work is spent
for nothing. ``LazyEventData`` is an ``EventData`` whose ``_from_message`` keeps the message and builds the
annotated message the first time anything reads it (every public property does, through
``_raw_amqp_message``): a received event reads exactly as the SDK's own.

How: ``install`` points the name ``EventData`` in ``azure.eventhub.aio._consumer_async`` (the module of
``_next_message_in_buffer``) at ``LazyEventData``; nothing else of the SDK changes, and ``restore`` undoes
it. This module is the only place in the consumer that touches that module.

``load`` runs ``self_check`` at start-up: the SDK must read the class through that module name; sample
messages (the consumer's usual shape, and messages with properties, application properties, the
last-enqueued delivery annotations and other body types) go through the SDK's receive path both ways and must
read identically through every public property, ``repr``, ``body_as_str``, the annotated message and the
partition context's ``last_enqueued_event_properties``; and the SDK's own ``_next_message_in_buffer``, run
once on a stand-in consumer with the class installed, must hand back a ``LazyEventData`` that reads as the
eager one. Otherwise the consumer logs one line, leaves the SDK as it is and exports
``homesec_consumer_accelerated{component="receiver"} 0``. ``HOMESEC_CONSUMER_ACCELERATORS=off`` skips both.
"""

from __future__ import annotations

import collections
import importlib
import logging
import uuid
from types import ModuleType, SimpleNamespace
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import PartitionContext
from azure.eventhub.amqp import AmqpAnnotatedMessage
from homesec_runtime.accelerators import Decision, Mode, decide

from homesec_consumer.adapters.accelerated_decoding import T0_MS, as_received, sample_messages

COMPONENT = "receiver"
SDK_MODULE = "azure.eventhub.aio._consumer_async"
log = logging.getLogger(__name__)

_PUBLIC = ("body_type", "sequence_number", "offset", "enqueued_time", "partition_key", "message_id",
           "content_type", "correlation_id", "properties", "system_properties")  # fmt: skip
_ANNOTATED = ("annotations", "application_properties", "delivery_annotations", "footer", "body_type")


class LazyEventData(EventData):
    """A received ``EventData`` that keeps the pyamqp message and builds its ``AmqpAnnotatedMessage`` on
    first use. Built only by the SDK's receiver, through ``_from_message``."""

    @classmethod
    def _from_message(cls, message: Any, raw_amqp_message: AmqpAnnotatedMessage | None = None) -> EventData:
        event = cls.__new__(cls)
        fields = event.__dict__
        fields["_last_enqueued_event_properties"] = {}
        fields["_sys_properties"] = None
        fields["_uamqp_message"] = None
        fields["_message"] = message
        fields["_raw_amqp"] = raw_amqp_message
        return event

    @property
    def _raw_amqp_message(self) -> AmqpAnnotatedMessage:
        raw: AmqpAnnotatedMessage | None = self.__dict__.get("_raw_amqp")
        if raw is None:
            raw = self.__dict__["_raw_amqp"] = AmqpAnnotatedMessage(message=self._message)
        return raw

    @_raw_amqp_message.setter
    def _raw_amqp_message(self, value: AmqpAnnotatedMessage) -> None:
        self.__dict__["_raw_amqp"] = value


def _sdk_module() -> Any:
    """The SDK's module whose ``EventData`` name the receiver reads (imported here: its names are private)."""
    module: ModuleType = importlib.import_module(SDK_MODULE)
    return module


def install() -> None:
    """Received events are ``LazyEventData`` from now on (idempotent)."""
    _sdk_module().EventData = LazyEventData


def restore() -> None:
    """Received events are the SDK's own ``EventData`` again."""
    _sdk_module().EventData = EventData


def installed() -> bool:
    return getattr(_sdk_module(), "EventData", None) is LazyEventData


def _view(event: EventData) -> tuple[Any, ...]:
    """Everything a reader of a received event can see through the public API."""
    raw = event.raw_amqp_message
    annotated = tuple(getattr(raw, name) for name in _ANNOTATED)
    parts = (raw.header and vars(raw.header), raw.properties and vars(raw.properties), list(raw.body))
    try:
        text: str | None = event.body_as_str()
    except TypeError:
        text = None
    context = PartitionContext("sample.servicebus.windows.net", "readings", "$Default", "0")
    context._last_received_event = event  # as the SDK's event processor sets it for each batch
    last = context.last_enqueued_event_properties
    public = tuple(getattr(event, name) for name in _PUBLIC)
    return (*public, annotated, parts, text, last, repr(event), str(event))


def _messages() -> list[Any]:
    """The decoding accelerator's samples plus one with properties, application properties and the
    last-enqueued delivery annotations, each as the SDK's receive path decodes it from the wire."""
    samples = [message for message, _ in sample_messages()]
    first, message_type = samples[0], type(samples[0])
    properties_type = importlib.import_module("azure.eventhub._pyamqp.message").Properties
    props = properties_type(
        message_id=str(uuid.UUID(int=1)).encode(), content_type=b"application/json", correlation_id=b"c-1"
    )
    amqp = importlib.import_module("azure.eventhub._pyamqp.types")
    kinds = amqp.AMQPTypes

    def typed(kind: Any, value: Any) -> dict[Any, Any]:
        return {amqp.TYPE: kind, amqp.VALUE: value}

    last = {b"last_enqueued_sequence_number": typed(kinds.long, 99),
            b"last_enqueued_offset": typed(kinds.string, "9900"),
            b"last_enqueued_time_utc": typed(kinds.timestamp, T0_MS),
            b"runtime_info_retrieval_time_utc": typed(kinds.timestamp, T0_MS + 5)}  # fmt: skip
    extra = message_type(data=first.data, message_annotations=first.message_annotations, properties=props,
                         application_properties={b"k": b"v", b"n": 3}, delivery_annotations=last)  # fmt: skip
    return [as_received(m)._message for m in (*samples, extra)]


def _through_next_message(message: Any) -> EventData:
    """The SDK's own ``_next_message_in_buffer`` on a stand-in consumer holding ``message``."""
    consumer_type = _sdk_module().EventHubConsumer
    stand_in = SimpleNamespace(
        _message_buffer=collections.deque([message]), _last_received_event=None,
        _client=SimpleNamespace(_config=SimpleNamespace(network_tracing=False)),
        _amqp_transport=SimpleNamespace(KIND="pyamqp"),
    )  # fmt: skip
    event: EventData = consumer_type._next_message_in_buffer(stand_in)
    return event


def self_check() -> str | None:
    """``None`` when lazily built events read exactly as the SDK's own, and the SDK builds them once
    installed; else the first difference. Leaves the SDK as it found it."""
    module = _sdk_module()
    if module.EventData is not EventData and module.EventData is not LazyEventData:
        return f"{SDK_MODULE}.EventData is not the public EventData"
    names = module.EventHubConsumer._next_message_in_buffer.__code__.co_names
    if "EventData" not in names or "_from_message" not in names:
        return "the SDK's receiver does not build events through EventData._from_message"
    messages = _messages()
    for n, message in enumerate(messages):
        eager = EventData._from_message(message)
        lazy = LazyEventData._from_message(message)
        if _view(lazy) != _view(eager):
            return f"sample {n} reads otherwise when built lazily"
    before = module.EventData
    try:
        install()
        built = _through_next_message(messages[0])
    finally:
        module.EventData = before
    if type(built) is not LazyEventData:
        return f"the SDK's receiver built {type(built).__name__} with the accelerator installed"
    if _view(built) != _view(EventData._from_message(built._message)):
        return "an event built by the SDK's receiver reads otherwise"
    return None


def load(mode: Mode) -> Decision:
    """Install ``LazyEventData`` when ``mode`` allows it and the self-check passes; else leave the SDK."""
    decision = decide(COMPONENT, mode, self_check, log)
    if decision.enabled:
        install()
    return decision
