"""``python -m tests.soak [--minutes 60] [--homes 1000] [--write docs/benchmarks.md]`` (``make soak``)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from .report import plot, section, table
from .run import SoakConfig, load_result, run_soak

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_MINUTES = 60  # --write refuses shorter runs: the documented figures are the full run's


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: the finally blocks stop every process


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    p = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "60")))
    p.add_argument("--homes", type=int, default=1000, help="simulated homes, 5 readings/home/min")
    p.add_argument("--partitions", type=int, default=16)
    p.add_argument("--throughput-units", type=int, default=1)
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--out", type=Path, default=None, help="default .cache/soak/<UTC time>")
    p.add_argument("--write", type=Path, default=None, help="replace this file's 'Soak' section (60+ min)")
    p.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "soak.png", help="with --write")
    p.add_argument("--from", dest="source", type=Path, default=None, help="report a finished run's --out")
    a = p.parse_args(argv)
    if a.source is not None:
        result = load_result(a.source.resolve())
        cfg, a.minutes = result.config, result.config.minutes
    else:
        out = a.out or ROOT / ".cache" / "soak" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        cfg = SoakConfig(a.minutes, a.homes, out.resolve(), a.partitions, a.throughput_units, a.interval)
        print(f"soak: {a.minutes:g} min, {a.homes} homes; data, logs, CSV, PNG in {cfg.out}", flush=True)
        result = run_soak(cfg)
    plot(result, cfg.out / "soak.png")
    print(table(result), flush=True)
    if a.write is not None:
        if a.minutes < DOCUMENTED_MINUTES:
            print(f"--write: not for a {a.minutes:g}-minute run (the docs show {DOCUMENTED_MINUTES} or more)")
        else:
            sys.path.insert(0, str(ROOT / "bench"))  # bench/ is not a package
            from docsection import replace_section

            a.png.parent.mkdir(parents=True, exist_ok=True)
            plot(result, a.png)
            png = os.path.relpath(a.png, a.write.resolve().parent)
            replace_section(a.write, "## Soak", section(result, "make soak", png))
    print(f"soak: {'all goals met' if result.ok else 'GOALS FAILED'} (details: {cfg.out}/summary.json)")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
