"""Operator CLI: ``python -m homesec_consumer.cli progress|home`` against running consumers.

``progress --url http://127.0.0.1:9091 [--url ...] [--watch 2]`` (each consumer's admin port, where its
``/metrics`` is): events received, folded, rolled up (durable), duplicates, dead letters, lag and partitions
owned, summed over the consumers that answer. A consumer that does not answer (or answers without consumer
metrics) is named on stderr; without ``--watch`` the exit code is 1 when none answers. With ``--watch`` each
line says which are down.
``home HOME_ID --url http://127.0.0.1:8081 [--hours 24] [--json] [--token T]`` (a consumer's API port): a
home's status (one line per sensor) and its hourly history (one line per hour with readings); ``--json``
prints the full status and history documents. The status API needs a read token covering the home, or an
operator token (``--token``, default the environment variable ``HOMESEC_READ_TOKEN``; mint one with
``python -m homesec_producer.cli --audience read --role operator``, docs/consumer.md#read-tokens).

Exit codes: 0 done, 1 no consumer answered (or it answered with an error), 2 usage, 3 unknown home,
130 interrupted (Ctrl-C, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from homesec_domain.errors import HomesecError

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
EXIT_UNAVAILABLE, EXIT_UNKNOWN_HOME, EXIT_INTERRUPTED = 1, 3, 130
TIMEOUT_SECONDS = 5.0


class InspectError(HomesecError):
    """Base of this CLI's errors; ``exit_code`` is what the process exits with."""

    exit_code = EXIT_UNAVAILABLE


class ConsumerUnreachableError(InspectError):
    """No answer from ``url`` (refused, timed out, bad address), or an answer that is not a consumer's."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"consumer {url} unreachable: {reason}")
        self.url = url
        self.reason = reason


class ConsumerAnswerError(InspectError):
    """The consumer answered ``url`` with an HTTP error status."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(f"{url} answered HTTP {status}{': ' + detail if detail else ''}")
        self.url = url
        self.status = status
        self.detail = detail


class UnknownHomeError(InspectError):
    """The consumer has no rollup for the home (never seen, or a malformed ID)."""

    exit_code = EXIT_UNKNOWN_HOME

    def __init__(self, home_id: str, base: str) -> None:
        super().__init__(f"unknown home {home_id!r}: the consumer at {base} has no rollup for it")
        self.home_id = home_id
        self.base = base


def _reason(exc: BaseException) -> str:
    cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(cause, TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:g} s"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()  # "connection refused", "name or service not known"
    return str(cause) or type(cause).__name__


def _detail(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200]
    return str(doc.get("detail", "")) if isinstance(doc, dict) else ""


def _get(url: str, token: str | None = None) -> bytes:
    """GET ``url`` (with ``token`` as a bearer token); transport failures and HTTP error statuses become
    ``InspectError``s."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as resp:  # noqa: S310 - operator's URL
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        raise ConsumerAnswerError(url, exc.code, _detail(exc.read())) from None
    except (OSError, ValueError) as exc:  # URLError, refused, timeout; ValueError: not an http(s) URL
        raise ConsumerUnreachableError(url, _reason(exc)) from None


def scrape(base: str) -> dict[str, float]:
    """Sum every sample of each progress metric (all label values) from one consumer's /metrics."""
    totals = dict.fromkeys(PROGRESS, 0.0)
    seen = False
    for line in _get(f"{base}/metrics").decode(errors="replace").splitlines():
        for key, name in PROGRESS.items():
            if line.startswith(name) and line[len(name) : len(name) + 1] in {" ", "{"}:
                totals[key] += float(line.rsplit(" ", 1)[1])
                seen = True
    if not seen:
        raise ConsumerUnreachableError(base, "it answers, but /metrics has no homesec_consumer_* metrics")
    return totals


@dataclass
class Progress:
    """Totals over the consumers that answered, and why each of the others did not."""

    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PROGRESS, 0.0))
    answered: int = 0
    down: dict[str, str] = field(default_factory=dict)


def collect(urls: Sequence[str]) -> Progress:
    progress = Progress()
    for url in urls:
        try:
            values = scrape(url)
        except ConsumerUnreachableError as exc:
            progress.down[url] = exc.reason
            continue
        except ConsumerAnswerError as exc:
            progress.down[url] = f"/metrics answered HTTP {exc.status}"
            continue
        progress.answered += 1
        for key, value in values.items():
            progress.totals[key] += value
    return progress


def format_progress(progress: Progress, *, show_down: bool = True) -> str:
    down = "; ".join(f"{url} ({reason})" for url, reason in progress.down.items())
    if not progress.answered:
        return f"no consumer answers: {down}"
    line = "  ".join(f"{k}={int(v)}" for k, v in progress.totals.items())
    return f"{line}  DOWN: {down}" if down and show_down else line


def progress_line(urls: Sequence[str]) -> str:
    """One line of totals; consumers that do not answer are named at its end (``DOWN: url (reason)``)."""
    return format_progress(collect(urls))


