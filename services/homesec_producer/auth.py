"""Bearer tokens scoped to one home (a sensor) or a set of homes (a gateway): standard JWT (RFC 7519).

A token is a JWS-signed JWT whose header names the key (``kid``) and whose claims are ``sub`` (who it is
for), ``homes`` (the home IDs it may post for), ``exp`` (required) and ``iat``. PyJWT checks the signature
with the key of that ``kid`` and **only** that key's algorithm (``auth_keys``: HS256 secrets for
development, ES256 / EdDSA public keys in production, so that producer pods cannot mint tokens). ``exp``
and ``nbf`` are checked here against the service's clock. Several keys verify at once, which allows
rotation: add a key, re-issue tokens with it, then remove the old one.

The deprecated ``hs1.`` tokens (``auth_legacy``) verify too while ``accept_legacy`` is on.
Operators issue tokens and generate keys with ``python -m homesec_producer.auth_cli`` (docs/producer.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from homesec_producer.auth_keys import SigningKey, VerifyKey, hmac_verify_key, public_verify_key
from homesec_producer.auth_legacy import is_legacy, verify_legacy
from homesec_producer.errors import (
    ForbiddenHomesError,
    InvalidTokenError,
    KeyConfigError,
    MissingTokenError,
)

# PyJWT checks the signature, the header's algorithm against the key's, and that ``exp`` is present; the
# times are checked against the injected clock (``verify``'s ``now``), not the library's.
_DECODE_OPTIONS: Any = {
    "require": ["exp"],
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


@dataclass(frozen=True, slots=True)
class TokenScope:
    """What a verified token allows."""

    subject: str
    homes: frozenset[str]
    expires_at: int

    def check_homes(self, homes: Iterable[str]) -> None:
        """Raise ``ForbiddenHomesError`` naming the homes outside the scope."""
        outside = sorted(set(homes) - self.homes)
        if outside:
            raise ForbiddenHomesError(outside)


def _verify_keys(hmac_keys: Mapping[str, bytes], public_keys: Mapping[str, str]) -> dict[str, VerifyKey]:
    keys = {kid: hmac_verify_key(kid, secret) for kid, secret in hmac_keys.items()}
    for kid, pem in public_keys.items():
        if kid in keys:
            raise KeyConfigError(kid, "key ID used by both an HS256 secret and a public key")
        keys[kid] = public_verify_key(kid, pem)
    return keys


class TokenAuthority:
    """Verifies tokens with the configured keys and, when it holds a signing key, issues them.

    ``TokenAuthority({kid: secret})`` verifies and signs HS256 (the newest key ID, or ``signing_kid``, signs).
    ``public_keys={kid: PEM}`` adds ES256/EdDSA verification keys; ``signing_key`` (a private key) signs
    and verifies its own tokens. An authority with public keys only cannot issue.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes] | None = None,
        signing_kid: str | None = None,
        *,
        public_keys: Mapping[str, str] | None = None,
        signing_key: SigningKey | None = None,
        accept_legacy: bool = True,
        verified_cache_size: int = 20_000,
    ) -> None:
        hmac_keys = dict(keys or {})
        self._keys = _verify_keys(hmac_keys, public_keys or {})
        self._legacy_secrets = hmac_keys if accept_legacy else {}
        if signing_key is None and hmac_keys:
            kid = signing_kid or sorted(hmac_keys)[-1]
            signing_key = SigningKey.hmac(kid, hmac_keys[kid])
        if signing_key is not None:
            own = signing_key.verify_key()
            if self._keys.setdefault(own.kid, own) != own:
                raise KeyConfigError(own.kid, "the signing key's ID names another verification key")
        if not self._keys:
            raise ValueError("no token keys")
        self._signing = signing_key
        # token -> its verified scope and ``nbf``: a gateway posts with the same token for hours, and
        # verifying its signature was ~6 % of the producer's CPU. Only tokens that verified are kept; the
        # times are still checked on every use, against the clock of that call.
        self._verified: dict[str, tuple[TokenScope, int | None]] = {}
        self._verified_max = verified_cache_size

    @property
    def can_issue(self) -> bool:
        return self._signing is not None

    def issue(
        self, subject: str, homes: Iterable[str], expires_at: datetime, issued_at: datetime | None = None
    ) -> str:
        """A signed JWT for ``homes`` (at least one) valid until ``expires_at``; ``iat`` is ``issued_at``
        (default: now). The same arguments give the same token."""
        if self._signing is None:
            raise ValueError("this authority holds only verification keys and cannot issue tokens")
        home_list = sorted(set(homes))
        if not home_list:
            raise ValueError("a token needs at least one home")
        claims = {
            "sub": subject,
            "homes": home_list,
            "iat": int((issued_at or datetime.now(UTC)).timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        signing = self._signing
        return jwt.encode(claims, signing.key, algorithm=signing.algorithm, headers={"kid": signing.kid})

    def verify(self, token: str, now: datetime) -> TokenScope:
        """Check signature, claims and expiry; raise ``InvalidTokenError`` with a short reason.

        A token verified before (the last ``verified_cache_size`` distinct ones) skips the signature check:
        the same bytes under the same keys verify the same way. Its ``exp`` and ``nbf`` are checked again.
        """
        known = self._verified.get(token)
        if known is None:
            if is_legacy(token) and self._legacy_secrets:
                claims = verify_legacy(token, self._legacy_secrets)
            else:
                claims = self._decode(token)
            known = _scope(claims)
            if self._verified_max:
                if len(self._verified) >= self._verified_max:
                    del self._verified[next(iter(self._verified))]  # the oldest entry
                self._verified[token] = known
        scope, nbf = known
        seconds = now.timestamp()
        if scope.expires_at <= seconds:
            raise InvalidTokenError("expired")
        if nbf is not None and nbf > seconds:
            raise InvalidTokenError("not yet valid")
        return scope

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidTokenError("unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[key.algorithm], options=_DECODE_OPTIONS
            )
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("bad signature") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidTokenError("algorithm not allowed for this key") from None
        except jwt.MissingRequiredClaimError:
            raise InvalidTokenError("malformed claims") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None
        return claims


def _scope(claims: dict[str, Any]) -> tuple[TokenScope, int | None]:
    """The scope of well-formed claims and their ``nbf``; the times are checked by the caller."""
    homes, exp, nbf, sub = claims.get("homes"), claims.get("exp"), claims.get("nbf"), claims.get("sub", "")
    if (
        not isinstance(homes, list)
        or not all(isinstance(h, str) for h in homes)
        or not _is_time(exp)
        or not (nbf is None or _is_time(nbf))
        or not isinstance(sub, str)
    ):
        raise InvalidTokenError("malformed claims")
    assert isinstance(exp, int)
    return TokenScope(sub, frozenset(homes), exp), nbf if isinstance(nbf, int) else None


def _is_time(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; ``MissingTokenError`` otherwise."""
    if not authorization:
        raise MissingTokenError("no Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingTokenError("Authorization is not a bearer token")
    return token.strip()
