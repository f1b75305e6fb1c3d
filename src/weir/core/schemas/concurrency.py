"""Concurrency limits on the wire: named numbers of slots, held as leases.

A limit named `tag:<tag>` bounds the task runs carrying that tag (`weir
concurrency-limit create TAG N`); any other name is a global limit taken in flow
code with `with concurrency("db", occupy=1):`. A holder acquires slots on several
limits at once (all or none), renews them while it works, and releases them; a
holder that dies stops renewing and its slots expire.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from weir.core.schemas.base import RequestModel, ResponseModel

TAG_PREFIX = "tag:"
LIMIT_NAME_PATTERN = r"^[^/\s][^/]{0,199}$"


def tag_limit_name(tag: str) -> str:
    return TAG_PREFIX + tag


class ConcurrencyLimitCreate(RequestModel):
    """Create or update (by name) a limit."""

    name: str = Field(pattern=LIMIT_NAME_PATTERN)
    limit: int = Field(ge=0)
    active: bool = True


class ConcurrencyLimit(ResponseModel):
    id: uuid.UUID
    name: str
    limit: int
    active: bool = True
    # slots held now (unexpired leases)
    active_slots: int = 0
    holders: list[str] = Field(default_factory=list)
    created: datetime
    updated: datetime


class SlotAcquire(RequestModel):
    """Take `occupy` slots on every limit of `names`, all or none. Names with no limit
    (or an inactive one) are not limited; they are answered in `unlimited`."""

    names: list[str] = Field(min_length=1, max_length=100)
    occupy: int = Field(default=1, ge=1)
    holder: str = Field(min_length=1, max_length=200)
    lease_seconds: float = Field(default=60.0, ge=1, le=86_400)


class SlotAnswer(ResponseModel):
    granted: bool
    # when not granted: the limit that is full, and when to try again
    blocked_by: str | None = None
    retry_after_seconds: float | None = None
    unlimited: list[str] = Field(default_factory=list)


class SlotRelease(RequestModel):
    holder: str = Field(min_length=1, max_length=200)
    # empty: every slot of the holder
    names: list[str] = Field(default_factory=list, max_length=100)


class SlotRenewal(RequestModel):
    holder: str = Field(min_length=1, max_length=200)
    lease_seconds: float = Field(default=60.0, ge=1, le=86_400)
