"""Azure endpoint settings checked when the settings are read, so that a malformed one is a configuration
error (one line, exit 78: ``config_errors``) and not a traceback when the first client is built.

Each check raises ``ValueError`` with a message that never contains the value (connection strings carry
keys). The Azure SDKs' own parsers decide what is valid; they are imported on first use only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

EVENTHUB_FORMAT = (
    "Endpoint=sb://<namespace>/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>[;EntityPath=<hub>]"
)
BLOB_FORMAT = "DefaultEndpointsProtocol=https;AccountName=<account>;AccountKey=<key>;... or a SAS one"


def eventhub_entity(connection_string: str) -> str | None:
    """The hub a valid Event Hubs connection string names (its ``EntityPath``), or None; ``ValueError``
    for one the SDK cannot use."""
    from azure.eventhub import parse_connection_string

    try:
        return parse_connection_string(connection_string).eventhub_name
    except (ValueError, TypeError, KeyError, IndexError):
        raise ValueError(f"not an Event Hubs connection string ({EVENTHUB_FORMAT})") from None


def check_blob_connection_string(connection_string: str) -> None:
    """``ValueError`` for a string the Blob SDK cannot use (checked by building a client: no request)."""
    from azure.storage.blob import BlobServiceClient

    try:
        BlobServiceClient.from_connection_string(connection_string).close()
    except (ValueError, TypeError, KeyError, IndexError):
        raise ValueError(f"not a Blob storage connection string ({BLOB_FORMAT})") from None


def check_account_url(url: str) -> None:
    """``ValueError`` unless ``url`` is ``https://<host>[:port][/...]`` (``http`` for a local emulator)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise ValueError("not a Blob account URL (https://<account>.blob.core.windows.net)") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("not a Blob account URL (https://<account>.blob.core.windows.net)")
