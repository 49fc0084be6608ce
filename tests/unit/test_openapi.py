"""Both services' ``/openapi.json`` (served by the admin apps): every response of every route has a schema,
every description is plain Markdown, and real answers fit the documented models."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from homesec_consumer import api_docs as consumer_docs
from homesec_consumer.admin import create_admin_app
from homesec_producer import api_docs as producer_docs
from homesec_producer.compose import build_app
from homesec_runtime.openapi import descriptions, markdown
from prometheus_client import CollectorRegistry

from .consumer.test_api import READ, app_for, filled_store
from .producer.helpers import settings

RST = ("``", ":class:", ":func:", ":meth:", ":mod:")


async def _openapi(admin: FastAPI) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin), base_url="http://a") as client:
        resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.json()
    return doc


def _resolved(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _check(doc: dict[str, Any], expected: dict[str, set[str]]) -> None:
    routes = {
        f"{method.upper()} {path}": op for path, ops in doc["paths"].items() for method, op in ops.items()
    }
    assert set(routes) == set(expected)
    for name, op in routes.items():
        assert op.get("description"), name
        assert expected[name] <= set(op["responses"]), name
        for status, response in op["responses"].items():
            assert response.get("description"), (name, status)
            schema = response["content"]["application/json"]["schema"]
            assert _resolved(doc, schema), (name, status)  # not {}
    bad = [text for text in descriptions(doc) if any(mark in text for mark in RST)]
    assert bad == []


async def test_the_producer_documents_every_answer() -> None:
    apps = build_app(settings())
    doc = await _openapi(apps.admin)
    statuses = {"202", "400", "401", "403", "408", "413", "415", "422", "429", "503"}
    _check(doc, {"POST /v1/readings": statuses})
    responses = doc["paths"]["/v1/readings"]["post"]["responses"]
    assert _resolved(doc, responses["202"]["content"]["application/json"]["schema"])["required"] == [
        "accepted", "reading_ids",
    ]  # fmt: skip
    assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]


async def test_the_consumer_documents_every_answer_and_answers_as_documented() -> None:
    proc, store, registry = await filled_store()
    api = app_for(proc, store, registry)
    doc = await _openapi(create_admin_app(api, CollectorRegistry(), lambda: True))
    errors = {"401", "403", "404", "503"}
    _check(doc, {
        "GET /v1/homes/{home_id}/status": {"200", "421", *errors},
        "GET /v1/homes/{home_id}/history": {"200", *errors},
    })  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as client:
        status = await client.get("/v1/homes/h1/status", headers=READ)
        history = await client.get("/v1/homes/h1/history", params={"hours": 3}, headers=READ)
        unknown = await client.get("/v1/homes/nobody/status", headers=READ)
    consumer_docs.Status.model_validate(status.json(), strict=True)
    assert set(status.json()) <= set(consumer_docs.Status.model_json_schema(by_alias=True)["properties"])
    consumer_docs.History.model_validate(history.json(), strict=True)
    consumer_docs.Detail.model_validate(unknown.json(), strict=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("``POST /v1/readings`` and its error mapping.", "`POST /v1/readings` and its error mapping."),
        ("See :class:`ReadingIn` and :func:`~homesec_domain.validation.parse`.",
         "See `ReadingIn` and `homesec_domain.validation.parse`."),
        ("already `Markdown`", "already `Markdown`"),
    ],
)  # fmt: skip
def test_restructured_text_becomes_markdown(text: str, expected: str) -> None:
    assert markdown(text) == expected


def test_the_producer_models_read_its_answers() -> None:
    producer_docs.Accepted.model_validate(
        {"accepted": 1, "reading_ids": ["0b8e2f7e-2f0e-4f7e-9c57-1d3c8e0c9a10"]}
    )
    producer_docs.NotAcknowledged.model_validate({"error": "shed", "detail": "buffer full"})
