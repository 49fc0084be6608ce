"""Token keys: ``homesec_auth.keys`` (shared with the consumer), re-exported."""

from __future__ import annotations

from homesec_auth.keys import (
    ASYMMETRIC,
    MIN_SECRET_BYTES,
    Algorithm,
    SigningKey,
    VerifyKey,
    generate_key_pair,
    hmac_verify_key,
    public_verify_key,
)

__all__ = [
    "ASYMMETRIC", "MIN_SECRET_BYTES", "Algorithm", "SigningKey", "VerifyKey", "generate_key_pair",
    "hmac_verify_key", "public_verify_key",
]  # fmt: skip
