"""The soak's timeline: when each disruption happens, the readings' clock (a UTC day boundary in the run),
the warm-up that the trend goals skip, and the consumer's settings scaled to the fleet.

Times are seconds from the start of the load. The 60-minute plan is the reference; a run of ``minutes``
scales it proportionally. Runs shorter than ``SHORT_MINUTES`` keep the ``core`` disruptions only (one of
each kind of fault), spread evenly between the warm-up and the quiet tail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

REFERENCE_MINUTES = 60
SHORT_MINUTES = 20
WARM_UP_SHARE = 10 / 60  # the trend goals compare minute 10 with the end in a 60-minute run
QUIET_TAIL_SHARE = 8 / 60  # no disruption in the last 8 minutes (of 60): the end state is settled
RECOVERY_S = 60.0  # the lag must be back under LAG_GOAL_EVENTS within this long after each disruption
LAG_GOAL_EVENTS = 1000
ALERT_GRACE_S = 120.0  # an alert may still be firing this long after its disruption ended
# At 100,000 homes the chart runs 32 partitions; each flush merges the closed hours of at most
# FLUSH_MAX_HOMES (2,000) of a partition's 3,125 homes. The soak keeps that share per partition.
PRODUCTION_HOMES, PRODUCTION_PARTITIONS, PRODUCTION_FLUSH_MAX_HOMES = 100_000, 32, 2000
MAX_READING_AGE_S = 86_400  # the producer's acceptance horizon (MAX_READING_AGE_SECONDS' default)
HORIZON_MARGIN_S = 3_600  # keep the shifted clock this far inside it, whatever the run's length


@dataclass(frozen=True)
class Disruption:
    """``kind``: ``restart`` (SIGTERM, then start again), ``kill`` (SIGKILL, then start again),
    ``blob-hang`` (the Blob proxy answers nothing for ``seconds``), ``eventhubs-drop`` (the emulator cuts
    every AMQP connection). ``target``: ``producer-1`` ... ``consumer-2`` for the process kinds."""

    at: float
    kind: str
    target: str = ""
    seconds: float = 0.0
    core: bool = False

    @property
    def expected_alerts(self) -> tuple[str, ...]:
        """Alerts whose rule must turn true (pending) during this disruption or its ``ALERT_GRACE_S``: a
        killed consumer leaves its partitions without a live owner until its claims expire
        (``OWNERSHIP_EXPIRATION_SECONDS``, 60 s). A graceful stop releases them for the other consumer to
        claim within a load-balancing interval, too briefly for a 5 s scrape to be sure to see. None is
        expected to fire: every rule's ``for`` outlasts these disruptions."""
        if self.kind == "kill" and self.target.startswith("consumer"):
            return ("HomesecConsumerPartitionsUnowned",)
        return ()

    @property
    def label(self) -> str:
        what = f"{self.kind} {self.target}".strip()
        return f"{what} {self.seconds:.0f}s" if self.seconds else what


# The 60-minute reference plan (minutes; blob-hang seconds are fixed, not scaled).
REFERENCE_PLAN = (
    Disruption(12, "restart", "producer-1", core=True),
    Disruption(15, "restart", "producer-2"),
    Disruption(18, "restart", "consumer-1"),
    Disruption(21, "restart", "consumer-2", core=True),
    Disruption(25, "blob-hang", seconds=45, core=True),
    Disruption(29, "eventhubs-drop", core=True),
    Disruption(33, "kill", "consumer-1", core=True),
    Disruption(37, "restart", "producer-2"),
    Disruption(40, "restart", "producer-1"),
    Disruption(43, "restart", "consumer-2"),
    Disruption(46, "restart", "consumer-1"),
)
SHORT_BLOB_HANG_S = 20.0


def plan(minutes: float) -> list[Disruption]:
    """The disruptions of a run of ``minutes``, in order, ``at`` in seconds from the start of the load."""
    total = minutes * 60
    if minutes >= SHORT_MINUTES:
        scale = minutes / REFERENCE_MINUTES
        return [replace(d, at=d.at * 60 * scale) for d in REFERENCE_PLAN]
    core = [d for d in REFERENCE_PLAN if d.core]
    first, last = total * WARM_UP_SHARE, total * (1 - QUIET_TAIL_SHARE) - RECOVERY_S
    step = (last - first) / max(1, len(core) - 1)
    return [
        replace(d, at=first + i * step, seconds=SHORT_BLOB_HANG_S if d.seconds else 0.0)
        for i, d in enumerate(core)
    ]


def warm_up_seconds(minutes: float) -> float:
    """Where the trend goals (RSS, FDs) start: minute 10 of 60, the same share of shorter runs."""
    return minutes * 60 * WARM_UP_SHARE


def clock_shift(now: datetime, minutes: float) -> timedelta:
    """How far in the past the fleet stamps its readings so that a UTC day boundary (also an hour
    boundary) falls ``lead`` into the run: a few minutes before midnight (5% of the run, at least a minute).
    The shifted clock stays within the producer's acceptance horizon (not older than a day); when the last
    midnight is too long ago for the whole run, the readings carry the real time (no shift)."""
    lead = timedelta(seconds=max(60.0, minutes * 60 * 0.05))
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    shift = now - midnight + lead
    if shift.total_seconds() + minutes * 60 > MAX_READING_AGE_S - HORIZON_MARGIN_S:
        return timedelta(0)
    return shift


def flush_max_homes(homes: int, partitions: int) -> int:
    """``FLUSH_MAX_HOMES`` giving each partition's flush the share of its homes it has at 100,000 homes."""
    production_share = PRODUCTION_FLUSH_MAX_HOMES / (PRODUCTION_HOMES / PRODUCTION_PARTITIONS)
    return max(1, round(production_share * homes / partitions))
