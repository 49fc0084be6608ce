"""The namespace: hubs, partitions, consumer groups, ingress with throttling, receiver ownership (epochs)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from azure.eventhub._buffered_producer._partition_resolver import generate_hash_code

from homesec_devstack.emulator import codec
from homesec_devstack.emulator.storage import RECORD_HEADER_SIZE, PartitionLog, StoredEvent
from homesec_devstack.emulator.throttle import ThroughputLimiter

MAX_MESSAGE_SIZE = 1024 * 1024
SERVER_BUSY = b"com.microsoft:server-busy"
NOT_FOUND = b"amqp:not-found"
LINK_STOLEN = b"amqp:link:stolen"
MESSAGE_SIZE_EXCEEDED = b"amqp:link:message-size-exceeded"
UNAUTHORIZED = b"amqp:unauthorized-access"

MAX_PARTITIONS = 1024
HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")

AckCallback = Callable[["Failure | None"], None]


class HubExistsError(ValueError):
    """A hub of this name (in any case) exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"hub {name!r} exists already")
        self.name = name


@dataclass(frozen=True, slots=True)
class Failure:
    condition: bytes
    description: str


class Subscriber(Protocol):
    """A receive link attached to a partition."""

    epoch: int | None

    def notify(self) -> None: ...
    def steal(self, description: str) -> None: ...


@dataclass
class Partition:
    hub: str
    pid: str
    log: PartitionLog
    paused: bool = False
    pending: list[tuple[list[bytes], bytes | None, AckCallback]] = field(default_factory=list)
    subscribers: dict[str, list[Subscriber]] = field(default_factory=dict)  # consumer group -> links

    def wake(self) -> None:
        for links in self.subscribers.values():
            for link in list(links):
                link.notify()


@dataclass
class Stats:
    incoming_events: int = 0
    outgoing_events: int = 0
    incoming_bytes: int = 0
    connections_total: int = 0
    connections_open: int = 0
    rejected_sends: int = 0


def name_key(name: str) -> str:
    """Event Hubs matches hub (entity) and consumer-group names without regard to case."""
    return name.casefold()


class Hub:
    def __init__(
        self, name: str, partitions: int, consumer_groups: list[str], root: Path, fsync: bool
    ) -> None:
        self.name = name
        self.created_ms = int(time.time() * 1000)
        # case-folded name -> the configured spelling, which keys the partitions' subscribers
        self.consumer_groups = {name_key(g): g for g in consumer_groups}
        self.partition_ids = [str(i) for i in range(partitions)]
        self.partitions = {
            pid: Partition(name, pid, PartitionLog(root / name / f"{pid}.log", fsync))
            for pid in self.partition_ids
        }
        self._rr = 0

    def consumer_group(self, name: str) -> str | None:
        """The configured spelling of consumer group ``name`` (any case), or ``None`` if there is none."""
        return self.consumer_groups.get(name_key(name))

    def route(self, partition_id: str | None, key: bytes | None) -> Partition | None:
        if partition_id is not None:
            return self.partitions.get(partition_id)
        if key is not None:
            h: int = generate_hash_code(key.decode("utf-8", "replace"))  # type: ignore[no-untyped-call]
            return self.partitions[self.partition_ids[abs(h % len(self.partition_ids))]]
        self._rr = (self._rr + 1) % len(self.partition_ids)
        return self.partitions[self.partition_ids[self._rr]]


