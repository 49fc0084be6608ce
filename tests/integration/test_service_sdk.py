"""The services' interpreter (``HOMESEC_SERVICE_PYTHON`` in ``make test-sdk-oldest``) has the SDK version the
run claims (``HOMESEC_EXPECT_SERVICE_SDK``), and the accelerators' self-checks pass on it: the version range
in pyproject.toml is what the integration subset beside this test ran against."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

PROBE = """
import json, logging
import azure.eventhub
from homesec_producer.adapters import accelerated_encoding, accelerated_payload
from homesec_consumer.adapters import accelerated_decoding, accelerated_receive
log = logging.getLogger("probe")
print(json.dumps({
    "sdk": azure.eventhub.__version__,
    "encoder": accelerated_encoding.load("auto")[1].enabled,
    "payload": accelerated_payload.load("auto")[1].enabled,
    "decoder": accelerated_decoding.load("auto")[1].enabled,
    "receiver": accelerated_receive.load("auto").enabled,
}))
"""


def test_the_services_run_on_the_sdk_the_run_claims() -> None:
    expected = os.environ.get("HOMESEC_EXPECT_SERVICE_SDK")
    if not expected:
        pytest.skip("HOMESEC_EXPECT_SERVICE_SDK is not set (outside make test-sdk-oldest)")
    python = os.environ.get("HOMESEC_SERVICE_PYTHON") or sys.executable
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == {
        "sdk": expected,
        "encoder": True,
        "payload": True,
        "decoder": True,
        "receiver": True,
    }
