"""Worker liveness: notice the workers whose heartbeats stopped, forget the long gone.

A worker is offline once its last heartbeat is older than three of its heartbeat
intervals (`repos/work_pools.worker_status`, the rule the API uses when it shows
statuses, so a server without services shows them right too). Each pass marks newly
offline workers (`offline_since`, the moment they went offline) with one warning
each; a heartbeat clears the mark. Workers offline for longer than
`server.worker_retention_seconds` are deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from weir.core.schemas.work_pools import WorkerStatus
from weir.server.db.models import Worker, WorkPool
from weir.server.db.repos.work_pools import MISSED_HEARTBEATS, worker_status
from weir.server.services.base import Service

logger = logging.getLogger("weir.server.services.liveness")

_workers = cast(sa.Table, Worker.__table__)
_pools = cast(sa.Table, WorkPool.__table__)


class WorkerLiveness(Service):
    name = "worker_liveness"

    @property
    def interval_seconds(self) -> float:
        return self.settings.server.liveness_interval_seconds

    async def run_once(self, now: datetime) -> int:
        """Delete the long offline workers, then mark those that went offline; how many."""
        retention = timedelta(seconds=self.settings.server.worker_retention_seconds)
        async with self.database.write() as session:
            deleted = await session.execute(
                sa.delete(_workers).where(_workers.c.offline_since < now - retention)
            )
        return int(deleted.rowcount) + await self._mark_offline(now)  # type: ignore[attr-defined]

    async def _mark_offline(self, now: datetime) -> int:
        statement = sa.select(
            _workers.c.id,
            _workers.c.name,
            _workers.c.last_heartbeat_time,
            _workers.c.heartbeat_interval_seconds,
            _pools.c.name.label("pool_name"),
        ).join(_pools, _pools.c.id == _workers.c.work_pool_id)
        async with self.database.read() as session:
            rows = await session.execute(statement.where(_workers.c.offline_since.is_(None)))
            gone = [
                dict(row._mapping)
                for row in rows
                if worker_status(dict(row._mapping), now) is WorkerStatus.OFFLINE
            ]
        marked = 0
        for worker in gone:
            async with self.database.write() as session:
                # a heartbeat that arrived since the read wins: the worker is back
                result = await session.execute(
                    sa.update(_workers)
                    .where(
                        _workers.c.id == worker["id"],
                        _workers.c.offline_since.is_(None),
                        _workers.c.last_heartbeat_time == worker["last_heartbeat_time"],
                    )
                    .values(offline_since=_went_offline(worker))
                )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                marked += 1
                logger.warning(
                    "worker %s of pool %s went offline, last heartbeat %s",
                    worker["name"],
                    worker["pool_name"],
                    worker["last_heartbeat_time"].isoformat(timespec="seconds"),
                )
        return marked


def _went_offline(worker: dict[str, Any]) -> datetime:
    window = MISSED_HEARTBEATS * worker["heartbeat_interval_seconds"]
    went: datetime = worker["last_heartbeat_time"] + timedelta(seconds=window)
    return went
