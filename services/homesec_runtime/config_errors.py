"""Settings refused at start-up: one line per problem, naming the environment variable, and exit code 78.

Both services build their settings with ``load_settings(ProducerSettings, "HOMESEC_PRODUCER_")``. A bad
value then prints, on stderr, one line per problem instead of a pydantic traceback::

    configuration error: HOMESEC_PRODUCER_PORT: Input should be less than or equal to 65535

and the process exits with ``EX_CONFIG`` (78, from BSD's sysexits.h: "configuration error"), which a
supervisor can tell apart from a crash (1) or the producer's shutdown watchdog (70). Values are never
printed: some settings are secrets. Problems found after parsing (a rule the services check before they
start: ``check_or_exit``; an ``OTEL_*`` variable: ``homesec_runtime.tracing``) take the same way out
(``exit_with``), before the process logs anything. Pure: pydantic only, no Azure, no web framework.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO, TypeVar

from pydantic import ValidationError
from pydantic_settings import SettingsError

EX_CONFIG = 78
LINE_PREFIX = "configuration error: "

T = TypeVar("T")

_FIELD_IN_SETTINGS_ERROR = re.compile(r'field "([A-Za-z0-9_]+)"')


def _variable(prefix: str, loc: tuple[int | str, ...]) -> str:
    """``HOMESEC_X_FIELD`` for ``("field", ...)``, plus the key or index inside the value, if any."""
    if not loc:
        return "settings"
    name = f"{prefix}{str(loc[0]).upper()}"
    inner = ".".join(str(part) for part in loc[1:])
    return f"{name} (at {inner!r})" if inner else name


def _rule(message: str) -> str:
    """pydantic's message without its ``Value error, `` / ``Assertion failed, `` preamble."""
    for preamble in ("Value error, ", "Assertion failed, "):
        if message.startswith(preamble):
            return message[len(preamble) :]
    return message


def config_problems(exc: ValidationError | SettingsError, prefix: str) -> list[str]:
    """One line per problem: ``<ENV VAR>: <rule>``, or ``settings: <rule>`` for a rule over several."""
    if isinstance(exc, SettingsError):
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            return config_problems(cause, prefix)
        found = _FIELD_IN_SETTINGS_ERROR.search(str(exc))
        where = f"{prefix}{found.group(1).upper()}" if found else "settings"
        why = "is not valid JSON" if cause is None or isinstance(cause, ValueError) else str(cause)
        return [f"{where}: {why} (this setting takes a JSON value)"]
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc, rule = tuple(error["loc"]), _rule(error["msg"])
        # A rule over several settings (a model validator) names its variables itself.
        lines.append(rule if not loc and prefix in rule else f"{_variable(prefix, loc)}: {rule}")
    return lines


def exit_with(lines: Sequence[str], stream: TextIO | None = None) -> NoReturn:
    """Print each line after ``configuration error: `` and exit with ``EX_CONFIG``."""
    out = stream if stream is not None else sys.stderr
    for line in lines:
        out.write(f"{LINE_PREFIX}{line}\n")
    out.flush()
    raise SystemExit(EX_CONFIG)


def check_or_exit(problems: Sequence[str], stream: TextIO | None = None) -> None:
    """Nothing when ``problems`` is empty; else ``exit_with(problems)``."""
    if problems:
        exit_with(problems, stream)


def load_settings(factory: Callable[[], T], prefix: str, stream: TextIO | None = None) -> T:
    """``factory()``; on invalid settings print one line per problem and exit with ``EX_CONFIG``."""
    try:
        return factory()
    except (ValidationError, SettingsError) as exc:
        problems = config_problems(exc, prefix)
    exit_with(problems, stream)
