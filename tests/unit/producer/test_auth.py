from __future__ import annotations

import base64
from datetime import timedelta

import orjson
import pytest
from homesec_producer.auth import TokenAuthority, bearer_token
from homesec_producer.auth_cli import main as cli_main
from homesec_producer.errors import ForbiddenHomesError, InvalidTokenError, MissingTokenError

from .helpers import KEY, NOW

AUTHORITY = TokenAuthority({"k1": KEY.encode(), "k2": b"x" * 40}, "k1")
OTHER = TokenAuthority({"k9": b"y" * 40})


def test_sensor_token_scoped_to_one_home() -> None:
    token = AUTHORITY.issue("sensor-1", ["home-1"], NOW + timedelta(days=1))
    scope = AUTHORITY.verify(token, NOW)
    scope.check_homes(["home-1", "home-1"])
    with pytest.raises(ForbiddenHomesError) as info:
        scope.check_homes(["home-1", "home-2"])
    assert info.value.homes == ["home-2"]


def test_gateway_token_for_a_set_of_homes() -> None:
    scope = AUTHORITY.verify(AUTHORITY.issue("gw", ["a", "b", "c"], NOW + timedelta(hours=1)), NOW)
    scope.check_homes(["a", "c"])
    with pytest.raises(ForbiddenHomesError):
        scope.check_homes(["d"])


def test_rotation_old_key_still_verifies() -> None:
    old = TokenAuthority({"k2": b"x" * 40}).issue("s", ["h"], NOW + timedelta(days=1))
    assert AUTHORITY.verify(old, NOW).homes == frozenset({"h"})


def _tamper_homes(token: str) -> str:
    prefix, payload, sig = token.split(".")
    doc = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    doc["homes"] = ["home-2"]
    forged = base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()
    return f"{prefix}.{forged}.{sig}"


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (_tamper_homes, "bad signature"),
        (lambda t: t + "x", "bad signature"),
        (lambda t: "abc", "malformed token"),
        (lambda t: "hs1.!!!.???", "malformed token"),
        (
            lambda t: OTHER.issue("s", ["home-1"], NOW + timedelta(days=1)),
            "unknown key",
        ),
        (lambda t: AUTHORITY.issue("s", ["home-1"], NOW - timedelta(seconds=1)), "expired"),
    ],
)
def test_invalid_tokens(mutate: object, why: str) -> None:
    token = AUTHORITY.issue("s", ["home-1"], NOW + timedelta(days=1))
    with pytest.raises(InvalidTokenError) as info:
        AUTHORITY.verify(mutate(token), NOW)  # type: ignore[operator]
    assert info.value.why == why


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer"])
def test_missing_bearer(header: str | None) -> None:
    with pytest.raises(MissingTokenError):
        bearer_token(header)


def test_bearer_parsing() -> None:
    assert bearer_token("Bearer abc.def") == "abc.def"
    assert bearer_token("bearer  abc ") == "abc"


def test_cli_issues_a_verifiable_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOMESEC_PRODUCER_AUTH_KEYS", orjson.dumps({"k1": KEY}).decode())
    assert cli_main(["--home", "home-7", "--home", "home-8", "--ttl-days", "1"]) == 0
    token = capsys.readouterr().out.strip()
    scope = TokenAuthority({"k1": KEY.encode()}).verify(token, NOW.replace(year=2025))
    assert scope.homes == frozenset({"home-7", "home-8"})


def test_cli_refuses_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMESEC_PRODUCER_AUTH_KEYS", raising=False)
    with pytest.raises(SystemExit):
        cli_main(["--home", "h"])
