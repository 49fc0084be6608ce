"""Builders shared by the producer unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from homesec_producer.settings import ProducerSettings

KEY = "k" * 40
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def reading(home: str = "home-1", sensor: str = "door-1", **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "home_id": home,
        "sensor_id": sensor,
        "sensor_type": "door",
        "ts": (NOW - timedelta(seconds=5)).isoformat(),
        "state": "open",
    }
    doc.update(over)
    return doc


def body(*readings: dict[str, Any]) -> bytes:
    return orjson.dumps({"readings": list(readings)})


def settings(**over: Any) -> ProducerSettings:
    values: dict[str, Any] = {
        "eventhub_connection_string": "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=a;SharedAccessKey=b;"
        "UseDevelopmentEmulator=true;EntityPath=telemetry",
        "auth_keys": {"k1": KEY},
        "publish_backoff_initial_seconds": 0.001,
        "publish_backoff_max_seconds": 0.01,
        "request_deadline_seconds": 2.0,
        "shutdown_grace_seconds": 5.0,
    }
    values.update(over)
    return ProducerSettings(**values)
