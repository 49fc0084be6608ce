"""HMAC-signed bearer tokens scoped to one home (a sensor) or a set of homes (a gateway).

Format: ``hs1.<payload>.<signature>``, both base64url without padding. The payload is JSON
``{"kid": key id, "sub": subject, "homes": [home ids], "exp": unix seconds}``; the signature is
HMAC-SHA256 over ``hs1.<payload>`` with the key ``kid`` of ``HOMESEC_PRODUCER_AUTH_KEYS``. Several keys verify
at once, which allows rotation: add a key, re-issue tokens with it, then remove the old one.

Operators issue tokens with ``python -m homesec_producer.auth_cli`` (see docs/producer.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson

from homesec_producer.errors import ForbiddenHomesError, InvalidTokenError, MissingTokenError

PREFIX = "hs1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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


class TokenAuthority:
    """Signs and verifies tokens with the configured keys (``{kid: secret}``)."""

    def __init__(self, keys: Mapping[str, bytes], signing_kid: str | None = None) -> None:
        if not keys:
            raise ValueError("no token keys")
        self._keys = dict(keys)
        self._signing_kid = signing_kid or sorted(self._keys)[-1]

    def _sign(self, kid: str, signed_part: bytes) -> bytes:
        return hmac.new(self._keys[kid], signed_part, hashlib.sha256).digest()

    def issue(self, subject: str, homes: Iterable[str], expires_at: datetime) -> str:
        home_list = sorted(set(homes))
        if not home_list:
            raise ValueError("a token needs at least one home")
        payload = {
            "kid": self._signing_kid,
            "sub": subject,
            "homes": home_list,
            "exp": int(expires_at.timestamp()),
        }
        signed_part = f"{PREFIX}.{_b64(orjson.dumps(payload))}"
        return f"{signed_part}.{_b64(self._sign(self._signing_kid, signed_part.encode()))}"

    def verify(self, token: str, now: datetime) -> TokenScope:
        """Check signature and expiry; raise ``InvalidTokenError`` with a short reason."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise InvalidTokenError("malformed token")
        try:
            payload = orjson.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            raise InvalidTokenError("malformed token") from None
        if not isinstance(payload, dict) or payload.get("kid") not in self._keys:
            raise InvalidTokenError("unknown key")
        expected = self._sign(payload["kid"], f"{parts[0]}.{parts[1]}".encode())
        if not hmac.compare_digest(expected, signature):
            raise InvalidTokenError("bad signature")
        homes, exp = payload.get("homes"), payload.get("exp")
        if (
            not isinstance(homes, list)
            or not all(isinstance(h, str) for h in homes)
            or not isinstance(exp, int)
        ):
            raise InvalidTokenError("malformed claims")
        if exp <= now.timestamp():
            raise InvalidTokenError("expired")
        return TokenScope(str(payload.get("sub", "")), frozenset(homes), exp)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; ``MissingTokenError`` otherwise."""
    if not authorization:
        raise MissingTokenError("no Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingTokenError("Authorization is not a bearer token")
    return token.strip()
