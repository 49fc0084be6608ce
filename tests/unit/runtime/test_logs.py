"""The log formats: JSON lines with the documented fields, console lines, home IDs kept out of bulk logs."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from homesec_runtime import logs

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


Capture = tuple[logging.Logger, io.StringIO, logging.Handler]


@pytest.fixture
def capture() -> Iterator[Capture]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("homesec_test.logs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.handlers[:] = []
    logs.set_trace_ids(None)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_the_documented_fields(
    capture: Capture,
) -> None:
    logger, stream, _ = capture
    with logs.bind(request_id="r-1", partition="3"):
        logger.info("published %d readings", 5, extra={"reading_count": 5})
    logger.info("outside")
    first, second = _lines(stream)
    assert set(first) == {"time", "level", "logger", "message", "request_id", "partition", "reading_count"}
    assert first["level"] == "info" and first["logger"] == "homesec_test.logs"
    assert first["message"] == "published 5 readings"
    assert (first["request_id"], first["partition"], first["reading_count"]) == ("r-1", "3", 5)
    assert isinstance(first["time"], str) and RFC3339_UTC.match(first["time"])
    stamp = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None and abs((datetime.now(UTC) - stamp).total_seconds()) < 5
    assert set(second) == {"time", "level", "logger", "message"}  # the binding ended with the block


def test_home_id_only_at_debug_or_error(capture: Capture) -> None:
    logger, stream, _ = capture
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        logger.log(level, "reading", extra={"home_id": "home-000042"})
    with logs.bind(home_id="home-000043"):
        logger.info("bound")
        logger.error("bound error")
    kept = [(line["level"], line.get("home_id")) for line in _lines(stream)]
    assert kept == [
        ("debug", "home-000042"), ("info", None), ("warning", None), ("error", "home-000042"),
        ("critical", "home-000042"), ("info", None), ("error", "home-000043"),
    ]  # fmt: skip


def test_traceback_stays_on_one_line(capture: Capture) -> None:
    logger, stream, _ = capture
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("failed")
    (line,) = _lines(stream)
    assert line["level"] == "error" and "ValueError: bad" in str(line["error"])
    assert stream.getvalue().count("\n") == 1


def test_trace_ids_come_from_the_hook(capture: Capture) -> None:
    logger, stream, _ = capture
    logger.info("off")
    logs.set_trace_ids(lambda: ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"))
    logger.info("on")
    off, on = _lines(stream)
    assert "trace_id" not in off
    assert (on["trace_id"], on["span_id"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


def test_console_format_is_one_readable_line() -> None:
    record = logging.LogRecord("homesec_producer", logging.WARNING, __file__, 1, "slow\nsend", None, None)
    record.partition = "7"
    line = logs.ConsoleFormatter().format(record)
    assert re.match(
        r"^\d{4}-\d\d-\d\dT[\d:.]+Z WARNING homesec_producer slow\\nsend \[partition=7\]$", line
    ), line


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert logs.rfc3339(0.5) == "1970-01-01T00:00:00.500Z"
    assert logs.rfc3339(1_764_900_000.123) == "2025-12-05T02:00:00.123Z"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_one_format_for_uvicorn_and_the_sdks(fmt: logs.LogFormat) -> None:
    config = logs.log_config("info", fmt)
    expected = logs.JsonFormatter if fmt == "json" else logs.ConsoleFormatter
    assert config["formatters"]["default"]["()"] is expected
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name] == {"handlers": [], "propagate": True}
    assert config["loggers"]["azure"] == {"level": "WARNING"}
    assert logs.log_config("debug", fmt)["loggers"]["azure"] == {"level": "DEBUG"}
    assert config["root"] == {"handlers": ["stderr"], "level": "INFO"}
