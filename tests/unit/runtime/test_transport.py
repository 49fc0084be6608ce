"""The Event Hubs transport settings of both services, and the SDK keywords built from them."""

from __future__ import annotations

from typing import Any

import pytest
from azure.eventhub import TransportType
from homesec_consumer.adapters.clients import transport_options as consumer_options
from homesec_consumer.settings import ConsumerSettings
from homesec_producer.adapters.eventhub import transport_options as producer_options
from homesec_producer.settings import ProducerSettings
from homesec_runtime.transport import parse_http_proxy
from pydantic import SecretStr, ValidationError

CONN = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=telemetry"


def producer(**over: Any) -> ProducerSettings:
    return ProducerSettings(
        eventhub_connection_string=SecretStr(CONN), auth_keys={"k": SecretStr("k" * 40)}, **over
    )


def consumer(**over: Any) -> ConsumerSettings:
    return ConsumerSettings(eventhub_connection_string=SecretStr(CONN), **over)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.corp:3128", {"proxy_hostname": "proxy.corp", "proxy_port": 3128}),
        ("http://10.0.0.7:8080/", {"proxy_hostname": "10.0.0.7", "proxy_port": 8080}),
        ("http://svc%40corp:p%3Ass@proxy:3128",
         {"proxy_hostname": "proxy", "proxy_port": 3128, "username": "svc@corp", "password": "p:ss"}),
    ],
)  # fmt: skip
def test_proxy_urls(url: str, expected: dict[str, object]) -> None:
    assert parse_http_proxy(url) == expected


@pytest.mark.parametrize("url", ["proxy:3128", "https://proxy:3128", "http://proxy", "http://:3128",
                                 "http://proxy:99999", "http://proxy:3128/path"])  # fmt: skip
def test_bad_proxy_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"http://\[user:password@\]host:port"):
        parse_http_proxy(url)


@pytest.mark.parametrize(("build", "options"), [(producer, producer_options), (consumer, consumer_options)])
def test_sdk_keywords_from_the_settings(build: Any, options: Any) -> None:
    assert options(build()) == {"transport_type": TransportType.Amqp}
    ws = build(transport="amqp_websockets", eventhub_http_proxy="http://u:p@proxy:3128",
               eventhub_custom_endpoint_address="sb://gw.example:443")  # fmt: skip
    assert options(ws) == {
        "transport_type": TransportType.AmqpOverWebsocket,
        # http:// for the async clients (Azure/azure-sdk-for-python#40274; the integration test goes through)
        "http_proxy": {
            "proxy_hostname": "http://proxy",
            "proxy_port": 3128,
            "username": "u",
            "password": "p",
        },
        "custom_endpoint_address": "sb://gw.example:443",
    }


@pytest.mark.parametrize(
    ("build", "prefix"), [(producer, "HOMESEC_PRODUCER_"), (consumer, "HOMESEC_CONSUMER_")]
)
def test_a_proxy_needs_websockets_and_a_valid_url(build: Any, prefix: str) -> None:
    with pytest.raises(
        ValidationError, match=f"{prefix}EVENTHUB_HTTP_PROXY: an HTTP proxy carries only AMQP"
    ):
        build(eventhub_http_proxy="http://proxy:3128")
    with pytest.raises(ValidationError, match=f"{prefix}EVENTHUB_HTTP_PROXY: the HTTP proxy must be"):
        build(transport="amqp_websockets", eventhub_http_proxy="socks5://proxy:1080")
    with pytest.raises(ValidationError, match="transport"):
        build(transport="websockets")


def test_the_proxy_password_is_a_secret() -> None:
    settings = consumer(transport="amqp_websockets", eventhub_http_proxy="http://u:hunter2@proxy:3128")
    assert "hunter2" not in repr(settings)
