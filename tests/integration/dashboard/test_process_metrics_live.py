"""Both services' admin ports serve the process and interpreter metrics of their own process.

Real processes over loopback: the Event Hubs emulator, Azurite, the producer and the consumer. Each
/metrics must carry ``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` (the dashboard's CPU
and memory panels), ``python_info`` and ``python_gc_*``, with values of that very process, and pass
``promtool check metrics``.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from homesec_devstack.azurite import AzuriteProcess
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_devstack.procs import ManagedProcess, free_port
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.dashboard import service_processes
from tests.integration.dashboard.prometheus import assert_expositions_pass_promtool

pytestmark = pytest.mark.integration
AUTH_KEYS = {"proc-1": "process-metrics-test-signing-key-0123456789"}


@pytest.fixture
def services(
    emulator: EmulatorProcess, azurite: AzuriteProcess, container_name: str, tmp_path: Path
) -> Iterator[dict[str, tuple[ManagedProcess, int]]]:
    """Producer and consumer, ready; name -> (process, admin port). Both stopped at teardown."""
    logs = tmp_path / "logs"
    azurite.create_containers([f"{container_name}-checkpoints", f"{container_name}-rollups"])
    ports = {"producer": free_port(), "consumer": free_port()}
    procs = {
        "producer": service_processes.producer(
            emulator, port=free_port(), admin_port=ports["producer"], auth_keys=AUTH_KEYS, log_dir=logs
        ),
        "consumer": service_processes.consumer(
            emulator,
            azurite,
            admin_port=ports["consumer"],
            prefix=container_name,
            auth_keys=AUTH_KEYS,
            log_dir=logs,
        ),
    }
    started: list[ManagedProcess] = []
    try:
        for name, proc in procs.items():
            started.append(proc.start())
            proc.wait_http(f"http://127.0.0.1:{ports[name]}/readyz", timeout=60)
        yield {name: (procs[name], ports[name]) for name in procs}
    finally:
        for proc in reversed(started):
            proc.stop(grace=15)


def _samples(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _proc_start_time(pid: int) -> float:
    """The process's start as Unix time, from /proc (what ProcessCollector reports)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    return boot + ticks / 100  # USER_HZ: 100 on Linux


def test_both_admin_ports_serve_their_process_metrics(
    services: dict[str, tuple[ManagedProcess, int]],
) -> None:
    for name, (proc, port) in services.items():
        samples = _samples(port)
        ((_, cpu),) = samples["process_cpu_seconds_total"]
        ((_, rss),) = samples["process_resident_memory_bytes"]
        ((_, started),) = samples["process_start_time_seconds"]
        assert cpu > 0, name
        assert rss > 20 * 2**20, (name, rss)  # a Python service with its SDKs: tens of MiB at least
        # The values are the service process's own (not the test runner's or another process's).
        assert abs(started - _proc_start_time(proc.pid)) < 1.0, name
        assert started <= time.time(), name
        assert [labels["implementation"] for labels, _ in samples["python_info"]] == ["CPython"], name
        generations = {labels["generation"] for labels, _ in samples["python_gc_collections_total"]}
        assert generations == {"0", "1", "2"}, name
    if shutil.which("promtool"):
        assert_expositions_pass_promtool([port for _, port in services.values()])
