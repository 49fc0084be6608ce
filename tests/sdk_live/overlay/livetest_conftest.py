"""Fixture overrides that point azure-eventhub 5.15.1's live tests at the local Event Hubs emulator.

scripts/sdk_live_tests.py copies this file to ``tests/livetest/conftest.py`` of the unpacked sdist, where it
overrides the namespace fixtures of the sdist's ``tests/conftest.py`` (which is used unmodified): instead of
Azure Resource Manager, ``live_eventhub`` creates a fresh two-partition hub per test through the emulator's
admin endpoint (``POST /hubs``), as the original creates one per test through ARM. Clients connect as to Event
Hubs: ``sb://localhost`` over TLS (5671, WebSocket 443), trusting the emulator's CA through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

PARTITION_COUNT = 2  # as the sdist's conftest

# The sdist's conftest sets the azure.eventhub logger to DEBUG; with eight workers on two cores that logging
# costs more CPU than the tests. INFO keeps what a failure report needs (HOMESEC_SDK_LIVE_DEBUG=1: all).
if not os.environ.get("HOMESEC_SDK_LIVE_DEBUG"):
    logging.getLogger("azure.eventhub").setLevel(logging.INFO)
CONN_STR = "Endpoint=sb://{}/;SharedAccessKeyName={};SharedAccessKey={}"


def _env(name: str) -> str:
    return os.environ[f"HOMESEC_SDK_LIVE_{name}"]


def _create_hub(name: str, partitions: int) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{_env('ADMIN_URL')}/hubs", data=json.dumps({"name": name, "partitions": partitions}).encode(),
        method="POST", headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        created: dict[str, Any] = json.loads(response.read())
    return created


@pytest.fixture(scope="session")
def resource_group() -> str:
    return "local-emulator"


@pytest.fixture(scope="session")
def eventhub_namespace() -> tuple[str, str, str, str]:
    host, key_name, key = _env("HOST"), _env("KEY_NAME"), _env("KEY")
    return host, CONN_STR.format(host, key_name, key), key_name, key


@pytest.fixture
def live_eventhub(
    resource_group: str, eventhub_namespace: tuple[str, str, str, str]
) -> Iterator[dict[str, str]]:
    host, connection_string, key_name, key = eventhub_namespace
    hub = _create_hub(f"eh{uuid.uuid4()}", PARTITION_COUNT)["name"]
    yield {
        "resource_group": resource_group,
        "hostname": host,
        "key_name": key_name,
        "access_key": key,
        "namespace": host,
        "event_hub": hub,
        "consumer_group": "$Default",
        "partition": "0",
        "connection_str": f"{connection_string};EntityPath={hub}",
    }


@pytest.fixture
def resource_mgmt_client() -> Any:
    pytest.fail("no Azure management plane here: the runner deselects tests that use resource_mgmt_client")
