"""The standard process and interpreter metrics on a service's own registry (never the global one).

``process_*`` (CPU seconds, resident and virtual memory, open file descriptors, start time; read from
``/proc`` at each scrape, Linux only), ``python_info`` and ``python_gc_*``: the names every Python exporter
uses, so operators' usual dashboards and alerts work unchanged (docs/contracts.md#prometheus-metrics).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def register_process_metrics(registry: CollectorRegistry) -> None:
    """Register the process, platform and garbage-collector collectors on ``registry``."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
