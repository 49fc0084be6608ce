"""The emulator's TLS certificates, CBS audiences and run-time hub creation (no processes)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from homesec_devstack.emulator import tls
from homesec_devstack.emulator.broker import Broker, HubExistsError
from homesec_devstack.emulator.management import audience_hub
from homesec_devstack.emulator.throttle import ThroughputLimiter


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake between two in-memory endpoints; raises ``ssl.SSLError`` when it fails."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1"])
def test_generated_certificate_verifies_against_its_ca(tmp_path: Path, hostname: str) -> None:
    files = tls.generate(tmp_path / "tls")
    client = ssl.create_default_context(cafile=str(files.ca))
    _handshake(tls.server_context(files.cert, files.key), client, hostname)
    assert files.key.stat().st_mode & 0o077 == 0


def test_certificate_refused_for_another_name_or_without_the_ca(tmp_path: Path) -> None:
    files = tls.generate(tmp_path / "tls")
    server = tls.server_context(files.cert, files.key)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(server, ssl.create_default_context(cafile=str(files.ca)), "example.com")
    other = tls.generate(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, ssl.create_default_context(cafile=str(other.ca)), "localhost")


def test_ensure_reuses_existing_files(tmp_path: Path) -> None:
    first = tls.ensure(tmp_path)
    ca = first.ca.read_bytes()
    assert tls.ensure(tmp_path).ca.read_bytes() == ca
    first.key.unlink()  # incomplete: generated again
    assert tls.ensure(tmp_path).ca.read_bytes() != ca


@pytest.mark.parametrize(
    ("audience", "hub"),
    [
        ("sb://ns.servicebus.windows.net/telemetry", "telemetry"),
        ("sb://127.0.0.1:5672/telemetry", "telemetry"),
        ("amqps://localhost/telemetry/ConsumerGroups/$Default/Partitions/0", "telemetry"),
        ("sb://ns.servicebus.windows.net/", None),
        ("sb://ns.servicebus.windows.net", None),
        ("localhost/telemetry", "telemetry"),
    ],
)
def test_audience_hub(audience: str, hub: str | None) -> None:
    assert audience_hub(audience) == hub


def test_add_hub(tmp_path: Path) -> None:
    broker = Broker(tmp_path, {"telemetry": 2}, ["$Default", "rollups"], ThroughputLimiter(None, None))
    hub = broker.add_hub("eh-0f3c.new_hub", 3)
    assert hub.partition_ids == ["0", "1", "2"]
    assert broker.hub("EH-0F3C.NEW_HUB") is hub
    assert hub.consumer_group("ROLLUPS") == "rollups"
    with pytest.raises(HubExistsError):
        broker.add_hub("Telemetry", 2)
    for name, count in (("", 1), ("a/b", 1), ("-x", 1), ("x" * 257, 1), ("ok", 0), ("ok", 1025)):
        with pytest.raises(ValueError, match=r"hub name|partition count"):
            broker.add_hub(name, count)
    assert sorted(broker.hubs) == ["eh-0f3c.new_hub", "telemetry"]
    broker.close()
