"""Read authorization for ``GET /v1/homes/{home_id}/...``: a bearer read token that covers the home.

A read token has ``aud`` ``homesec-read`` and lists the homes it may read in ``homes``; with
``"role": "operator"`` it reads every home (``homesec_auth.tokens``). Ingest tokens (sensors, gateways)
cannot read. Any token that fails verification, a wrong audience included, is answered 401
``{"detail": "invalid or missing token"}`` with ``WWW-Authenticate: Bearer`` (the reason goes to the log
and to ``homesec_consumer_auth_failures_total{reason}``); a valid read token that does not cover the home
gets 403 ``{"detail": "home not in token scope"}``.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency's annotations at run time, and
# ``Security(bearer)`` names a local of ``read_access``.
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from homesec_auth.errors import AuthError, ForbiddenHomesError, MissingTokenError
from homesec_auth.tokens import READ_AUDIENCE, TokenAuthority, TokenScope
from prometheus_client import Counter

UNAUTHORIZED_DETAIL = "invalid or missing token"
FORBIDDEN_DETAIL = "home not in token scope"
log = logging.getLogger(__name__)

ReadCheck = Callable[[str, HTTPAuthorizationCredentials | None], Awaitable[TokenScope]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def read_access(
    authority: TokenAuthority, failures: Counter | None = None, clock: Callable[[], datetime] = utc_now
) -> ReadCheck:
    """A FastAPI dependency: the verified scope of the request's read token for its ``home_id``."""
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="readToken",
        description="A read token (aud homesec-read) covering the home, or an operator token",
    )

    async def require_read(
        home_id: str, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> TokenScope:
        try:
            if credentials is None:
                raise MissingTokenError("no bearer token")
            scope = authority.verify(credentials.credentials, clock(), READ_AUDIENCE)
            scope.check_homes([home_id])
        except AuthError as exc:
            if failures is not None:
                failures.labels(reason=exc.reason).inc()
            log.info("read token refused: %s (%s)", exc.reason, exc)
            if isinstance(exc, ForbiddenHomesError):
                raise HTTPException(status_code=403, detail=FORBIDDEN_DETAIL) from None
            raise HTTPException(
                status_code=401, detail=UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return scope

    return require_read
