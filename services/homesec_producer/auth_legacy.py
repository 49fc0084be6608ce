"""DEPRECATED ``hs1.`` tokens (before JWT), accepted until the deprecation period ends (docs/producer.md).

Format: ``hs1.<payload>.<signature>``, both base64url without padding; the payload is JSON
``{"kid", "sub", "homes", "exp"}``, the signature HMAC-SHA256 over ``hs1.<payload>`` with the HS256 secret
``kid`` of ``HOMESEC_PRODUCER_AUTH_KEYS``. Only verified when ``AUTH_ACCEPT_LEGACY_TOKENS`` is on (the
default during the deprecation period). ``issue_legacy`` exists for tests and migration checks only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from homesec_producer.errors import InvalidTokenError

PREFIX = "hs1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_legacy(token: str) -> bool:
    return token.startswith(f"{PREFIX}.")


def issue_legacy(secret: bytes, kid: str, subject: str, homes: Iterable[str], expires_at: datetime) -> str:
    payload = {"kid": kid, "sub": subject, "homes": sorted(set(homes)), "exp": int(expires_at.timestamp())}
    signed_part = f"{PREFIX}.{_b64(orjson.dumps(payload))}"
    signature = hmac.new(secret, signed_part.encode(), hashlib.sha256).digest()
    return f"{signed_part}.{_b64(signature)}"


def verify_legacy(token: str, secrets: Mapping[str, bytes]) -> dict[str, Any]:
    """The payload of a valid ``hs1.`` token (signature checked, claims not); ``InvalidTokenError``."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidTokenError("malformed token")
    try:
        payload = orjson.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidTokenError("malformed token") from None
    if not isinstance(payload, dict):
        raise InvalidTokenError("malformed token")
    kid = payload.get("kid")
    if not isinstance(kid, str) or kid not in secrets:
        raise InvalidTokenError("unknown key")
    expected = hmac.new(secrets[kid], f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidTokenError("bad signature")
    return payload
