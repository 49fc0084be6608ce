"""One log format for a whole process (uvicorn's and the SDKs' loggers included), stdlib ``logging`` only.

``json`` (the images' default): one JSON object per line with ``time`` (RFC 3339, UTC, ``Z``), ``level``,
``logger``, ``message`` and, where known, ``request_id``, ``partition``, ``reading_count``, ``home_id``,
``trace_id``, ``span_id`` (plus ``error`` with the traceback). ``console`` (``make run``): one readable
line, the same fields as ``key=value`` after the message.

Context fields come from ``contextvars`` (``bind``: the producer's request middleware sets ``request_id``,
the consumer's batch handling sets ``partition``) or from ``extra={...}`` on one call. ``home_id`` is kept
only on DEBUG records and on records at ERROR or above (error context): a home ID never appears in bulk,
INFO-level logs. ``trace_id``/``span_id`` come from a hook that the tracing module installs only when
tracing is on (``set_trace_ids``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.config
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

LogFormat = Literal["json", "console"]
FIELDS = ("request_id", "partition", "reading_count", "home_id", "trace_id", "span_id")
_CONTEXT_FIELDS = ("request_id", "partition", "reading_count", "home_id")
NOISY_LOGGERS = ("azure", "uamqp")  # the SDKs: WARNING and above unless the level is DEBUG
LEVELS = ("debug", "info", "warning", "error", "critical")  # the services' LOG_LEVEL, any case

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("homesec_log", default=None)
TraceIds = Callable[[], tuple[str, str] | None]
_trace_ids: TraceIds | None = None


def set_trace_ids(hook: TraceIds | None) -> None:
    """Install (tracing on) or remove the hook that returns the current ``(trace_id, span_id)`` in hex."""
    global _trace_ids  # noqa: PLW0603 - one hook per process, set by the composition root
    _trace_ids = hook


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add context fields to every record logged inside the block (this task and the tasks it starts)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bound() -> dict[str, Any]:
    """The context fields bound here (a copy)."""
    return dict(_context.get() or {})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The known fields of ``record`` (its ``extra`` wins over the bound context), home_id filtered."""
    found: dict[str, Any] = dict(_context.get() or {})
    for name in _CONTEXT_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            found[name] = value
    if "home_id" in found and logging.DEBUG < record.levelno < logging.ERROR:
        del found["home_id"]  # never in bulk logs: only at DEBUG or in error context
    if _trace_ids is not None and (ids := _trace_ids()) is not None:
        found["trace_id"], found["span_id"] = ids
    return {name: found[name] for name in FIELDS if found.get(name) is not None}


def rfc3339(created: float) -> str:
    """``2026-12-05T01:02:03.456Z`` (UTC, milliseconds)."""
    seconds, millis = divmod(round(created * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (tracebacks go in ``error``)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        elif record.stack_info:
            doc["error"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...`` on one line (newlines of tracebacks become ``\\n``)."""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{rfc3339(record.created)} {record.levelname} {record.name} {record.getMessage()}"
        if extra:
            line += f" [{extra}]"
        if record.exc_info:
            line += " " + self.formatException(record.exc_info)
        return line.replace("\r", "").replace("\n", "\\n")


def check_level(level: str) -> str:
    """``level`` when it is one of ``LEVELS`` (any case); else ``ValueError`` (a settings validator)."""
    if level.lower() not in LEVELS:
        raise ValueError(f"expected one of {', '.join(LEVELS)}")
    return level


def log_config(level: str, fmt: LogFormat = "json") -> dict[str, Any]:
    """``logging.config.dictConfig`` for the process: one stderr handler on the root logger; uvicorn's
    loggers propagate to it (no handlers of their own), the SDKs' are raised to WARNING unless DEBUG."""
    formatter = JsonFormatter if fmt == "json" else ConsoleFormatter
    through = {"handlers": [], "propagate": True}
    sdk_level = "DEBUG" if level.upper() == "DEBUG" else "WARNING"
    loggers: dict[str, Any] = {name: through for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    loggers.update({name: {"level": sdk_level} for name in NOISY_LOGGERS})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": loggers,
    }


def configure(level: str, fmt: LogFormat = "json") -> None:
    """Apply ``log_config`` to this process."""
    logging.config.dictConfig(log_config(level, fmt))
