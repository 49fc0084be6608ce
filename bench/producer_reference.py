"""A reference commit's producer benchmark re-run on this machine now, against the figures that commit
recorded (how far this machine's speed has moved since, the code and the locked dependencies unchanged), and
this checkout's own benchmark right after it (the code now against the reference code, in the same run).

The reference commit is checked out in a temporary git worktree and its own ``bench/producer_throughput.py``
runs with its own ``services/`` and ``devtools/`` first on ``PYTHONPATH`` and this checkout's virtualenv (the
locked versions that differ between the two ``requirements/runtime.txt`` files are listed). Its figures then
are read from its own ``docs/benchmarks.md``. Each benchmark runs once (one repetition, default rates).

``python bench/producer_reference.py [--ref c0b5b79] [--write docs/benchmarks.md]``
(``make bench-producer-reference``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from docsection import Row, section_of, write_section

ROOT = Path(__file__).resolve().parents[1]

HEAD = "## Producer: a reference commit, then and now"
# The producer benchmark after its GC tuning (p99 29 ms at 16,700 readings/s through the emulator then).
DEFAULT_REF = "c0b5b79"
CELL = re.compile(r"([\d,]+) \((?:[\d.]+x; )?p50 ([\d.]+) / p99 ([\d.]+) ms\)")
COLUMNS = ("baseline: parse only", "producer, no AMQP I/O", "producer via the emulator")
PROCESSES = ("producer", "emulator", "simulator")


@dataclass(frozen=True)
class Figures:
    """One run's tables: (rate, column) -> (acknowledged/s, p99 ms); (rate, process) -> CPU ms per 1,000."""

    when: str | None  # the run's date, where the output gives it
    cells: dict[tuple[str, str], tuple[int, float]]
    cpu: dict[tuple[str, str], float]


