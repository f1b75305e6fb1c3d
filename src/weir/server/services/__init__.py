"""Loop services that run in the server process (unless `--no-services`): each a
`Service` with a `run_once(now)` that tests call directly. `SERVICES` lists the
service classes the server starts."""

from __future__ import annotations

from weir.server.services.base import Service, ServiceRunner, ServiceStatus
from weir.server.services.scheduler import Scheduler
from weir.server.services.zombies import ZombieReaper

SERVICES: list[type[Service]] = [ZombieReaper, Scheduler]

__all__ = [
    "SERVICES",
    "Scheduler",
    "Service",
    "ServiceRunner",
    "ServiceStatus",
    "ZombieReaper",
]
