"""Start positions for every selector the SDK can express, and SAS token checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from pathlib import Path

import pytest
from azure.eventhub._utils import event_position_selector
from homesec_devstack.emulator.broker import Partition
from homesec_devstack.emulator.links import start_index
from homesec_devstack.emulator.management import check_sas_token
from homesec_devstack.emulator.routing import entity_path
from homesec_devstack.emulator.storage import PartitionLog


@pytest.fixture
def part(tmp_path: Path) -> Partition:
    log = PartitionLog(tmp_path / "p.log")
    for i in range(5):
        log.append([f"e{i}".encode()], enqueued_ms=1000 + 10 * i)
    return Partition("hub", "0", log)


def test_selectors(part: Partition) -> None:
    ev = part.log.events
    assert start_index(part, None) == 0
    assert start_index(part, event_position_selector("-1")) == 0
    assert start_index(part, event_position_selector("@latest")) == 5
    assert start_index(part, event_position_selector(2)) == 3
    assert start_index(part, event_position_selector(2, inclusive=True)) == 2
    assert start_index(part, event_position_selector(str(ev[3].offset))) == 4
    assert start_index(part, event_position_selector(str(ev[3].offset), inclusive=True)) == 3
    import datetime as dt

    t = dt.datetime.fromtimestamp(1.02, dt.UTC)  # enqueued_ms 1020 = e2
    assert start_index(part, event_position_selector(t)) == 3
    assert start_index(part, event_position_selector(t, inclusive=True)) == 2
    assert start_index(part, event_position_selector(99)) == 5


def test_log_survives_reopen_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "p.log"
    log = PartitionLog(path)
    log.append([b"a", b"b"], 1)
    log.close()
    with path.open("ab") as f:
        f.write(b"\x00\x00\x00\x10partial")  # a crash mid-write
    again = PartitionLog(path)
    assert [e.payload for e in again.events] == [b"a", b"b"]
    assert again.append([b"c"], 2)[0].sequence_number == 2
    assert [e.offset for e in again.events] == [0, 21, 42]


def test_entity_paths() -> None:
    assert entity_path(b"amqps://127.0.0.1:5672/telemetry/Partitions/3") == ["telemetry", "Partitions", "3"]
    assert entity_path("$cbs") == ["$cbs"]


def _token(key: str, name: str, resource: str, expiry: int) -> str:
    to_sign = f"{urllib.parse.quote_plus(resource)}\n{expiry}".encode()
    sig = base64.b64encode(hmac.new(key.encode(), to_sign, hashlib.sha256).digest()).decode()
    q = urllib.parse.urlencode({"sr": resource, "sig": sig, "se": str(expiry), "skn": name})
    return f"SharedAccessSignature {q}"


def test_sas_tokens() -> None:
    keys = {"root": "secret"}
    assert check_sas_token(_token("secret", "root", "sb://h/hub", 2000), keys, now=1000) is None
    assert "signature" in (check_sas_token(_token("wrong", "root", "sb://h/hub", 2000), keys, now=1000) or "")
    assert "expired" in (check_sas_token(_token("secret", "root", "sb://h/hub", 10), keys, now=1000) or "")
    assert "unknown" in (check_sas_token(_token("secret", "other", "sb://h/hub", 2000), keys, now=1000) or "")
