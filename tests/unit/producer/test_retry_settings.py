from __future__ import annotations

import random

import pytest
from homesec_producer.retry import RetryPolicy
from homesec_producer.settings import ProducerSettings
from pydantic import ValidationError

from .helpers import KEY, settings


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(max_tries=8, initial_seconds=1.0, max_seconds=30.0, rng=random.Random(1))
    for tries, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (7, 30.0)]:
        delays = [policy.delay(tries) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jitter spreads retries
    assert policy.should_retry(7)
    assert not policy.should_retry(8)


def test_defaults_follow_the_source_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "HOMESEC_PRODUCER_EVENTHUB_CONNECTION_STRING",
        "Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=telemetry",
    )
    monkeypatch.setenv("HOMESEC_PRODUCER_AUTH_KEYS", f'{{"k1": "{KEY}"}}')
    s = ProducerSettings()
    assert 5 <= s.publish_max_tries <= 10
    assert (s.publish_backoff_initial_seconds, s.publish_backoff_max_seconds) == (1.0, 30.0)
    assert s.auth_keys["k1"].get_secret_value() == KEY
    assert KEY not in repr(s)
    assert s.shutdown_grace_seconds < 30  # below the pod's default terminationGracePeriodSeconds


def test_secrets_have_no_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVENTHUB_CONNECTION_STRING", "AUTH_KEYS", "EVENTHUB_FULLY_QUALIFIED_NAMESPACE"):
        monkeypatch.delenv(f"HOMESEC_PRODUCER_{name}", raising=False)
    with pytest.raises(ValidationError, match="EVENTHUB"):
        ProducerSettings()
    with pytest.raises(ValidationError, match="AUTH_KEYS"):
        settings(auth_keys={})
    with pytest.raises(ValidationError, match="shorter than 32"):
        settings(auth_keys={"k": "short"})


def test_namespace_with_workload_identity_is_accepted() -> None:
    s = settings(
        eventhub_connection_string=None, eventhub_fully_qualified_namespace="ns.servicebus.windows.net",
        eventhub_name="telemetry",
    )  # fmt: skip
    assert s.eventhub_connection_string is None
