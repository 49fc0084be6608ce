"""The simulator's warm-up (every gateway once, one reading per home, not counted) and stable tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp import web
from homesec_devstack.simulator import Fleet, SimulatorConfig, run_load

from .helpers import KEY
from .standin import serving


class Recorder:
    def __init__(self, refuse: bool = False) -> None:
        self.posts: list[tuple[str, list[str]]] = []  # (token, home IDs of the body)
        self.refuse = refuse

    async def post(self, request: web.Request) -> web.Response:
        homes = [r["home_id"] for r in orjson.loads(await request.read())["readings"]]
        self.posts.append((request.headers["authorization"], homes))
        if self.refuse:
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"accepted": len(homes)}, status=202)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    fake = Recorder()
    async with serving(fake.post) as url:
        yield fake, url


def config(url: str, **over: object) -> SimulatorConfig:
    values: dict[str, object] = {"urls": [url], "auth_keys": {"k1": KEY}, "homes": 9, "rate": 10,
                                 "duration": 0.05, "readings_per_request": 4,
                                 "homes_per_request": 3}  # fmt: skip
    values.update(over)
    return SimulatorConfig(**values)  # type: ignore[arg-type]


async def test_warm_up_posts_every_gateway_once_with_each_home_and_is_not_counted(
    recorder: tuple[Recorder, str],
) -> None:
    fake, url = recorder
    result = await run_load(config(url, warm_up=True))
    warm, timed = fake.posts[:3], fake.posts[3:]
    assert sorted(homes for _, homes in warm) == [
        ["home-000000", "home-000001", "home-000002"],
        ["home-000003", "home-000004", "home-000005"],
        ["home-000006", "home-000007", "home-000008"],
    ]
    assert len({token for token, _ in warm}) == 3
    assert result.requests == len(timed) >= 1 and result.readings == 4 * len(timed)
    assert {token for token, _ in timed} <= {token for token, _ in warm}


async def test_without_warm_up_only_the_timed_load_is_sent(recorder: tuple[Recorder, str]) -> None:
    fake, url = recorder
    result = await run_load(config(url))
    assert len(fake.posts) == result.requests and all(len(homes) == 4 for _, homes in fake.posts)


async def test_a_refused_warm_up_fails_the_run() -> None:
    fake = Recorder(refuse=True)
    async with serving(fake.post) as url:
        with pytest.raises(RuntimeError, match="warm-up: the producer answered 401"):
            await run_load(config(url, warm_up=True))


def test_the_same_issue_time_gives_the_same_tokens() -> None:
    at = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    one, two = Fleet(config("http://x", issued_at=at)), Fleet(config("http://x", issued_at=at))
    later = Fleet(config("http://x", issued_at=datetime(2026, 12, 5, 8, 1, tzinfo=UTC)))
    assert one.tokens == two.tokens and not set(one.tokens) & set(later.tokens)
