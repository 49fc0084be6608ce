"""The producer's errors: one base (``ProducerError``) and flat subclasses carrying data.

HTTP statuses are chosen in ``api.py`` only.
"""

from __future__ import annotations

from homesec_auth.errors import (
    AuthError,
    ForbiddenHomesError,
    InvalidTokenError,
    KeyConfigError,
    MissingTokenError,
)
from homesec_domain.errors import HomesecError

# The token errors are homesec_auth's (shared with the consumer), re-exported here; they are not
# ``ProducerError`` subclasses.
__all__ = [
    "AuthError", "BufferFullError", "ConnectionLostError", "DeadlineExceededError", "ForbiddenHomesError",
    "InvalidTokenError", "KeyConfigError", "MissingTokenError", "NotAcknowledgedError", "ProducerError",
    "PublishError", "PublishFailedError", "PublishRejectedError", "PublishTimeoutError", "ShuttingDownError",
    "ThrottledError",
]  # fmt: skip


class ProducerError(HomesecError):
    """Base of the ingestion service's errors."""


class PublishError(ProducerError):
    """One attempt to publish a batch failed. ``reason`` is bounded (a metric label)."""

    reason = "other"
    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class ThrottledError(PublishError):
    """Event Hubs answered ``com.microsoft:server-busy`` (throughput units exhausted)."""

    reason = "throttled"


class PublishTimeoutError(PublishError):
    """No acknowledgement within the try timeout: the batch may or may not be stored."""

    reason = "timeout"


class ConnectionLostError(PublishError):
    """The connection or link dropped, or the service could not be reached."""

    reason = "connection"


class PublishRejectedError(PublishError):
    """Event Hubs refused the batch for good (authorisation, size, unknown hub): retrying cannot help."""

    reason = "rejected"
    retryable = False


class BufferFullError(ProducerError):
    """The bounded buffer has no room for the request's readings."""

    def __init__(self, requested: int, free: int) -> None:
        super().__init__(f"buffer full: {requested} readings requested, {free} free")
        self.requested = requested
        self.free = free


class ShuttingDownError(ProducerError):
    """The process is draining and takes no new readings."""


class DeadlineExceededError(ProducerError):
    """Event Hubs did not acknowledge the request's readings before its deadline."""

    def __init__(self, deadline_seconds: float) -> None:
        super().__init__(f"not acknowledged within {deadline_seconds:.1f}s")
        self.deadline_seconds = deadline_seconds


class PublishFailedError(ProducerError):
    """Publishing failed after the last retry (or a non-retryable error)."""

    def __init__(self, cause: PublishError) -> None:
        super().__init__(f"publish failed: {cause}")
        self.cause = cause


class NotAcknowledgedError(ProducerError):
    """Some or all readings of a request were not acknowledged; ``cause`` says why (it picks the status).

    ``acknowledged`` and ``unacknowledged`` are the request's reading IDs, each in request order: the first
    are in Event Hubs (the client must not resend them, though resending them is harmless), the second may
    or may not be yet (the client resends them with the same IDs).
    """

    def __init__(self, cause: ProducerError, acknowledged: list[str], unacknowledged: list[str]) -> None:
        super().__init__(f"{len(unacknowledged)} readings not acknowledged: {cause}")
        self.cause = cause
        self.acknowledged = acknowledged
        self.unacknowledged = unacknowledged
