"""DEPRECATED ``hs1.`` tokens: ``homesec_auth.legacy``, re-exported (off unless AUTH_ACCEPT_LEGACY_TOKENS)."""

from __future__ import annotations

from homesec_auth.legacy import PREFIX, is_legacy, issue_legacy, verify_legacy

__all__ = ["PREFIX", "is_legacy", "issue_legacy", "verify_legacy"]
