from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from homesec_producer.auth import READ_AUDIENCE, TokenAuthority, bearer_token
from homesec_producer.auth_keys import SigningKey, generate_key_pair
from homesec_producer.auth_legacy import issue_legacy
from homesec_producer.cli import main as cli_main
from homesec_producer.errors import ForbiddenHomesError, InvalidTokenError, KeyConfigError, MissingTokenError
from pydantic import ValidationError

from .helpers import KEY, NOW, settings

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


def test_a_remembered_token_still_expires_and_waits_for_nbf() -> None:
    authority = TokenAuthority({"k1": KEY.encode()})
    token = authority.issue("s", ["home-1"], NOW + timedelta(minutes=5))
    assert authority.verify(token, NOW).homes == frozenset({"home-1"})
    assert authority.verify(token, NOW + timedelta(minutes=4)).subject == "s"  # from the cache
    with pytest.raises(InvalidTokenError, match="expired"):
        authority.verify(token, NOW + timedelta(minutes=5))
    early = jwt.encode({"sub": "s", "homes": ["h"], "exp": int((NOW + timedelta(hours=1)).timestamp()),
                        "nbf": int((NOW + timedelta(minutes=1)).timestamp())}, KEY, "HS256",
                       headers={"kid": "k1"})  # fmt: skip
    for _ in range(2):  # refused the same way once remembered
        with pytest.raises(InvalidTokenError, match="not yet valid"):
            authority.verify(early, NOW)
    assert authority.verify(early, NOW + timedelta(minutes=2)).homes == frozenset({"h"})


def test_only_verified_tokens_are_remembered_and_the_memory_is_bounded() -> None:
    authority = TokenAuthority({"k1": KEY.encode()}, verified_cache_bytes=3 * 1000)
    good = authority.issue("s", ["home-1"], NOW + timedelta(days=1))
    authority.verify(good, NOW)
    for _ in range(2):  # a forged token is checked (and refused) every time, never remembered
        with pytest.raises(InvalidTokenError, match="bad signature"):
            authority.verify(_tamper_homes(good), NOW)
    assert len(authority._verified) == 1
    tokens = [authority.issue(f"s{i}", ["home-1"], NOW + timedelta(days=1, seconds=i)) for i in range(5)]
    for token in tokens:
        authority.verify(token, NOW)
    digests = [hashlib.sha256(t.encode()).digest() for t in tokens]
    assert authority._verified.keys() == digests[-3:]  # the oldest went first; digests, not tokens
    off = TokenAuthority({"k1": KEY.encode()}, verified_cache_bytes=0)
    assert off.verify(good, NOW).subject == "s" and not len(off._verified)


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
    scope = TokenAuthority({"k1": KEY.encode()}).verify(token, datetime.now(UTC))
    assert scope.homes == frozenset({"home-7", "home-8"})


def test_cli_issues_read_and_operator_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOMESEC_PRODUCER_AUTH_KEYS", orjson.dumps({"k1": KEY}).decode())
    verifier, now = TokenAuthority({"k1": KEY.encode()}), datetime.now(UTC)
    assert cli_main(["--audience", "read", "--home", "home-7"]) == 0
    scope = verifier.verify(capsys.readouterr().out.strip(), now, READ_AUDIENCE)
    assert scope.homes == {"home-7"} and not scope.is_operator
    assert cli_main(["--audience", "read", "--role", "operator"]) == 0
    assert verifier.verify(capsys.readouterr().out.strip(), now, READ_AUDIENCE).is_operator
    for wrong in (["--role", "operator"], []):
        with pytest.raises(SystemExit):
            cli_main(wrong)


def test_cli_refuses_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMESEC_PRODUCER_AUTH_KEYS", raising=False)
    with pytest.raises(SystemExit):
        cli_main(["--home", "h"])


# --- JWT (RFC 7519), asymmetric keys, the deprecated hs1. format ---------------------------------------


def _pair(alg: Literal["ES256", "EdDSA"], kid: str) -> tuple[TokenAuthority, TokenAuthority]:
    """(issuer holding the private key, verifier holding only the public key)."""
    private_pem, public_pem = generate_key_pair(alg)
    issuer = TokenAuthority(signing_key=SigningKey.from_pem(kid, private_pem))
    return issuer, TokenAuthority(public_keys={kid: public_pem})


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_asymmetric_tokens_verify_with_the_public_key_only(alg: Literal["ES256", "EdDSA"]) -> None:
    issuer, verifier = _pair(alg, "pk1")
    token = issuer.issue("gw", ["home-1", "home-2"], NOW + timedelta(days=1))
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": "pk1", "typ": "JWT"}
    assert verifier.verify(token, NOW).homes == frozenset({"home-1", "home-2"})
    assert not verifier.can_issue
    with pytest.raises(ValueError, match="cannot issue"):
        verifier.issue("x", ["home-1"], NOW + timedelta(days=1))


