"""The emulator process: the AMQP listener, request dispatch and the HTTP admin endpoint."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from homesec_devstack.emulator import codec
from homesec_devstack.emulator.broker import AckCallback, Broker, HubExistsError
from homesec_devstack.emulator.connection import AmqpConnection, Session
from homesec_devstack.emulator.links import IncomingLink, ReplyLink
from homesec_devstack.emulator.management import handle_cbs, handle_management
from homesec_devstack.emulator.throttle import ThroughputLimiter
from homesec_devstack.emulator.websocket import WS_PATH, serve_websocket

LOG = logging.getLogger("homesec.emulator")
PARTITION_KEY = b"x-opt-partition-key"


def partition_key(message: bytes) -> bytes | None:
    for code, start, _end in codec.sections(message):
        if code == 0x72:
            value = (codec.decode_section_value(message, start) or {}).get(PARTITION_KEY)
            if value is None:
                return None
            return value if isinstance(value, bytes) else str(value).encode()
    return None


class EmulatorServer:
    def __init__(
        self,
        data_dir: Path,
        hubs: dict[str, int],
        consumer_groups: list[str],
        limiter: ThroughputLimiter,
        sas_keys: dict[str, str] | None = None,
        fsync: bool = False,
    ) -> None:
        self.broker = Broker(data_dir, hubs, consumer_groups, limiter, fsync)
        self.sas_keys = sas_keys
        self.connections: set[AmqpConnection] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._admin: web.AppRunner | None = None
        self._websocket: web.AppRunner | None = None
        self.websocket_connections_total = 0

    # --- AMQP ---------------------------------------------------------------------------------------
    async def start(
        self,
        host: str,
        port: int,
        admin_port: int | None,
        ws_port: int | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        tls_port: int | None = None,
        wss_port: int | None = None,
    ) -> None:
        """Listen for AMQP on ``port`` and, when given, AMQP over WebSocket (``ws_port``), AMQP over TLS
        (``tls_port``) and AMQP over WebSocket over TLS (``wss_port``); both TLS ones need ``tls``."""
        if tls is None and (tls_port is not None or wss_port is not None):
            raise ValueError("tls_port and wss_port need a TLS context")
        loop = asyncio.get_running_loop()
        self._servers.append(
            await loop.create_server(lambda: AmqpConnection(self), host, port, reuse_address=True)
        )
        if tls_port is not None:
            self._servers.append(await loop.create_server(
                lambda: AmqpConnection(self), host, tls_port, reuse_address=True, ssl=tls
            ))  # fmt: skip
        if admin_port is not None:
            self._admin = await self._site(self.admin_app(), [(host, admin_port, None)])
        ws_sites = [(host, p, ctx) for p, ctx in ((ws_port, None), (wss_port, tls)) if p is not None]
        if ws_sites:
            self._websocket = await self._site(self.websocket_app(), ws_sites)
        LOG.info(
            "Event Hubs emulator listening on amqp://%s:%d, amqps %s, ws %s, wss %s (path %s), admin %s",
            host, port, tls_port, ws_port, wss_port, WS_PATH, admin_port,
        )  # fmt: skip

    @staticmethod
    async def _site(
        app: web.Application, sites: list[tuple[str, int, ssl.SSLContext | None]]
    ) -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for host, port, context in sites:
            await web.TCPSite(runner, host, port, ssl_context=context).start()
        return runner

    def websocket_app(self) -> web.Application:
        """AMQP over WebSocket on the path the SDK uses; the same connections as the TCP listener."""

        def connection() -> AmqpConnection:
            self.websocket_connections_total += 1
            return AmqpConnection(self)

        async def upgrade(request: web.Request) -> web.StreamResponse:
            return await serve_websocket(request, connection)

        app = web.Application()
        app.router.add_get(WS_PATH, upgrade)
        return app

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.write(codec.frame_bytes(0, codec.P.CloseFrame(error=None)))
            if conn.transport is not None:
                conn.transport.close()
        for server in self._servers:
            await server.wait_closed()
        for runner in (self._websocket, self._admin):
            if runner is not None:
                await runner.cleanup()
        self.broker.close()

    def dispatch(
        self,
        conn: AmqpConnection,
        session: Session,
        link: IncomingLink,
        data: bytes,
        fmt: int,
        done: AckCallback,
    ) -> None:
        """Handle one complete message received on ``link``."""
        if link.kind == "ingress":
            bodies = codec.batch_bodies(data) if fmt == codec.BATCH_FORMAT else [data]
            self.broker.publish(link.hub, link.partition_id, bodies, partition_key(data), done)
            return
        request = codec.decode_payload(memoryview(data))
        if link.kind == "cbs":
            reply, ok = handle_cbs(request, self.sas_keys, self.broker)
            conn.authorized = conn.authorized or ok
        else:
            reply = handle_management(request, self.broker)
        target = session.reply_link(b"$cbs" if link.kind == "cbs" else b"$management")
        if isinstance(target, ReplyLink):
            target.reply(reply)
        done(None)

    # --- admin --------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = asdict(self.broker.stats)
        stats["throttled_requests"] = self.broker.limiter.throttled
        stats["throughput_units"] = self.broker.limiter.units
        stats["auto_inflate_max"] = self.broker.limiter.auto_inflate_max
        stats["websocket_connections_total"] = self.websocket_connections_total
        stats["hubs"] = {
            name: {
                "partitions": {
                    pid: {
                        "begin": p.log.events[0].sequence_number if p.log.events else 0,
                        "last": p.log.events[-1].sequence_number if p.log.events else -1,
                        "count": len(p.log.events),
                        "paused": p.paused,
                        "receivers": sum(len(v) for v in p.subscribers.values()),
                    }
                    for pid, p in hub.partitions.items()
                }
            }
            for name, hub in self.broker.hubs.items()
        }
        return stats

    def admin_app(self) -> web.Application:
        app = web.Application()
        routes = web.RouteTableDef()

        @routes.get("/healthz")
        async def healthz(_: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        @routes.get("/stats")
        async def stats(_: web.Request) -> web.Response:
            return web.json_response(self.stats())

        @routes.post("/faults/drop-connections")
        async def drop(_: web.Request) -> web.Response:
            conns = list(self.connections)
            for conn in conns:
                conn.abort()
            return web.json_response({"dropped": len(conns)})

        @routes.post("/hubs/{hub}/partitions/{pid}/{action:pause|resume}")
        async def pause(req: web.Request) -> web.Response:
            hub, pid, action = req.match_info["hub"], req.match_info["pid"], req.match_info["action"]
            found = self.broker.hub(hub)
            if found is None or pid not in found.partitions:
                return web.json_response({"error": "no such partition"}, status=404)
            (self.broker.pause if action == "pause" else self.broker.resume)(hub, pid)
            return web.json_response({"hub": hub, "partition": pid, "paused": action == "pause"})

        @routes.post("/hubs")
        async def create_hub(req: web.Request) -> web.Response:
            try:
                body = await req.json()
                hub = self.broker.add_hub(str(body["name"]), int(body.get("partitions", 4)))
            except HubExistsError as exc:
                return web.json_response({"error": str(exc)}, status=409)
            except (ValueError, KeyError, TypeError) as exc:  # bad JSON, a missing name, a bad count
                return web.json_response({"error": f"bad hub request: {exc}"}, status=400)
            return web.json_response({"name": hub.name, "partition_ids": hub.partition_ids}, status=201)

        @routes.post("/throughput-units")
        async def units(req: web.Request) -> web.Response:
            body = await req.json()
            self.broker.limiter.configure(body.get("units"), body.get("auto_inflate_max"))
            return web.json_response({"units": self.broker.limiter.units})

        app.add_routes(routes)
        return app
