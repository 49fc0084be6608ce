"""azure-eventhub 5.15.1's own live tests pass against the emulator (scripts/sdk_live_tests.py runs them).

Needs PyPI once (the sdist is cached in .cache/sdk-live/) and the ports the SDK dials for ``sb://localhost``:
5671, and 443 for the WebSocket variants (as root; otherwise the runner deselects them and says so).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from homesec_devstack.procs import port_is_free

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(1200)
def test_sdk_live_suite_passes_against_the_emulator() -> None:
    if not port_is_free(5671):
        pytest.fail("port 5671 is taken; the SDK's live tests dial amqps://localhost:5671")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sdk_live_tests.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=1100, check=False,
    )  # fmt: skip
    counts = r"(\d+) selected, (\d+) passed, (\d+) failed, (\d+) errors, (\d+) skipped"
    summary = re.search(counts, result.stdout)
    assert summary is not None, result.stdout[-4000:] + result.stderr[-4000:]
    selected, passed, failed, errors, skipped = map(int, summary.groups())
    assert (failed, errors, skipped) == (0, 0, 0), result.stdout[-8000:]
    assert passed == selected >= 145  # every data-plane module, sync and async (153 as root, with wss on 443)
    assert result.returncode == 0