class Broker:
    """All state of one emulated Event Hubs namespace."""

    def __init__(
        self,
        root: Path,
        hubs: dict[str, int],
        consumer_groups: list[str],
        limiter: ThroughputLimiter,
        fsync: bool = False,
    ) -> None:
        if len({name_key(name) for name in hubs}) != len(hubs):
            raise ValueError(f"hub names must differ in more than case: {sorted(hubs)}")
        self._root, self._fsync, self._consumer_groups = root, fsync, consumer_groups
        self.hubs = {name: Hub(name, n, consumer_groups, root, fsync) for name, n in hubs.items()}
        self._by_key = {name_key(name): hub for name, hub in self.hubs.items()}
        self.limiter = limiter
        self.stats = Stats()

    def hub(self, name: str) -> Hub | None:
        """The hub called ``name``, in any case (Event Hubs entity names are case-insensitive)."""
        return self._by_key.get(name_key(name))

    def add_hub(self, name: str, partitions: int) -> Hub:
        """Create hub ``name`` at run time (the admin endpoint; the SDK's live tests create hubs per test).

        It has the consumer groups given at start-up and lasts as long as the process (its logs stay in the
        data directory; name it in ``--hubs`` to keep it across a restart). Raises ``ValueError`` for a bad
        name or partition count, ``HubExistsError`` when a hub of that name (in any case) exists.
        """
        if not HUB_NAME.fullmatch(name):
            raise ValueError(f"hub name {name!r}: 1-256 letters, digits, '.', '-' or '_', starting with a "
                             "letter or digit")  # fmt: skip
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partition count {partitions} of {name!r} is not in 1..{MAX_PARTITIONS}")
        existing = self.hub(name)
        if existing is not None:
            raise HubExistsError(existing.name)
        hub = Hub(name, partitions, self._consumer_groups, self._root, self._fsync)
        self.hubs[name] = hub
        self._by_key[name_key(name)] = hub
        return hub

    # --- ingress -----------------------------------------------------------------------------------
    def publish(
        self,
        hub_name: str,
        partition_id: str | None,
        bodies: list[bytes],
        key: bytes | None,
        done: AckCallback,
    ) -> None:
        """Append ``bodies`` atomically to one partition; call ``done`` once durable (or with a failure)."""
        hub = self.hub(hub_name)
        part = hub.route(partition_id, key) if hub else None
        if part is None:
            done(Failure(NOT_FOUND, f"The messaging entity '{hub_name}/{partition_id}' could not be found."))
            return
        size = sum(len(b) for b in bodies)
        if size > MAX_MESSAGE_SIZE:
            self.stats.rejected_sends += 1
            done(Failure(MESSAGE_SIZE_EXCEEDED, f"The received message ({size} bytes) exceeds the limit."))
            return
        if not self.limiter.admit(len(bodies), size):
            done(Failure(SERVER_BUSY, "The request was terminated because the namespace is being throttled. "
                                      "Please wait 4 seconds and try again."))  # fmt: skip
            return
        if part.paused:
            part.pending.append((bodies, key, done))
            return
        self._append(part, bodies, key)
        done(None)

    def _append(self, part: Partition, bodies: list[bytes], key: bytes | None) -> list[StoredEvent]:
        enq = int(time.time() * 1000)
        seq = part.log.next_sequence_number
        offset = part.log.next_offset()
        payloads = []
        stamp = codec.stamp_event
        for body in bodies:
            payload = stamp(body, seq, offset, enq, key)
            payloads.append(payload)
            seq += 1
            offset += RECORD_HEADER_SIZE + len(payload)  # the next record's file position
        events = part.log.append(payloads, enq)
        self.stats.incoming_events += len(events)
        self.stats.incoming_bytes += sum(len(b) for b in bodies)
        part.wake()
        return events

    # --- faults ------------------------------------------------------------------------------------
    def pause(self, hub: str, pid: str) -> None:
        self._hub(hub).partitions[pid].paused = True

    def resume(self, hub: str, pid: str) -> None:
        part = self._hub(hub).partitions[pid]
        part.paused = False
        pending, part.pending = part.pending, []
        for bodies, key, done in pending:
            self._append(part, bodies, key)
            done(None)
        part.wake()

    # --- receivers ---------------------------------------------------------------------------------
    def subscribe(self, hub: str, group: str, pid: str, link: Subscriber) -> Failure | None:
        """Attach a receiver; a higher (or equal) epoch steals the partition from lower ones."""
        h = self.hub(hub)
        canonical = h.consumer_group(group) if h is not None else None
        if h is None or pid not in h.partitions or canonical is None:
            return Failure(NOT_FOUND, f"The messaging entity '{hub}/ConsumerGroups/{group}/Partitions/{pid}' "
                                      "could not be found.")  # fmt: skip
        links = h.partitions[pid].subscribers.setdefault(canonical, [])  # `$default` is `$Default`
        current = [lnk.epoch for lnk in links if lnk.epoch is not None]
        if current and (link.epoch is None or link.epoch < max(current)):
            return Failure(LINK_STOLEN, f"Receiver with epoch {link.epoch} rejected: a receiver with higher "
                                        f"epoch {max(current)} exists on partition {pid}.")  # fmt: skip
        if link.epoch is not None:
            for other in list(links):
                links.remove(other)
                other.steal(f"New receiver with higher epoch of '{link.epoch}' is created hence receiver "
                            f"with epoch '{other.epoch}' is getting disconnected.")  # fmt: skip
        links.append(link)
        return None

    def unsubscribe(self, hub: str, group: str, pid: str, link: Subscriber) -> None:
        h = self._hub(hub)
        links = h.partitions[pid].subscribers.get(h.consumer_group(group) or group, [])
        if link in links:
            links.remove(link)

    def _hub(self, name: str) -> Hub:
        hub = self.hub(name)
        if hub is None:
            raise KeyError(name)
        return hub

    def close(self) -> None:
        for hub in self.hubs.values():
            for part in hub.partitions.values():
                part.log.close()
