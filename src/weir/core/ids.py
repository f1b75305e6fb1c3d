"""Run ids: UUID version 7, so ids sort by creation time and index well."""

from __future__ import annotations

import os
import threading
import time
import uuid

# Within the 80 random bits: clear the version nibble (bits 76-79) and the variant bits (62-63)
_RANDOM_MASK = ((1 << 80) - 1) & ~(0xF << 76) & ~(0x3 << 62)
_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)
_lock = threading.Lock()
_last = 0


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.
    Monotonic within a process: an id made in the same millisecond as the one before it
    is that one plus 1 (RFC 9562's method 2 on the low random bits), so two states of a
    run written in one millisecond still sort in the order they were made."""
    global _last
    millis = time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF
    rand = int.from_bytes(os.urandom(10), "big")
    value = millis << 80 | (rand & _RANDOM_MASK) | _VERSION_AND_VARIANT
    with _lock:
        if value <= _last and value >> 80 >= _last >> 80:
            value = _last + 1  # 62 random low bits: a carry into the variant is not a worry
        _last = value
    return uuid.UUID(int=value)
