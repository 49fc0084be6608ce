"""docs/benchmarks.md, assembled from its benchmarks' sections.

A benchmark's section is the text from the line ``head`` (``## ...``) up to the next ``## `` heading.
``replace_section`` replaces it (or appends it) and ``section_of`` reads it. A section owns its rows of the
summary table at the top of the file: ``summary_rows`` renders them as comment lines at the end of the section
(``<!-- summary: figure | baseline | ratio | command | date | commit -->``), invisible when the file is
rendered; ``replace_section`` then rebuilds the ``## Summary`` section from every section's rows, in the
order of the sections. ``write_section`` does both for a benchmark: its text, then its rows stamped with
today's date and the checkout's commit.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

TITLE = "# Benchmarks"
SUMMARY_HEAD = "## Summary"
SUMMARY_INTRO = (
    "Each figure comes from a `make` target (`make bench` runs them all) and is compared with a baseline "
    "measured in the same run, where there is one; each row links to its section, which says how it was "
    "measured. Date and commit: when the figure was measured and on which code (*older code*: recorded on an "
    "earlier commit than the current one and not re-measured since; `+ changes`: the checkout had uncommitted "
    "changes). A benchmark that runs again replaces its section and its rows: the `<!-- summary: ... -->` lines "
    "at the end of its section, from which `bench/docsection.py` assembles this table."
)
_ROW = re.compile(r"^<!-- summary: (.*) -->$", re.MULTILINE)
_FIELDS = ("figure", "baseline", "ratio", "command", "date", "commit")


@dataclass(frozen=True)
class Row:
    """One row of the summary table: a figure, its same-run baseline, their ratio, and where it comes from."""

    figure: str
    baseline: str
    ratio: str
    command: str
    date: str = ""
    commit: str = ""

    def comment(self) -> str:
        cells = [getattr(self, name).replace("|", "/").replace("-->", "->") for name in _FIELDS]
        return f"<!-- summary: {' | '.join(cells)} -->"

    @classmethod
    def parse(cls, cells: str) -> Row:
        return cls(*(cell.strip() for cell in cells.split(" | ")))


def stamp(root: Path | None = None) -> tuple[str, str]:
    """Today's UTC date and the checkout's short commit (``+ changes`` when it has uncommitted changes)."""
    cwd = root or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return datetime.now(UTC).strftime("%Y-%m-%d"), f"`{commit}`" + (" + changes" if dirty else "")


def summary_rows(rows: list[Row], date: str = "", commit: str = "") -> str:
    """``rows`` as the comment lines a section ends with; ``date`` and ``commit`` fill the empty cells."""
    filled = [replace(r, date=r.date or date, commit=r.commit or commit) for r in rows]
    return "\n".join(r.comment() for r in filled)


def _anchor(head: str) -> str:
    """GitHub's anchor of a ``## `` heading."""
    words = re.sub(r"[^\w\- ]", "", head.removeprefix("## ").strip().lower())
    return "#" + words.replace(" ", "-")


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, section text) of every ``## `` section but the summary, in order."""
    heads = [m.group(0) for m in re.finditer(r"^## .*$", text, re.MULTILINE)]
    return [(h, section_of(text, h)) for h in heads if h != SUMMARY_HEAD]


def summary(text: str) -> str:
    """The ``## Summary`` section: every section's rows, in the order of the sections."""
    lines = [SUMMARY_HEAD, "", SUMMARY_INTRO, "",
             "| figure | baseline (same run) | ratio | command | date | commit |", "|---|---|---|---|---|---|"]  # fmt: skip
    for head, section in _sections(text):
        for match in _ROW.finditer(section):
            r = Row.parse(match.group(1))
            figure = f"[{r.figure}]({_anchor(head)})"
            lines.append(f"| {figure} | {r.baseline} | {r.ratio} | {r.command} | {r.date} | {r.commit} |")
    return "\n".join(lines) + "\n"


def with_summary(text: str) -> str:
    """``text`` with its ``## Summary`` section rebuilt (inserted before the first other section)."""
    new = summary(text)
    bounds = _bounds(text, SUMMARY_HEAD)
    if bounds is not None:
        return text[: bounds[0]] + new + "\n" + text[bounds[1] + 1 :]
    first = re.search(r"^## ", text, re.MULTILINE)
    at = first.start() if first else len(text)
    return text[:at] + new + "\n" + text[at:]


def _bounds(text: str, head: str) -> tuple[int, int] | None:
    """Where ``head``'s section starts and ends in ``text`` (the end: the newline before the next ``## ``)."""
    found = re.search(rf"^{re.escape(head)}$", text, re.MULTILINE)
    if found is None:
        return None
    start = found.start()
    nxt = text.find("\n## ", start + len(head))
    return start, nxt if nxt != -1 else len(text)


def section_of(text: str, head: str) -> str:
    """``head``'s section of ``text``; ``ValueError`` when there is none."""
    bounds = _bounds(text, head)
    if bounds is None:
        raise ValueError(f"no section {head!r}")
    return text[bounds[0] : bounds[1]]


def replace_section(path: Path, head: str, section: str) -> None:
    """``section`` (which starts with ``head``) in place of ``path``'s section under ``head``, or appended;
    then the summary table rebuilt from every section's rows."""
    text = path.read_text() if path.exists() else f"{TITLE}\n\n"
    section = section.rstrip("\n") + "\n"
    bounds = _bounds(text, head)
    if bounds is None:
        text = text.rstrip() + "\n\n" + section
    elif bounds[1] == len(text):
        text = text[: bounds[0]] + section
    else:
        text = text[: bounds[0]] + section + "\n" + text[bounds[1] + 1 :]
    path.write_text(with_summary(text))


def write_section(path: Path, head: str, body: str, rows: list[Row]) -> None:
    """A benchmark's section: ``head``, ``body``, then its summary ``rows`` stamped with today's date and
    this checkout's commit."""
    date, commit = stamp()
    replace_section(path, head, f"{head}\n\n{body.strip()}\n\n{summary_rows(rows, date, commit)}\n")
