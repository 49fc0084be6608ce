"""An in-process producer app (fake publisher) behind an httpx client, for the API unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from homesec_producer.app import build_app
from homesec_producer.auth import TokenAuthority
from homesec_producer.service import Runtime
from prometheus_client import CollectorRegistry

from .fakes import FakePublisher
from .helpers import KEY, NOW, settings

AUTH = TokenAuthority({"k1": KEY.encode()})


def token(*homes: str) -> dict[str, str]:
    return {"authorization": f"Bearer {AUTH.issue('t', homes, NOW + timedelta(days=1))}"}


JSON = {"content-type": "application/json"}


class Api:
    def __init__(
        self, app: FastAPI, client: httpx.AsyncClient, pub: FakePublisher, reg: CollectorRegistry
    ) -> None:
        self.app, self.client, self.pub, self.registry = app, client, pub, reg

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.state.runtime
        return rt

    async def post(self, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/v1/readings", content=content, headers={**JSON, **(headers or {})})

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def started_api(overrides: dict[str, Any], pub: FakePublisher) -> AsyncIterator[Api]:
    registry = CollectorRegistry()
    app = build_app(settings(**overrides), publisher=pub, clock=lambda: NOW, registry=registry)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://producer") as client:
            api = Api(app, client, pub, registry)
            for _ in range(100):
                if api.runtime.ready:
                    break
                await asyncio.sleep(0.01)
            yield api
