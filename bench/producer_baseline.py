"""Baseline for the producer benchmark: a bare ASGI app that reads and parses the same bodies and answers
202 with the same response shape, publishing nothing. ``python bench/producer_baseline.py --port P``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    doc: dict[str, Any] = {"status": "ok"}
    status = 200
    if scope["path"] == "/v1/readings":
        readings = orjson.loads(b"".join(chunks))["readings"]
        ids = [r.get("reading_id") for r in readings]
        status, doc = 202, {"accepted": len(ids), "reading_ids": ids}
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": orjson.dumps(doc)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
