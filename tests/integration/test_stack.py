"""``make run``'s stack as a user runs it: every component up, readings flow end to end, all stopped after."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _counts(line: str) -> dict[str, int]:
    pairs = re.findall(r"(received|acknowledged|consumed|rolled up)\s+([\d,]+)", line)
    return {k: int(v.replace(",", "")) for k, v in pairs}


def test_local_stack_runs_the_pipeline_and_stops_cleanly(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "homesec_devstack.stack", "--free-ports", "--duration", "25",
            "--homes", "500", "--rate", "400", "--flush-interval", "2",
            "--data-dir", str(tmp_path)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    final = next(line for line in out.stdout.splitlines() if line.startswith("final:"))
    counts = _counts(final)
    assert counts["received"] > 3000
    assert counts["acknowledged"] == counts["received"], "every reading the producer took was acknowledged"
    assert counts["consumed"] > 0.9 * counts["acknowledged"]
    assert counts["rolled up"] > 0
    status = next(line for line in out.stdout.splitlines() if line.startswith("home-000001 status:"))
    assert '"home_id":"home-000001"' in status.replace(" ", "")
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == "", "the stack left processes running"
