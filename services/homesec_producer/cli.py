"""Issue bearer tokens (JWT) and generate signing keys.

Issue: ``python -m homesec_producer.cli --home H [--home H2 ...] [--ttl-days N]`` prints a JWT on
stdout. One ``--home``: a sensor token; several: a gateway token (both ``aud`` ``homesec-ingest``, for the
producer). ``--audience read`` issues a read token for the consumer's status API (the website, a resident's
app) for the ``--home`` homes; ``--audience read --role operator`` one that reads every home. It signs
with the private key of ``--private-key FILE`` (or ``HOMESEC_AUTH_PRIVATE_KEY_FILE``) under key ID
``--kid`` (ES256/EdDSA, production), else with the HS256 secrets of ``HOMESEC_PRODUCER_AUTH_KEYS``
(development).

Generate a key pair: ``python -m homesec_producer.cli genkey --kid k2 [--alg ES256|EdDSA]
--private-out k2.pem`` writes the private key (mode 0600; keep it with the token issuer, never in the
cluster) and prints ``{"k2": "<public key PEM>"}`` for ``HOMESEC_PRODUCER_AUTH_PUBLIC_KEYS``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from homesec_auth.errors import KeyConfigError
from homesec_auth.keys import ASYMMETRIC, SigningKey, generate_key_pair
from homesec_auth.tokens import INGEST_AUDIENCE, OPERATOR_ROLE, READ_AUDIENCE, TokenAuthority

_AUDIENCES = {"ingest": INGEST_AUDIENCE, "read": READ_AUDIENCE}


def authority_from_env() -> TokenAuthority:
    """An HS256 authority from ``HOMESEC_PRODUCER_AUTH_KEYS`` (development keys)."""
    raw = os.environ.get("HOMESEC_PRODUCER_AUTH_KEYS")
    if not raw:
        raise SystemExit(
            "HOMESEC_PRODUCER_AUTH_KEYS is not set (a JSON object {key_id: secret}); "
            "or pass --private-key FILE --kid KID"
        )
    try:
        keys = orjson.loads(raw)
    except orjson.JSONDecodeError:
        keys = None
    if not isinstance(keys, dict) or not keys:
        raise SystemExit("HOMESEC_PRODUCER_AUTH_KEYS must be a non-empty JSON object")
    try:
        return TokenAuthority(
            {str(k): str(v).encode() for k, v in keys.items()},
            os.environ.get("HOMESEC_PRODUCER_AUTH_SIGNING_KEY_ID"),
        )
    except KeyConfigError as exc:
        raise SystemExit(f"HOMESEC_PRODUCER_AUTH_KEYS: {exc}") from None


def authority_from_private_key(path: Path, kid: str | None) -> TokenAuthority:
    """An ES256/EdDSA authority signing with the private key in ``path`` under key ID ``kid``."""
    if not kid:
        raise SystemExit("--kid is required with --private-key (the key ID the producer knows it by)")
    try:
        return TokenAuthority(signing_key=SigningKey.from_pem(kid, path.read_bytes()))
    except (OSError, KeyConfigError) as exc:
        raise SystemExit(f"--private-key {path}: {exc}") from None


def _issue(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m homesec_producer.cli", description=__doc__)
    parser.add_argument("--home", action="append", default=[], help="home ID (repeat for a gateway token)")
    parser.add_argument(
        "--audience", choices=sorted(_AUDIENCES), default="ingest",
        help="ingest: POST readings to the producer (default); read: the consumer's status API",
    )  # fmt: skip
    parser.add_argument(
        "--role", choices=[OPERATOR_ROLE], help="with --audience read: read every home (no --home needed)"
    )
    parser.add_argument("--subject", default="", help="who the token is for (logged, not checked)")
    parser.add_argument("--ttl-days", type=float, default=365.0, help="validity in days (default 365)")
    parser.add_argument(
        "--private-key",
        type=Path,
        default=os.environ.get("HOMESEC_AUTH_PRIVATE_KEY_FILE"),
        help="PEM private key (ES256/EdDSA); default: HS256 from HOMESEC_PRODUCER_AUTH_KEYS",
    )
    parser.add_argument(
        "--kid", default=os.environ.get("HOMESEC_AUTH_KEY_ID"), help="key ID of --private-key"
    )
    args = parser.parse_args(argv)  # fmt: skip
    if args.role and args.audience != "read":
        parser.error("--role operator needs --audience read")
    if not args.home and not args.role:
        parser.error("--home is required (or --audience read --role operator)")
    authority = (
        authority_from_private_key(args.private_key, args.kid) if args.private_key else authority_from_env()
    )
    expires = datetime.now(UTC) + timedelta(days=args.ttl_days)
    subject = args.subject or _default_subject(args.home, args.audience, args.role)
    token = authority.issue(subject, args.home, expires, audience=_AUDIENCES[args.audience], role=args.role)
    sys.stdout.write(token + "\n")
    return 0


def _default_subject(homes: list[str], audience: str, role: str | None) -> str:
    if role:
        return role
    kind = "reader" if audience == "read" else "gateway"
    return homes[0] if len(homes) == 1 and audience == "ingest" else f"{kind}:{len(homes)}"


def _genkey(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m homesec_producer.cli genkey")
    parser.add_argument("--kid", required=True, help="key ID (unique; e.g. the date: es-2027-01)")
    parser.add_argument("--alg", choices=ASYMMETRIC, default="ES256")
    parser.add_argument("--private-out", type=Path, required=True, help="file for the private key (0600)")
    args = parser.parse_args(argv)
    private_pem, public_pem = generate_key_pair(args.alg)
    fd = os.open(args.private_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(private_pem)
    sys.stdout.write(orjson.dumps({args.kid: public_pem}).decode() + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["genkey"]:
        return _genkey(args[1:])
    return _issue(args)


if __name__ == "__main__":
    raise SystemExit(main())
