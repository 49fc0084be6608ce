"""The emulator's codec: the SDK pin, section splicing and hand-encoded transfer frames."""

from __future__ import annotations

from typing import Any

import azure.eventhub
import pytest
from azure.eventhub._pyamqp._decode import decode_frame
from azure.eventhub._pyamqp.message import Message, Properties
from homesec_devstack.emulator import codec


def test_sdk_version_is_the_pinned_one() -> None:
    # The emulator uses private modules of the SDK (azure.eventhub._pyamqp). If this fails, the SDK changed:
    # re-check codec.py, connection.py and links.py against the new version before moving the pin.
    assert azure.eventhub.__version__ == codec.PINNED_SDK_VERSION


def _message(**kw: Any) -> bytes:
    out = bytearray()
    codec.encode_payload(out, Message(**kw))
    return bytes(out)


def test_splice_adds_annotations_and_keeps_other_sections() -> None:
    raw = _message(data=[b"hello"], properties=Properties(message_id="m-1"),
                   application_properties={"a": 1})  # fmt: skip
    spliced, merged = codec.with_message_annotations(raw, {b"x-opt-sequence-number": codec.typed("long", 7)})
    msg = codec.decode_payload(memoryview(spliced))
    assert msg.message_annotations == {b"x-opt-sequence-number": 7}
    assert msg.data == [b"hello"]
    assert msg.properties is not None and msg.properties.message_id == b"m-1"
    assert msg.application_properties == {b"a": 1}
    assert b"x-opt-sequence-number" in merged


def test_splice_merges_existing_annotations() -> None:
    raw = _message(data=[b"x"], message_annotations={b"x-opt-partition-key": "home-1", b"x-custom": 3})
    spliced, _ = codec.with_message_annotations(raw, {b"x-opt-offset": codec.typed("string", "42")})
    ann = codec.decode_payload(memoryview(spliced)).message_annotations
    assert ann is not None
    assert (
        ann[b"x-opt-offset"] == b"42" and ann[b"x-custom"] == 3 and ann[b"x-opt-partition-key"] == b"home-1"
    )


def _reference(raw: bytes, seq: int, offset: int, enq: int, key: bytes | None) -> bytes:
    ann: dict[bytes, Any] = {
        b"x-opt-sequence-number": codec.typed("long", seq),
        b"x-opt-offset": codec.typed("string", str(offset)),
        b"x-opt-enqueued-time": codec.typed("timestamp", enq),
    }
    if key is not None:
        ann[b"x-opt-partition-key"] = codec.typed("string", key.decode("utf-8", "replace"))
    return codec.with_message_annotations(raw, ann)[0]


STAMPS = [(0, 0, 1_764_000_000_000, None), (127, 9_999, 1, b"home-1"),
          (128, 10**12, 2**40, b"\xc3\xa9" * 200), (-1, 5, 0, b"k"),
          (2**62, 2**40, 1_764_000_000_123, b"x" * 300)]  # fmt: skip


@pytest.mark.parametrize(("seq", "offset", "enq", "key"), STAMPS)
def test_stamp_event_is_byte_identical_to_the_reference_splice(
    seq: int, offset: int, enq: int, key: bytes | None
) -> None:
    raw = _message(data=[b"hello" * 30], properties=Properties(message_id="m-1"),
                   application_properties={"a": 1})  # fmt: skip
    assert codec.stamp_event(raw, seq, offset, enq, key) == _reference(raw, seq, offset, enq, key)


@pytest.mark.parametrize(("seq", "offset", "enq", "key"), STAMPS)
def test_stamp_event_over_existing_annotations_decodes_like_the_reference(
    seq: int, offset: int, enq: int, key: bytes | None
) -> None:
    existing = {b"x-opt-partition-key": "old", b"x-custom": 3, b"x-opt-offset": "stale", b"x-big": "v" * 300}
    for ann in (existing, {b"x-custom": "c"}, {k: "v" for k in (f"x-k{i}".encode() for i in range(200))}):
        raw = _message(data=[b"x"], message_annotations=ann)
        got = codec.decode_payload(memoryview(codec.stamp_event(raw, seq, offset, enq, key)))
        want = codec.decode_payload(memoryview(_reference(raw, seq, offset, enq, key)))
        assert got.message_annotations == want.message_annotations
        assert got.data == want.data == [b"x"]


def test_batch_bodies_are_the_data_sections() -> None:
    inner = [_message(data=[f"e{i}".encode()]) for i in range(3)]
    outer = _message(data=inner, message_annotations={b"x-opt-partition-key": "k"})
    assert codec.batch_bodies(outer) == inner


def test_skip_value_rejects_unknown_constructors() -> None:
    with pytest.raises(ValueError, match="constructor"):
        codec.skip_value(b"\xff", 0)


@pytest.mark.parametrize("size", [10, 70_000, 300_000])
def test_transfer_frames_decode_with_the_sdk_and_split_to_frame_size(size: int) -> None:
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    frames = codec.transfer_frames(
        channel=3, handle=5, delivery_id=300, payload=payload, max_frame_size=65536
    )
    assert all(len(f) <= 65536 for f in frames)
    body = bytearray()
    for i, frame in enumerate(frames):
        assert int.from_bytes(frame[6:8], "big") == 3
        code, fields = decode_frame(memoryview(frame[8:]))
        assert code == 0x14
        assert fields[0] == 5 and fields[1] == 300 and fields[4] is True
        assert bool(fields[5]) == (i < len(frames) - 1)  # "more" on all but the last frame
        body += fields[11]
    assert bytes(body) == payload
