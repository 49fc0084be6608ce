"""Verified tokens, remembered by the SHA-256 digest of their (canonical) text, bounded in bytes.

A gateway posts with the same token for hours, and checking its signature each time was ~6 % of the
producer's CPU. Only tokens that verified are remembered, never their text: an entry is the 32-byte digest
and the verified scope, and its estimated size counts against ``max_bytes``; the oldest entries go first.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

# Per entry besides the value: the digest (bytes object), the dict slot and the ordering links.
ENTRY_OVERHEAD_BYTES = 200


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class VerifiedCache(Generic[V]):
    """``get``/``put`` by token digest; at most ``max_bytes`` of estimated entries (0: remembers none)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[bytes]:
        return list(self._entries)

    def get(self, key: bytes) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def put(self, key: bytes, value: V, size: int) -> None:
        """Remember ``value`` (estimated ``size`` bytes besides the entry's overhead), evicting the oldest."""
        cost = size + ENTRY_OVERHEAD_BYTES + sys.getsizeof(key)
        if cost > self.max_bytes or key in self._entries:
            return
        while self.bytes + cost > self.max_bytes:
            _, (_, freed) = self._entries.popitem(last=False)
            self.bytes -= freed
        self._entries[key] = (value, cost)
        self.bytes += cost
