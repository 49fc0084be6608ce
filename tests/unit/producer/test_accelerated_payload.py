"""The ``payload`` accelerator: a batch's data sections framed by hand, byte-identical to the SDK's."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest
from azure.eventhub import EventData, EventDataBatch
from azure.eventhub._pyamqp._encode import encode_payload
from azure.eventhub._pyamqp.message import BatchMessage, Message
from homesec_domain.validation import AcceptedReading
from homesec_producer.adapters import accelerated_payload
from homesec_producer.adapters.accelerated_encoding import EventEncoder, adder
from homesec_producer.adapters.accelerated_payload import fast_encode_payload, install, load, self_check
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = fast_encode_payload(encode_payload, BatchMessage)


def public_batch(bodies: list[bytes], key: str | None = None) -> Any:
    batch = EventDataBatch(max_size_in_bytes=4_000_000, partition_id=None if key else "0", partition_key=key)
    for body in bodies:
        batch.add(EventData(body))
    return batch._message


def both(message: Any) -> tuple[bytes, bytes]:
    theirs, ours = bytearray(), bytearray()
    encode_payload(theirs, message)
    FAST(ours, message)
    return bytes(ours), bytes(theirs)


@settings(max_examples=60, deadline=None)
@given(
    bodies=st.lists(st.binary(min_size=0, max_size=600), min_size=1, max_size=12),
    key=st.none() | st.text(min_size=1, max_size=40),
)
def test_public_batches_encode_to_the_same_bytes(bodies: list[bytes], key: str | None) -> None:
    ours, theirs = both(public_batch(bodies, key))
    assert ours == theirs


def test_batches_of_the_encoder_accelerator_encode_to_the_same_bytes() -> None:
    batch = EventDataBatch(max_size_in_bytes=1_000_000, partition_id="5")
    add = adder(EventEncoder("application/json"))
    for n, size in enumerate((10, 180, 300, 5_000)):
        assert add(batch, AcceptedReading(f"id-{n}", "home-1", b"{" + b"x" * size + b"}"))
    ours, theirs = both(batch._message)
    assert ours == theirs


class Recording:
    """The SDK's ``encode_payload``, remembering the messages it was given."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, output: bytearray, payload: Any) -> Any:
        self.seen.append(payload)
        return encode_payload(output, payload)


def test_a_batch_takes_the_fast_path_and_other_messages_do_not() -> None:
    sdk = Recording()
    fast = fast_encode_payload(sdk, BatchMessage)
    batch = public_batch([b"a", b"b" * 300])
    fast(bytearray(), batch)
    assert sdk.seen[-1].data is None  # only the sections before the events went to the SDK's encoder
    view: Any = memoryview(b"b")  # an event that is neither bytes nor bytearray
    for other in (
        Message(data=[b"a"]),
        BatchMessage(data=[b"a"], value=1),
        BatchMessage(data=[b"a", view]),
        BatchMessage(
            data=[b"a"], delivery_annotations={b"x-opt-d": 1}
        ),  # the SDK writes these after the data
    ):
        out = bytearray()
        fast(out, other)
        assert sdk.seen[-1] is other  # passed on whole
        reference = bytearray()
        encode_payload(reference, other)
        assert out == reference


def test_the_self_check_passes_on_this_sdk() -> None:
    assert self_check(encode_payload, BatchMessage, Message) is None


def vbin32_always(output: bytearray, payload: Any) -> Any:
    """An SDK release that framed every data section as vbin32: the fast path would differ from it."""
    data = payload[5]
    if not data or type(payload) is not BatchMessage:
        return encode_payload(output, payload)
    encode_payload(output, payload._replace(data=None))
    for item in data:
        output += b"\x00\x53\x75\xb0" + len(item).to_bytes(4, "big") + bytes(item)
    return output


def test_the_self_check_refuses_a_different_framing() -> None:
    problem = self_check(vbin32_always, BatchMessage, Message)
    assert problem is not None and "encodes differently" in problem


def hook_module() -> ModuleType:
    module = ModuleType("fake_sender")
    module.encode_payload = encode_payload  # type: ignore[attr-defined]
    return module


def test_install_replaces_the_name_and_undo_restores_it() -> None:
    module = hook_module()
    undo = install(FAST, module)
    assert module.encode_payload is FAST
    undo()
    assert module.encode_payload is encode_payload


def test_load_refuses_a_hook_someone_else_replaced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = hook_module()
    module.encode_payload = vbin32_always  # type: ignore[attr-defined]
    monkeypatch.setattr(
        accelerated_payload, "_sdk_parts", lambda: (module, encode_payload, BatchMessage, Message)
    )
    with caplog.at_level(logging.INFO):
        undo, decision = load("auto")
    assert undo is None and not decision.enabled and "is not the SDK's encode_payload" in decision.reason
    assert module.encode_payload is vbin32_always
    lines = [r for r in caplog.records if r.name == accelerated_payload.__name__]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


def test_load_installs_once_and_off_leaves_the_sdk_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    module = hook_module()
    monkeypatch.setattr(
        accelerated_payload, "_sdk_parts", lambda: (module, encode_payload, BatchMessage, Message)
    )
    undo, decision = load("off")
    assert undo is None and decision.reason == "switched off: ACCELERATORS=off"
    assert module.encode_payload is encode_payload
    undo, decision = load("auto")
    assert undo is not None and decision.enabled and module.encode_payload is not encode_payload
    installed = module.encode_payload
    _, decision = load("auto")  # a second publisher in the same process
    assert decision.enabled and module.encode_payload is installed
    undo()
    assert module.encode_payload is encode_payload
