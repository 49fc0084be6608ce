"""How the services reach Event Hubs: the transport setting and the HTTP proxy URL, checked the same way by
both services, and the SDK client's keywords built from them (each adapter passes in the SDK's
``TransportType`` values: this module imports no Azure SDK)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

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


class TransportSettings(Protocol):
    """What both services' settings say about reaching Event Hubs."""

    @property
    def transport(self) -> Transport: ...

    @property
    def eventhub_http_proxy(self) -> SecretStr | None: ...

    @property
    def eventhub_custom_endpoint_address(self) -> str | None: ...


def client_options(
    settings: TransportSettings, transport_types: Mapping[Transport, object]
) -> dict[str, Any]:
    """The SDK client's transport keywords: ``transport_type`` (``transport_types[transport]``), the proxy
    and the custom endpoint when set."""
    options: dict[str, Any] = {"transport_type": transport_types[settings.transport]}
    if settings.eventhub_http_proxy is not None:
        proxy = parse_http_proxy(settings.eventhub_http_proxy.get_secret_value())
        # The async clients give aiohttp "<proxy_hostname>:<proxy_port>" as the proxy URL, which needs its
        # scheme (Azure/azure-sdk-for-python#40274; the sync clients take the bare host).
        proxy["proxy_hostname"] = f"http://{proxy['proxy_hostname']}"
        options["http_proxy"] = proxy
    if settings.eventhub_custom_endpoint_address:
        options["custom_endpoint_address"] = settings.eventhub_custom_endpoint_address
    return options
