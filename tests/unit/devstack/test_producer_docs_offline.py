"""``/docs`` (on the admin port) works without internet: Swagger UI's assets come from the
producer, not a CDN."""

from __future__ import annotations

import re
from typing import Any

import httpx
from homesec_producer.compose import build_app
from homesec_producer.settings import ProducerSettings
from prometheus_client import CollectorRegistry

VALUES: dict[str, Any] = {
    "eventhub_connection_string": "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=a;SharedAccessKey=b;"
    "UseDevelopmentEmulator=true;EntityPath=telemetry",
    "auth_keys": {"k1": "x" * 32},
}


async def test_docs_page_references_only_local_assets_and_they_are_served() -> None:
    app = build_app(ProducerSettings(**VALUES), registry=CollectorRegistry()).admin
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://producer") as client:
        for page in ("/docs", "/redoc"):
            resp = await client.get(page)
            assert resp.status_code == 200
            urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", resp.text)
            assert urls, resp.text
            assert not [u for u in urls if "://" in u or u.startswith("//")], f"{page} loads from elsewhere"
            for url in urls:
                asset = await client.get(url)
                assert asset.status_code == 200, url
                assert asset.content, url
