"""Shared fixtures: the Event Hubs emulator and Azurite as real processes on free loopback ports.

Every fixture stops what it started, whatever the test did. Ports come from ``free_port`` (reserved across
processes), so the suite runs on parallel pytest-xdist workers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess

EmulatorFactory = Callable[..., EmulatorProcess]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    """One Azurite blob service for the session; tests isolate themselves with unique container names."""
    proc = AzuriteProcess(tmp_path_factory.mktemp("azurite"), log_dir=tmp_path_factory.mktemp("azurite-logs"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def container_name() -> str:
    """A fresh, valid blob container name."""
    return f"t{uuid.uuid4().hex[:20]}"


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[EmulatorFactory]:
    """Start emulators with custom options; all are stopped at teardown."""
    started: list[EmulatorProcess] = []

    def make(**kwargs: Any) -> EmulatorProcess:
        data_dir = kwargs.pop("data_dir", None) or tmp_path / f"eh-{len(started)}"
        emu = EmulatorProcess(data_dir, log_dir=tmp_path / "logs", **kwargs)
        started.append(emu)
        return emu.start()

    try:
        yield make
    finally:
        for emu in started:
            emu.stop()


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> EmulatorProcess:
    """A default emulator: hubs ``telemetry`` and ``alarms`` with 16 partitions each, consumer groups
    ``$Default`` and ``rollups``, no throughput limit."""
    return emulator_factory()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On xdist workers, the tests marked ``slow`` first (otherwise in collection order): the workers start
    on the longest tests and end on short ones, instead of one worker finishing long tests alone. (A serial
    run keeps the collection order, and each module's fixtures together.)"""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
