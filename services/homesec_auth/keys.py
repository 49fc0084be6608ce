"""Token keys: which JWT algorithm each key ID verifies with, and key generation.

The algorithm of a key ID is fixed by its key's type, never taken from the token (no algorithm confusion):

- an HMAC secret (``AUTH_KEYS``) verifies and signs **HS256** (development: whoever can
  verify can also mint tokens);
- an EC P-256 public key (``AUTH_PUBLIC_KEYS``, PEM) verifies **ES256**, an Ed25519 one
  **EdDSA**. Their private keys stay with the token issuer, so a service pod cannot mint tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from homesec_auth.errors import KeyConfigError

Algorithm = Literal["HS256", "ES256", "EdDSA"]
ASYMMETRIC: tuple[Algorithm, ...] = ("ES256", "EdDSA")
MIN_SECRET_BYTES = 32

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """One key ID's verification key and the only algorithm it accepts."""

    kid: str
    algorithm: Algorithm
    key: bytes | PublicKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The key an issuer signs with (an HMAC secret, or an EC P-256 / Ed25519 private key)."""

    kid: str
    algorithm: Algorithm
    key: bytes | PrivateKey

    @classmethod
    def hmac(cls, kid: str, secret: bytes) -> SigningKey:
        return cls(kid, "HS256", secret)

    @classmethod
    def from_pem(cls, kid: str, pem: str | bytes) -> SigningKey:
        """A private key in PEM (PKCS#8 or SEC1); ``KeyConfigError`` if it is not EC P-256 or Ed25519."""
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyConfigError(kid, f"not an unencrypted PEM private key ({exc})") from None
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return cls(kid, "EdDSA", key)
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(kid, "ES256", key)
        raise KeyConfigError(kid, "unsupported key type (use EC P-256 for ES256 or Ed25519 for EdDSA)")

    def verify_key(self) -> VerifyKey:
        """The matching verification key (the public half of an asymmetric key)."""
        if isinstance(self.key, bytes):
            return VerifyKey(self.kid, self.algorithm, self.key)
        return VerifyKey(self.kid, self.algorithm, self.key.public_key())


def hmac_verify_key(kid: str, secret: bytes) -> VerifyKey:
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyConfigError(kid, f"HS256 secret shorter than {MIN_SECRET_BYTES} bytes")
    return VerifyKey(kid, "HS256", secret)


def public_verify_key(kid: str, pem: str | bytes) -> VerifyKey:
    """A public key in PEM (SubjectPublicKeyInfo); ``KeyConfigError`` unless EC P-256 or Ed25519."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyConfigError(kid, "not a PEM public key (SubjectPublicKeyInfo)") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return VerifyKey(kid, "EdDSA", key)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return VerifyKey(kid, "ES256", key)
    raise KeyConfigError(kid, "unsupported key type (use EC P-256 for ES256 or Ed25519 for EdDSA)")


def generate_key_pair(algorithm: Algorithm) -> tuple[str, str]:
    """A new ``(private PEM (PKCS#8), public PEM)`` for ES256 (P-256) or EdDSA (Ed25519)."""
    private: PrivateKey
    if algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"no key pair for {algorithm}: use an HMAC secret")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem.decode(), public_pem.decode()


def check_secrets(secrets: Mapping[str, str]) -> None:
    """``ValueError`` naming the key IDs whose HS256 secret is too short (a settings validator's rule)."""
    short = sorted(kid for kid, secret in secrets.items() if len(secret) < MIN_SECRET_BYTES)
    if short:
        raise ValueError(f"the secret of key ID(s) {short} is shorter than {MIN_SECRET_BYTES} characters")


def check_public_keys(public_keys: Mapping[str, str]) -> None:
    """``ValueError`` for the first public key that cannot verify (a settings validator's rule)."""
    for kid, pem in public_keys.items():
        try:
            public_verify_key(kid, pem)
        except KeyConfigError as exc:
            raise ValueError(str(exc)) from None
