"""DEPRECATED ``hs1.`` tokens (before JWT), verified only while a service turns them on.

Format: ``hs1.<payload>.<signature>``, both canonical base64url without padding (``b64``); the payload is
JSON ``{"kid", "sub", "homes", "exp"}``, the signature HMAC-SHA256 over ``hs1.<payload>`` with the HS256
secret ``kid`` of ``AUTH_KEYS``. The producer verifies them only when ``AUTH_ACCEPT_LEGACY_TOKENS`` is on
(off by default), as ingest tokens, under the same size, canonical-form and lifetime checks as a JWT.
``issue_legacy`` exists for tests and migration checks only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from homesec_auth import b64
from homesec_auth.errors import InvalidTokenError

PREFIX = "hs1"


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def is_legacy(token: str) -> bool:
    return token.startswith(f"{PREFIX}.")


def issue_legacy(secret: bytes, kid: str, subject: str, homes: Iterable[str], expires_at: datetime) -> str:
    payload = {"kid": kid, "sub": subject, "homes": sorted(set(homes)), "exp": int(expires_at.timestamp())}
    signed_part = f"{PREFIX}.{b64.encode(_json(payload))}"
    signature = hmac.new(secret, signed_part.encode(), hashlib.sha256).digest()
    return f"{signed_part}.{b64.encode(signature)}"


def verify_legacy(token: str, secrets: Mapping[str, bytes]) -> dict[str, Any]:
    """The payload of a valid ``hs1.`` token (signature checked, claims not); ``InvalidTokenError``."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidTokenError("malformed token")
    try:
        payload = json.loads(b64.decode(parts[1]))
        signature = b64.decode(parts[2])
    except (ValueError, RecursionError):  # not canonical base64url, not JSON, not UTF-8, too deep
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
