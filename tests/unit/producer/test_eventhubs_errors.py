"""SDK exceptions map onto the port's PublishError family (what gets retried and how it is counted)."""

from __future__ import annotations

import pytest
from azure.eventhub._pyamqp.error import AMQPLinkError, ErrorCondition, MessageException
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    EventDataError,
    EventDataSendError,
    EventHubError,
    OperationTimeoutError,
)
from homesec_producer import errors
from homesec_producer.adapters.eventhub import map_error


def server_busy() -> EventDataSendError:
    cause = MessageException(condition=b"com.microsoft:server-busy", description="throttled: 1 TU exceeded")
    return EventDataSendError("send failed", cause)  # type: ignore[arg-type]


def link_lost() -> ConnectionLostError:
    return ConnectionLostError("gone", AMQPLinkError(ErrorCondition.LinkDetachForced))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (server_busy(), errors.ThrottledError, True),
        (OperationTimeoutError("slow"), errors.PublishTimeoutError, True),
        (TimeoutError(), errors.PublishTimeoutError, True),
        (link_lost(), errors.ConnectionLostError, True),
        (ConnectError("refused"), errors.ConnectionLostError, True),
        (ConnectionResetError(), errors.ConnectionLostError, True),
        (AuthenticationError("token"), errors.PublishError, True),
        (EventDataError("too large"), errors.PublishRejectedError, False),
        (EventHubError("odd"), errors.PublishError, True),
        (RuntimeError("bug"), errors.PublishError, True),
    ],
)
def test_mapping(exc: BaseException, kind: type[errors.PublishError], retryable: bool) -> None:
    mapped = map_error(exc)
    assert type(mapped) is kind
    assert mapped.retryable is retryable
    assert mapped.reason in {"throttled", "timeout", "connection", "other", "rejected"}


def test_server_busy_is_recognised_by_its_condition() -> None:
    assert server_busy().error == "server-busy"


async def test_clients_for_both_auth_modes_are_built_without_connecting() -> None:
    from homesec_producer.adapters.eventhub import build_client

    from .helpers import settings

    client, credential = build_client(settings())
    assert credential is None
    assert client.eventhub_name == "telemetry"
    await client.close()
    client, credential = build_client(
        settings(
            eventhub_connection_string=None,
            eventhub_fully_qualified_namespace="ns.servicebus.windows.net",
            eventhub_name="telemetry",
        )
    )
    assert type(credential).__name__ == "DefaultAzureCredential"
    assert client.eventhub_name == "telemetry"
    await client.close()
    await credential.close()
