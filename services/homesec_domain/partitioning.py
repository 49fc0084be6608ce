"""Partition-key hashing, identical to the azure-eventhub SDK's client-side resolver.

The SDK's buffered producer (``azure/eventhub/_buffered_producer/_partition_resolver.py``) maps a
partition key to ``partition_ids[abs(generate_hash_code(key) % n)]`` where ``generate_hash_code`` is
Jenkins lookup3 (``hashlittle2`` over the key's code points), folded to a signed 16-bit integer. The
producer groups readings by that partition id so it can batch many homes per send while every home stays
in one partition, in order.

Pure code: no Azure SDK import. The unit tests check equality with the SDK's function.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = ((a - c) & _MASK) ^ _rot(c, 4)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 6)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 8)
    b = (b + a) & _MASK
    a = ((a - c) & _MASK) ^ _rot(c, 16)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 19)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c = ((c ^ b) - _rot(b, 14)) & _MASK
    a = ((a ^ c) - _rot(c, 11)) & _MASK
    b = ((b ^ a) - _rot(a, 25)) & _MASK
    c = ((c ^ b) - _rot(b, 16)) & _MASK
    a = ((a ^ c) - _rot(c, 4)) & _MASK
    b = ((b ^ a) - _rot(a, 14)) & _MASK
    c = ((c ^ b) - _rot(b, 24)) & _MASK
    return a, b, c


def _word(codes: Sequence[int], start: int) -> int:
    """Little-endian 32-bit word of up to 4 code points starting at ``start`` (missing ones are 0)."""
    word = 0
    for shift, pos in enumerate(range(start, min(start + 4, len(codes)))):
        word += codes[pos] << (8 * shift)
    return word


def lookup3(key: str) -> tuple[int, int]:
    """Jenkins ``hashlittle2`` with both seeds 0, over the code points of ``key``: returns ``(c, b)``."""
    codes = [ord(ch) for ch in key]
    length = len(codes)
    a = b = c = (0xDEADBEEF + length) & _MASK
    pos = 0
    while length - pos > 12:
        a = (a + _word(codes, pos)) & _MASK
        b = (b + _word(codes, pos + 4)) & _MASK
        c = (c + _word(codes, pos + 8)) & _MASK
        a, b, c = _mix(a, b, c)
        pos += 12
    if length - pos == 0:
        return c, b
    # The tail: words past the end are zero; additions may exceed 32 bits before the mask, like the SDK.
    a = (a + _word(codes, pos)) & _MASK
    b = (b + _word(codes, pos + 4)) & _MASK
    c = (c + _word(codes, pos + 8)) & _MASK
    a, b, c = _final(a, b, c)
    return c, b


def partition_hash(key: str) -> int:
    """The SDK's ``generate_hash_code``: lookup3 folded to a signed short (0 for an empty key)."""
    if not key:
        return 0
    c, b = lookup3(key)
    value = (c ^ b) & 0xFFFF
    return value - 0x10000 if value & 0x8000 else value


@lru_cache(maxsize=262_144)
def _index(key: str, count: int) -> int:
    return abs(partition_hash(key) % count)


def partition_for(key: str, partition_ids: Sequence[str]) -> str:
    """The partition id the SDK would pick for ``key`` among ``partition_ids`` (in the hub's order)."""
    if not partition_ids:
        raise ValueError("partition_ids is empty")
    return partition_ids[_index(key, len(partition_ids))]
