"""A reference commit's producer benchmark re-run on this machine now, against the figures that commit
recorded: how far this machine's speed has moved since, with the code and the locked dependencies unchanged.

The reference commit is checked out in a temporary git worktree and its own ``bench/producer_throughput.py``
runs with its own ``services/`` and ``devtools/`` first on ``PYTHONPATH`` and this checkout's virtualenv (the
locked versions that differ between the two ``requirements/runtime.txt`` files are listed). Its figures then
are read from its own ``docs/benchmarks.md``. Ratios are now / then for the same cell.

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

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from docsection import replace_section  # noqa: E402

HEAD = "## Producer: a reference commit, then and now"
# The producer benchmark after the GC tuning of 2026-11-25 (p99 29 ms at 16,700 readings/s through the emulator).
DEFAULT_REF = "c0b5b79"
CELL = re.compile(r"([\d,]+) \((?:[\d.]+x; )?p50 ([\d.]+) / p99 ([\d.]+) ms\)")
COLUMNS = ("baseline: parse only", "producer, no AMQP I/O", "producer via the emulator")
PROCESSES = ("producer", "emulator", "simulator")


@dataclass(frozen=True)
class Figures:
    """One run's tables: (rate, column) -> (acknowledged/s, p99 ms); (rate, process) -> CPU ms per 1,000."""

    when: str
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
    if not cells or not cpu or when is None:
        raise SystemExit("no producer benchmark tables found")
    return Figures(when[1], cells, cpu)


def producer_section(doc: str) -> str:
    """The ``## Producer`` section of a ``docs/benchmarks.md``."""
    start = doc.index("## Producer\n")
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end != -1 else len(doc)]


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


def run_reference(ref: str) -> str:
    """The reference commit's own producer benchmark, from a temporary worktree; its standard output."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "ref"
        git("worktree", "add", "--detach", str(tree), ref)
        try:
            env = {**os.environ, "PYTHONPATH": f"{tree / 'services'}{os.pathsep}{tree / 'devtools'}"}
            argv = [sys.executable, "bench/producer_throughput.py"]
            done = subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True, text=True)
            return done.stdout
        finally:
            git("worktree", "remove", "--force", str(tree))


def ratio(now: float, then: float) -> str:
    return f"{now / then:.2f}x" if then else "-"


def render(ref: str, then: Figures, now: Figures, locks: list[str]) -> str:
    rows = [
        "| rate | column | then: acked/s, p99 | now: acked/s, p99 | acked/s now/then |",
        "|---|---|---|---|---|",
    ]
    for (rate, column), (acked, p99) in then.cells.items():
        if (rate, column) in now.cells:
            acked2, p992 = now.cells[rate, column]
            rows.append(
                f"| {rate} | {column} | {acked:,} / {p99:g} ms | {acked2:,} / {p992:g} ms | {ratio(acked2, acked)} |"
            )
    cpu = ["| rate | process | then | now | now/then |", "|---|---|---|---|---|"]
    for (rate, process), value in then.cpu.items():
        if (rate, process) in now.cpu:
            value2 = now.cpu[rate, process]
            cpu.append(f"| {rate} | {process} | {value:g} | {value2:g} | {ratio(value2, value)} |")
    lock_line = ", ".join(locks) if locks else "none"
    return (
        f"{HEAD}\n\n`make bench-producer-reference` (`bench/producer_reference.py`): commit `{ref}`'s own "
        "`make bench-producer` (one repetition, its simulator, emulator and producer) re-run from a temporary "
        "worktree with this checkout's virtualenv, against the figures that commit recorded. The code is the "
        "same on both sides, so the ratios are this machine's change of speed. Locked runtime versions that "
        f"differ between the two: {lock_line}.\n\nThen: run {then.when}. Now: run {now.when}.\n\n"
        + "\n".join(rows)
        + "\n\nCPU per 1,000 acknowledged readings through the emulator (ms):\n\n"
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
            f"commit {args.ref} is not in this clone's history (shallow? git fetch --unshallow)"
        ) from None
    then = parse(producer_section(git("show", f"{ref}:docs/benchmarks.md")))
    started = datetime.now(UTC)
    now = parse(run_reference(ref))
    section = render(ref, then, now, lock_differences(ref))
    print(section)
    print(f"({(datetime.now(UTC) - started).total_seconds():.0f} s)")
    if args.write:
        replace_section(args.write, HEAD, section)


if __name__ == "__main__":
    main()
