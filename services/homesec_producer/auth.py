"""The producer's bearer tokens: ``homesec_auth.tokens`` (shared with the consumer), re-exported.

The producer accepts ingest tokens only (``aud`` ``homesec-ingest``, or none); docs/producer.md#tokens.
Operators issue tokens and generate keys with ``python -m homesec_producer.cli``.
"""

from __future__ import annotations

from homesec_auth.tokens import (
    INGEST_AUDIENCE,
    OPERATOR_ROLE,
    READ_AUDIENCE,
    TokenAuthority,
    TokenScope,
    bearer_token,
)

__all__ = [
    "INGEST_AUDIENCE",
    "OPERATOR_ROLE",
    "READ_AUDIENCE",
    "TokenAuthority",
    "TokenScope",
    "bearer_token",
]
