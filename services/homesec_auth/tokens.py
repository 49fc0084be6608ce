"""Bearer tokens (JWT, RFC 7519) for ingest (sensors, gateways) and reads (website, resident apps).

A token is a JWS-signed JWT whose header names the key (``kid``) and whose claims are ``sub`` (who it is
for), ``homes`` (the home IDs it covers), ``exp`` (required), ``iat``, and:

- ``aud``: ``homesec-ingest`` for ingest tokens (the producer's ``POST /v1/readings``; a token without
  ``aud`` is an ingest token too, as issued before audiences existed) or ``homesec-read`` for read tokens
  (the consumer's ``GET /v1/homes/{id}/...``). Each service accepts only its own audience.
- ``role``: ``operator`` on a read token reads every home (its ``homes`` may be empty).

PyJWT checks the signature with the key of that ``kid`` and **only** that key's algorithm (``keys``). Before
any decoding a token longer than ``max_token_bytes`` is refused, and every segment must be canonical
base64url (``b64``). The times are checked against the caller's clock: ``exp``, ``nbf``, and a lifetime
(``exp - iat`` and ``exp - now``) of at most ``max_lifetime_seconds``. Several keys verify at once, which
allows rotation: add a key, re-issue tokens with it, then remove the old one. The deprecated ``hs1.``
tokens (``legacy``) verify, as ingest tokens, only with ``accept_legacy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import jwt

from homesec_auth import b64
from homesec_auth.cache import VerifiedCache, digest
from homesec_auth.errors import ForbiddenHomesError, InvalidTokenError, KeyConfigError, MissingTokenError
from homesec_auth.keys import SigningKey, VerifyKey, hmac_verify_key, public_verify_key
from homesec_auth.legacy import is_legacy, verify_legacy

INGEST_AUDIENCE: Final = "homesec-ingest"
READ_AUDIENCE: Final = "homesec-read"
AUDIENCES = (INGEST_AUDIENCE, READ_AUDIENCE)
OPERATOR_ROLE: Final = "operator"

DEFAULT_MAX_TOKEN_BYTES = 4096
DEFAULT_MAX_LIFETIME_SECONDS = 400 * 86_400  # the token tool's default is 365 days
DEFAULT_VERIFIED_CACHE_BYTES = 16 * 1024 * 1024

# PyJWT checks the signature, the header's algorithm against the key's, and that ``exp`` is present; the
# audience and the times are checked here against the injected clock (``verify``'s ``now``).
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
    """What a verified token allows. ``audience`` is None for a token without ``aud`` (an ingest token)."""

    subject: str
    homes: frozenset[str]
    expires_at: int
    audience: str | None = None
    role: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.audience == READ_AUDIENCE and self.role == OPERATOR_ROLE

    def check_homes(self, homes: Iterable[str]) -> None:
        """Raise ``ForbiddenHomesError`` naming the homes outside ``homes`` (an operator reads any)."""
        if self.is_operator:
            return
        outside = sorted(set(homes) - self.homes)
        if outside:
            raise ForbiddenHomesError(outside)


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token's verified claims; the times are checked again on every use."""

    scope: TokenScope
    nbf: int | None
    size: int  # estimated bytes, for the cache's bound


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
        accept_legacy: bool = False,
        verified_cache_bytes: int = DEFAULT_VERIFIED_CACHE_BYTES,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS,
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
        self.max_token_bytes = max_token_bytes
        self.max_lifetime_seconds = max_lifetime_seconds
        self._verified: VerifiedCache[_Verified] = VerifiedCache(verified_cache_bytes)

    @property
    def can_issue(self) -> bool:
        return self._signing is not None

    def issue(
        self,
        subject: str,
        homes: Iterable[str],
        expires_at: datetime,
        issued_at: datetime | None = None,
        *,
        audience: str = INGEST_AUDIENCE,
        role: str | None = None,
    ) -> str:
        """A signed JWT for ``homes`` valid until ``expires_at``, for ``audience``; ``iat`` is ``issued_at``
        (default: now). ``homes`` may be empty only for an operator read token. The same arguments give
        the same token."""
        if self._signing is None:
            raise ValueError("this authority holds only verification keys and cannot issue tokens")
        if audience not in AUDIENCES:
            raise ValueError(f"audience must be one of {AUDIENCES}")
        if role is not None and (role != OPERATOR_ROLE or audience != READ_AUDIENCE):
            raise ValueError(f"the only role is {OPERATOR_ROLE!r}, on a {READ_AUDIENCE!r} token")
        home_list = sorted(set(homes))
        if not home_list and role is None:
            raise ValueError("a token needs at least one home")
        claims: dict[str, Any] = {
            "sub": subject,
            "aud": audience,
            "homes": home_list,
            "iat": int((issued_at or datetime.now(UTC)).timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        if role is not None:
            claims["role"] = role
        signing = self._signing
        return jwt.encode(claims, signing.key, algorithm=signing.algorithm, headers={"kid": signing.kid})

    def authenticate(
        self, authorization: str | None, now: datetime, audience: str = INGEST_AUDIENCE
    ) -> TokenScope:
        """``verify`` the token of an ``Authorization: Bearer`` header, refusing an oversized header before
        looking into it."""
        if authorization is not None and len(authorization) > self.max_token_bytes + 16:
            raise InvalidTokenError("token too large")
        return self.verify(bearer_token(authorization), now, audience)

    def verify(self, token: str, now: datetime, audience: str = INGEST_AUDIENCE) -> TokenScope:
        """Check size, form, signature, claims, audience, lifetime and expiry; ``InvalidTokenError``.

        A token verified before skips the signature check (the same bytes under the same keys verify the
        same way); its audience, lifetime, ``exp`` and ``nbf`` are checked again on every call."""
        if len(token) > self.max_token_bytes:
            raise InvalidTokenError("token too large")
        key = digest(token)
        known = self._verified.get(key)
        if known is None:
            known = self._verify_new(token)
            self._verified.put(key, known, known.size)
        self._check_use(known, now, audience)
        return known.scope

    def _verify_new(self, token: str) -> _Verified:
        if is_legacy(token):
            if not self._legacy_secrets:
                raise InvalidTokenError("malformed token")
            claims = verify_legacy(token, self._legacy_secrets)
            claims.pop("aud", None)  # legacy tokens are ingest tokens
            claims.pop("role", None)
        else:
            claims = self._decode(token)
        return _verified(claims, self.max_lifetime_seconds)

    def _check_use(self, known: _Verified, now: datetime, audience: str) -> None:
        scope, seconds = known.scope, now.timestamp()
        if scope.audience != audience and not (audience == INGEST_AUDIENCE and scope.audience is None):
            raise InvalidTokenError("wrong audience")
        if audience == READ_AUDIENCE and not scope.homes and not scope.is_operator:
            raise InvalidTokenError("malformed claims")
        if scope.expires_at <= seconds:
            raise InvalidTokenError("expired")
        if known.nbf is not None and known.nbf > seconds:
            raise InvalidTokenError("not yet valid")
        if scope.expires_at - seconds > self.max_lifetime_seconds:
            raise InvalidTokenError("lifetime too long")

    def _decode(self, token: str) -> dict[str, Any]:
        segments = token.split(".")
        if len(segments) != 3 or not all(b64.is_canonical(s) for s in segments):
            raise InvalidTokenError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, RecursionError):
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
        except (jwt.PyJWTError, RecursionError):
            raise InvalidTokenError("malformed token") from None
        return claims


def _verified(claims: dict[str, Any], max_lifetime: float) -> _Verified:
    """The scope of well-formed claims; ``exp - iat`` beyond ``max_lifetime`` is refused here, the other
    times by the caller."""
    homes, exp, nbf, iat = claims.get("homes"), claims.get("exp"), claims.get("nbf"), claims.get("iat")
    sub, aud, role = claims.get("sub", ""), claims.get("aud"), claims.get("role")
    if (
        not isinstance(homes, list)
        or not all(isinstance(h, str) for h in homes)
        or not _is_time(exp)
        or not all(t is None or _is_time(t) for t in (nbf, iat))
        or not isinstance(sub, str)
        or not (aud is None or isinstance(aud, str))
        or not (role is None or isinstance(role, str))
    ):
        raise InvalidTokenError("malformed claims")
    assert isinstance(exp, int)
    if isinstance(iat, int) and exp - iat > max_lifetime:
        raise InvalidTokenError("lifetime too long")
    scope = TokenScope(sub, frozenset(homes), exp, aud, role)
    size = 400 + len(sub) + len(aud or "") + len(role or "") + sum(80 + len(h) for h in homes)
    return _Verified(scope, nbf if isinstance(nbf, int) else None, size)


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
