"""One base exception and flat subclasses that carry data. HTTP mapping happens in the API layer only."""

from __future__ import annotations


class HomesecError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidEventError(HomesecError):
    """An event body could not be decoded into a reading (poison event)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # bounded: "undecodable" | "schema_version" | "invalid"
        self.detail = detail
