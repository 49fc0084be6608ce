"""Accelerators: optional speed-ups that replace a public code path with a faster one.

Each accelerator lives in one module of its own (the producer's event encoder, the consumer's received-event
read, the compiled fold) and comes with a self-check that runs the same sample through the public path and
the accelerated one. ``decide`` runs that check once at start-up: the accelerator is used only when the check
finds the two equivalent on the installed versions; otherwise the service logs one line and runs the public
path. Mode ``off`` (the services' ``ACCELERATORS`` setting) skips the check and keeps the public path.
Standard library only: the services' metrics export the decisions as ``homesec_*_accelerated{component}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Mode = Literal["auto", "off"]
MODES: tuple[Mode, ...] = ("auto", "off")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether ``component`` runs accelerated, and why."""

    component: str
    enabled: bool
    reason: str

    def describe(self) -> str:
        """The one start-up log line."""
        if self.enabled:
            return f"accelerator {self.component}: on ({self.reason})"
        return f"accelerator {self.component}: off ({self.reason}); using the public path"


def decide(
    component: str, mode: Mode, self_check: Callable[[], str | None], logger: logging.Logger
) -> Decision:
    """Run ``self_check`` (``None``: equivalent; else what differs) unless ``mode`` is ``off``; log one line.

    A self-check that raises counts as a failed one: an accelerator never stops a service from starting.
    """
    if mode not in MODES:
        raise ValueError(f"accelerator mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "off":
        decision = Decision(component, False, "switched off: ACCELERATORS=off")
    else:
        try:
            problem = self_check()
        except Exception as exc:  # the accelerator's own failure: fall back, never crash
            problem = f"self-check raised {exc!r}"[:300]
        if problem is None:
            decision = Decision(component, True, "self-check passed: identical to the public path")
        else:
            decision = Decision(component, False, f"self-check failed: {problem}")
    if decision.enabled or mode == "off":
        logger.info(decision.describe())
    else:
        logger.warning(decision.describe())
    return decision
