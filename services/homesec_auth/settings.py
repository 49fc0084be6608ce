"""The token-key settings both services share (``TokenKeySettings``, a pydantic-settings mixin).

A service's settings class derives from it and keeps its own ``env_prefix``, so the variables are
``<prefix>AUTH_KEYS``, ``<prefix>AUTH_PUBLIC_KEYS``, ``<prefix>AUTH_MAX_TOKEN_BYTES``,
``<prefix>AUTH_MAX_TOKEN_LIFETIME_SECONDS`` and ``<prefix>AUTH_VERIFIED_CACHE_BYTES``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from homesec_auth.keys import check_public_keys, check_secrets
from homesec_auth.tokens import (
    DEFAULT_MAX_LIFETIME_SECONDS,
    DEFAULT_MAX_TOKEN_BYTES,
    DEFAULT_VERIFIED_CACHE_BYTES,
    TokenAuthority,
)


class TokenKeySettings(BaseSettings):
    """The keys tokens are verified with, and the limits of the token check.

    The keys are checked as they are read (secrets long enough, public keys usable); whether there is a usable
    key set at all is ``token_key_problem``: a service's model validator raises it (``require_token_keys``)
    where its other checks want it, or its start-up refuses to run. ``keys_verify``: what the keys verify, as
    that message names it.
    """

    keys_verify: ClassVar[str] = "token"

    # At least one of: HS256 secrets {"key-id": "secret of >= 32 characters"} (development: whoever holds
    # them can mint tokens), and public keys {"key-id": "PEM"} (ES256 on P-256 or EdDSA on Ed25519: pods can
    # only verify). All verify; key IDs are unique.
    auth_keys: dict[str, SecretStr] = Field(default_factory=dict)
    auth_public_keys: dict[str, str] = Field(default_factory=dict)
    # A longer Authorization header or token is refused (401) before any decoding.
    auth_max_token_bytes: int = Field(default=DEFAULT_MAX_TOKEN_BYTES, ge=256, le=65_536)
    # Longest token lifetime accepted: ``exp - iat`` and ``exp - now`` above it are refused (401).
    auth_max_token_lifetime_seconds: float = Field(default=DEFAULT_MAX_LIFETIME_SECONDS, gt=0)
    # Verified tokens remembered (homesec_auth.cache) by SHA-256 digest, never their text: a token seen
    # again skips its signature check (its expiry is still checked). Bounded in estimated bytes (about
    # 700 a one-home token, 2.4 KB a 20-home gateway token; 16 MiB: about 20,000 one-home tokens). 0: off.
    auth_verified_cache_bytes: int = Field(default=DEFAULT_VERIFIED_CACHE_BYTES, ge=0, le=1 << 30)

    @field_validator("auth_keys")
    @classmethod
    def _secrets_long_enough(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        check_secrets({kid: key.get_secret_value() for kid, key in keys.items()})
        return keys

    @field_validator("auth_public_keys")
    @classmethod
    def _public_keys_usable(cls, keys: dict[str, str]) -> dict[str, str]:
        check_public_keys(keys)
        return keys

    def token_key_problem(self) -> str | None:
        """Why no token can be verified with these settings, or None."""
        prefix = str(self.model_config.get("env_prefix", "")).upper()
        if not self.auth_keys and not self.auth_public_keys:
            return (
                f"set {prefix}AUTH_PUBLIC_KEYS (JSON {{key id: public key PEM}}) or "
                f"{prefix}AUTH_KEYS (JSON {{key id: HS256 secret}}): no {self.keys_verify} can be verified"
            )
        shared = sorted(set(self.auth_keys) & set(self.auth_public_keys))
        if shared:
            return f"key IDs {shared} are in both {prefix}AUTH_KEYS and {prefix}AUTH_PUBLIC_KEYS"
        return None

    def require_token_keys(self) -> None:
        """``ValueError`` with ``token_key_problem``'s message when there is one (for a model validator)."""
        problem = self.token_key_problem()
        if problem:
            raise ValueError(problem)

    def token_authority(
        self, *, signing_kid: str | None = None, accept_legacy: bool = False
    ) -> TokenAuthority:
        """The verifier of tokens (``ValueError`` when ``token_key_problem`` says why not); ``signing_kid``
        and ``accept_legacy`` as ``TokenAuthority`` takes them."""
        self.require_token_keys()
        return TokenAuthority(
            {kid: key.get_secret_value().encode() for kid, key in self.auth_keys.items()},
            signing_kid,
            public_keys=self.auth_public_keys,
            accept_legacy=accept_legacy,
            verified_cache_bytes=self.auth_verified_cache_bytes,
            max_token_bytes=self.auth_max_token_bytes,
            max_lifetime_seconds=self.auth_max_token_lifetime_seconds,
        )