def run_progress(urls: Sequence[str], watch: float) -> int:
    while True:
        progress = collect(urls)
        if not watch:
            for url, reason in progress.down.items():
                print(f"error: consumer {url} unreachable: {reason}", file=sys.stderr)
            if not progress.answered:
                return EXIT_UNAVAILABLE
            print(format_progress(progress, show_down=False), flush=True)
            return 0
        print(format_progress(progress), flush=True)
        time.sleep(watch)


def fetch_home(
    base: str, home_id: str, hours: int, token: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The home's status and history documents, read with ``token``; ``UnknownHomeError`` when the
    consumer has no such home."""
    quoted = urllib.parse.quote(home_id, safe="")
    try:
        status = json.loads(_get(f"{base}/v1/homes/{quoted}/status", token))
        history = json.loads(_get(f"{base}/v1/homes/{quoted}/history?hours={hours}", token))
    except ConsumerAnswerError as exc:
        if exc.status == 404:
            raise UnknownHomeError(home_id, base) from None
        raise
    except ValueError as exc:  # JSONDecodeError
        raise ConsumerUnreachableError(base, f"the answer is not JSON ({exc})") from None
    return status, history


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _stat(name: str, stat: dict[str, Any] | None, unit: str) -> str:
    if not stat:
        return ""
    return f"  {name} {_num(stat['min'])}/{_num(stat['mean'])}/{_num(stat['max'])}{unit}"


def _pairs(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items()) or "-"


def status_lines(status: dict[str, Any]) -> list[str]:
    """A header (watermark, lost readings, active alarms), then one line per sensor."""
    alarms = ", ".join(status.get("active_alarms") or []) or "none"
    lines = [
        f"home {status['home_id']}  watermark {status.get('watermark') or '-'}  "
        f"lost {status.get('lost_readings', 0)}  active alarms: {alarms}",
    ]
    sensors = status.get("sensors") or []
    width = max((len(s["sensor_id"]) for s in sensors), default=0)
    lines.append(f"sensors ({len(sensors)}):")
    lines.extend(_sensor_line(s, width) for s in sensors)
    return lines


def _sensor_line(s: dict[str, Any], width: int) -> str:
    seq = "-" if s.get("seq") is None else str(s["seq"])
    alarm = "  ALARM" if s.get("alarm") else ""
    return (
        f"  {s['sensor_id']:<{width}}  {s['type']:<11}  state={s.get('state') or '-':<7}  "
        f"value={_num(s.get('value')):<7}  seq={seq:<6}  last {s.get('last_seen')}  "
        f"lost {s.get('lost_readings', 0)}{alarm}"
    )


def history_lines(history: dict[str, Any]) -> list[str]:
    """A header (range, readings), then one line per hour with readings: total, counts, alarms, stats."""
    hours = history.get("hours") or []
    total = sum(h["total"] for h in hours)
    span = f"{history.get('from', '-')} .. {history.get('to', '-')}"
    lines = [f"history {span}: {total} readings in {len(hours)} hour(s) with readings (stats min/mean/max)"]
    for h in hours:
        lines.append(
            f"  {h['hour'][:16]}Z  total {h['total']:<5}  {_pairs(h.get('counts') or {})}"
            f"  alarms {_pairs(h.get('alarms') or {})}"
            f"{_stat('co', h.get('co_ppm'), ' ppm')}{_stat('temp', h.get('temperature_c'), ' C')}"
        )
    return lines


def run_home(base: str, home_id: str, hours: int, as_json: bool, token: str | None = None) -> int:
    status, history = fetch_home(base, home_id, hours, token)
    if as_json:
        json.dump({"status": status, "history": history}, sys.stdout, indent=2)
        print()
    else:
        print("\n".join(status_lines(status) + history_lines(history)))
    return 0


def _hours(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 168:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours from 1 to 168")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m homesec_consumer.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    prog = sub.add_parser("progress", help="totals over running consumers")
    prog.add_argument(
        "--url", action="append", default=[], help="a consumer's admin URL (/metrics; repeatable)"
    )
    prog.add_argument("--watch", type=float, default=0.0, help="repeat every N seconds")
    home = sub.add_parser("home", help="one home's status and hourly history")
    home.add_argument("home_id")
    home.add_argument("--url", default="http://127.0.0.1:8081")
    home.add_argument("--hours", type=_hours, default=24, help="1..168 (default 24)")
    home.add_argument("--json", action="store_true", help="print the full status and history documents")
    home.add_argument(
        "--token",
        default=os.environ.get("HOMESEC_READ_TOKEN"),
        help="read or operator token (default: $HOMESEC_READ_TOKEN)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "progress":
            urls = [u.rstrip("/") for u in args.url] or ["http://127.0.0.1:9091"]
            return run_progress(urls, args.watch)
        return run_home(args.url.rstrip("/"), args.home_id, args.hours, args.json, args.token)
    except InspectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the "^C" line; no traceback
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
