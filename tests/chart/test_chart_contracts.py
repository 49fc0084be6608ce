"""What the chart renders for the two services agrees with them: one acceptance horizon for both, and a
producer shutdown timeline that fits in the pod's termination grace (the producer accepts the settings)."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest
from homesec_producer.settings import ProducerSettings

from tests.chart.support import SCENARIOS, container, find, one, render, render_files

HORIZON = ("MAX_READING_AGE_SECONDS", "MAX_CLOCK_SKEW_SECONDS")


def _config(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap", f"-{component}")["data"]
    return data


def _producer_settings(config: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ProducerSettings:
    """The producer's settings from the rendered ConfigMap (secrets stand in for the Secret's keys)."""
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING",
        "Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=telemetry",
    )
    monkeypatch.setenv("HOMESEC_PRODUCER_AUTH_KEYS", json.dumps({"k": "k" * 40}))
    return ProducerSettings()


@pytest.mark.parametrize("scenario", sorted(s for s in SCENARIOS if s != "producer-only"))
def test_both_services_get_the_same_acceptance_horizon(scenario: str) -> None:
    objects = render(SCENARIOS[scenario])
    producer, consumer = _config(objects, "producer"), _config(objects, "consumer")
    for key in HORIZON:
        assert producer[f"HOMESEC_PRODUCER_{key}"] == consumer[f"HOMESEC_CONSUMER_{key}"]
    assert [producer[f"HOMESEC_PRODUCER_{key}"] for key in HORIZON] == ["86400", "300"]
    assert consumer["HOMESEC_CONSUMER_RESEND_WINDOW_SECONDS"] == "300"


def test_one_value_block_sets_the_horizon_of_both_and_rolls_both() -> None:
    before = render({})
    values = {"readings": {"maxAgeSeconds": 172800, "maxClockSkewSeconds": 60},
              "consumer": {"resendWindowSeconds": 900}}  # fmt: skip
    after = render(values)
    for component in ("producer", "consumer"):
        config = _config(after, component)
        prefix = f"HOMESEC_{component.upper()}_"
        assert (config[f"{prefix}MAX_READING_AGE_SECONDS"], config[f"{prefix}MAX_CLOCK_SKEW_SECONDS"]) == (
            "172800", "60"
        )  # fmt: skip
        checksum = "checksum/config"
        pods = [
            one(objects, "Deployment", f"-{component}")["spec"]["template"] for objects in (before, after)
        ]
        assert pods[0]["metadata"]["annotations"][checksum] != pods[1]["metadata"]["annotations"][checksum]
    assert _config(after, "consumer")["HOMESEC_CONSUMER_RESEND_WINDOW_SECONDS"] == "900"


@pytest.mark.parametrize(
    ("component", "key", "instead"),
    [("producer", "MAX_READING_AGE_SECONDS", "readings.maxAgeSeconds"),
     ("consumer", "MAX_CLOCK_SKEW_SECONDS", "readings.maxClockSkewSeconds"),
     ("consumer", "RESEND_WINDOW_SECONDS", "consumer.resendWindowSeconds"),
     ("producer", "TERMINATION_GRACE_SECONDS", "producer.terminationGracePeriodSeconds")],
)  # fmt: skip
def test_the_horizon_cannot_be_split_through_config(component: str, key: str, instead: str) -> None:
    with pytest.raises(
        helm_python.HelmRenderError, match=rf"{component}.config.{key}: set {instead} instead"
    ):
        render_files({component: {"config": {key: 1}}})


@pytest.mark.parametrize(
    "values",
    [*(SCENARIOS[s] for s in sorted(SCENARIOS)), {"producer": {"shutdownGraceSeconds": 5}},
     {"producer": {"shutdownGraceSeconds": 9, "preStopSleepSeconds": 0,
                   "config": {"SHUTDOWN_DELAY_SECONDS": 4}}},
     {"producer": {"terminationGracePeriodSeconds": 36}}],
)  # fmt: skip
def test_the_producer_accepts_what_the_chart_renders(
    values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(values)
    deployment = find(objects, "Deployment", "-producer")[0]
    pre_stop = (
        container(deployment).get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    )
    pod_grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    settings = _producer_settings(_config(objects, "producer"), monkeypatch)  # raises if the plan cannot fit
    assert settings.termination_grace_seconds == pod_grace - pre_stop
    plan = settings.shutdown_plan()
    assert pre_stop + plan.grace < pod_grace  # exits (every request answered) before SIGKILL


def test_a_grace_too_short_to_answer_every_request_fails_rendering() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="shutdownGraceSeconds"):
        render_files({"producer": {"shutdownGraceSeconds": 4}})
    with pytest.raises(helm_python.HelmRenderError, match=r"shutdownGraceSeconds \(8\) must be at least 4.5"):
        render_files({"producer": {"shutdownGraceSeconds": 8, "config": {"SHUTDOWN_DELAY_SECONDS": 4}}})
    with pytest.raises(
        helm_python.HelmRenderError, match=r"terminationGracePeriodSeconds \(35\) must exceed"
    ):
        render_files({"producer": {"terminationGracePeriodSeconds": 35}})
