"""Stand-in for ``devtools_testutils`` (azure-sdk-for-python's test tools, not on PyPI) for its live tests.

Only what the azure-eventhub 5.15.1 test ``conftest.py`` imports. ``get_credential`` returns a credential the
emulator can check: a shared-access-key credential (SAS tokens signed with the emulator's key, token type
``servicebus.windows.net:sastoken``) in place of an Entra ID (Azure AD) credential, which needs a cloud.
"""

from __future__ import annotations

import os
from typing import Any


def get_region_override(default: str = "westus") -> str:
    return default


def get_credential(is_async: bool = False, **_: Any) -> Any:
    """The emulator's root key as a token credential (sync or async)."""
    name = os.environ["HOMESEC_SDK_LIVE_KEY_NAME"]
    key = os.environ["HOMESEC_SDK_LIVE_KEY"]
    if is_async:
        from azure.eventhub.aio._client_base_async import EventHubSharedKeyCredential as AsyncKeyCredential

        return AsyncKeyCredential(name, key)
    from azure.eventhub import EventHubSharedKeyCredential

    return EventHubSharedKeyCredential(name, key)
