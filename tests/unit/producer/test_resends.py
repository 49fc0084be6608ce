"""Per-reading acknowledgement and idempotent resends through the app (fake publisher, one partition held).

The batch has readings of a home whose partition answers and of one whose partition is held: after the
deadline the answer is 503 with the first home's readings ``acknowledged``. A resend (the whole batch, as an
old client does, or only ``unacknowledged``) must not publish an acknowledged reading a second time.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from typing import Any

import pytest
from homesec_domain.partitioning import partition_for
from homesec_producer.buffer import Slot, Ticket

from tests.waits import eventually

from .apiclient import Api, token
from .helpers import body, reading

IDS = ["0", "1", "2", "3"]  # FakePublisher(partitions=4)
HOME_OK = "home-1"
HOME_HELD = next(
    f"home-{i}" for i in range(2, 100) if partition_for(f"home-{i}", IDS) != partition_for(HOME_OK, IDS)
)
HELD = partition_for(HOME_HELD, IDS)
FAST = {"request_deadline_seconds": 0.3}


def batch(n: int = 3) -> list[dict[str, Any]]:
    return [
        reading(home, sensor=f"s-{i}", seq=i, reading_id=str(uuid.uuid4()))
        for home in (HOME_OK, HOME_HELD)
        for i in range(n)
    ]


def ids_of(readings: list[dict[str, Any]], home: str | None = None) -> list[str]:
    return [r["reading_id"] for r in readings if home is None or r["home_id"] == home]


async def partly_acknowledged(api: Api, readings: list[dict[str, Any]]) -> dict[str, Any]:
    """POST with the second home's partition held: 503, the first home's readings acknowledged."""
    api.pub.hold(HELD)
    resp = await api.post(body(*readings), token(HOME_OK, HOME_HELD))
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "2"
    doc: dict[str, Any] = resp.json()
    assert doc["error"] == "deadline"
    assert doc["acknowledged"] == ids_of(readings, HOME_OK)
    assert doc["unacknowledged"] == ids_of(readings, HOME_HELD)
    return doc


@pytest.mark.parametrize("api", [FAST], indirect=True)
async def test_whole_batch_resend_publishes_no_acknowledged_reading_twice(api: Api) -> None:
    readings = batch()
    await partly_acknowledged(api, readings)
    resend = asyncio.create_task(api.post(body(*readings), token(HOME_OK, HOME_HELD)))  # an old client
    joined = 'homesec_producer_resends_total{outcome="joined_in_flight"} == 3'
    await eventually(
        lambda: api.metric("homesec_producer_resends_total", outcome="joined_in_flight") == 3, 5, joined
    )
    api.pub.release(HELD)  # the pending send completes; the resend joined it
    resp = await resend
    assert resp.status_code == 202, resp.text
    assert resp.json()["reading_ids"] == ids_of(readings)
    published = api.pub.ids_published()
    assert sorted(published) == sorted(ids_of(readings))  # each exactly once
    assert api.metric("homesec_producer_resends_total", outcome="acknowledged") == 3
    assert api.metric("homesec_producer_resends_total", outcome="joined_in_flight") == 3
    assert api.metric("homesec_producer_readings_acknowledged_total") == 3 + 6
    assert api.metric("homesec_producer_readings_rejected_total", reason="deadline") == 3


@pytest.mark.parametrize("api", [FAST], indirect=True)
async def test_resending_only_the_unacknowledged_after_the_send_completed(api: Api) -> None:
    readings = batch()
    doc = await partly_acknowledged(api, readings)
    api.pub.release(HELD)  # nobody waits any more, but the send was under way: it completes
    await eventually(lambda: len(api.pub.ids_published()) == len(readings), 5, "the held send completed")
    rest = [r for r in readings if r["reading_id"] in set(doc["unacknowledged"])]
    resp = await api.post(body(*rest), token(HOME_HELD))
    assert resp.status_code == 202, resp.text
    assert sorted(api.pub.ids_published()) == sorted(ids_of(readings))
    assert api.metric("homesec_producer_resends_total", outcome="acknowledged") == 3
    assert api.metric("homesec_producer_ack_table_entries", state="acknowledged") == 6
    assert api.metric("homesec_producer_ack_table_entries", state="in_flight") == 0


@pytest.mark.parametrize("api", [{**FAST, "idempotency_max_readings": 0}], indirect=True)
async def test_without_the_table_a_whole_batch_resend_publishes_twice(api: Api) -> None:
    """Negative control: the same steps with the table off (the behaviour before it) duplicate."""
    readings = batch()
    await partly_acknowledged(api, readings)
    api.pub.release(HELD)
    await eventually(lambda: len(api.pub.ids_published()) == len(readings), 5, "the held send completed")
    resp = await api.post(body(*readings), token(HOME_OK, HOME_HELD))
    assert resp.status_code == 202
    assert len(api.pub.ids_published()) == 12  # the held home's readings: in-flight send + resend


@pytest.mark.parametrize("api", [FAST], indirect=True)
async def test_the_key_includes_the_home(api: Api) -> None:
    """A reading ID acknowledged for one home says nothing about another home's reading."""
    rid = str(uuid.uuid4())
    assert (await api.post(body(reading(HOME_OK, reading_id=rid)), token(HOME_OK))).status_code == 202
    resp = await api.post(body(reading(HOME_HELD, reading_id=rid)), token(HOME_HELD))
    assert resp.status_code == 202
    assert [(pid in IDS, r.home_id) for pid, r in api.pub.published] == [(True, HOME_OK), (True, HOME_HELD)]
    assert api.metric("homesec_producer_resends_total", outcome="acknowledged") == 0


@pytest.mark.parametrize("api", [{**FAST, "buffer_capacity_readings": 3}], indirect=True)
async def test_full_buffer_answer_lists_what_was_already_acknowledged(api: Api) -> None:
    first = [reading(HOME_OK, seq=1, reading_id=str(uuid.uuid4()))]
    assert (await api.post(body(*first), token(HOME_OK))).status_code == 202
    api.pub.stall.clear()
    filler = asyncio.create_task(api.post(body(*batch(1)[:1] * 1, reading(seq=9)), token(HOME_OK)))
    await eventually(lambda: any(api.pub.in_flight.values()), 5, "the filler's send stalled")
    more = [reading(HOME_OK, seq=i, reading_id=str(uuid.uuid4())) for i in (2, 3)]
    resp = await api.post(body(*first, *more), token(HOME_OK))
    assert resp.status_code == 429
    assert resp.json()["acknowledged"] == ids_of(first)
    assert resp.json()["unacknowledged"] == ids_of(more)
    api.pub.stall.set()
    assert (await filler).status_code == 202
    assert len(api.pub.ids_published()) == 3  # first + the two filler readings; nothing of the 429


async def test_answered_requests_leave_no_cycles_for_the_collector(api: Api) -> None:
    """A ticket and its slots point at each other until the request is answered; then reference counting
    frees them (and the request's bodies), not the cyclic collector."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            resp = await api.post(body(*batch()), token(HOME_OK, HOME_HELD))
            assert resp.status_code == 202
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, Slot | Ticket)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []


async def test_openapi_documents_the_per_reading_answer(api: Api) -> None:
    doc = (await api.admin.get("/openapi.json")).json()
    schema = doc["components"]["schemas"]["NotAcknowledged"]
    assert {"acknowledged", "unacknowledged"} <= set(schema["properties"])
    responses = doc["paths"]["/v1/readings"]["post"]["responses"]
    for status in ("429", "503"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/NotAcknowledged"
