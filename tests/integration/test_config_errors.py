"""Both services as real processes: every configuration error, found while parsing the settings or in the
checks made before start-up (endpoints, connection strings, read-token keys, ``OTEL_*``), prints exactly one
line on stderr naming the setting, never its value, and exits with 78 (EX_CONFIG) before logging anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

EX_CONFIG = 78
SECRET = "TOPSECRET0123456789abcdefTOPSECRET"  # in every secret-bearing value below: never printed
HS256 = json.dumps({"it": "integration-test-key-0123456789abcdef"})
EVENTHUB = f"Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=a;SharedAccessKey={SECRET};EntityPath=telemetry"
BLOB = (
    f"DefaultEndpointsProtocol=http;AccountName=dev;AccountKey={SECRET};BlobEndpoint=http://127.0.0.1:1/dev;"
)

PRODUCER = {"AUTH_KEYS": HS256, "EVENTHUB_CONNECTION_STRING": EVENTHUB}
CONSUMER = {**PRODUCER, "BLOB_CONNECTION_STRING": BLOB}
BAD_EVENTHUB = f"Endpoint=nonsense;SharedAccessKey={SECRET}"
BAD_BLOB = f"AccountKey={SECRET}"
OTLP_THRIFT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}
NO_ENTITY = f"Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=a;SharedAccessKey={SECRET}"

# (service, settings without their prefix (None: unset), other variables, the variable the line names (the
# service's prefix added unless it is an OTEL_ one), its rule)
CASES = [
    ("producer", {"EVENTHUB_CONNECTION_STRING": BAD_EVENTHUB}, {}, "EVENTHUB_CONNECTION_STRING",
     "not an Event Hubs connection string"),
    ("producer", {"EVENTHUB_CONNECTION_STRING": NO_ENTITY}, {}, "EVENTHUB_NAME", "EntityPath"),
    ("producer", {"EVENTHUB_CONNECTION_STRING": None}, {}, "EVENTHUB_CONNECTION_STRING",
     "HOMESEC_PRODUCER_EVENTHUB_NAME"),
    ("producer", {"LOG_LEVEL": "loud"}, {}, "LOG_LEVEL", "expected one of"),
    ("producer", {"AUTH_SIGNING_KEY_ID": "other"}, {}, "AUTH_SIGNING_KEY_ID", "names no key"),
    ("producer", {}, {"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER", "zipkin"),
    ("consumer", {"BLOB_CONNECTION_STRING": None}, {}, "BLOB_ACCOUNT_URL", "set"),
    ("consumer", {"EVENTHUB_CONNECTION_STRING": None}, {},
     "EVENTHUB_FULLY_QUALIFIED_NAMESPACE", "set"),
    ("consumer", {"EVENTHUB_CONNECTION_STRING": BAD_EVENTHUB}, {}, "EVENTHUB_CONNECTION_STRING",
     "not an Event Hubs connection string"),
    ("consumer", {"ALARMS_EVENTHUB_CONNECTION_STRING": BAD_EVENTHUB}, {},
     "ALARMS_EVENTHUB_CONNECTION_STRING", "not an Event Hubs connection string"),
    ("consumer", {"BLOB_CONNECTION_STRING": BAD_BLOB}, {}, "BLOB_CONNECTION_STRING",
     "not a Blob storage connection string"),
    ("consumer", {"BLOB_CONNECTION_STRING": None, "BLOB_ACCOUNT_URL": "ftp://account"}, {},
     "BLOB_ACCOUNT_URL", "not a Blob account URL"),
    ("consumer", {"AUTH_KEYS": None}, {}, "AUTH_KEYS", "no read token can be verified"),
    ("consumer", {"LOG_LEVEL": "loud"}, {}, "LOG_LEVEL", "expected one of"),
    ("consumer", {}, OTLP_THRIFT,
     "OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
]  # fmt: skip


def _env(service: str, settings: dict[str, str | None], other: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOMESEC_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    prefix = f"HOMESEC_{service.upper()}_"
    for name, value in {**(PRODUCER if service == "producer" else CONSUMER), **settings}.items():
        if value is not None:
            env[prefix + name] = value
    return {**env, **other}


@pytest.mark.parametrize(("service", "settings", "other", "variable", "rule"), CASES)
def test_one_line_naming_the_setting_and_exit_78(
    service: str, settings: dict[str, str | None], other: dict[str, str], variable: str, rule: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"homesec_{service}"], env=_env(service, settings, other),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = done.stderr.splitlines()
    if not variable.startswith("OTEL_"):
        variable = f"HOMESEC_{service.upper()}_{variable}"
    assert done.returncode == EX_CONFIG, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("configuration error: ") and variable in lines[0] and rule in lines[0], lines
    assert SECRET not in done.stderr + done.stdout
