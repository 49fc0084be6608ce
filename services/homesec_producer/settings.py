"""Configuration of the ingestion service (environment, prefix ``HOMESEC_PRODUCER_``).

Secrets (the Event Hubs connection string and the HS256 token secrets) are ``SecretStr`` and have no
defaults: they come from the environment (a Kubernetes Secret), never from the image. Invalid settings
are reported one line per variable by ``homesec_runtime.config_errors`` (exit code 78).
"""

from __future__ import annotations

from typing import Literal, Self

from homesec_auth.settings import TokenKeySettings
from homesec_domain.validation import MAX_READINGS_PER_REQUEST
from homesec_runtime.endpoints import eventhub_entity
from homesec_runtime.logs import check_level
from homesec_runtime.transport import Transport, check_transport
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from homesec_producer.shutdown import ShutdownPlan


class ProducerSettings(TokenKeySettings):
    """Every knob of the producer. Defaults follow the source documents where they name a value. The token
    keys and limits (``AUTH_KEYS``, ``AUTH_PUBLIC_KEYS``, ``AUTH_MAX_*``, ``AUTH_VERIFIED_CACHE_BYTES``; at
    least one key is required) are ``homesec_auth.settings.TokenKeySettings``'s."""

    # An empty variable counts as unset (an optional Secret key, a blanked override).
    model_config = SettingsConfigDict(
        env_prefix="HOMESEC_PRODUCER_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    # The API (POST /v1/readings): sensors and gateways, through the ingress.
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    # The admin port: /healthz, /readyz, /metrics, /docs, /redoc, /openapi.json (kubelet probes, Prometheus,
    # operators; never exposed through the ingress).
    admin_host: str = "0.0.0.0"
    admin_port: int = Field(default=9090, ge=1, le=65535)
    log_level: str = "info"
    # json: one JSON object per line (the images); console: readable lines (make run). docs/operations.md
    log_format: Literal["json", "console"] = "json"

    # Event Hubs: a connection string, or namespace + hub with DefaultAzureCredential (Workload Identity).
    eventhub_connection_string: SecretStr | None = None
    eventhub_fully_qualified_namespace: str | None = None
    eventhub_name: str | None = None
    # Event Hubs transport (homesec_runtime.transport): "amqp" (port 5671) or "amqp_websockets" (port 443).
    transport: Transport = "amqp"
    # HTTP proxy for Event Hubs, http://[user:password@]host:port (amqp_websockets only).
    eventhub_http_proxy: SecretStr | None = None
    # Connect here instead of the namespace's host, e.g. sb://gateway.example:443 (an application gateway;
    # the emulator's WebSocket port in the tests). The SDK's custom_endpoint_address.
    eventhub_custom_endpoint_address: str | None = None

    # Token keys (docs/producer.md#tokens): TokenKeySettings. The key ID of AUTH_KEYS that signs (the CLI).
    auth_signing_key_id: str | None = None
    # DEPRECATED: also accept the pre-JWT ``hs1.`` tokens (signed with AUTH_KEYS), until 2027-06-30. Off by
    # default; when on, they pass the same size, canonical-form and lifetime checks as a JWT.
    auth_accept_legacy_tokens: bool = False

    # Slow clients (homesec_runtime.deadlines): a connection whose request line and headers take longer than
    # HEADER_READ_TIMEOUT_SECONDS (from its first byte, or from the connection's opening) is closed (408 when
    # some of the request came); a body not complete BODY_READ_TIMEOUT_SECONDS after its headers gets 408
    # and frees its slot. Idle keep-alive connections are closed after KEEP_ALIVE_TIMEOUT_SECONDS.
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_read_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    keep_alive_timeout_seconds: int = Field(default=30, ge=1, le=3600)

    # Request limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Ingest requests served at once; above it 503 + Retry-After (bounds the memory held by bodies).
    # uvicorn's own limit (connections, idle keep-alive ones included) is a backstop at 4x this.
    max_concurrent_requests: int = Field(default=1000, ge=1)
    max_readings_per_request: int = Field(default=MAX_READINGS_PER_REQUEST, ge=1, le=MAX_READINGS_PER_REQUEST)
    max_reading_age_seconds: float = Field(default=86_400.0, gt=0)
    max_clock_skew_seconds: float = Field(default=300.0, ge=0)

    # Buffering and batching.
    buffer_capacity_readings: int = Field(default=50_000, ge=1)
    max_batch_events: int = Field(default=500, ge=1)
    max_batch_bytes: int = Field(default=1_000_000, ge=1024)
    # How long a partition's non-full batch may wait to fill, counted from its oldest reading (seconds).
    publish_linger_seconds: float = Field(default=0.0, ge=0, le=1)

    # "auto": the encoder accelerator (adapters/accelerated_encoding.py, ~30x cheaper per event) and the
    # payload accelerator (adapters/accelerated_payload.py: a batch's events framed by hand when it is sent)
    # are used when their start-up self-checks prove them byte-identical to the SDK; "off": the SDK's paths.
    accelerators: Literal["auto", "off"] = "auto"

    # Idempotent resends (idempotency.py): the readings this pod acknowledged in the last
    # IDEMPOTENCY_TTL_SECONDS are remembered, at most IDEMPOTENCY_MAX_READINGS of them (about 150 bytes
    # each: 30 MB at the default), so a resend is answered without a second publish. 0 turns it off.
    idempotency_max_readings: int = Field(default=200_000, ge=0, le=10_000_000)
    idempotency_ttl_seconds: float = Field(default=300.0, gt=0, le=3600)

    # Retries (exponential backoff with jitter): 5-10 tries, 1 s to 30 s, per the source documents.
    publish_max_tries: int = Field(default=8, ge=1, le=50)
    publish_backoff_initial_seconds: float = Field(default=1.0, gt=0)
    publish_backoff_max_seconds: float = Field(default=30.0, gt=0)
    publish_try_timeout_seconds: float = Field(default=30.0, gt=0)
    request_deadline_seconds: float = Field(default=30.0, gt=0)
    retry_after_seconds: int = Field(default=2, ge=1)

    # Shutdown: readiness false at once, keep serving ``shutdown_delay_seconds`` (endpoint propagation),
    # then stop accepting, flush, answer every request (503 for what was not acknowledged in time), exit
    # within ``shutdown_grace_seconds``; the timeline is ``shutdown.ShutdownPlan``.
    shutdown_grace_seconds: float = Field(default=25.0, gt=0)
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)
    # Seconds the platform gives the process between SIGTERM and SIGKILL (the pod's
    # terminationGracePeriodSeconds minus its preStop sleep; the chart sets it). Unset: not checked.
    termination_grace_seconds: float | None = Field(default=None, gt=0)
    # Python's gen-0 collection threshold (CPython: 700); start-up objects are also frozen out of collection.
    gc_gen0_threshold: int = Field(default=10_000, ge=700)

    # TEST ONLY: answer 202 even when a send failed for good. Reproduces the source document's silent loss
    # (with publish_max_tries=1) so the loss-detecting tests can prove they fail. Never set in production.
    unsafe_ack_on_publish_failure: bool = False

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        return check_level(level)

    @field_validator("eventhub_connection_string")
    @classmethod
    def _usable_connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            eventhub_entity(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_eventhub(self) -> Self:
        """Where to publish: a hub name, and a proxy only with the transport that can use it."""
        if self.eventhub_connection_string is None and not (
            self.eventhub_fully_qualified_namespace and self.eventhub_name
        ):
            raise ValueError(
                "set HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING, or "
                "HOMESEC_PRODUCER_EVENTHUB_FULLY_QUALIFIED_NAMESPACE and HOMESEC_PRODUCER_EVENTHUB_NAME"
            )
        conn = self.eventhub_connection_string
        if conn is not None and not self.eventhub_name and not eventhub_entity(conn.get_secret_value()):
            raise ValueError(
                "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING names no hub (no EntityPath): "
                "set HOMESEC_PRODUCER_EVENTHUB_NAME"
            )
        proxy = self.eventhub_http_proxy
        try:
            check_transport(self.transport, None if proxy is None else proxy.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"HOMESEC_PRODUCER_EVENTHUB_HTTP_PROXY: {exc}") from None
        return self

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.require_token_keys()  # TokenKeySettings: at least one key, no key ID twice
        if self.auth_signing_key_id is not None and self.auth_signing_key_id not in self.auth_keys:
            raise ValueError(
                "HOMESEC_PRODUCER_AUTH_SIGNING_KEY_ID names no key of HOMESEC_PRODUCER_AUTH_KEYS"
            )
        if self.admin_port == self.port:
            raise ValueError("HOMESEC_PRODUCER_ADMIN_PORT is HOMESEC_PRODUCER_PORT: the admin port is apart")
        if self.publish_backoff_max_seconds < self.publish_backoff_initial_seconds:
            raise ValueError(
                "HOMESEC_PRODUCER_PUBLISH_BACKOFF_MAX_SECONDS is smaller than "
                "HOMESEC_PRODUCER_PUBLISH_BACKOFF_INITIAL_SECONDS"
            )
        self.shutdown_plan()  # raises ValueError for a grace that cannot answer every request in time
        return self

    def shutdown_plan(self) -> ShutdownPlan:
        """The shutdown timeline these settings give (``shutdown.ShutdownPlan``)."""
        return ShutdownPlan.derive(
            self.shutdown_grace_seconds, self.shutdown_delay_seconds, self.termination_grace_seconds
        )
