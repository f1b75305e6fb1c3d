"""Run ids: UUID version 7, so ids sort by creation time and index well."""

from __future__ import annotations

import os
import time
import uuid

# Within the 80 random bits: clear the version nibble (bits 76-79) and the variant bits (62-63)
_RANDOM_MASK = ((1 << 80) - 1) & ~(0xF << 76) & ~(0x3 << 62)
_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF
    rand = int.from_bytes(os.urandom(10), "big")
    return uuid.UUID(int=millis << 80 | (rand & _RANDOM_MASK) | _VERSION_AND_VARIANT)
