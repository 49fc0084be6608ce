"""A tiny exporter of every metric in docs/contracts.md, with moving values (tests the Prometheus harness).

The ``homesec_*`` ones are fakes; ``process_*`` and ``python_*`` are this process's real ones.

    python -m tests.integration.dashboard.fake_exporter --port 9999 --prefix homesec_producer_

Label values are the contract's enumerations where it names them, otherwise a few plausible ones.
It stands in for the services only until they exist; tests/integration/dashboard/test_dashboard_live.py
scrapes the real ones.
"""

from __future__ import annotations

import argparse
import itertools
import random
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from homesec_runtime.process_metrics import register_process_metrics
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.chart.promql import Metric, contract_metrics

FREE_LABEL_VALUES = {
    "route": ("/v1/readings", "/healthz"),
    "method": ("POST", "GET"),
    "status": ("202", "400", "503"),
    "partition": ("0", "1", "2", "3"),
    "stage": ("decode", "fold", "rollup"),
    "reason": ("timeout", "connection"),  # publish_failures_total: the contract names no values
}


def _label_sets(metric: Metric) -> list[dict[str, str]]:
    enumerated = dict(metric.values)
    names = sorted(metric.labels)
    choices = [enumerated.get(n) or FREE_LABEL_VALUES[n] for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def _updater(metric: Metric, registry: CollectorRegistry) -> Callable[[], None]:
    """Register ``metric`` and return a function that moves its value a little."""
    labels = sorted(metric.labels)
    if metric.kind == "counter":
        parent: Counter | Gauge | Histogram = Counter(
            metric.name.removesuffix("_total"), metric.name, labels, registry=registry
        )
    elif metric.kind == "gauge":
        parent = Gauge(metric.name, metric.name, labels, registry=registry)
    else:
        parent = Histogram(metric.name, metric.name, labels, registry=registry)
    children = [parent.labels(**ls) for ls in _label_sets(metric)] if labels else [parent]

    def update() -> None:
        for child in children:
            if isinstance(child, Counter):
                child.inc(random.randint(1, 5))
            elif isinstance(child, Gauge):
                child.set(random.uniform(1, 100))
            else:
                child.observe(random.expovariate(10))

    return update


def _unique(prefix: str) -> Iterator[Metric]:
    seen: set[str] = set()
    for metric in contract_metrics().values():
        if metric.name.startswith(prefix) and metric.name not in seen:
            seen.add(metric.name)
            yield metric


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="homesec_", help="only metrics whose name starts with this")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between updates")
    args = parser.parse_args(argv)
    registry = CollectorRegistry()
    updaters = [_updater(m, registry) for m in _unique(args.prefix)]
    register_process_metrics(registry)  # process_* and python_*: real values of this process, as a service
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server, thread = start_http_server(args.port, addr="127.0.0.1", registry=registry)
    while not stop.wait(args.interval):
        for update in updaters:
            update()
    server.shutdown()
    thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
