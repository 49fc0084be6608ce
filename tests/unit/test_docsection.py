"""docs/benchmarks.md's summary table, assembled from the rows each benchmark's section owns
(``bench/docsection.py``): a benchmark that runs again replaces its section and its rows, a new section's rows
slot in, and the committed file's summary matches its sections."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ds() -> ModuleType:
    name = "bench_docsection"  # bench/ is not a package: loaded from its file
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "docsection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _write(
    ds: ModuleType, doc: Path, head: str, text: str, rows: list[Any], date: str = "", commit: str = ""
) -> None:
    ds.replace_section(doc, head, f"{head}\n\n{text}\n\n" + ds.summary_rows(rows, date, commit))


def _table(text: str) -> list[str]:
    summary = text[text.index("## Summary") : text.index("\n## ", text.index("## Summary"))]
    return [line for line in summary.splitlines() if line.startswith("| [")]


def test_rows_are_assembled_in_section_order_and_replaced_with_their_section(
    ds: ModuleType, tmp_path: Path
) -> None:
    doc = tmp_path / "benchmarks.md"
    row = ds.Row
    _write(
        ds,
        doc,
        "## Producer",
        "first run",
        [row("p 1/s", "b 2/s", "0.50x", "`make p`")],
        "2026-01-01",
        "`aaa`",
    )
    old = row("e 3/s", "b 1/s", "3.00x", "`make e`", "2025-12-31", "`old` (older code)")
    _write(ds, doc, "## Emulator", "text", [old])
    assert _table(doc.read_text()) == [
        "| [p 1/s](#producer) | b 2/s | 0.50x | `make p` | 2026-01-01 | `aaa` |",
        "| [e 3/s](#emulator) | b 1/s | 3.00x | `make e` | 2025-12-31 | `old` (older code) |",
    ]
    _write(
        ds,
        doc,
        "## Producer",
        "second run",
        [row("p 4/s", "b 2/s", "2.00x", "`make p`")],
        "2026-01-02",
        "`bbb`",
    )
    text = doc.read_text()
    assert "first run" not in text and "second run" in text
    assert _table(text)[0] == "| [p 4/s](#producer) | b 2/s | 2.00x | `make p` | 2026-01-02 | `bbb` |"
    assert len(_table(text)) == 2
    assert text.index("## Summary") < text.index("## Producer") < text.index("## Emulator")


def test_a_new_section_slots_in_and_a_heading_that_prefixes_another_is_its_own(
    ds: ModuleType, tmp_path: Path
) -> None:
    doc = tmp_path / "benchmarks.md"
    ds.replace_section(doc, "## Emulator: stamping", "## Emulator: stamping\n\nstamp\n")
    ds.replace_section(doc, "## Emulator", "## Emulator\n\nthroughput\n")
    ds.replace_section(doc, "## Emulator", "## Emulator\n\nthroughput again\n")
    _write(ds, doc, "## Soak", "hours", [ds.Row("lost 0", "-", "-", "`make soak`")], "2026-01-03", "`ccc`")
    text = doc.read_text()
    assert "stamp\n" in text and "throughput again" in text and "throughput\n" not in text
    assert _table(text) == ["| [lost 0](#soak) | - | - | `make soak` | 2026-01-03 | `ccc` |"]


def test_a_cell_cannot_break_the_table_or_the_comment(ds: ModuleType) -> None:
    row = ds.Row("a | b", "c --> d", "1x", "`make x`", "2026-01-01", "`abc`")
    parsed = ds.Row.parse(row.comment().removeprefix("<!-- summary: ").removesuffix(" -->"))
    assert parsed == ds.Row("a / b", "c -> d", "1x", "`make x`", "2026-01-01", "`abc`")


def test_the_stamp_is_a_utc_date_and_this_checkouts_commit(ds: ModuleType) -> None:
    date, commit = ds.stamp()
    assert len(date) == 10 and date[4] == "-"
    assert commit.startswith("`") and commit != "`unknown`"


def test_the_committed_summary_matches_its_sections(ds: ModuleType) -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    assert ds.with_summary(text) == text, "docs/benchmarks.md: the summary is not the sections' rows"
    assert len(_table(text)) >= 10
    for head, section in ds._sections(text):
        assert "<!-- summary: " in section, f"{head} has no summary row"
