"""``make token``: the key ``make run`` keeps in its data directory mints tokens the services accept."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from homesec_auth.tokens import INGEST_AUDIENCE, READ_AUDIENCE, TokenAuthority
from homesec_devstack import devtoken

KEY = "k" * 32
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_key_is_kept_for_its_owner_only(tmp_path: Path) -> None:
    path = devtoken.save_key(tmp_path / "stack", KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert devtoken.load_key(tmp_path / "stack") == KEY


@pytest.mark.parametrize("audience", ["ingest", "read"])
def test_a_minted_token_is_valid_for_the_home_and_audience_for_7_days(audience: str) -> None:
    token = devtoken.mint(KEY, "home-000123", audience, now=NOW)
    authority = TokenAuthority({"dev": KEY.encode()})
    wanted = READ_AUDIENCE if audience == "read" else INGEST_AUDIENCE
    scope = authority.verify(token, NOW + timedelta(days=6), wanted)
    assert scope.homes == {"home-000123"}
    other = INGEST_AUDIENCE if audience == "read" else READ_AUDIENCE
    with pytest.raises(Exception, match="audience"):
        authority.verify(token, NOW, other)
    with pytest.raises(Exception, match="expired"):
        authority.verify(token, NOW + timedelta(days=8), wanted)


def test_keep_data_reuses_the_previous_key_else_a_new_one(tmp_path: Path) -> None:
    devtoken.save_key(tmp_path, KEY)
    assert devtoken.signing_key(tmp_path, keep=True) == KEY
    fresh = devtoken.signing_key(tmp_path, keep=False)
    assert fresh != KEY and len(fresh) >= 32
    assert devtoken.signing_key(tmp_path / "none", keep=True) != KEY


def test_the_cli_prints_a_token_or_says_to_start_the_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert devtoken.main(["home-000123", "--data-dir", str(tmp_path)]) == 2
    assert "start the stack first (make run)" in capsys.readouterr().err
    devtoken.save_key(tmp_path, KEY)
    assert devtoken.main(["home-000123", "--audience", "read", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    scope = TokenAuthority({"dev": KEY.encode()}).verify(token, datetime.now(UTC), READ_AUDIENCE)
    assert scope.homes == {"home-000123"}
