"""Input the services must refuse: a body in another charset than UTF-8, a home ID that only matches up
to a trailing newline."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from homesec_domain.models import is_home_id

from tests.unit.consumer.fakes import MemoryRollupStore
from tests.unit.consumer.test_api import READ, app_for
from tests.unit.consumer.test_processor import make
from tests.unit.producer.apiclient import Api, started_api, token
from tests.unit.producer.fakes import FakePublisher
from tests.unit.producer.helpers import body, reading


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for started in started_api({}, FakePublisher()):
        yield started


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-16", "application/json; charset=UTF-16LE",
     "application/json;charset=latin1", 'application/json; charset="iso-8859-1"',
     "application/json; charset=", "application/json; charset=utf-8x"],
)  # fmt: skip
async def test_a_charset_other_than_utf8_is_415(api: Api, content_type: str) -> None:
    resp = await api.post(body(reading()), {**token("home-1"), "content-type": content_type})
    assert resp.status_code == 415, resp.text
    assert resp.json()["error"] == "unsupported_media_type"
    assert api.metric("homesec_producer_readings_rejected_total", reason="unsupported_media_type") == 1


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8",
     "application/json;charset=utf8", 'application/json; charset="utf-8"'],
)  # fmt: skip
async def test_utf8_or_no_charset_is_accepted(api: Api, content_type: str) -> None:
    resp = await api.post(body(reading()), {**token("home-1"), "content-type": content_type})
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("home", ["home-1\n", "home-1\r\n", "\nhome-1", "home-1\x00", "home 1", ""])
def test_home_ids_are_checked_with_a_full_match(home: str) -> None:
    assert not is_home_id(home)
    assert is_home_id("home-1") and is_home_id("A" * 64) and not is_home_id("A" * 65)


async def test_the_producer_refuses_a_home_id_with_a_newline(api: Api) -> None:
    resp = await api.post(orjson.dumps({"readings": [reading(home="home-1\n")]}), token("home-1\n"))
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize("path", ["home-1%0A", "home-1%0D%0A", "home-1%00"])
async def test_the_consumer_never_reads_a_blob_for_a_home_id_with_a_newline(path: str) -> None:
    store = MemoryRollupStore()
    # A blob whose name carries the newline: the read path must not reach it (the partition is not owned
    # here, so a valid home ID would be read from the durable state).
    store.blobs["homes/home-1\n/status.json"] = (b'{"home_id": "home-1\\n", "secret": true}', '"0x1"')
    proc, _, _, _, _ = make(store)
    proc.close_partition("0")
    app = app_for(proc, store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://c", headers=READ) as client:
        for route in ("status", "history"):
            resp = await client.get(f"/v1/homes/{path}/{route}")
            assert resp.status_code == 404, resp.text
    assert store.status_reads == 0
