"""The Grafana dashboard for homesec-telemetry, generated from one compact panel table.

``make k8s`` writes it to charts/homesec-telemetry/files/dashboard.json (the chart's copy, shipped as a
ConfigMap for the Grafana sidecar) and deploy/grafana/dashboard.json (import it by hand). Edit this file,
never the JSON. Every query uses only the metrics in docs/contracts.md, except panels marked
``needs kube-state-metrics`` (tests/chart/test_promql.py checks both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

NS = 'namespace=~"$namespace"'
RI = "$__rate_interval"
KSM_NOTE = "Needs kube-state-metrics (kube-prometheus-stack installs it)."
UNCOUNTED_NOTE = (
    "Readings that reached the consumer but were NOT counted, by reason: poison (undecodable, "
    "schema_version, invalid) or outside the acceptance horizon (outside_horizon). Each is kept in the "
    "dead-letter container (default deadletters) and raises HomesecConsumerDeadLetters; see "
    "docs/operations.md. Anything but zero here breaks the promise that a 202 means counted."
)

EXEMPLAR_NOTE = (
    "With tracing on (docs/operations.md#tracing), the dots are exemplars: one observation each, with the "
    "trace ID of its request, publish or flush. Click one and follow 'Trace' to the trace in the "
    "$trace_datasource data source (Prometheus must scrape OpenMetrics and store exemplars)."
)
# The data link of an exemplar: the trace in Explore, in the data source the trace_datasource variable names.
TRACE_LINK = {
    "title": "Trace ${__data.fields.trace_id}",
    "url": '/explore?schemaVersion=1&panes={"trace":{"datasource":"${trace_datasource}","queries":[{"refId":'
    '"A","datasource":{"uid":"${trace_datasource}"},"queryType":"traceql","query":"${__data.fields.trace_id}"}],'
    '"range":{"from":"now-1h","to":"now"}}}',
}


def sel(metric: str, extra: str = "") -> str:
    """``metric{namespace=~"$namespace",extra}``: every query follows the namespace variable."""
    matchers = f"{NS},{extra}" if extra else NS
    return f"{metric}{{{matchers}}}"


def rate(metric: str, by: str = "", extra: str = "", per_minute: bool = False) -> str:
    grouping = f" by ({by})" if by else ""
    expr = f"sum{grouping}(rate({sel(metric, extra)}[{RI}]))"
    return f"{expr} * 60" if per_minute else expr


def agg(fn: str, metric: str, by: str = "", extra: str = "") -> str:
    """An instant aggregation such as ``max by (partition) (metric{...})``."""
    grouping = f" by ({by})" if by else ""
    return f"{fn}{grouping} ({sel(metric, extra)})"


def quantile(q: float, metric: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({sel(metric + '_bucket')}[{RI}])))"


def quantiles(metric: str) -> list[tuple[str, str]]:
    return [(quantile(q, metric), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)]


@dataclass(frozen=True)
class Panel:
    title: str
    targets: list[tuple[str, str]]
    unit: str = "short"
    width: int = 8
    kind: str = "timeseries"
    description: str = ""
    stack: bool = False
    exemplars: bool = False  # show the trace-ID exemplars (tracing on), linked to $trace_datasource


@dataclass(frozen=True)
class Row:
    title: str
    panels: list[Panel] = field(default_factory=list)


def _loss_budget() -> Row:
    acked = rate("homesec_producer_readings_acknowledged_total")
    rolled = rate("homesec_consumer_readings_rolled_up_total")
    return Row("Loss budget", [
        Panel("Readings per minute: received → acknowledged → consumed → rolled up", [
            (rate("homesec_producer_readings_received_total", per_minute=True), "received"),
            (rate("homesec_producer_readings_acknowledged_total", per_minute=True), "acknowledged"),
            (rate("homesec_consumer_events_processed_total", per_minute=True), "consumed"),
            (rate("homesec_consumer_readings_rolled_up_total", per_minute=True), "rolled up"),
        ], unit="short", width=10,
            description="Each stage should follow the one before it. Readings/min across all pods."),
        Panel("Loss budget per minute: rejected, in flight, sequence gaps, not counted", [
            (rate("homesec_producer_readings_rejected_total", per_minute=True), "rejected (client resends)"),
            (f"({acked} - {rolled}) * 60", "acknowledged, not yet rolled up"),
            (rate("homesec_consumer_sequence_gaps_total", per_minute=True), "sequence gaps (lost upstream)"),
            (rate("homesec_consumer_dead_letters_total", per_minute=True), "not counted (dead letters)"),
        ], width=8, description="Sequence gaps are readings that never reached the producer or were lost."),
        Panel("Acknowledged / received (1h)", [(
            f"sum(increase({sel('homesec_producer_readings_acknowledged_total')}[1h]))"
            f" / sum(increase({sel('homesec_producer_readings_received_total')}[1h]))", "ratio")],
            unit="percentunit", width=3, kind="stat"),
        Panel("Rolled up / acknowledged (1h)", [(
            f"sum(increase({sel('homesec_consumer_readings_rolled_up_total')}[1h]))"
            f" / sum(increase({sel('homesec_producer_readings_acknowledged_total')}[1h]))", "ratio")],
            unit="percentunit", width=3, kind="stat"),
        Panel("Not counted per minute, by reason (dead letters)", [
            (rate("homesec_consumer_dead_letters_total", by="reason", per_minute=True), "{{reason}}"),
        ], width=16, stack=True, description=UNCOUNTED_NOTE),
        Panel("Not counted in the last hour, by reason", [
            (f"sum by (reason) (increase({sel('homesec_consumer_dead_letters_total')}[1h]))", "{{reason}}"),
        ], width=8, kind="stat", description=UNCOUNTED_NOTE),
    ])  # fmt: skip


def _ingest() -> Row:
    return Row("Ingest", [
        Panel("HTTP requests by status", [
            (rate("homesec_producer_http_requests_total", by="status"), "{{status}}"),
        ], unit="reqps", stack=True),
        Panel("Rejected readings by reason", [
            (rate("homesec_producer_readings_rejected_total", by="reason"), "{{reason}}")], unit="short",
            stack=True),
        Panel("Request latency", quantiles("homesec_producer_http_request_duration_seconds"),
              unit="s", width=5, exemplars=True, description=EXEMPLAR_NOTE),
        Panel("Requests in flight", [(agg("sum", "homesec_producer_http_requests_in_flight"), "in flight")],
              width=3),
    ])  # fmt: skip


def _publish() -> Row:
    return Row("Publishing to Event Hubs", [
        Panel("Publish latency (one batch send, retries included)",
              quantiles("homesec_producer_publish_duration_seconds"), unit="s", width=6, exemplars=True,
              description=EXEMPLAR_NOTE),
        Panel("Publish batch size", [
            (quantile(0.5, "homesec_producer_publish_batch_size"), "p50"),
            (f"sum(rate({sel('homesec_producer_publish_batch_size_sum')}[{RI}]))"
             f" / sum(rate({sel('homesec_producer_publish_batch_size_count')}[{RI}]))", "mean"),
        ], width=6),
        Panel("Retries by reason and throttling (ServerBusy)", [
            (rate("homesec_producer_publish_retries_total", by="reason"), "retry: {{reason}}"),
            (rate("homesec_producer_publish_throttled_total"), "throttled"),
        ], unit="short", width=6),
        Panel("Publish failures by reason (after the last retry)", [
            (rate("homesec_producer_publish_failures_total", by="reason"), "{{reason}}")], width=6),
    ])  # fmt: skip


def _buffer() -> Row:
    depth = sel("homesec_producer_buffer_readings")
    capacity = sel("homesec_producer_buffer_capacity_readings")
    return Row("Buffer and shedding", [
        Panel("Buffer depth vs capacity (all pods)", [
            (f"sum({depth})", "waiting to publish"), (f"sum({capacity})", "capacity")]),
        Panel("Fullest buffer (per pod)", [(f"max({depth} / {capacity})", "max fill")], unit="percentunit"),
        Panel("Shed readings by status", [
            (rate("homesec_producer_shed_total", by="status"), "{{status}}")], stack=True),
    ])  # fmt: skip


def _consumer() -> Row:
    return Row("Consumer", [
        Panel("Consumer throughput", [
            (rate("homesec_consumer_events_received_total"), "received"),
            (rate("homesec_consumer_events_processed_total"), "processed"),
        ], unit="short"),
        Panel("Batch processing time and size", [
            (quantile(0.95, "homesec_consumer_batch_processing_seconds"), "p95 seconds"),
            (quantile(0.95, "homesec_consumer_batch_size"), "p95 events"),
        ]),
        Panel("Handler errors by stage", [
            (rate("homesec_consumer_handler_errors_total", by="stage"), "{{stage}}")]),
        Panel("Lag per partition (unprocessed events)", [
            (agg("max", "homesec_consumer_partition_lag_events", by="partition"), "partition {{partition}}"),
        ], width=12),
        Panel("Partitions owned per pod, unowned", [
            (agg("sum", "homesec_consumer_partitions_owned", by="pod, instance"), "{{pod}} {{instance}}"),
            (agg("max", "homesec_consumer_partitions_unowned"), "unowned"),
        ], width=6),
        Panel("Ownership changes", [
            (rate("homesec_consumer_ownership_changes_total", by="change"), "{{change}}")], width=6),
        Panel("End-to-end latency (enqueued → rollup durable)",
              quantiles("homesec_consumer_end_to_end_latency_seconds"), unit="s", exemplars=True,
              description=EXEMPLAR_NOTE),
        Panel("Checkpoint age per partition", [
            (agg("max", "homesec_consumer_checkpoint_age_seconds", by="partition"), "{{partition}}"),
        ], unit="s"),
        Panel("Received, not yet durable, per partition", [
            (agg("max", "homesec_consumer_events_not_durable", by="partition"), "{{partition}}"),
            (agg("min", "homesec_consumer_storage_available"), "Blob available (min over pods)"),
        ], description="Events received but not yet covered by a durable checkpoint: it climbs while Blob "
            "storage fails (HomesecConsumerNotDurable), even though the lag falls.", width=12),
        Panel("Receiver idle per partition", [
            (agg("max", "homesec_consumer_partition_receive_idle_seconds", by="partition"), "{{partition}}"),
        ], unit="s", description="Seconds since each partition last delivered an event. Idle with lag "
            "above 0 is a stalled receiver (HomesecConsumerPartitionStalled).", width=12),
        Panel("Checkpoints written", [(rate("homesec_consumer_checkpoints_total"), "checkpoints/s")]),
        Panel("Rollup writes by result", [
            (rate("homesec_consumer_rollup_writes_total", by="result"), "{{result}}")], stack=True),
        Panel("Dead letters by reason", [
            (rate("homesec_consumer_dead_letters_total", by="reason"), "{{reason}}")], stack=True),
        Panel("Homes in state", [(agg("sum", "homesec_consumer_homes_in_state"), "homes")]),
        Panel("Duplicates dropped by reason", [
            (rate("homesec_consumer_duplicates_dropped_total", by="reason"), "{{reason}}")], stack=True,
            description="Readings already applied, so without effect: expected, never alerted on. resent: "
            "the same reading_id or (sensor_id, seq, ts) sent again (client or producer retries). "
            "redelivered: events replayed after a consumer restart or rebalance, skipped by position."),
        Panel("Late readings (amended into closed hours)", [
            (rate("homesec_consumer_late_readings_total", per_minute=True), "late, applied")],
            description="Readings per minute applied to an hour that had already closed: the day blob is "
            "amended. Counted, not a loss; a rise means sensors upload backlogs."),
        Panel("Sensor restarts", [
            (rate("homesec_consumer_sensor_restarts_total", per_minute=True), "restarts")],
            description="Sensors per minute whose sequence numbers started again (reboot, battery swap, "
            "replacement). Their readings are applied; gap accounting starts a new run."),
    ])  # fmt: skip


def _alarms() -> Row:
    return Row("Alarms and state", [
        Panel("Alarm latency (enqueued → alarm event acknowledged)",
              quantiles("homesec_consumer_alarm_latency_seconds"), unit="s", exemplars=True,
              description="From the enqueued time of the reading that raised or cleared an alarm to its "
              "event acknowledged by the alarms hub. " + EXEMPLAR_NOTE),
        Panel("Alarm transitions and events published", [
            (rate("homesec_consumer_alarm_transitions_total", by="transition", per_minute=True),
             "{{transition}} /min"),
            (rate("homesec_consumer_alarms_published_total", per_minute=True), "published /min"),
        ]),
        Panel("Alarm events pending, publish errors", [
            (agg("sum", "homesec_consumer_alarms_pending"), "pending"),
            (rate("homesec_consumer_alarm_publish_errors_total", per_minute=True), "errors /min"),
        ], description="Alarm events waiting for the alarms hub's acknowledgement (kept in the partition "
            "snapshot, sent again every second): above 0 for long is HomesecConsumerAlarmsPending."),
        Panel("State snapshots by result", [
            (rate("homesec_consumer_snapshot_writes_total", by="result"), "{{result}}")], stack=True,
            description="One snapshot per partition and flush interval when anything changed; conflict: "
            "another owner wrote it (the partition is fenced and restarts)."),
        Panel("Snapshot size (p95)", [(quantile(0.95, "homesec_consumer_snapshot_bytes"), "p95 bytes")],
              unit="bytes"),
    ])  # fmt: skip


def _of(service: str, expr: str) -> str:
    """``expr`` per pod, kept to the scrape targets of ``service`` (the process metrics carry no service)."""
    return f"sum by (pod, instance) ({expr} and on (job, instance) {sel(f'homesec_{service}_ready')})"


def _resources(service: str) -> list[Panel]:
    cpu = _of(service, f"rate({sel('process_cpu_seconds_total')}[{RI}])")
    memory = _of(service, sel("process_resident_memory_bytes"))
    name = service.capitalize()
    return [
        Panel(f"{name} CPU per pod (cores)", [(cpu, "{{pod}} {{instance}}")], width=6,
              description=f"CPU seconds per second of each {service} process (process_cpu_seconds_total); "
              "compare with the pod's CPU request, which the HPA's utilisation target refers to."),
        Panel(f"{name} memory per pod (resident)", [(memory, "{{pod}} {{instance}}")], unit="bytes",
              width=6, description=f"Resident memory of each {service} process "
              "(process_resident_memory_bytes); compare with the pod's memory limit."),
    ]  # fmt: skip


def _pods() -> Row:
    hpa = 'horizontalpodautoscaler=~".*(producer|consumer)"'
    return Row("Pods and autoscaling", [
        *_resources("producer"),
        *_resources("consumer"),
        Panel("Ready pods (reported by the services)", [
            (agg("sum", "homesec_producer_ready"), "producer"),
            (agg("sum", "homesec_consumer_ready"), "consumer"),
        ], width=12),
        Panel("HPA replicas: current, desired, max", [
            (agg("sum", f"kube_horizontalpodautoscaler_{metric}", by="horizontalpodautoscaler", extra=hpa),
             f"{{{{horizontalpodautoscaler}}}} {legend}")
            for metric, legend in (
                ("status_current_replicas", "current"),
                ("status_desired_replicas", "desired"),
                ("spec_max_replicas", "max"),
            )
        ], width=12, description=KSM_NOTE),
    ])  # fmt: skip


def rows() -> list[Row]:
    """The dashboard, top to bottom."""
    return [_loss_budget(), _ingest(), _publish(), _buffer(), _consumer(), _alarms(), _pods()]


DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HEIGHT = 8


def _field_config(panel: Panel) -> dict[str, Any]:
    custom: dict[str, Any] = {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never"}
    if panel.stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    config: dict[str, Any] = {"unit": panel.unit, "min": 0}
    if panel.kind == "timeseries":
        config["custom"] = custom
    if panel.exemplars:
        config["links"] = [TRACE_LINK]
    return {"defaults": config, "overrides": []}


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": legend,
            "refId": chr(65 + i),
            "range": True,
            **({"exemplar": True} if panel.exemplars else {}),
        }
        for i, (expr, legend) in enumerate(panel.targets)
    ]
    options: dict[str, Any] = {
        "tooltip": {"mode": "multi", "sort": "desc"},
        "legend": {"displayMode": "list"},
    }
    if panel.kind == "stat":
        reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
        options = {"reduceOptions": reduce, "colorMode": "value"}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": panel.width, "x": x, "y": y},
        "fieldConfig": _field_config(panel),
        "options": options,
        "targets": targets,
    }


def _variables() -> list[dict[str, Any]]:
    datasource = {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"}
    namespace = {
        "name": "namespace",
        "label": "Namespace",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(homesec_producer_ready, namespace)", "refId": "namespace"},
        "definition": "label_values(homesec_producer_ready, namespace)",
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "refresh": 2,
        "current": {"text": "All", "value": "$__all"},
    }
    traces = {  # where the exemplars' trace IDs lead (Tempo; any trace data source of that type)
        "name": "trace_datasource", "label": "Traces", "type": "datasource", "query": "tempo",
        "description": "The trace data source the latency exemplars link to (docs/operations.md#tracing).",
    }  # fmt: skip
    return [datasource, namespace, traces]


def build() -> dict[str, Any]:
    """The whole dashboard as Grafana JSON (schemaVersion 39)."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in rows():
        panels.append({"id": len(panels) + 1, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})  # fmt: skip
        y, x = y + 1, 0
        for panel in row.panels:
            if x + panel.width > 24:
                y, x = y + HEIGHT, 0
            panels.append(panel_json(panel, len(panels) + 1, x, y))
            x += panel.width
        y += HEIGHT
    return {
        "uid": "homesec-telemetry",
        "title": "homesec-telemetry",
        "description": "Home-security telemetry: loss budget, ingest, publishing, consumer, scaling.",
        "tags": ["homesec", "event-hubs", "aks"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": _variables()},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render() -> str:
    """The dashboard JSON exactly as committed."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
