"""The producer's send-time framing of a batch: the SDK's ``encode_payload`` (baseline, same run) against the
``payload`` accelerator (``adapters/accelerated_payload.py``), on batch messages like the producer's (events
encoded by the ``encoder`` accelerator, ~220-byte readings). In-process, no I/O; the best of ``--repeat``
passes. The two must give identical bytes, checked first.

``python bench/producer_payload.py [--sends 3000] [--repeat 5] [--write docs/benchmarks.md]``
(``make bench-producer-payload``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.eventhub import EventDataBatch
from azure.eventhub._pyamqp._encode import encode_payload
from azure.eventhub._pyamqp.message import BatchMessage
from docsection import Row, write_section
from homesec_domain.events import CONTENT_TYPE
from homesec_domain.validation import AcceptedReading
from homesec_producer.adapters.accelerated_encoding import EventEncoder, adder
from homesec_producer.adapters.accelerated_payload import fast_encode_payload

HEAD = "## Producer: batch framing at send"
SIZES = (1, 12, 100)  # events per send: a quiet partition, the benchmark's 16,700/s (~12), a backlog


def batches(events: int, count: int) -> list[Any]:
    add = adder(EventEncoder(CONTENT_TYPE))
    out = []
    for n in range(count):
        batch = EventDataBatch(max_size_in_bytes=1_000_000, partition_id=str(n % 16))
        for i in range(events):
            body = (
                f'{{"schema_version":1,"reading_id":"6f9619ff-8b86-d011-b42d-{i:012d}","home_id":"home-{n:06d}",'
                f'"sensor_id":"door-1","sensor_type":"door","ts":"2026-11-25T12:00:00Z","value":null,'
                f'"state":"open","seq":{i}}}'
            ).encode()
            add(batch, AcceptedReading(f"6f9619ff-8b86-d011-b42d-{i:012d}", f"home-{n:06d}", body))
        out.append(batch._message)
    return out


def timed(encode: Callable[[bytearray, Any], Any], messages: list[Any], repeat: int) -> float:
    """Best microseconds per message over ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for message in messages:
            encode(bytearray(), message)
        best = min(best, (time.perf_counter() - start) / len(messages) * 1e6)
    return best


def run(sends: int, repeat: int) -> list[dict[str, float]]:
    fast = fast_encode_payload(encode_payload, BatchMessage)
    rows = []
    for events in SIZES:
        messages = batches(events, max(50, sends // events))
        for message in messages[:50]:
            a, b = bytearray(), bytearray()
            encode_payload(a, message)
            fast(b, message)
            if a != b:
                raise SystemExit(
                    "the fast path differs from encode_payload: the benchmark would compare apples"
                )
        base, ours = timed(encode_payload, messages, repeat), timed(fast, messages, repeat)
        rows.append({"events": events, "sdk_us": round(base, 1), "fast_us": round(ours, 1),
                     "speedup": round(base / ours, 2)})  # fmt: skip
    return rows


def markdown(rows: list[dict[str, float]], repeat: int) -> str:
    lines = [
        "`make bench-producer-payload` (`bench/producer_payload.py`): CPU to frame one batch message when the "
        "SDK sends it, in-process, batches like the producer's (events from the `encoder` accelerator, "
        f"~220-byte readings), best of {repeat}; baseline: the SDK's `encode_payload`, which the `payload` "
        "accelerator replaces on the send path (byte-identical output, checked first).",
        "", "| events per send | SDK `encode_payload` (baseline), µs | `payload` accelerator, µs | ratio |",
        "|---:|---:|---:|---:|",
    ]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['events']} | {row['sdk_us']} | {row['fast_us']} | **{row['speedup']}x** faster |"
        )
    return "\n".join([*lines, ""])


def summary(rows: list[dict[str, Any]]) -> list[Row]:
    """The summary table's row: the send size nearest the producer's typical one (12 events)."""
    row = min(rows, key=lambda r: abs(r["events"] - 12))
    return [Row(f"producer, framing a send of {row['events']} events: {row['fast_us']} µs",
                f"the SDK's `encode_payload`: {row['sdk_us']} µs", f"{row['speedup']}x faster",
                "`make bench-producer-payload`")]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sends", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--write", type=Path, default=None)
    a = p.parse_args()
    rows = run(a.sends, a.repeat)
    print(json.dumps(rows))
    section = markdown(rows, a.repeat)
    print(section)
    if a.write:
        write_section(a.write, HEAD, section, summary(rows))


if __name__ == "__main__":
    main()
