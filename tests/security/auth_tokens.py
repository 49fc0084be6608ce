"""Tokens minted with PyJWT directly (not with the code under test), for the security tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import jwt

KID = "sec"
SECRET = "security-test-key-0123456789abcdef"
KEYS_JSON = json.dumps({KID: SECRET})
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
HOUR = 3600


def mint(homes: Iterable[str], *, now: datetime = NOW, ttl: int = HOUR, **claims: Any) -> str:
    """An HS256 JWT signed with ``SECRET`` under ``KID``; ``claims`` add to (or, as None, drop) the base."""
    base: dict[str, Any] = {"sub": "t", "homes": sorted(homes), "iat": int(now.timestamp())}
    base["exp"] = base["iat"] + ttl
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, "HS256", headers={"kid": KID})


def ingest(*homes: str, now: datetime = NOW) -> str:
    return mint(homes, now=now, aud="homesec-ingest")


def read(*homes: str, now: datetime = NOW, **claims: Any) -> str:
    return mint(homes, now=now, aud="homesec-read", **claims)


def operator(now: datetime = NOW) -> str:
    return mint([], now=now, aud="homesec-read", role="operator")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def legacy(home: str, exp: int, kid: str = KID, secret: str = SECRET) -> str:
    """A valid deprecated ``hs1.`` token for ``home``."""
    payload = json.dumps({"kid": kid, "sub": "s", "homes": [home], "exp": exp}, separators=(",", ":"))
    signed = f"hs1.{_b64(payload.encode())}"
    return f"{signed}.{_b64(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest())}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class _RealNowTokens:
    """Tokens for a process that runs on the real clock: ``REAL_NOW_TOKENS()`` mints a fresh set."""

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def __call__(self) -> dict[str, str]:
        now = self.now()
        return {
            "ingest": ingest("home-1", now=now),
            "read_other": read("home-2", now=now),
            "operator": operator(now),
        }


REAL_NOW_TOKENS = _RealNowTokens()
