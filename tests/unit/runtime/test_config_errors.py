"""homesec_runtime.config_errors: one line per problem, naming the variable, never the value."""

from __future__ import annotations

import io

import pytest
from homesec_producer.settings import ProducerSettings
from homesec_runtime.config_errors import EX_CONFIG, config_problems, load_settings
from pydantic import ValidationError

from ..producer.helpers import settings


def test_each_field_problem_names_its_variable_and_rule() -> None:
    with pytest.raises(ValidationError) as info:
        settings(port=0, auth_keys={"k1": "secret-too-short"}, max_body_bytes="lots")
    lines = config_problems(info.value, "HOMESEC_PRODUCER_")
    assert lines == [  # the token keys' fields first (homesec_auth.settings.TokenKeySettings), then the rest
        "HOMESEC_PRODUCER_AUTH_KEYS: the secret of key ID(s) ['k1'] is shorter than 32 characters",
        "HOMESEC_PRODUCER_PORT: Input should be greater than or equal to 1",
        "HOMESEC_PRODUCER_MAX_BODY_BYTES: Input should be a valid integer, unable to parse string as an "
        "integer",
    ]


def test_a_rule_over_several_settings_is_one_line_naming_them() -> None:
    with pytest.raises(ValidationError) as info:
        settings(publish_backoff_initial_seconds=5.0, publish_backoff_max_seconds=1.0)
    assert config_problems(info.value, "HOMESEC_PRODUCER_") == [
        "HOMESEC_PRODUCER_PUBLISH_BACKOFF_MAX_SECONDS is smaller than "
        "HOMESEC_PRODUCER_PUBLISH_BACKOFF_INITIAL_SECONDS"
    ]


def test_load_settings_prints_and_exits_78(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMESEC_PRODUCER_AUTH_KEYS", "[not json")
    out = io.StringIO()
    with pytest.raises(SystemExit) as info:
        load_settings(ProducerSettings, "HOMESEC_PRODUCER_", stream=out)
    assert info.value.code == EX_CONFIG
    assert out.getvalue() == (
        "configuration error: HOMESEC_PRODUCER_AUTH_KEYS: is not valid JSON "
        "(this setting takes a JSON value)\n"
    )