def test_standard_claims_and_any_jwt_library_can_read_them() -> None:
    token = AUTHORITY.issue("sensor-1", ["home-1"], NOW + timedelta(days=1))
    claims = jwt.decode(
        token, KEY, algorithms=["HS256"], audience="homesec-ingest", options={"verify_exp": False}
    )
    assert claims["sub"] == "sensor-1" and claims["homes"] == ["home-1"]
    assert claims["exp"] == int((NOW + timedelta(days=1)).timestamp())
    assert jwt.get_unverified_header(token)["kid"] == "k1"


def test_rotation_across_key_types() -> None:
    old_issuer, _ = _pair("ES256", "es-old")
    new_issuer, _ = _pair("EdDSA", "ed-new")
    both = TokenAuthority(
        {"k1": KEY.encode()},
        public_keys={
            "es-old": _public_pem(old_issuer),
            "ed-new": _public_pem(new_issuer),
        },
    )
    for issuer in (old_issuer, new_issuer, AUTHORITY):
        assert both.verify(issuer.issue("s", ["h"], NOW + timedelta(hours=1)), NOW).homes == {"h"}


def _public_pem(issuer: TokenAuthority) -> str:
    key = issuer._signing
    assert key is not None and not isinstance(key.key, bytes)
    return key.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def test_algorithm_confusion_is_refused() -> None:
    """An HS256 token 'signed' with the public key's PEM must not verify under the ES256 key ID."""
    issuer, verifier = _pair("ES256", "pk1")
    public_pem = _public_pem(issuer)
    signed = b".".join(
        base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=")
        for doc in ({"alg": "HS256", "kid": "pk1"}, {"homes": ["home-1"], "exp": 4_102_444_800})
    )
    mac = hmac.new(public_pem.encode(), signed, hashlib.sha256).digest()
    forged = (signed + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    with pytest.raises(InvalidTokenError, match="algorithm not allowed"):
        verifier.verify(forged, NOW)
    unsigned = jwt.encode({"homes": ["home-1"], "exp": 4_102_444_800}, "", algorithm="none",
                          headers={"kid": "pk1"})  # fmt: skip
    with pytest.raises(InvalidTokenError):
        verifier.verify(unsigned, NOW)


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"homes": ["h"]}, "malformed claims"),  # no exp
        ({"homes": "h", "exp": 4_102_444_800}, "malformed claims"),
        ({"homes": ["h"], "exp": True}, "malformed claims"),
        ({"homes": ["h"], "exp": 4_102_444_800, "nbf": 4_102_444_000}, "not yet valid"),
    ],
)
def test_claims_are_checked(claims: dict[str, object], why: str) -> None:
    token = jwt.encode(claims, KEY, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(InvalidTokenError) as info:
        AUTHORITY.verify(token, NOW)
    assert info.value.why == why


def test_legacy_hs1_tokens_verify_only_while_accepted() -> None:
    legacy = issue_legacy(KEY.encode(), "k1", "s", ["home-1"], NOW + timedelta(days=1))
    assert legacy.startswith("hs1.")
    accepting = TokenAuthority({"k1": KEY.encode()}, accept_legacy=True)
    assert accepting.verify(legacy, NOW).homes == {"home-1"}
    strict = TokenAuthority({"k1": KEY.encode()})  # off by default
    with pytest.raises(InvalidTokenError, match="malformed token"):
        strict.verify(legacy, NOW)


def test_key_ids_are_unique_and_keys_usable() -> None:
    _, public_pem = generate_key_pair("EdDSA")
    with pytest.raises(KeyConfigError, match="both"):
        TokenAuthority({"k1": KEY.encode()}, public_keys={"k1": public_pem})
    with pytest.raises(KeyConfigError, match="not a PEM public key"):
        TokenAuthority(public_keys={"k": "nope"})
    with pytest.raises(KeyConfigError, match="shorter than 32"):
        TokenAuthority({"k": b"short"})


def test_settings_accept_public_keys_without_secrets() -> None:
    _, public_pem = generate_key_pair("ES256")
    s = settings(auth_keys={}, auth_public_keys={"pk1": public_pem})
    assert s.auth_public_keys == {"pk1": public_pem}
    with pytest.raises(ValidationError, match="not a PEM public key"):
        settings(auth_public_keys={"pk1": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"})
    with pytest.raises(ValidationError, match="both"):
        settings(auth_public_keys={"k1": public_pem})


def test_cli_genkey_then_issue_with_the_private_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HOMESEC_PRODUCER_AUTH_KEYS", raising=False)
    private = tmp_path / "ed1.pem"
    assert cli_main(["genkey", "--kid", "ed1", "--alg", "EdDSA", "--private-out", str(private)]) == 0
    public_keys = orjson.loads(capsys.readouterr().out)
    assert private.stat().st_mode & 0o777 == 0o600
    assert cli_main(["--home", "home-9", "--private-key", str(private), "--kid", "ed1"]) == 0
    token = capsys.readouterr().out.strip()
    scope = TokenAuthority(public_keys=public_keys).verify(token, datetime.now(UTC))
    assert scope.homes == {"home-9"}
