"""Operator CLI: ``python -m homesec_consumer.inspect progress|home`` against running consumers.

``progress --url http://127.0.0.1:8081 [--url ...] [--watch 2]``: events received, folded, rolled up
(durable), duplicates, dead letters, lag and partitions owned, summed over the given consumers.
``home HOME_ID --url ... [--hours 24]``: a home's status and hourly history from the read path.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections.abc import Sequence

PROGRESS = {
    "received": "homesec_consumer_events_received_total",
    "folded": "homesec_consumer_events_processed_total",
    "rolled_up": "homesec_consumer_readings_rolled_up_total",
    "duplicates": "homesec_consumer_duplicates_dropped_total",
    "late": "homesec_consumer_late_readings_total",
    "dead_letters": "homesec_consumer_dead_letters_total",
    "lost": "homesec_consumer_sequence_gaps_total",
    "lag": "homesec_consumer_partition_lag_events",
    "partitions": "homesec_consumer_partitions_owned",
    "homes": "homesec_consumer_homes_in_state",
}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - operator-given URL
        return bytes(resp.read())


def scrape(base: str) -> dict[str, float]:
    """Sum every sample of each progress metric (all label values) from one consumer's /metrics."""
    totals = dict.fromkeys(PROGRESS, 0.0)
    for line in _get(f"{base}/metrics").decode().splitlines():
        for key, name in PROGRESS.items():
            if line.startswith(name) and line[len(name) : len(name) + 1] in {" ", "{"}:
                totals[key] += float(line.rsplit(" ", 1)[1])
    return totals


def progress_line(urls: Sequence[str]) -> str:
    totals = dict.fromkeys(PROGRESS, 0.0)
    for url in urls:
        try:
            for key, value in scrape(url).items():
                totals[key] += value
        except OSError:
            continue  # a consumer that is down simply adds nothing
    return "  ".join(f"{k}={int(v)}" for k, v in totals.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m homesec_consumer.inspect")
    sub = parser.add_subparsers(dest="command", required=True)
    prog = sub.add_parser("progress")
    prog.add_argument("--url", action="append", default=[])
    prog.add_argument("--watch", type=float, default=0.0, help="repeat every N seconds")
    home = sub.add_parser("home")
    home.add_argument("home_id")
    home.add_argument("--url", default="http://127.0.0.1:8081")
    home.add_argument("--hours", type=int, default=24)
    args = parser.parse_args(argv)
    if args.command == "progress":
        urls = args.url or ["http://127.0.0.1:8081"]
        while True:
            print(progress_line(urls), flush=True)
            if not args.watch:
                return 0
            time.sleep(args.watch)
    status = json.loads(_get(f"{args.url}/v1/homes/{args.home_id}/status"))
    history = json.loads(_get(f"{args.url}/v1/homes/{args.home_id}/history?hours={args.hours}"))
    for hour in history["hours"]:
        hour.pop("minutes", None)
    json.dump({"status": status, "history": history}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