def parse(text: str) -> Figures:
    """The first throughput table, the CPU table and the run's date from a ``make bench-producer`` output."""
    when = re.search(r"Run (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", text)
    cells: dict[tuple[str, str], tuple[int, float]] = {}
    cpu: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) != 4 or not re.fullmatch(r"[\d,]+|max", parts[0]):
            continue
        found = [CELL.fullmatch(p) for p in parts[1:]]
        if all(found):
            for column, match in zip(COLUMNS, found, strict=True):
                assert match is not None
                cells.setdefault((parts[0], column), (int(match[1].replace(",", "")), float(match[3])))
        elif all(re.fullmatch(r"[\d.]+", p) for p in parts[1:]):
            for process, value in zip(PROCESSES, parts[1:], strict=True):
                cpu.setdefault((parts[0], process), float(value))
    if not cells or not cpu:
        raise SystemExit("no producer benchmark tables found")
    return Figures(when[1] if when else None, cells, cpu)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def lock_differences(ref: str) -> list[str]:
    """Pins of ``requirements/runtime.txt`` that differ between ``ref`` and this checkout."""

    def pins(text: str) -> dict[str, str]:
        found = (re.match(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", line) for line in text.splitlines())
        return {m[1].lower(): m[2] for m in found if m}

    then = pins(git("show", f"{ref}:requirements/runtime.txt"))
    now = pins((ROOT / "requirements" / "runtime.txt").read_text())
    return sorted(
        f"{name} {then[name]} → {now[name]}" for name in then.keys() & now.keys() if then[name] != now[name]
    )


def run_bench(tree: Path) -> str:
    """``tree``'s own producer benchmark (its services first on the path); its standard output."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'services'}{os.pathsep}{tree / 'devtools'}"}
    argv = [sys.executable, "bench/producer_throughput.py"]
    return subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True, text=True).stdout


def run_reference(ref: str) -> str:
    """The reference commit's own producer benchmark, from a temporary worktree; its standard output."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "ref"
        git("worktree", "add", "--detach", str(tree), ref)
        try:
            return run_bench(tree)
        finally:
            git("worktree", "remove", "--force", str(tree))


def ratio(now: float, then: float) -> str:
    return f"{now / then:.2f}x" if then else "-"


def summary(ref: str, then: Figures, now: Figures, mine: Figures) -> list[Row]:
    """The summary table's rows: the reference's ceiling through the emulator now against then (this machine's
    speed), and this checkout's against the reference's now (the code)."""
    key = ("max", COLUMNS[2])
    if not (key in then.cells and key in now.cells and key in mine.cells):
        return []
    (a_then, _), (a_now, _), (a_mine, _) = then.cells[key], now.cells[key], mine.cells[key]
    command = "`make bench-producer-reference`"
    return [
        Row(f"`{ref}` now, most readings/s via the emulator: {a_now:,}/s",
            f"`{ref}` as it recorded them: {a_then:,}/s", ratio(a_now, a_then), command),
        Row(f"this checkout, most readings/s via the emulator: {a_mine:,}/s",
            f"`{ref}` now: {a_now:,}/s", ratio(a_mine, a_now), command),
    ]  # fmt: skip


def render(ref: str, then: Figures, now: Figures, mine: Figures, locks: list[str]) -> str:
    then_head = f"`{ref}` then ({then.when})" if then.when else f"`{ref}` then"
    rows = [
        f"| rate | column | {then_head} | `{ref}` now | now / then | this checkout now | this checkout / `{ref}` now |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, (acked, p99) in then.cells.items():
        if key in now.cells and key in mine.cells:
            (a_now, p_now), (a_mine, p_mine) = now.cells[key], mine.cells[key]
            rows.append(
                f"| {key[0]} | {key[1]} | {acked:,} / {p99:g} ms | {a_now:,} / {p_now:g} ms | "
                f"{ratio(a_now, acked)} | {a_mine:,} / {p_mine:g} ms | {ratio(a_mine, a_now)} |"
            )
    cpu = [
        f"| rate | process | {then_head} | `{ref}` now | now / then | this checkout now | this checkout / `{ref}` now |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, value in then.cpu.items():
        if key in now.cpu and key in mine.cpu:
            v_now, v_mine = now.cpu[key], mine.cpu[key]
            cpu.append(
                f"| {key[0]} | {key[1]} | {value:g} | {v_now:g} | {ratio(v_now, value)} | {v_mine:g} | "
                f"{ratio(v_mine, v_now)} |"
            )
    lock_line = ", ".join(locks) if locks else "none"
    return (
        "`make bench-producer-reference` (`bench/producer_reference.py`): commit `{ref}`'s own "
        "`make bench-producer` (one repetition: its simulator, emulator and producer) re-run from a temporary "
        "worktree with this checkout's virtualenv, against the figures that commit recorded, then this "
        "checkout's `make bench-producer` (one repetition) right after it. The reference code is the same then "
        'and now, so "now / then" is this machine\'s change of speed; "this checkout / now" compares the code, '
        f"in the same run. Locked runtime versions that differ between the two: {lock_line}. Cells: "
        "acknowledged readings/s / p99; ratios of acknowledged readings/s.\n\n"
        + "\n".join(rows)
        + "\n\nCPU per 1,000 acknowledged readings through the emulator (ms; ratios of these):\n\n"
        + "\n".join(cpu)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default=DEFAULT_REF, help="the reference commit")
    parser.add_argument("--write", type=Path, default=None, help=f"update this file's '{HEAD}' section")
    args = parser.parse_args()
    try:
        ref = git("rev-parse", "--short", "--verify", f"{args.ref}^{{commit}}").strip()
    except subprocess.CalledProcessError:
        raise SystemExit(
            f"commit {args.ref} is not available: this benchmark needs the project's git history "
            "(a full clone; in a shallow one: git fetch --unshallow)"
        ) from None
    then = parse(section_of(git("show", f"{ref}:docs/benchmarks.md"), "## Producer"))
    started = datetime.now(UTC)
    now = parse(run_reference(ref))
    mine = parse(run_bench(ROOT))
    section = render(ref, then, now, mine, lock_differences(ref))
    print(section)
    print(f"({(datetime.now(UTC) - started).total_seconds():.0f} s)")
    if args.write:
        write_section(args.write, HEAD, section, summary(ref, then, now, mine))


if __name__ == "__main__":
    main()
