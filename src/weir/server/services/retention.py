"""Retention: delete finished runs and logs older than `server.retention_days`.

A flow run in a final state (COMPLETED, FAILED, CRASHED, CANCELLED) that ended before
the cut-off is deleted with its states, task runs (and theirs) and logs, through the
foreign keys' ON DELETE CASCADE (SQLite enforces them: `PRAGMA foreign_keys=ON` in
`db/sqlite.py`). A task run of no flow run (a task called outside any flow) that
ended in a final state before the cut-off goes the same way, with its states. Logs
older than the cut-off go too, whatever their run. Unfinished runs stay, however old.
Deletes go in batches of `BATCH_SIZE` rows, each its own short transaction (SQLite's
write lock and PostgreSQL's row locks are held briefly), and at most `MAX_BATCHES` of
each kind a pass: a backlog clears over a few passes.
`retention_days = 0` keeps everything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from weir.core.states import TERMINAL_TYPES
from weir.server.db.models import FlowRun, Log, TaskRun
from weir.server.services.base import Service

BATCH_SIZE = 500
MAX_BATCHES = 20

_runs = cast(sa.Table, FlowRun.__table__)
_logs = cast(sa.Table, Log.__table__)
_tasks = cast(sa.Table, TaskRun.__table__)
_FINAL = tuple(sorted(state.value for state in TERMINAL_TYPES))


class Retention(Service):
    name = "retention"

    def __init__(
        self,
        *args: Any,
        batch_size: int = BATCH_SIZE,
        max_batches: int = MAX_BATCHES,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.batch_size = batch_size
        self.max_batches = max_batches

    @property
    def interval_seconds(self) -> float:
        return self.settings.server.retention_interval_seconds

    async def run_once(self, now: datetime) -> int:
        """Delete a pass's worth of old flow runs, task runs outside flows, then logs; how
        many rows of the three."""
        days = self.settings.server.retention_days
        if days == 0:
            return 0
        cutoff = now - timedelta(days=days)
        old_runs = sa.select(_runs.c.id).where(
            _runs.c.end_time < cutoff, _runs.c.state_type.in_(_FINAL)
        )
        old_tasks = sa.select(_tasks.c.id).where(
            _tasks.c.end_time < cutoff,
            _tasks.c.flow_run_id.is_(None),
            _tasks.c.state_type.in_(_FINAL),
        )
        old_logs = sa.select(_logs.c.id).where(_logs.c.timestamp < cutoff)
        deleted = await self._delete(_runs, old_runs)
        deleted += await self._delete(_tasks, old_tasks)
        return deleted + await self._delete(_logs, old_logs)

    async def _delete(self, table: sa.Table, old: sa.Select[Any]) -> int:
        deleted = 0
        for _ in range(self.max_batches):
            async with self.database.write() as session:
                ids = list((await session.scalars(old.limit(self.batch_size))).all())
                if ids:
                    await session.execute(sa.delete(table).where(table.c.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < self.batch_size:
                break
        return deleted
