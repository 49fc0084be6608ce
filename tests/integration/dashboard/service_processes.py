"""The producer and the consumer as the dashboard tests start them: on loopback, their ports given, the hub
``HUB`` (consumer group ``GROUP``), the consumer's containers ``<prefix>-checkpoints`` and
``<prefix>-rollups``, warnings-only logs; ``extra`` settings on top (tracing, a shorter flush)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port

HUB, GROUP = "telemetry", "rollups"


def producer(
    emulator: EmulatorProcess, *, port: int, admin_port: int, auth_keys: Mapping[str, str], log_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> ManagedProcess:  # fmt: skip
    env = {
        "HOMESEC_PRODUCER_HOST": "127.0.0.1",
        "HOMESEC_PRODUCER_PORT": str(port),
        "HOMESEC_PRODUCER_ADMIN_HOST": "127.0.0.1",
        "HOMESEC_PRODUCER_ADMIN_PORT": str(admin_port),
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(HUB),
        "HOMESEC_PRODUCER_EVENTHUB_NAME": HUB,
        "HOMESEC_PRODUCER_AUTH_KEYS": json.dumps(dict(auth_keys)),
        "HOMESEC_PRODUCER_LOG_LEVEL": "warning",
        **(extra or {}),
    }
    return ManagedProcess.service("producer", "homesec_producer", env=env, log_dir=log_dir)


def consumer(
    emulator: EmulatorProcess, azurite: AzuriteProcess, *, admin_port: int, prefix: str,
    auth_keys: Mapping[str, str], log_dir: Path, extra: Mapping[str, str] | None = None,
) -> ManagedProcess:  # fmt: skip
    env = {
        "HOMESEC_CONSUMER_HOST": "127.0.0.1",
        "HOMESEC_CONSUMER_PORT": str(free_port()),
        "HOMESEC_CONSUMER_ADMIN_PORT": str(admin_port),
        "HOMESEC_CONSUMER_EVENTHUB_CONNECTION_STRING": emulator.connection_string(HUB),
        "HOMESEC_CONSUMER_EVENTHUB_NAME": HUB,
        "HOMESEC_CONSUMER_CONSUMER_GROUP": GROUP,
        "HOMESEC_CONSUMER_AUTH_KEYS": json.dumps(dict(auth_keys)),
        "HOMESEC_CONSUMER_BLOB_CONNECTION_STRING": azurite.connection_string,
        "HOMESEC_CONSUMER_CHECKPOINT_CONTAINER": f"{prefix}-checkpoints",
        "HOMESEC_CONSUMER_ROLLUP_CONTAINER": f"{prefix}-rollups",
        "HOMESEC_CONSUMER_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }
    return ManagedProcess.service("consumer", "homesec_consumer", env=env, log_dir=log_dir)
