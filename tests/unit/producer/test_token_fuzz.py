"""Whatever the bearer token's bytes, the API answers 4xx, never 5xx (a ``kid`` that is a list
or an object must give 401, not 500 and a traceback)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .apiclient import Api
from .helpers import KEY, body, reading

BODY = body(reading("home-1"))
HEADER_BYTES = st.binary(max_size=300).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"")
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
KIDS = st.sampled_from(["k1", "k9", ""]) | JSON_VALUES
ALGS = st.sampled_from(["HS256", "ES256", "EdDSA", "none", "RS256", "HS512"]) | JSON_VALUES


def _json(value: object) -> bytes:
    return json.dumps(value).encode()  # big integers too (orjson stops at 64 bits)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _claims() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={"homes": st.just(["home-1"]) | JSON_VALUES, "exp": st.just(4_102_444_800) | JSON_VALUES,
                  "sub": JSON_VALUES, "nbf": JSON_VALUES, "iat": JSON_VALUES},
    )  # fmt: skip


@st.composite
def jwt_shaped(draw: st.DrawFn) -> bytes:
    """Three base64url parts: a header with any ``kid``/``alg``, any claims, any signature bytes."""
    header = {"alg": draw(ALGS), "kid": draw(KIDS), "typ": draw(st.sampled_from(["JWT", None]))}
    claims = draw(_claims() | JSON_VALUES)
    sig = draw(st.binary(max_size=80))
    return b".".join([_b64(_json(header)), _b64(_json(claims)), _b64(sig)])


@st.composite
def signed_with_odd_claims(draw: st.DrawFn) -> bytes:
    """Correctly signed (HS256, key k1), with claims of any type."""
    return jwt.encode(draw(_claims()), KEY, algorithm="HS256", headers={"kid": "k1"}).encode()


@st.composite
def legacy_shaped(draw: st.DrawFn) -> bytes:
    """``hs1.`` tokens with any payload (a list/object ``kid`` gave 500), signed with k1 or not."""
    payload = {"kid": draw(KIDS), **draw(_claims())}
    signed = b"hs1." + _b64(_json(payload))
    sig = (
        hmac.new(KEY.encode(), signed, hashlib.sha256).digest() if draw(st.booleans()) else draw(st.binary())
    )
    return signed + b"." + _b64(sig)


TOKENS = HEADER_BYTES | jwt_shaped() | signed_with_odd_claims() | legacy_shaped()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=TOKENS, scheme=st.sampled_from([b"Bearer ", b"bearer  "]))
async def test_no_token_gets_a_5xx(api: Api, token: bytes, scheme: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"authorization", scheme + token)]
    resp = await api.client.post("/v1/readings", content=BODY, headers=headers)
    assert resp.status_code < 500, (token, resp.text)
    assert resp.status_code in {202, 401, 403}, (token, resp.status_code, resp.text)


def test_a_list_or_object_kid_is_401_not_500_regression() -> None:
    """A list and an object as ``kid``, outside Hypothesis (the API test above covers them too)."""
    from datetime import UTC, datetime

    from homesec_producer.auth import TokenAuthority
    from homesec_producer.errors import InvalidTokenError

    authority = TokenAuthority({"k1": KEY.encode()})
    for kid in (["x"], {"a": 1}):
        for token in (
            b"hs1." + _b64(_json({"kid": kid, "homes": ["h"], "exp": 9**9})) + b".c2ln",
            b".".join([_b64(_json({"alg": "HS256", "kid": kid})), _b64(b"{}"), b"c2ln"]),
        ):
            try:
                authority.verify(token.decode(), datetime.now(UTC))
            except InvalidTokenError as exc:
                assert exc.why in {"unknown key", "malformed token"}
            else:
                raise AssertionError("accepted")
