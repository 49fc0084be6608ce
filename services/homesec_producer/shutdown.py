"""The shutdown timeline, derived from the settings so that no request is ever left for uvicorn to kill.

After SIGTERM (t = 0) readiness is false at once; at ``delay`` the listener closes and the buffer refuses new
readings (503); until ``delay + flush`` it keeps publishing, and requests whose readings are acknowledged get
202. At ``delay + flush`` the buffer stops: the requests whose readings were not all acknowledged get 503 +
Retry-After. At ``delay + cutoff`` every request still without an answer (whatever it waits for) is
cancelled and answered 503 + Retry-After. Only at ``delay + server_timeout`` does uvicorn cancel what is
left (it would answer 500), by which time nothing is left. Then the publisher closes and the process exits
by ``grace``.

The request deadline needs no limit here: the cutoff ends every wait, whatever the deadline. A grace too short
for this timeline, or a pod that kills the process before ``grace`` (``termination_grace``), is refused at
start-up (``ShutdownPlan.derive`` raises ``ValueError``, which the settings report).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# After the flush: requests whose tickets were just failed write their 503s before the rest are cancelled.
ANSWER_SECONDS = 0.5
# After the cutoff: time for the cancelled requests' 503s to be written before uvicorn's own timeout.
RESPOND_SECONDS = 1.0
# After uvicorn's timeout: the lifespan's end (publisher close) before ``grace``.
CLOSE_SECONDS = 1.5
# The shortest flush worth having (one publish round trip with room to spare).
MIN_FLUSH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ShutdownPlan:
    """Seconds; ``delay`` counts from SIGTERM, the others from ``delay`` (when the listener closes)."""

    delay: float
    flush: float  # buffer stops; requests with unacknowledged readings get 503
    cutoff: float  # every request still without an answer gets 503
    server_timeout: int  # uvicorn's timeout_graceful_shutdown (it cancels what is left: 500)
    grace: float  # SIGTERM -> exit

    @classmethod
    def derive(cls, grace: float, delay: float, termination_grace: float | None = None) -> ShutdownPlan:
        """The timeline for ``SHUTDOWN_GRACE_SECONDS`` and ``SHUTDOWN_DELAY_SECONDS``, or ``ValueError``."""
        if termination_grace is not None and termination_grace <= grace:
            raise ValueError(
                f"HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS ({grace:g}) must be below "
                f"HOMESEC_PRODUCER_TERMINATION_GRACE_SECONDS ({termination_grace:g}, the time the pod gives "
                "the process between SIGTERM and SIGKILL), or requests are killed unanswered"
            )
        server_timeout = math.floor(grace - delay - CLOSE_SECONDS)
        cutoff = server_timeout - RESPOND_SECONDS
        flush = cutoff - ANSWER_SECONDS
        if flush < MIN_FLUSH_SECONDS:
            least = delay + CLOSE_SECONDS + math.ceil(MIN_FLUSH_SECONDS + ANSWER_SECONDS + RESPOND_SECONDS)
            raise ValueError(
                f"HOMESEC_PRODUCER_SHUTDOWN_GRACE_SECONDS ({grace:g}) leaves no time to flush the buffer and "
                f"answer every waiting request before the server's own shutdown timeout: it must be at least "
                f"{least:g} with HOMESEC_PRODUCER_SHUTDOWN_DELAY_SECONDS = {delay:g}"
            )
        return cls(delay=delay, flush=flush, cutoff=cutoff, server_timeout=server_timeout, grace=grace)
