"""The shared token verification refuses every spelling but the canonical one, oversized tokens, endless
lifetimes and (by default) legacy tokens, and remembers verified tokens by digest within a byte bound."""

from __future__ import annotations

import string
from datetime import timedelta

import pytest
from homesec_producer.auth import TokenAuthority
from homesec_producer.errors import InvalidTokenError
from homesec_producer.settings import ProducerSettings

from .auth_tokens import KID, NOW, SECRET, ingest, legacy, mint

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def _authority(**kwargs: object) -> TokenAuthority:
    return TokenAuthority({KID: SECRET.encode()}, **kwargs)  # type: ignore[arg-type]


def _refused(authority: TokenAuthority, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        authority.verify(token, NOW)


def test_a_valid_token_verifies() -> None:
    assert _authority().verify(ingest("h1"), NOW).homes == {"h1"}


@pytest.mark.parametrize("suffix", ["=", "==", "%3D", "\n", " =", "!", "*" * 1000])
def test_junk_appended_to_the_signature_is_refused(suffix: str) -> None:
    _refused(_authority(), ingest("h1") + suffix)


def _trailing_bit_variants(token: str) -> list[str]:
    """The other spellings of the signature's last character that decode to the same bytes leniently."""
    head, last = token[:-1], token[-1]
    sig_len = len(token.rsplit(".", 1)[1])
    unused = {2: 0x0F, 3: 0x03}[sig_len % 4]  # HS256: 32 bytes -> 43 characters, 2 unused bits
    index = ALPHABET.index(last)
    return [head + ALPHABET[(index & ~unused) | low] for low in range(unused + 1) if low != index & unused]


def test_trailing_bit_variants_of_the_signature_are_refused() -> None:
    token = ingest("h1")
    variants = _trailing_bit_variants(token)
    assert len(variants) == 3
    for variant in variants:
        _refused(_authority(), variant)
    old = legacy("h1", int((NOW + timedelta(days=1)).timestamp()))  # hs1. signatures too, when accepted
    on = _authority(accept_legacy=True)
    assert on.verify(old, NOW).homes == {"h1"}
    for variant in _trailing_bit_variants(old):
        _refused(on, variant)


def test_padding_or_junk_in_header_and_payload_segments_is_refused() -> None:
    header, payload, sig = ingest("h1").split(".")
    for forged in (f"{header}=.{payload}.{sig}", f"{header}.{payload}==.{sig}", f"{header}.{payload}!.{sig}"):
        _refused(_authority(), forged)


@pytest.mark.parametrize("exp", [10**30, 2**63, int(NOW.timestamp()) + 10 * 365 * 86_400])
def test_far_expiry_is_refused(exp: int) -> None:
    _refused(_authority(), mint(["h1"], exp=exp))
    _refused(_authority(), mint(["h1"], exp=exp, iat=None))  # without iat: exp - now


def test_lifetime_bound_is_a_setting() -> None:
    token = mint(["h1"], ttl=2 * 86_400)
    _refused(_authority(max_lifetime_seconds=86_400), token)
    assert _authority(max_lifetime_seconds=3 * 86_400).verify(token, NOW).homes == {"h1"}


def test_an_oversized_token_is_refused_before_decoding() -> None:
    authority = _authority()
    big = mint(["h1"], pad="x" * 5000)  # a valid signature, too long
    with pytest.raises(InvalidTokenError) as info:
        authority.verify(big, NOW)
    assert info.value.why == "token too large"
    with pytest.raises(InvalidTokenError):
        authority.authenticate("Bearer " + "a" * 1_048_576, NOW)


def test_legacy_tokens_are_off_by_default() -> None:
    exp = int((NOW + timedelta(days=1)).timestamp())
    assert ProducerSettings.model_fields["auth_accept_legacy_tokens"].default is False
    _refused(_authority(), legacy("h1", exp))
    on = _authority(accept_legacy=True)
    assert on.verify(legacy("h1", exp), NOW).homes == {"h1"}
    for junk in ("=", "!!!!", "*" * 5000):  # lenient base64 once let these verify as the same token
        _refused(on, legacy("h1", exp) + junk)
    _refused(on, legacy("h1", 10**30))  # the lifetime bound applies to legacy tokens too


def test_the_cache_keys_by_digest_and_is_bounded_in_bytes() -> None:
    authority = _authority(verified_cache_bytes=64 * 1024)
    tokens = [mint([f"home-{i:06d}" for i in range(20)], sub=f"gw-{n}") for n in range(200)]
    for token in tokens:
        authority.verify(token, NOW)
    cache = authority._verified
    assert 0 < cache.bytes <= 64 * 1024
    assert 10 < len(cache) < 200  # bounded by bytes: the oldest went
    keys = cache.keys()
    assert all(isinstance(k, bytes) and len(k) == 32 for k in keys)  # SHA-256 digests, not tokens
    assert authority.verify(tokens[-1], NOW).subject == "gw-199"
