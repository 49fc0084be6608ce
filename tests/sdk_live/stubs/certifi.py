"""certifi for the SDK's live tests: the same API, but its bundle also holds the emulator's local CA.

azure-eventhub's pyamqp clients verify TLS against ``certifi.where()`` unless given ``connection_verify`` (and
the live tests, written for Azure, do not give it). scripts/sdk_live_tests.py writes the real certifi bundle
plus the emulator's ``ca.pem`` to one file and names it in ``HOMESEC_SDK_LIVE_CA_BUNDLE``; this module, first
on the test run's path, returns that file. The effect is a trust store that also trusts the local CA, as
adding it to the system store would be; nothing else about TLS (hostname checks, verification) changes.
"""

from __future__ import annotations

import os
from pathlib import Path


def where() -> str:
    return os.environ["HOMESEC_SDK_LIVE_CA_BUNDLE"]


def contents() -> str:
    return Path(where()).read_text(encoding="ascii")
