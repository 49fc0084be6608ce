"""Hub and consumer-group names match in any case, as in Event Hubs; one group has one set of receivers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from homesec_devstack.emulator.broker import LINK_STOLEN, NOT_FOUND, Broker
from homesec_devstack.emulator.throttle import ThroughputLimiter


@dataclass(eq=False)
class FakeReceiver:
    epoch: int | None
    stolen: list[str] = field(default_factory=list)

    def notify(self) -> None:
        return None

    def steal(self, description: str) -> None:
        self.stolen.append(description)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path, {"Telemetry": 2}, ["$Default", "rollups"], ThroughputLimiter(None))
    try:
        yield b
    finally:
        b.close()


def test_hub_lookup_ignores_case(broker: Broker) -> None:
    hub = broker.hubs["Telemetry"]
    assert broker.hub("telemetry") is hub
    assert broker.hub("TELEMETRY") is hub
    assert broker.hub("telemetry2") is None


def test_consumer_group_lookup_returns_the_configured_spelling(broker: Broker) -> None:
    hub = broker.hubs["Telemetry"]
    assert hub.consumer_group("$default") == "$Default"
    assert hub.consumer_group("ROLLUPS") == "rollups"
    assert hub.consumer_group("nosuchgroup") is None


def test_differently_cased_groups_share_receivers_and_epochs(broker: Broker) -> None:
    low, high = FakeReceiver(epoch=1), FakeReceiver(epoch=2)
    assert broker.subscribe("telemetry", "$Default", "0", low) is None
    assert broker.subscribe("TELEMETRY", "$default", "0", high) is None
    assert low.stolen, "the higher epoch in `$default` must steal from `$Default`"
    part = broker.hubs["Telemetry"].partitions["0"]
    assert part.subscribers == {"$Default": [high]}
    lower = broker.subscribe("Telemetry", "$DEFAULT", "0", FakeReceiver(epoch=0))
    assert lower is not None and lower.condition == LINK_STOLEN
    broker.unsubscribe("Telemetry", "$dEfAuLt", "0", high)
    assert part.subscribers == {"$Default": []}


def test_unknown_group_or_hub_is_not_found(broker: Broker) -> None:
    missing_group = broker.subscribe("telemetry", "nosuchgroup", "0", FakeReceiver(epoch=None))
    missing_hub = broker.subscribe("nosuchhub", "$Default", "0", FakeReceiver(epoch=None))
    assert missing_group is not None and missing_group.condition == NOT_FOUND
    assert missing_hub is not None and missing_hub.condition == NOT_FOUND


def test_publish_to_a_differently_cased_hub_lands_in_the_hub(broker: Broker) -> None:
    results: list[object] = []
    broker.publish("TELEMETRY", "1", [b"\x00Sw\xa1\x01x"], None, results.append)
    assert results == [None]
    assert len(broker.hubs["Telemetry"].partitions["1"].log.events) == 1


def test_hub_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="differ in more than case"):
        Broker(tmp_path, {"telemetry": 1, "Telemetry": 1}, ["$Default"], ThroughputLimiter(None))


def test_cli_refuses_hub_names_differing_only_in_case() -> None:
    from homesec_devstack.emulator.__main__ import parse_hubs

    assert parse_hubs("telemetry:4,alerts:2") == {"telemetry": 4, "alerts": 2}
    with pytest.raises(SystemExit, match="case-insensitive"):
        parse_hubs("telemetry:4,Telemetry:2")


def test_the_services_hubs_have_the_same_partition_count_everywhere(tmp_path: Path) -> None:
    """``alarms`` beside ``telemetry``, equally partitioned: EmulatorProcess, the CLI default, make run."""
    from homesec_devstack import stack
    from homesec_devstack.emulator.__main__ import parse_args, parse_hubs
    from homesec_devstack.emulator_process import EmulatorProcess, stack_hubs

    assert parse_hubs(stack_hubs()) == {"telemetry": 16, "alarms": 16}
    assert parse_hubs(stack_hubs(4)) == {"telemetry": 4, "alarms": 4}
    assert parse_hubs(parse_args(["--data-dir", str(tmp_path)]).hubs) == parse_hubs(stack_hubs())
    args = EmulatorProcess(tmp_path).args
    assert args[args.index("--hubs") + 1] == stack_hubs()
    assert "hubs=stack_hubs()" in Path(stack.__file__).read_text()
