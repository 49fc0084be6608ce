"""Stand-in for azure-mgmt-eventhub: there is no management plane (ARM) here.

The overlay ``live_eventhub`` fixture creates the emulator's hubs through its admin endpoint; tests that
drive the management plane themselves are deselected by the runner (scripts/sdk_live_tests.py says which).
"""

from __future__ import annotations

from typing import Any


class EventHubManagementClient:
    def __init__(self, *_: Any, **__: Any) -> None:
        raise RuntimeError("no Azure management plane: the emulator creates hubs through its admin endpoint")
