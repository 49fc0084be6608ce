"""Token errors: one base (``TokenError``) and flat subclasses carrying data.

Every verification failure is an ``AuthError`` with a bounded ``reason`` (a metric label value); the HTTP
layers answer every 401 with the same text and log the reason. HTTP statuses are chosen by the services.
"""

from __future__ import annotations

# Bounded ``reason`` label values of the services' auth failure counters.
FAILURE_REASONS = (
    "missing", "too_large", "malformed", "unknown_key", "bad_signature", "algorithm", "claims",
    "audience", "expired", "not_yet_valid", "lifetime", "forbidden",
)  # fmt: skip

# The reason of each ``InvalidTokenError.why`` (the log text).
_REASON_OF_WHY = {
    "token too large": "too_large",
    "malformed token": "malformed",
    "unknown key": "unknown_key",
    "bad signature": "bad_signature",
    "algorithm not allowed for this key": "algorithm",
    "malformed claims": "claims",
    "wrong audience": "audience",
    "expired": "expired",
    "not yet valid": "not_yet_valid",
    "lifetime too long": "lifetime",
}


class TokenError(Exception):
    """Base of the token package's errors."""


class AuthError(TokenError):
    """Base of authentication/authorisation failures; ``reason`` is a value of ``FAILURE_REASONS``."""

    reason = "malformed"


class MissingTokenError(AuthError):
    """No bearer token (401)."""

    reason = "missing"


class InvalidTokenError(AuthError):
    """A token that is too large, malformed, does not verify, is for another audience or expired (401).

    ``why`` is one of a fixed set of short texts (logged, never sent to the client)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
        self.reason = _REASON_OF_WHY.get(why, "malformed")


class ForbiddenHomesError(AuthError):
    """The token is valid but not for these homes (403)."""

    reason = "forbidden"

    def __init__(self, homes: list[str]) -> None:
        super().__init__(f"token not valid for {len(homes)} home(s)")
        self.homes = homes


class KeyConfigError(TokenError):
    """A configured token key that cannot be used (not PEM, unsupported type, clashing key ID)."""

    def __init__(self, kid: str, why: str) -> None:
        super().__init__(f"key {kid!r}: {why}")
        self.kid = kid
        self.why = why
