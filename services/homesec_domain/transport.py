"""How the services reach Event Hubs: the transport setting and the HTTP proxy URL, checked the same way by
both services (the SDK keywords are built in each service's adapter)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

# "amqp": AMQP over TLS, port 5671. "amqp_websockets": AMQP over WebSockets (TLS), port 443, the only one
# that goes through a firewall open to HTTPS alone, or through an HTTP proxy.
Transport = Literal["amqp", "amqp_websockets"]
PORTS: dict[str, int] = {"amqp": 5671, "amqp_websockets": 443}


def parse_http_proxy(url: str) -> dict[str, str | int]:
    """``http://[user:password@]host:port`` as the SDK's ``http_proxy`` dictionary; ``ValueError`` else."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError("the HTTP proxy must be http://[user:password@]host:port")
    proxy: dict[str, str | int] = {"proxy_hostname": parts.hostname, "proxy_port": port}
    if parts.username is not None:
        proxy["username"] = unquote(parts.username)
        proxy["password"] = unquote(parts.password or "")
    return proxy


def check_transport(transport: Transport, http_proxy: str | None) -> None:
    """An HTTP proxy carries only AMQP over WebSockets: refuse it with ``amqp`` instead of letting the SDK
    switch transports silently."""
    if http_proxy is None:
        return
    parse_http_proxy(http_proxy)
    if transport != "amqp_websockets":
        raise ValueError("an HTTP proxy carries only AMQP over WebSockets: set TRANSPORT=amqp_websockets")
