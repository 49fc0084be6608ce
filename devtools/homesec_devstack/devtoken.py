"""Tokens for ``make run``'s stack, and the ready-to-paste ``curl`` commands it prints with them.

``make run`` writes its token-signing key to ``<data dir>/dev-signing-key`` (mode 0600) and prints how to
mint a token with it: ``make token HOME=home-000123 [AUDIENCE=read]``, which runs
``python -m homesec_devstack.devtoken home-000123 [--audience read] [--data-dir .cache/stack]`` and prints
the token (valid 7 days). ``--audience ingest`` (the default) POSTs readings for the home to the producer;
``--audience read`` reads its status and history from the consumer. Dev and test only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from homesec_auth.tokens import INGEST_AUDIENCE, READ_AUDIENCE, TokenAuthority

KEY_FILE = "dev-signing-key"
KEY_ID = "dev"
VALID_FOR = timedelta(days=7)
AUDIENCES = {"ingest": INGEST_AUDIENCE, "read": READ_AUDIENCE}


class NoDevKeyError(Exception):
    """The data directory holds no key: ``make run`` has not started there."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no dev signing key at {path}: start the stack first (make run)")
        self.path = path


def save_key(data_dir: Path, key: str) -> Path:
    """Write ``key`` to ``data_dir``'s key file, readable by its owner only."""
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return path


def load_key(data_dir: Path) -> str:
    """The key ``make run`` keeps in ``data_dir``; ``NoDevKeyError`` when there is none."""
    path = data_dir / KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise NoDevKeyError(path) from None


def mint(key: str, home: str, audience: str = "ingest", now: datetime | None = None) -> str:
    """A token for ``home`` and ``audience`` (``ingest`` or ``read``), valid 7 days from ``now``."""
    expires = (now or datetime.now(UTC)) + VALID_FOR
    subject = f"make-run-{audience}"
    return TokenAuthority({KEY_ID: key.encode()}).issue(
        subject, [home], expires, issued_at=now, audience=AUDIENCES[audience]
    )


def signing_key(data_dir: Path, keep: bool) -> str:
    """With ``keep`` (``--keep-data``), the key the previous run left in ``data_dir`` (its tokens stay valid);
    otherwise, or without one, a new key."""
    if keep:
        try:
            return load_key(data_dir)
        except NoDevKeyError:
            pass
    return secrets.token_urlsafe(24)


def curl_example(producer_url: str, auth_key: str, home: str = "home-000001") -> str:
    """A ready-to-paste ``curl`` that POSTs one reading for ``home`` with a token valid for 7 days
    (signed with this run's key); the reading's timestamp is taken by the shell when it runs."""
    token = mint(auth_key, home, "ingest")
    body_head = (
        f'{{"readings":[{{"home_id":"{home}","sensor_id":"door-1","sensor_type":"door","state":"open","ts":"'
    )
    body_tail = '"}]}'
    return (
        f"curl -sS -X POST {producer_url}/v1/readings -H 'content-type: application/json'"
        f" -H {shlex.quote('authorization: Bearer ' + token)}"
        f" -d '{body_head}'\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"'{body_tail}'"
    )


def read_token(auth_key: str, home: str = "home-000001") -> str:
    """A read token for ``home`` (the consumer's status API), valid 7 days, signed with this run's key."""
    return mint(auth_key, home, "read")


def status_curls(consumer_url: str, auth_key: str, home: str = "home-000001") -> list[str]:
    """Ready-to-paste ``curl`` commands reading ``home``'s status and history with a read token."""
    header = shlex.quote(f"authorization: Bearer {read_token(auth_key, home)}")
    return [
        f"curl -sS -H {header} {consumer_url}/v1/homes/{home}/status",
        f"curl -sS -H {header} '{consumer_url}/v1/homes/{home}/history?hours=24'",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make token", description=__doc__.split("\n\n")[0])
    p.add_argument("home", help="the home the token is for, e.g. home-000123")
    p.add_argument("--audience", choices=sorted(AUDIENCES), default="ingest")
    p.add_argument("--data-dir", type=Path, default=Path(".cache/stack"), help="make run's --data-dir")
    args = p.parse_args(argv)
    try:
        key = load_key(args.data_dir)
    except NoDevKeyError as exc:
        print(f"make token: {exc}", file=sys.stderr)
        return 2
    print(mint(key, args.home, args.audience))
    return 0


if __name__ == "__main__":
    sys.exit(main())
