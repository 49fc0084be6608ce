"""The producer's Prometheus metrics (names fixed in docs/contracts.md), on an injected registry.

Labels are bounded: routes are templates (unknown paths are ``other``), reasons and statuses are fixed
sets, and a home ID is never a label value. With tracing on, the latency histograms carry the trace ID as
an exemplar (OpenMetrics exposition only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homesec_auth.errors import FAILURE_REASONS as AUTH_FAILURE_REASONS
from homesec_runtime.deadlines import request_timeouts_counter
from homesec_runtime.tracing import ExemplarHistogram
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REJECT_REASONS = (
    "validation", "auth", "too_large", "unsupported_media_type", "shed", "deadline", "publish_failed",
    "shutting_down",
)  # fmt: skip
RETRY_REASONS = ("throttled", "timeout", "connection", "other")
FAILURE_REASONS = (*RETRY_REASONS, "rejected")
RESEND_OUTCOMES = ("acknowledged", "joined_in_flight")
ACK_TABLE_STATES = ("acknowledged", "in_flight")
EVICTION_REASONS = ("age", "count")
ACCELERATORS = ("encoder", "payload")  # homesec_runtime.accelerators: 1 when in use, 0 for the public path

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 300, 500, 1000)


@dataclass(frozen=True)
class ProducerMetrics:
    """Every producer metric; build with ``ProducerMetrics.create(registry)``."""

    http_requests: Counter
    http_duration: Histogram
    http_in_flight: Gauge
    request_timeouts: Counter
    readings_received: Counter
    readings_acknowledged: Counter
    readings_rejected: Counter
    publish_duration: Histogram
    publish_batch_size: Histogram
    publish_retries: Counter
    publish_throttled: Counter
    publish_failures: Counter
    buffer_readings: Gauge
    buffer_capacity: Gauge
    shed: Counter
    ready: Gauge
    resends: Counter
    ack_table_entries: Gauge
    ack_table_evictions: Counter
    accelerated: Gauge
    auth_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ProducerMetrics:
        metrics = cls(**_http_metrics(registry), **_publish_metrics(registry), **_resend_metrics(registry))
        metrics._prime()
        return metrics

    def _prime(self) -> None:
        """Create every labelled child so dashboards see zeros instead of missing series."""
        for reason in REJECT_REASONS:
            self.readings_rejected.labels(reason=reason)
        for reason in RETRY_REASONS:
            self.publish_retries.labels(reason=reason)
        for status in ("429", "503"):
            self.shed.labels(status=status)
        for reason in FAILURE_REASONS:
            self.publish_failures.labels(reason=reason)
        for outcome in RESEND_OUTCOMES:
            self.resends.labels(outcome=outcome)
        for state in ACK_TABLE_STATES:
            self.ack_table_entries.labels(state=state)
        for reason in EVICTION_REASONS:
            self.ack_table_evictions.labels(reason=reason)
        for component in ACCELERATORS:
            self.accelerated.labels(component=component).set(0)
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason=reason)


_P = "homesec_producer_"


def _http_metrics(registry: CollectorRegistry) -> dict[str, Any]:
    return {
        "http_requests": Counter(
            f"{_P}http_requests", "HTTP requests", ["route", "method", "status"], registry=registry
        ),
        "http_duration": ExemplarHistogram(
            f"{_P}http_request_duration_seconds",
            "HTTP request duration",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ),
        "http_in_flight": Gauge(
            f"{_P}http_requests_in_flight", "HTTP requests in progress", registry=registry
        ),
        "request_timeouts": request_timeouts_counter(_P, registry),  # homesec_runtime.deadlines
        "readings_received": Counter(
            f"{_P}readings_received", "Readings in POSTed bodies", registry=registry
        ),
        "readings_acknowledged": Counter(
            f"{_P}readings_acknowledged",
            "Readings acknowledged by Event Hubs and answered so (202, or a 429/503 listing them)",
            registry=registry,
        ),
        "readings_rejected": Counter(
            f"{_P}readings_rejected", "Readings not accepted, by reason", ["reason"], registry=registry
        ),
        "auth_failures": Counter(
            f"{_P}auth_failures",
            "Requests refused with 401/403 by the token check, by reason (homesec_auth.errors)",
            ["reason"],
            registry=registry,
        ),
        "shed": Counter(f"{_P}shed", "Requests shed with 429/503", ["status"], registry=registry),
        "ready": Gauge(f"{_P}ready", "1 when ready to take traffic", registry=registry),
        "accelerated": Gauge(
            f"{_P}accelerated",
            "1 when the accelerator runs (its start-up self-check passed), 0 for the public path",
            ["component"],
            registry=registry,
        ),
    }


def _publish_metrics(registry: CollectorRegistry) -> dict[str, Any]:
    return {
        "publish_duration": ExemplarHistogram(
            f"{_P}publish_duration_seconds",
            "One Event Hubs batch send, retries included",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ),
        "publish_batch_size": Histogram(
            f"{_P}publish_batch_size", "Events per send", buckets=_BATCH_BUCKETS, registry=registry
        ),
        "publish_retries": Counter(
            f"{_P}publish_retries", "Publish attempts retried, by reason", ["reason"], registry=registry
        ),
        "publish_throttled": Counter(f"{_P}publish_throttled", "ServerBusy answers", registry=registry),
        "publish_failures": Counter(
            f"{_P}publish_failures", "Sends failed after the last retry", ["reason"], registry=registry
        ),
        "buffer_readings": Gauge(
            f"{_P}buffer_readings", "Readings waiting to be published", registry=registry
        ),
        "buffer_capacity": Gauge(
            f"{_P}buffer_capacity_readings", "Capacity of the buffer in readings", registry=registry
        ),
    }


def _resend_metrics(registry: CollectorRegistry) -> dict[str, Any]:
    return {
        "resends": Counter(
            f"{_P}resends",
            "Readings re-sent to this pod and not published again, by outcome",
            ["outcome"],
            registry=registry,
        ),
        "ack_table_entries": Gauge(
            f"{_P}ack_table_entries",
            "Readings remembered for idempotent resends, by state",
            ["state"],
            registry=registry,
        ),
        "ack_table_evictions": Counter(
            f"{_P}ack_table_evictions",
            "Acknowledged readings forgotten, by bound (age or count)",
            ["reason"],
            registry=registry,
        ),
    }
