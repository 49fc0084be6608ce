"""The soak's small deployment on loopback: the Event Hubs emulator (throttled at ``throughput_units``),
Azurite behind the counting Blob proxy, two producer processes behind a round-robin front, two consumer
processes, and a real Prometheus scraping the services' admin ports with the alert rules of
deploy/prometheus/rules.yaml. Every process keeps its ports across restarts (Prometheus' targets stay)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from homesec_devstack.azurite import AzuriteProcess, blob_connection_string
from homesec_devstack.blob_proxy import BlobProxyProcess
from homesec_devstack.emulator_process import EmulatorProcess, stack_hubs
from homesec_devstack.front import FrontProcess
from homesec_devstack.procs import ManagedProcess

from tests.integration.consumer.harness import ConsumerProcess, Stack, production_env
from tests.integration.dashboard.prometheus import PrometheusServer, Target
from tests.integration.producer.harness import ProducerProcess

from .plan import flush_max_homes

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
STOP_GRACE_S = 40.0  # above both services' SHUTDOWN_GRACE_SECONDS (25 s): a stop is never cut short


@dataclass
class Deployment:
    root: Path
    homes: int
    partitions: int = 16
    throughput_units: int = 1
    scrape_interval: str = "5s"
    emulator: EmulatorProcess = field(init=False)
    azurite: AzuriteProcess = field(init=False)
    proxy: BlobProxyProcess = field(init=False)
    stack: Stack = field(init=False)
    producers: dict[str, ProducerProcess] = field(init=False, default_factory=dict)
    consumers: dict[str, ConsumerProcess] = field(init=False, default_factory=dict)
    front: FrontProcess = field(init=False)
    prometheus: PrometheusServer = field(init=False)
    _started: list[str] = field(init=False, default_factory=list)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start(self) -> Deployment:
        """Start everything, in dependency order; on failure what started is stopped by ``stop()``."""
        self.emulator = EmulatorProcess(
            self.root / "eventhubs", hubs=stack_hubs(self.partitions), throughput_units=self.throughput_units,
            log_dir=self.logs,
        ).start()  # fmt: skip
        self._started.append("emulator")
        self.azurite = AzuriteProcess(self.root / "azurite", log_dir=self.logs).start()
        self._started.append("azurite")
        self.proxy = BlobProxyProcess(self.azurite.port, log_dir=self.logs).start()
        self._started.append("proxy")
        self.stack = Stack(self.emulator, self.azurite, prefix="soak", log_dir=self.logs)
        consumer_env = {
            **production_env(), "LOG_LEVEL": "WARNING",
            "BLOB_CONNECTION_STRING": blob_connection_string(self.proxy.port),
            "FLUSH_MAX_HOMES": str(flush_max_homes(self.homes, self.partitions)),
        }  # fmt: skip
        for i in (1, 2):
            producer = ProducerProcess(self.emulator, self.logs, fast=False)
            producer.proc.name, producer.proc.log_path = f"producer-{i}", self.logs / f"producer-{i}.log"
            self.producers[f"producer-{i}"] = producer
            self.consumers[f"consumer-{i}"] = self.stack.consumer(f"consumer-{i}", **consumer_env)
        for name, proc in self.services().items():
            self._started.append(name)
            self._start_service(proc)
        backends: dict[int, int | None] = {p.port: p.admin_port for p in self.producers.values()}
        self.front = FrontProcess(backends, log_dir=self.logs).start()
        self._started.append("front")
        self.prometheus = PrometheusServer(
            self.root / "prometheus", self.targets(), scrape_interval=self.scrape_interval,
            rule_files=[RULES], log_dir=self.logs,
        ).start()  # fmt: skip
        self._started.append("prometheus")
        return self

    def targets(self) -> list[Target]:
        return [
            Target("producer", tuple(f"127.0.0.1:{p.admin_port}" for p in self.producers.values())),
            Target("consumer", tuple(f"127.0.0.1:{c.admin_port}" for c in self.consumers.values())),
        ]

    def services(self) -> dict[str, ProducerProcess | ConsumerProcess]:
        return {**self.producers, **self.consumers}

    def _start_service(self, service: ProducerProcess | ConsumerProcess) -> None:
        service.start(timeout=120)

    # -- disruptions -----------------------------------------------------------------------------
    def restart(self, name: str) -> None:
        """SIGTERM, wait for the exit (``STOP_GRACE_S`` at most, then SIGKILL), start again, wait ready."""
        service = self.services()[name]
        service.proc.stop(grace=STOP_GRACE_S)
        self._start_service(service)

    def kill(self, name: str) -> None:
        """SIGKILL (a crash), then start again (the pod's restart) and wait until ready."""
        service = self.services()[name]
        service.proc.kill()
        self._start_service(service)

    def blob_hang(self, seconds: float) -> None:
        self.proxy.stall(seconds)

    def eventhubs_drop(self) -> None:
        self.emulator.drop_connections()

    # -- what runs -------------------------------------------------------------------------------
    def processes(self) -> dict[str, ManagedProcess]:
        """Every process of the deployment by name (the services' current incarnations)."""
        procs = {
            "emulator": self.emulator.process, "azurite": self.azurite.process,
            "blob-proxy": self.proxy.process, "front": self.front.process,
        }  # fmt: skip
        procs.update({name: s.proc for name, s in self.services().items()})
        procs["prometheus"] = self.prometheus._proc
        return procs

    def pids(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {n: (p.pid if p.alive() else None) for n, p in self.processes().items()}
        out["soak"] = os.getpid()
        return out

    def stop(self) -> None:
        """Stop what started, newest first; never raises."""
        stops: dict[str, Callable[[], object]] = {
            "prometheus": self.prometheus.stop, "front": self.front.stop,
            "proxy": self.proxy.stop, "azurite": self.azurite.stop,
            "emulator": self.emulator.stop,
        }  # fmt: skip
        for name in reversed(self._started):
            with contextlib.suppress(Exception):
                if name in stops:
                    stops[name]()
                else:
                    self.services()[name].proc.stop(grace=STOP_GRACE_S)
        self._started.clear()
