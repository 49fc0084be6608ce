"""Docs and code describe the current code: no tracked file mentions work items, work stops or work sessions.

Two scopes:

- Markdown (``README.md``, ``docs/``, every tracked ``*.md``): nothing matches
  ``\\bstop\\b.*(before|after)|session|issue [0-9]+`` (case-insensitive), on any line.
- Every other tracked text file (code, comments, tests, chart, scripts): narrower patterns, because "session"
  and "stop" are ordinary words there (an AMQP session, ``aiohttp.ClientSession``, a pytest session,
  ``stop()``): work items (``issue 14``, ``ticket 3``), a work stop (``this stop``, ``the stop before``) and a
  work session (``this session``, ``other sessions``). The Event Hubs emulator (``devtools/homesec_devstack/
  emulator/``) is exempt from the session pattern: its sessions are AMQP's.

This file is exempt from both (it spells the patterns out).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()

MARKDOWN = re.compile(r"\bstop\b.*(before|after)|session|issue [0-9]+", re.IGNORECASE)
WORK_ITEM = re.compile(r"\b(?:issue|ticket)s? #?[0-9]+", re.IGNORECASE)
WORK_STOP = re.compile(
    r"\b(?:this|that|previous|next|last|earlier) stop\b|\bthe stop (?:before|after)\b", re.IGNORECASE
)
WORK_SESSION = re.compile(
    r"\b(?:this|that|other|previous|next|earlier|later|another) sessions?\b", re.IGNORECASE
)
AMQP_SESSIONS = "devtools/homesec_devstack/emulator/"


def tracked_text_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    files = []
    for name in out.stdout.decode().split("\0"):
        path = ROOT / name
        if name and name != SELF and path.is_file() and not path.is_symlink():
            files.append(name)
    return files


def patterns_for(name: str) -> list[re.Pattern[str]]:
    if name.endswith(".md"):
        return [MARKDOWN]
    if name.startswith(AMQP_SESSIONS):
        return [WORK_ITEM, WORK_STOP]
    return [WORK_ITEM, WORK_STOP, WORK_SESSION]


def offences(name: str, text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if any(p.search(line) for p in patterns_for(name)):
            found.append(f"{name}:{number}: {line.strip()[:120]}")
    return found


def test_no_tracked_file_mentions_work_items_stops_or_sessions() -> None:
    found = []
    for name in tracked_text_files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        found += offences(name, text)
    assert not found, "describe the current code instead:\n" + "\n".join(found)


def test_the_patterns_flag_work_words_and_spare_ordinary_ones() -> None:
    flagged = {
        "docs/producer.md": ["### Issue 14: resends", "the stop after", "three other sessions' tests"],
        "services/x.py": ["# before issue 14", "# measured this stop", "# in this session", "ticket #3"],
    }
    spared = {
        "docs/producer.md": ["Invalid settings end the process", "an AMQP link"],
        "services/x.py": [
            "async with aiohttp.ClientSession() as session:",
            "proc.stop() after the drain",
            "stop after N seconds",
            "scope='session'",
        ],
        "devtools/homesec_devstack/emulator/server.py": ["# this session's links", "the session ends"],
    }
    for name, lines in flagged.items():
        assert all(offences(name, line) for line in lines), name
    for name, lines in spared.items():
        assert not any(offences(name, line) for line in lines), name
