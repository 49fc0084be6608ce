"""Debian's Prometheus server as a real process: scrapes given loopback targets, answers PromQL queries.

Always a process of the test's own, on a free port with its data in the test's directory: never the
system's ``prometheus`` service (which the Debian package may run on 9090), whatever answers elsewhere.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from homesec_devstack.procs import ManagedProcess, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@dataclass(frozen=True)
class Target:
    """A scrape job: ``job`` name and ``host:port`` addresses (path /metrics)."""

    job: str
    addresses: tuple[str, ...]


class PrometheusServer:
    """``prometheus`` on 127.0.0.1:<free port> with its TSDB in ``workdir``; stopped on exit."""

    def __init__(
        self,
        workdir: Path,
        targets: Sequence[Target],
        *,
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        log_dir: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {"job_name": t.job, "static_configs": [{"targets": list(t.addresses)}]} for t in targets
            ],
        }
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config))
        self._proc = ManagedProcess(
            "prometheus",
            [
                PROMETHEUS, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
                "--log.level=warn", *extra_args,
            ],
            log_dir=log_dir or workdir,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        self._proc.start()
        # owned: an answer on the port from any other process (a system Prometheus) is refused.
        self._proc.wait_http(f"{self.url}/-/ready", timeout=timeout, owned=True)
        return self

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def stop(self) -> None:
        self._proc.stop(grace=10)

    def log_tail(self) -> str:
        return self._proc.log_tail()

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (or a scalar wrapped as one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_targets_up(self, jobs: Sequence[str], scrapes: int = 1, timeout: float = 60.0) -> None:
        """Wait until every job's targets are up and have been scraped ``scrapes`` times."""
        deadline = time.monotonic() + timeout
        for job in jobs:
            expr = f'min(count_over_time(up{{job="{job}"}}[5m])) >= {scrapes} and min(up{{job="{job}"}}) == 1'
            while not self.query(expr):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job} not up:\n{self.api('targets')}\n{self.log_tail()}")
                time.sleep(0.5)

    def rule_health(self) -> dict[str, str]:
        """Rule name -> health ("ok", "err", "unknown") after evaluation."""
        groups = self.api("rules")["groups"]
        return {rule["name"]: rule["health"] for g in groups for rule in g["rules"]}

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def has_data(samples: list[dict[str, Any]]) -> bool:
    """At least one sample with a real number (histogram_quantile over no observations gives NaN)."""
    return any(not math.isnan(float(s["value"][1])) for s in samples)


def assert_expositions_pass_promtool(ports: Sequence[int]) -> None:
    """Each port's /metrics passes ``promtool check metrics`` (its lint of names, help and units)."""
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read()
        result = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, check=False, timeout=60
        )
        assert result.returncode == 0, (result.stdout + result.stderr).decode()
