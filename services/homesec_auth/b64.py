"""Strict base64url (RFC 4648 section 5, no padding), as JWS compact serialisation requires (RFC 7515).

A segment is accepted only in its one canonical form: alphabet ``A-Z a-z 0-9 - _`` only, no ``=``, no
length of 1 modulo 4, and zero unused bits in its last character. So every accepted token has exactly one
spelling: junk appended to a token, or a variant of its last character, is refused instead of decoding to
the same bytes.
"""

from __future__ import annotations

import base64
import re

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Unused low bits of the last character, by segment length modulo 4 (0: none unused).
_UNUSED_MASK = {0: 0, 2: 0x0F, 3: 0x03}


def is_canonical(segment: str) -> bool:
    """True when ``segment`` is canonical unpadded base64url (the empty segment is)."""
    if not _SEGMENT.fullmatch(segment):
        return False
    mask = _UNUSED_MASK.get(len(segment) % 4)
    if mask is None:  # a length of 1 modulo 4 encodes no whole byte
        return False
    return not segment or not (_ALPHABET.index(segment[-1]) & mask)


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(segment: str) -> bytes:
    """The bytes of a canonical segment; ``ValueError`` for any other text."""
    if not is_canonical(segment):
        raise ValueError("not canonical base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
