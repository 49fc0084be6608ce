"""Consumer configuration (environment prefix ``HOMESEC_CONSUMER_``)."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from homesec_auth.settings import TokenKeySettings
from homesec_runtime.endpoints import check_account_url, check_blob_connection_string, eventhub_entity
from homesec_runtime.logs import check_level
from homesec_runtime.transport import Transport, check_transport
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict


class ConsumerSettings(TokenKeySettings):
    model_config = SettingsConfigDict(env_prefix="HOMESEC_CONSUMER_", extra="ignore")
    # Read tokens for GET /v1/homes/{id}/status and /history (docs/consumer.md#read-tokens), the same keys as
    # the producer's (TokenKeySettings: AUTH_KEYS, AUTH_PUBLIC_KEYS, AUTH_MAX_*, AUTH_VERIFIED_CACHE_BYTES).
    # Settings without a key are valid (tests build them), but the process refuses to start (runner.main).
    keys_verify: ClassVar[str] = "read token"

    # The API (GET /v1/homes/...): residents' status reads.
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    # The admin port: /healthz, /readyz, /metrics (kubelet probes and Prometheus; never exposed to clients).
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=9091, ge=1, le=65535)
    # Where the other consumer pods reach this one's read API (reads forwarded to a partition's owner):
    # http://<pod IP>:<port> on Kubernetes (the chart sets it); default http://<host>:<port>.
    advertise_url: str | None = None
    # How often each pod lists the peer directory (adapters/peers.py) and renews its own entry.
    peer_refresh_interval_seconds: float = Field(default=5.0, gt=0)
    # Slow clients on the API port (homesec_runtime.deadlines): a connection whose request line and headers
    # take longer than HEADER_READ_TIMEOUT_SECONDS (from its opening, or from its first byte after an answer)
    # is closed, with a 408 when part of a request came. The routes read no request body: the rest of a body
    # sent with a read comes after the answer, so this deadline bounds it too. Idle keep-alive connections
    # are closed after KEEP_ALIVE_TIMEOUT_SECONDS (longer than the peers' client keeps an idle one: 15 s).
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    keep_alive_timeout_seconds: int = Field(default=30, ge=1, le=3600)

    # Event Hubs: a connection string, or namespace + hub with DefaultAzureCredential (Workload Identity).
    eventhub_connection_string: SecretStr | None = None
    eventhub_fully_qualified_namespace: str | None = None
    eventhub_name: str = "telemetry"
    consumer_group: str = "rollups"
    # Event Hubs transport (homesec_runtime.transport): "amqp" (port 5671) or "amqp_websockets" (port 443).
    transport: Transport = "amqp"
    # HTTP proxy for Event Hubs, http://[user:password@]host:port (amqp_websockets only).
    eventhub_http_proxy: SecretStr | None = None
    # Connect here instead of the namespace's host, e.g. sb://gateway.example:443 (an application gateway;
    # the emulator's WebSocket port in the tests). The SDK's custom_endpoint_address.
    eventhub_custom_endpoint_address: str | None = None
    # The alarms hub (adapters/alarms.py): the consumer publishes each alarm transition to it and reads it
    # back in CONSUMER_GROUP to learn what was already published. Same namespace, credential and transport as
    # the telemetry hub; an empty name turns alarm publishing off.
    alarms_eventhub_name: str = "alarms"
    # A connection string for the alarms hub (Send and Listen), when the telemetry one's rule does not cover
    # it (a hub-level SAS rule); default: EVENTHUB_CONNECTION_STRING with the alarms hub's name.
    alarms_eventhub_connection_string: SecretStr | None = None
    # Every alarm publish and read-back ends within this many seconds (AlarmPublishError, retried by the
    # caller), the SDK's own retries included.
    alarm_publish_timeout_seconds: float = Field(default=10.0, gt=0)
    # Blob: a connection string, or an account URL with DefaultAzureCredential.
    blob_connection_string: SecretStr | None = None
    blob_account_url: str | None = None
    checkpoint_container: str = "checkpoints"
    rollup_container: str = "rollups"
    deadletter_container: str = "deadletters"
    create_containers: bool = True
    # Every Blob call: a connect/read timeout per attempt, then up to BLOB_RETRY_TOTAL retries after about
    # 1, 3 and 5 s (the storage SDK's default starts at 15 s); the whole call, retries included, ends within
    # max(FLUSH_INTERVAL_SECONDS, 2 x BLOB_REQUEST_TIMEOUT_SECONDS).
    blob_request_timeout_seconds: float = Field(default=10.0, gt=0)
    blob_retry_total: int = Field(default=3, ge=0, le=10)
    # Start-up: each failed attempt to reach Blob and Event Hubs is logged and retried after a backoff that
    # doubles from 1 s up to this.
    startup_retry_max_seconds: float = Field(default=30.0, gt=0)
    # How often each owned partition's last enqueued sequence number is read from the service (the lag).
    lag_refresh_interval_seconds: float = Field(default=15.0, gt=0)
    # Honour HTTP(S)_PROXY/NO_PROXY and .netrc for Blob requests (aiohttp ``trust_env``). Off by default:
    # aiohttp then looks both up in a worker thread on every request, which doubles a request's CPU cost.
    blob_use_env_proxy: bool = False

    # Load balancing (azure-eventhub EventProcessor).
    load_balancing_strategy: Literal["balanced", "greedy"] = "greedy"
    load_balancing_interval_seconds: float = Field(default=10.0, gt=0)
    ownership_expiration_seconds: float = Field(default=60.0, gt=0)
    starting_position: Literal["earliest", "latest"] = "earliest"

    # Receiving.
    max_batch_size: int = Field(default=300, gt=0)
    max_wait_time_seconds: float = Field(default=1.0, gt=0)
    prefetch: int = Field(default=600, gt=0)

    # Aggregation and flushing.
    # How long past its end an hour stays open in the status blob; later readings amend its day blob.
    lateness_seconds: float = Field(default=120.0, gt=0)
    # Arrival-time window in which a re-sent reading (same reading_id, or same sensor, seq and ts) is
    # recognised: covers the producer's and the sensors' retry horizon (docs/consumer.md#what-counted-means).
    resend_window_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # The acceptance horizon: the producer's settings of the same names (one chart value sets both), plus a
    # margin for the time between the producer's check and the enqueue. Readings outside it are dead-lettered
    # with reason outside_horizon.
    max_reading_age_seconds: float = Field(default=86_400.0, gt=0)
    max_clock_skew_seconds: float = Field(default=300.0, ge=0)
    horizon_margin_seconds: float = Field(default=900.0, ge=0)
    co_alarm_ppm: float = 50.0
    flush_interval_seconds: float = Field(default=30.0, gt=0)
    flush_max_homes: int = Field(
        default=2000, ge=0, description="homes written per partition and flush; 0: all"
    )
    write_concurrency: int = Field(default=32, gt=0)
    shutdown_grace_seconds: float = Field(default=25.0, gt=0)
    # Python's gen-0 collection threshold (CPython's default is 700): receiving allocates several objects
    # per event, almost all freed by reference counting, so frequent young collections find little.
    gc_gen0_threshold: int = Field(default=10_000, ge=700)
    log_level: str = "INFO"
    # json: one JSON object per line (the images); console: readable lines (make run). docs/operations.md
    log_format: Literal["json", "console"] = "json"
    # "auto": each accelerator (the received-event read, adapters/accelerated_decoding.py; the compiled fold,
    # homesec_runtime/native.py) runs only when its start-up self-check proves it equivalent to the public
    # path; "off": the public paths, no check.
    accelerators: Literal["auto", "off"] = "auto"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        return check_level(level)

    @field_validator("eventhub_connection_string", "alarms_eventhub_connection_string")
    @classmethod
    def _usable_eventhub_connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            eventhub_entity(value.get_secret_value())
        return value

    @field_validator("blob_connection_string")
    @classmethod
    def _usable_blob_connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_blob_connection_string(value.get_secret_value())
        return value

    @field_validator("blob_account_url")
    @classmethod
    def _usable_account_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_account_url(value)
        return value

    def startup_problems(self) -> list[str]:
        """What keeps the process from starting, one line each (``runner.main`` prints them and exits 78;
        settings built in code, e.g. by tests, may leave the endpoints out)."""
        problems = [self.token_key_problem()]
        if self.eventhub_connection_string is None and not self.eventhub_fully_qualified_namespace:
            problems.append(
                "set HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING or "
                "HOMESEC_CONSUMER_EVENTHUB_FULLY_QUALIFIED_NAMESPACE"
            )
        if self.blob_connection_string is None and not self.blob_account_url:
            problems.append(
                "set HOMESEC_CONSUMER_BLOB_CONNECTION_STRING or HOMESEC_CONSUMER_BLOB_ACCOUNT_URL"
            )
        return [problem for problem in problems if problem]

    @model_validator(mode="after")
    def _check_transport(self) -> Self:
        proxy = self.eventhub_http_proxy
        try:
            check_transport(self.transport, None if proxy is None else proxy.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"HOMESEC_CONSUMER_EVENTHUB_HTTP_PROXY: {exc}") from None
        if self.admin_port == self.port:
            raise ValueError("HOMESEC_CONSUMER_ADMIN_PORT is HOMESEC_CONSUMER_PORT: the admin port is apart")
        return self

    @property
    def read_api_url(self) -> str:
        return self.advertise_url or f"http://{self.host}:{self.port}"

    @property
    def blob_operation_timeout_seconds(self) -> float:
        return max(self.flush_interval_seconds, 2 * self.blob_request_timeout_seconds)
