"""Resolve an attach to a link: entity addresses, consumer groups, partitions, filters, epochs."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from homesec_devstack.emulator.broker import NOT_FOUND, Failure
from homesec_devstack.emulator.links import (
    EPOCH,
    RUNTIME_METRIC,
    IncomingLink,
    PartitionReceiver,
    ReplyLink,
    start_index,
)

if TYPE_CHECKING:
    from homesec_devstack.emulator.connection import AmqpConnection, Session

SELECTOR = b"apache.org:selector-filter:string"


class RouteError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.description)
        self.failure = failure


def entity_path(address: bytes | str) -> list[str]:
    """``amqps://host/hub/Partitions/3`` -> ``["hub", "Partitions", "3"]`` (a bare path works too)."""
    text = address.decode() if isinstance(address, bytes) else address
    parsed = urllib.parse.urlparse(text)
    path = parsed.path if parsed.scheme else text
    return [p for p in path.split("/") if p]


def attach_incoming(
    conn: AmqpConnection, session: Session, handle: int, name: bytes, target: bytes
) -> IncomingLink:
    parts = entity_path(target)
    if parts == ["$cbs"]:
        return IncomingLink(session, handle, name, target, "cbs")
    if parts and parts[0] == "$management":
        return IncomingLink(session, handle, name, target, "management")
    conn.require_auth()
    hub = conn.broker.hub(parts[0]) if parts else None
    if hub is None:
        raise RouteError(Failure(NOT_FOUND, f"The messaging entity '{'/'.join(parts)}' could not be found."))
    pid: str | None = None
    if len(parts) == 3 and parts[1].lower() == "partitions" and parts[2] in hub.partitions:
        pid = parts[2]
    elif len(parts) != 1:
        raise RouteError(Failure(NOT_FOUND, f"The messaging entity '{'/'.join(parts)}' could not be found."))
    return IncomingLink(session, handle, name, target, "ingress", hub=hub.name, partition_id=pid)


def attach_outgoing(
    conn: AmqpConnection,
    session: Session,
    handle: int,
    name: bytes,
    source: list[Any],
    desired: list[bytes] | None,
    properties: dict[bytes, Any] | None,
) -> ReplyLink | PartitionReceiver:
    address: bytes = source[0] or b""
    parts = entity_path(address)
    if parts in (["$cbs"], ["$management"]):
        return ReplyLink(session, handle, name, parts[0].encode())
    conn.require_auth()
    if len(parts) != 5 or parts[1].lower() != "consumergroups" or parts[3].lower() != "partitions":
        raise RouteError(Failure(NOT_FOUND, f"The messaging entity '{'/'.join(parts)}' could not be found."))
    hub = conn.broker.hub(parts[0])  # hub and consumer-group names match in any case, as in Event Hubs
    part = hub.partitions.get(parts[4]) if hub else None
    if hub is None or part is None:
        raise RouteError(Failure(NOT_FOUND, f"The messaging entity '{'/'.join(parts)}' could not be found."))
    filters = source[7] if len(source) > 7 and source[7] else {}
    selector = filters.get(SELECTOR)
    try:
        position = start_index(part, selector)
    except ValueError as exc:
        raise RouteError(Failure(b"amqp:invalid-field", str(exc))) from exc
    group = hub.consumer_group(parts[2]) or parts[2]  # the configured spelling; unknown: refused below
    epoch = (properties or {}).get(EPOCH)
    link = PartitionReceiver(
        session, handle, name, address, broker=conn.broker, partition=part, group=group, position=position,
        epoch=int(epoch) if epoch is not None else None, runtime_metric=RUNTIME_METRIC in (desired or []),
        on_stolen=lambda lnk, why: conn.steal(session, lnk, why),
    )  # fmt: skip
    failure = conn.broker.subscribe(hub.name, group, part.pid, link)
    if failure is not None:
        raise RouteError(failure)
    return link
