"""``homesec_auth.settings.TokenKeySettings``: the token keys and limits both services' settings share."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Self

import pytest
from homesec_auth.errors import InvalidTokenError
from homesec_auth.keys import generate_key_pair
from homesec_auth.settings import TokenKeySettings
from homesec_auth.tokens import TokenAuthority
from homesec_consumer.settings import ConsumerSettings
from homesec_producer.settings import ProducerSettings
from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

SECRET = "s" * 32
CONN = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=k;EntityPath=telemetry"
NOW = datetime.now(UTC)


class Strict(TokenKeySettings):
    """As the producer: settings without a usable key set are invalid."""

    model_config = SettingsConfigDict(env_prefix="HOMESEC_TEST_")

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.require_token_keys()
        return self


class Lenient(TokenKeySettings):
    """As the consumer: valid without a key; its start-up refuses to run."""

    model_config = SettingsConfigDict(env_prefix="HOMESEC_OTHER_")
    keys_verify: ClassVar[str] = "read token"


def test_the_variables_carry_the_subclass_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    _, public = generate_key_pair("EdDSA")
    monkeypatch.setenv("HOMESEC_TEST_AUTH_KEYS", json.dumps({"hs": SECRET}))
    monkeypatch.setenv("HOMESEC_TEST_AUTH_PUBLIC_KEYS", json.dumps({"ed": public}))
    monkeypatch.setenv("HOMESEC_TEST_AUTH_MAX_TOKEN_BYTES", "512")
    monkeypatch.setenv("HOMESEC_TEST_AUTH_MAX_TOKEN_LIFETIME_SECONDS", "60")
    monkeypatch.setenv("HOMESEC_TEST_AUTH_VERIFIED_CACHE_BYTES", "0")
    settings = Strict()
    assert settings.auth_keys == {"hs": SecretStr(SECRET)} and settings.auth_public_keys == {"ed": public}
    assert (settings.auth_max_token_bytes, settings.auth_max_token_lifetime_seconds) == (512, 60)
    assert settings.auth_verified_cache_bytes == 0


def test_without_any_key_required_settings_are_invalid_and_say_which_variables() -> None:
    with pytest.raises(ValidationError) as caught:
        Strict()
    assert (
        "set HOMESEC_TEST_AUTH_PUBLIC_KEYS (JSON {key id: public key PEM}) or HOMESEC_TEST_AUTH_KEYS "
        "(JSON {key id: HS256 secret}): no token can be verified"
    ) in str(caught.value)


def test_without_any_key_optional_settings_are_valid_but_name_the_problem() -> None:
    settings = Lenient()
    problem = settings.token_key_problem()
    assert problem is not None and problem.endswith("no read token can be verified")
    assert "HOMESEC_OTHER_AUTH_KEYS" in problem
    with pytest.raises(ValueError, match="no read token can be verified"):
        settings.token_authority()


def test_a_key_id_in_both_maps_is_refused() -> None:
    _, public = generate_key_pair("ES256")
    both = {"auth_keys": {"k": SecretStr(SECRET)}, "auth_public_keys": {"k": public}}
    with pytest.raises(ValidationError, match=r"key IDs \['k'\] are in both HOMESEC_TEST_AUTH_KEYS and"):
        Strict.model_validate(both)
    assert Lenient.model_validate(both).token_key_problem() == (
        "key IDs ['k'] are in both HOMESEC_OTHER_AUTH_KEYS and HOMESEC_OTHER_AUTH_PUBLIC_KEYS"
    )


@pytest.mark.parametrize(
    ("field", "value"), [("auth_keys", {"k": "too short"}), ("auth_public_keys", {"k": "not a PEM"})]
)
def test_unusable_keys_are_invalid_even_when_keys_are_optional(field: str, value: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=field):
        Lenient.model_validate({field: value})


def test_the_authority_verifies_with_the_keys_and_the_limits() -> None:
    settings = Strict(auth_keys={"a": SecretStr(SECRET), "b": SecretStr("t" * 32)}, auth_max_token_bytes=256)
    authority = settings.token_authority(signing_kid="a")
    token = authority.issue("s", ["h1"], NOW + timedelta(hours=1))
    assert TokenAuthority({"a": SECRET.encode()}).verify(token, NOW).homes == {"h1"}  # signed with "a"
    assert authority.max_token_bytes == 256
    with pytest.raises(InvalidTokenError, match="too large"):
        authority.verify("x" * 300, NOW)


def test_both_services_share_it_with_their_own_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING", CONN)
    for service, cls in (("PRODUCER", ProducerSettings), ("CONSUMER", ConsumerSettings)):
        monkeypatch.setenv(f"HOMESEC_{service}_AUTH_KEYS", json.dumps({service.lower(): SECRET}))
        settings = cls()
        assert isinstance(settings, TokenKeySettings)
        assert list(settings.auth_keys) == [service.lower()]
    monkeypatch.delenv("HOMESEC_CONSUMER_AUTH_KEYS")
    assert ConsumerSettings().token_key_problem() is not None  # valid: the consumer's start-up refuses
    monkeypatch.delenv("HOMESEC_PRODUCER_AUTH_KEYS")
    with pytest.raises(ValidationError, match="no token can be verified"):
        ProducerSettings()
