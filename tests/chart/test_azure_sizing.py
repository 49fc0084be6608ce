"""The Azure example (deploy/azure/main.bicep) matches the chart and the source documents' sizing rules."""

from __future__ import annotations

import math
import re

import yaml

from tests.chart.support import CHART, ROOT, WI, find, render

BICEP = (ROOT / "deploy" / "azure" / "main.bicep").read_text()
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
HOMES, SENSORS_PER_HOME, READINGS_PER_SENSOR_PER_MINUTE = 100_000, 5, 1
EVENTS_PER_TU, EGRESS_EVENTS_PER_TU = 1000, 4096


def _param(name: str) -> str:
    match = re.search(rf"^param {name} \w+ = '?([^'\n]+)'?$", BICEP, flags=re.MULTILINE)
    assert match, f"param {name} has no default in main.bicep"
    return match.group(1)


def test_bicep_defaults_match_the_chart() -> None:
    assert int(_param("partitionCount")) == VALUES["eventHubs"]["partitionCount"]
    assert _param("eventHubName") == VALUES["eventHubs"]["name"]
    assert _param("consumerGroup") == VALUES["eventHubs"]["consumerGroup"]
    assert _param("checkpointContainer") == VALUES["blobStorage"]["checkpointContainer"]
    assert _param("rollupContainer") == VALUES["blobStorage"]["rollupContainer"]


def _resource(name: str) -> str:
    """The body of Bicep resource ``name`` (up to the next top-level resource, output or comment)."""
    match = re.search(rf"^resource {name} .*?^}}$", BICEP, flags=re.MULTILINE | re.DOTALL)
    assert match, f"main.bicep has no resource {name}"
    return match.group(0)


def test_the_alarms_hub_matches_the_chart_and_the_telemetry_partition_count() -> None:
    """Same partition count as telemetry: one telemetry partition's homes map to one alarms partition."""
    from homesec_consumer.settings import ConsumerSettings

    assert _param("alarmsEventHubName") == VALUES["eventHubs"]["alarmsName"] == "alarms"
    assert ConsumerSettings.model_fields["alarms_eventhub_name"].default == "alarms"
    hub = _resource("alarmsHub")
    assert "name: alarmsEventHubName" in hub and "partitionCount: partitionCount" in hub
    groups = _resource("alarmsConsumerGroups")
    assert "[consumerGroup, alarmsSubscriberConsumerGroup]" in groups and "parent: alarmsHub" in groups
    assert _param("alarmsSubscriberConsumerGroup") == "notifications"


def test_the_identity_may_send_to_and_receive_from_the_alarms_hub() -> None:
    for name, role in (
        ("canSendAlarms", "eventHubsDataSender"),
        ("canReceiveAlarms", "eventHubsDataReceiver"),
    ):
        body = _resource(name)
        assert "scope: alarmsHub" in body and f"roles.{role})" in body and "identity.properties" in body
    rule = _resource("alarmsRule")
    assert "parent: alarmsHub" in rule and "['Send', 'Listen']" in rule


def test_throughput_units_follow_the_source_rules() -> None:
    events_per_second = HOMES * SENSORS_PER_HOME * READINGS_PER_SENSOR_PER_MINUTE / 60
    assert round(events_per_second) == 8333
    ingress_tus = math.ceil(events_per_second / EVENTS_PER_TU)  # 1 TU = 1000 events/s in
    egress_tus = math.ceil(events_per_second / EGRESS_EVENTS_PER_TU)  # one consumer group reads it all
    steady, ceiling = int(_param("throughputUnits")), int(_param("maxThroughputUnits"))
    assert steady >= max(ingress_tus, egress_tus) == 9
    assert ceiling >= 2 * ingress_tus and ceiling <= 40
    assert VALUES["eventHubs"]["partitionCount"] >= 16
    assert VALUES["consumer"]["autoscaling"]["maxReplicas"] <= VALUES["eventHubs"]["partitionCount"]


def test_federated_subjects_are_the_charts_service_accounts() -> None:
    names = {sa["metadata"]["name"] for sa in find(render(WI), "ServiceAccount")}
    namespace, release = _param("kubernetesNamespace"), _param("helmRelease")
    for name in names:
        subject = name.replace(release, "${helmRelease}")
        assert f"system:serviceaccount:${{kubernetesNamespace}}:{subject}" in BICEP
    assert (namespace, release) == ("homesec", "homesec-telemetry")


def test_bicep_creates_every_container_the_consumer_uses() -> None:
    """Checkpoints, rollups and dead letters (plus Capture's archive): the consumer's identity may lack
    the right to create containers, and a missing dead-letter container fails its first poison event."""
    from homesec_consumer.settings import ConsumerSettings

    fields = ConsumerSettings.model_fields
    assert _param("deadletterContainer") == fields["deadletter_container"].default == "deadletters"
    assert _param("checkpointContainer") == fields["checkpoint_container"].default
    assert _param("rollupContainer") == fields["rollup_container"].default
    match = re.search(r"for name in \[([^\]]*)\]", BICEP)
    assert match, "main.bicep has no container loop"
    created = {n.strip() for n in match.group(1).split(",")}
    assert created == {"checkpointContainer", "rollupContainer", "deadletterContainer", "captureContainer"}
    values_text = (CHART / "values.yaml").read_text()
    assert "deadletters" in values_text and "never creates" not in values_text
