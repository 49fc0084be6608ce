"""An in-process producer app (fake publisher) behind an httpx client, for the API unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from homesec_producer.auth import TokenAuthority
from homesec_producer.compose import ProducerApps, build_app
from homesec_producer.ingest import Runtime
from prometheus_client import CollectorRegistry

from .fakes import FakePublisher
from .helpers import KEY, NOW, settings

AUTH = TokenAuthority({"k1": KEY.encode()})


def token(*homes: str) -> dict[str, str]:
    return {"authorization": f"Bearer {AUTH.issue('t', homes, NOW + timedelta(days=1))}"}


JSON = {"content-type": "application/json"}


class Api:
    """``client``: the API port; ``admin``: the admin port (probes, metrics, docs)."""

    def __init__(
        self, apps: ProducerApps, client: httpx.AsyncClient, admin: httpx.AsyncClient, pub: FakePublisher,
        reg: CollectorRegistry,
    ) -> None:  # fmt: skip
        self.apps, self.client, self.admin, self.pub, self.registry = apps, client, admin, pub, reg

    @property
    def app(self) -> FastAPI:
        return self.apps.api

    @property
    def runtime(self) -> Runtime:
        return self.apps.runtime

    async def post(self, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/v1/readings", content=content, headers={**JSON, **(headers or {})})

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def started_api(overrides: dict[str, Any], pub: FakePublisher) -> AsyncIterator[Api]:
    registry = CollectorRegistry()
    apps = build_app(settings(**overrides), publisher=pub, clock=lambda: NOW, registry=registry)
    async with apps.api.router.lifespan_context(apps.api):
        transport = httpx.ASGITransport(app=apps.api)
        admin_transport = httpx.ASGITransport(app=apps.admin)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://producer") as client,
            httpx.AsyncClient(transport=admin_transport, base_url="http://producer-admin") as admin,
        ):
            api = Api(apps, client, admin, pub, registry)
            for _ in range(100):
                if api.runtime.ready:
                    break
                await asyncio.sleep(0.01)
            yield api
