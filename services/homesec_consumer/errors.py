"""Consumer errors: one base (a ``HomesecError``) and flat subclasses that carry data."""

from __future__ import annotations

from homesec_domain.errors import HomesecError


class ConsumerError(HomesecError):
    """Base of the consumer service's errors."""


class RollupConflictError(ConsumerError):
    """A conditional rollup write lost: another writer changed the blob (this instance is fenced)."""

    def __init__(self, blob_name: str) -> None:
        super().__init__(f"conflicting write to {blob_name}")
        self.blob_name = blob_name


class StoreUnavailableError(ConsumerError):
    """Blob storage failed after the retries."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation}: {detail}")
        self.operation = operation
        self.detail = detail


class PartitionFencedError(ConsumerError):
    """The partition's state is stale (a newer owner wrote); the partition restarts from its checkpoint."""

    def __init__(self, partition_id: str) -> None:
        super().__init__(f"partition {partition_id} fenced by a newer owner")
        self.partition_id = partition_id


class AlarmPublishError(ConsumerError):
    """The ``alarms`` hub did not acknowledge (after the SDK's retries); the events may still have landed."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation}: {detail}")
        self.operation = operation
        self.detail = detail


class SnapshotFormatError(ConsumerError):
    """A partition's state blob is not a state snapshot this version reads."""


class ConfigurationError(ConsumerError):
    """The settings do not describe a usable Event Hubs or Blob endpoint."""
