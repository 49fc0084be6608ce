"""Exponential backoff with jitter for publish retries."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """``max_tries`` attempts; before try ``n+1`` wait ``d/2 + U(0, d/2)``, ``d = min(cap, base*2**(n-1))``.

    "Equal jitter": spreads retries of many producers apart (no thundering herd after a throttle) while
    keeping at least half of the exponential delay.
    """

    max_tries: int = 8
    initial_seconds: float = 1.0
    max_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, failed_tries: int) -> float:
        """The wait after ``failed_tries`` failed attempts (``failed_tries >= 1``)."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2.0 ** (failed_tries - 1))
        return ceiling / 2 + self.rng.uniform(0.0, ceiling / 2)

    def should_retry(self, failed_tries: int) -> bool:
        return failed_tries < self.max_tries
