"""The server's loop services on the wire (`GET /api/services`, `weir server services ls`).

A service runs in one process at a time, the `owner` of its lease until
`lease_expires`; `status` is derived when read: `running` while its last pass is
within one lease of now, `stale` after, `never ran` before its first pass.
"""

from __future__ import annotations

import enum
from datetime import datetime

from weir.core.schemas.base import ResponseModel


class ServiceStatus(enum.StrEnum):
    RUNNING = "running"
    STALE = "stale"
    NEVER_RAN = "never ran"


class ServiceInfo(ResponseModel):
    name: str
    # None for a service this server does not know (recorded by a newer version)
    interval_seconds: float | None
    # whether the server that answered runs the services itself (not `--no-services`)
    runs_here: bool
    status: ServiceStatus
    owner: str | None = None
    lease_expires: datetime | None = None
    last_heartbeat: datetime | None = None
    last_pass_seconds: float | None = None
    last_result: int | None = None
    passes: int = 0
    last_error: str | None = None
    last_error_time: datetime | None = None
