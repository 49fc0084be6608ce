"""homesec_runtime.endpoints: the SDKs' parsers decide; the messages never carry the value."""

from __future__ import annotations

import io

import pytest
from homesec_consumer.settings import ConsumerSettings
from homesec_runtime.config_errors import EX_CONFIG, check_or_exit, config_problems
from homesec_runtime.endpoints import check_account_url, check_blob_connection_string, eventhub_entity
from pydantic import SecretStr, ValidationError

SECRET = "k3y-that-must-never-be-printed-0123456789"


def test_an_eventhub_connection_string_gives_its_hub_or_none() -> None:
    conn = f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey={SECRET}"
    assert eventhub_entity(conn) is None
    assert eventhub_entity(conn + ";EntityPath=telemetry") == "telemetry"


@pytest.mark.parametrize(
    "conn", [SECRET, "Endpoint=sb://ns/;SharedAccessKeyName=a", f"SharedAccessKey={SECRET}", ""]
)
def test_a_malformed_eventhub_connection_string_is_refused_without_its_value(conn: str) -> None:
    with pytest.raises(ValueError, match="not an Event Hubs connection string") as info:
        eventhub_entity(conn)
    assert SECRET not in str(info.value)


def test_blob_connection_strings_and_account_urls() -> None:
    check_blob_connection_string(f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={SECRET}")
    check_blob_connection_string("UseDevelopmentStorage=true")
    check_account_url("https://account.blob.core.windows.net")
    check_account_url("http://127.0.0.1:10000/devstoreaccount1")
    for bad in (f"AccountKey={SECRET}", SECRET):
        with pytest.raises(ValueError, match="not a Blob storage connection string") as info:
            check_blob_connection_string(bad)
        assert SECRET not in str(info.value)
    for url in ("account.blob.core.windows.net", "ftp://account", "https://", "http://host:port"):
        with pytest.raises(ValueError, match="not a Blob account URL"):
            check_account_url(url)


def test_the_consumer_settings_name_the_bad_variable() -> None:
    with pytest.raises(ValidationError) as info:
        ConsumerSettings(
            blob_connection_string=SecretStr(f"AccountKey={SECRET}"), log_level="loud",
            alarms_eventhub_connection_string=SecretStr(SECRET),
        )  # fmt: skip
    lines = config_problems(info.value, "HOMESEC_CONSUMER_")
    assert sorted(line.split(":")[0] for line in lines) == [
        "HOMESEC_CONSUMER_ALARMS_EVENTHUB_CONNECTION_STRING",
        "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING",
        "HOMESEC_CONSUMER_LOG_LEVEL",
    ]
    assert SECRET not in "".join(lines)


def test_the_consumer_names_each_missing_endpoint_and_key() -> None:
    problems = ConsumerSettings().startup_problems()
    assert len(problems) == 3
    assert "HOMESEC_CONSUMER_AUTH_KEYS" in problems[0]
    assert "HOMESEC_CONSUMER_EVENTHUB_FULLY_QUALIFIED_NAMESPACE" in problems[1]
    assert "HOMESEC_CONSUMER_BLOB_ACCOUNT_URL" in problems[2]
    out = io.StringIO()
    with pytest.raises(SystemExit) as info:
        check_or_exit(problems, stream=out)
    assert info.value.code == EX_CONFIG
    assert out.getvalue().splitlines() == [f"configuration error: {problem}" for problem in problems]
    check_or_exit([], stream=out)  # nothing to report: returns
