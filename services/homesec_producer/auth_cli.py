"""Issue bearer tokens: ``python -m homesec_producer.auth_cli --home H [--home H2 ...] [--ttl-days N]``.

Reads the signing keys from ``HOMESEC_PRODUCER_AUTH_KEYS`` (the same Secret the service uses) and prints
the token on stdout. One ``--home``: a sensor token; several: a gateway token.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson

from homesec_producer.auth import TokenAuthority


def authority_from_env() -> TokenAuthority:
    raw = os.environ.get("HOMESEC_PRODUCER_AUTH_KEYS")
    if not raw:
        raise SystemExit("HOMESEC_PRODUCER_AUTH_KEYS is not set (a JSON object {key_id: secret})")
    keys = orjson.loads(raw)
    if not isinstance(keys, dict) or not keys:
        raise SystemExit("HOMESEC_PRODUCER_AUTH_KEYS must be a non-empty JSON object")
    return TokenAuthority(
        {str(k): str(v).encode() for k, v in keys.items()},
        os.environ.get("HOMESEC_PRODUCER_AUTH_SIGNING_KEY_ID"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m homesec_producer.auth_cli", description=__doc__)
    parser.add_argument("--home", action="append", required=True, help="home ID (repeat for a gateway token)")
    parser.add_argument("--subject", default="", help="who the token is for (logged, not checked)")
    parser.add_argument("--ttl-days", type=float, default=365.0, help="validity in days (default 365)")
    args = parser.parse_args(argv)
    expires = datetime.now(UTC) + timedelta(days=args.ttl_days)
    subject = args.subject or (args.home[0] if len(args.home) == 1 else f"gateway:{len(args.home)}")
    sys.stdout.write(authority_from_env().issue(subject, args.home, expires) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
