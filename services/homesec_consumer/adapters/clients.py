"""Azure SDK clients from the settings: Blob (timeouts and a retry policy sized to the flush interval) and
the Event Hubs consumer client with its Blob checkpoint store."""

from __future__ import annotations

from typing import Any

from azure.eventhub import TransportType, parse_connection_string
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry
from homesec_runtime.transport import client_options

from homesec_consumer.errors import ConfigurationError
from homesec_consumer.settings import ConsumerSettings


def credential_for(settings: ConsumerSettings) -> Any:
    from azure.identity.aio import DefaultAzureCredential  # Workload Identity on AKS

    return DefaultAzureCredential()


def _blob_transport(settings: ConsumerSettings) -> dict[str, Any]:
    """Timeouts and a retry policy sized to the flush interval (the SDK's default backoff starts at 15 s)."""
    return {
        "use_env_settings": settings.blob_use_env_proxy,
        "connection_timeout": settings.blob_request_timeout_seconds,
        "read_timeout": settings.blob_request_timeout_seconds,
        "retry_policy": ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=settings.blob_retry_total, random_jitter_range=1
        ),
    }


def build_blob_clients(
    settings: ConsumerSettings, credential: Any
) -> tuple[BlobServiceClient, BlobCheckpointStore]:
    transport = _blob_transport(settings)
    if settings.blob_connection_string is not None:
        conn = settings.blob_connection_string.get_secret_value()
        service = BlobServiceClient.from_connection_string(conn, **transport)
        store = BlobCheckpointStore.from_connection_string(
            conn, settings.checkpoint_container, **_blob_transport(settings)
        )
    elif settings.blob_account_url:
        service = BlobServiceClient(settings.blob_account_url, credential=credential, **transport)
        store = BlobCheckpointStore(
            settings.blob_account_url, settings.checkpoint_container, credential=credential,
            **_blob_transport(settings),
        )  # fmt: skip
    else:
        raise ConfigurationError(
            "set HOMESEC_CONSUMER_BLOB_CONNECTION_STRING or HOMESEC_CONSUMER_BLOB_ACCOUNT_URL"
        )
    return service, store


def eventhub_namespace(settings: ConsumerSettings) -> str:
    """The host the SDK keys ownership and checkpoints by (the connection string's endpoint host, with
    its port if it names one, or the configured namespace)."""
    if settings.eventhub_connection_string is not None:
        conn = settings.eventhub_connection_string.get_secret_value()
        return parse_connection_string(conn).fully_qualified_namespace
    if settings.eventhub_fully_qualified_namespace:
        return settings.eventhub_fully_qualified_namespace
    raise ConfigurationError(
        "set HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING or "
        "HOMESEC_CONSUMER_EVENTHUB_FULLY_QUALIFIED_NAMESPACE"
    )


def transport_options(settings: ConsumerSettings) -> dict[str, Any]:
    """The SDK client's transport keywords from the settings (``transport``, proxy, custom endpoint)."""
    return client_options(
        settings, {"amqp": TransportType.Amqp, "amqp_websockets": TransportType.AmqpOverWebsocket}
    )


def build_eventhub_client(
    settings: ConsumerSettings, store: BlobCheckpointStore, credential: Any
) -> EventHubConsumerClient:
    common: dict[str, Any] = {
        "consumer_group": settings.consumer_group, "eventhub_name": settings.eventhub_name,
        "checkpoint_store": store, "load_balancing_strategy": settings.load_balancing_strategy,
        "load_balancing_interval": settings.load_balancing_interval_seconds,
        "partition_ownership_expiration_interval": settings.ownership_expiration_seconds,
        **transport_options(settings),
    }  # fmt: skip
    if settings.eventhub_connection_string is not None:
        return EventHubConsumerClient.from_connection_string(
            settings.eventhub_connection_string.get_secret_value(), **common
        )
    if settings.eventhub_fully_qualified_namespace:
        return EventHubConsumerClient(
            settings.eventhub_fully_qualified_namespace, credential=credential, **common
        )
    raise ConfigurationError(
        "set HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING or "
        "HOMESEC_CONSUMER_EVENTHUB_FULLY_QUALIFIED_NAMESPACE"
    )
