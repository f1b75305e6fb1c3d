"""Loop services that run in the server process (unless `--no-services`): each a
`Service` with a `run_once(now)` that tests call directly. `SERVICES` lists the
service classes the server starts."""

from __future__ import annotations

from weir.server.services.base import Service, ServiceRunner
from weir.server.services.cancellation import CancellationCleanup
from weir.server.services.late_runs import LateRuns
from weir.server.services.liveness import WorkerLiveness
from weir.server.services.retention import Retention
from weir.server.services.scheduler import Scheduler
from weir.server.services.zombies import ZombieReaper

SERVICES: list[type[Service]] = [
    ZombieReaper,
    Scheduler,
    LateRuns,
    WorkerLiveness,
    CancellationCleanup,
    Retention,
]

__all__ = [
    "SERVICES",
    "CancellationCleanup",
    "LateRuns",
    "Retention",
    "Scheduler",
    "Service",
    "ServiceRunner",
    "WorkerLiveness",
    "ZombieReaper",
]
