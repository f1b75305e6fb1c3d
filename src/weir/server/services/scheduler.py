"""The scheduler: future SCHEDULED runs for every active schedule of every deployment
that is not paused (DESIGN.md §3, path 3).

Each pass keeps, per schedule, its next `scheduler_min_runs` runs and every run due
within `lookahead_seconds` (an hour by default, at least two passes), at most
`scheduler_max_runs` of them and none later than `scheduler_max_horizon_seconds`
from now. A run's idempotency key `scheduled <schedule id> <time>` is unique per
deployment and inserted with ON CONFLICT DO NOTHING: passes repeated, racing in
several processes or after a restart never create a run twice. Times come from
`weir.core.schedules.next_times` (DST rules documented there and in
docs/schedules.md).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from weir.core.ids import new_id
from weir.core.names import random_run_name
from weir.core.schedules import next_times
from weir.core.schemas.states import StateDetails, StateSchema
from weir.core.states import StateType
from weir.server.db.engine import Database
from weir.server.db.repos import scheduled_runs as repo
from weir.server.db.repos.deployment_schedules import run_key_prefix
from weir.server.messaging.wakeups import Wakeups, deployment_key, pool_key
from weir.server.orchestration.initial_state import initial_state
from weir.server.orchestration.set_state import history_values
from weir.server.services.base import Service
from weir.settings import Settings

logger = logging.getLogger("weir.server.services.scheduler")

SCHEDULE_BATCH = 200  # schedules read per query
INSERT_BATCH = 500  # runs per write transaction (SQLite's write lock stays short)
DEFAULT_LOOKAHEAD_SECONDS = 3600.0
_NONE: frozenset[str] = frozenset()
# by schedule key prefix: (the schedule, the pass's time, its upcoming (time, key) pairs)
_Memo = dict[str, tuple[Any, datetime, list[tuple[datetime, str]]]]


class Scheduler(Service):
    name = "scheduler"

    def __init__(
        self,
        database: Database,
        settings: Settings,
        wakeups: Wakeups | None = None,
        lookahead_seconds: float = DEFAULT_LOOKAHEAD_SECONDS,
    ) -> None:
        super().__init__(database, settings, wakeups)
        self.lookahead_seconds = lookahead_seconds
        self._memo: _Memo = {}
        self._next_memo: _Memo = {}

    @property
    def interval_seconds(self) -> float:
        return self.settings.server.scheduler_interval_seconds

    async def run_once(self, now: datetime) -> int:
        """One pass over every active schedule; the number of runs inserted."""
        inserted = 0
        woken: set[str] = set()
        self._next_memo = {}  # what this pass computes; schedules no longer seen drop out
        after_id: uuid.UUID | None = None
        while True:
            async with self.database.read() as session:
                schedules = await repo.read_active(session, after_id, SCHEDULE_BATCH)
            if not schedules:
                break
            after_id = schedules[-1]["id"]
            runs, states = await self._missing_runs(schedules, now)
            for start in range(0, len(runs), INSERT_BATCH):
                batch = runs[start : start + INSERT_BATCH]
                async with self.database.write() as session:
                    ids = await repo.insert(session, batch, states[start : start + INSERT_BATCH])
                inserted += len(ids)
                woken.update(_wakeup_key(run) for run in batch if run["id"] in ids)
            if len(schedules) < SCHEDULE_BATCH:
                break
        self._memo = self._next_memo
        if self.wakeups is not None:
            for key in woken:
                self.wakeups.notify(key)
        return inserted

    def times(self, schedule: dict[str, Any] | Any, now: datetime) -> list[datetime]:
        """The times a pass at `now` keeps runs for, for one schedule (see the module
        docstring)."""
        return [time for time, _ in self._kept(schedule, now, None)]

    def _kept(self, schedule: Any, now: datetime, prefix: str | None) -> list[tuple[datetime, str]]:
        """`times`, each with its run's idempotency key: `prefix` (the schedule's) and the
        time. With a prefix, what the last pass computed for the schedule is reused."""
        server = self.settings.server
        until = now + timedelta(seconds=server.scheduler_max_horizon_seconds)
        times = self._upcoming(schedule, now, until, server.scheduler_max_runs, prefix)
        covered = now + timedelta(
            seconds=max(self.lookahead_seconds, 2 * server.scheduler_interval_seconds)
        )
        keep = max(server.scheduler_min_runs, sum(1 for time, _ in times if time <= covered))
        return times[:keep]

    def _upcoming(
        self, schedule: Any, now: datetime, until: datetime, limit: int, prefix: str | None
    ) -> list[tuple[datetime, str]]:
        """`next_times(schedule, now, until, limit)` with their keys. The times the last
        pass found after `now` for the same schedule are still its first ones, so only
        the tail beyond them is computed (a pass over a thousand minute-by-minute
        schedules computed and keyed 90,000 times before)."""
        memo = self._memo.get(prefix) if prefix is not None else None
        known: list[tuple[datetime, str]] = []
        if memo is not None and memo[0] == schedule and memo[1] <= now:
            known = [pair for pair in memo[2] if pair[0] > now][:limit]
        last = known[-1][0] if known else now
        if len(known) < limit and last < until:
            more = next_times(schedule, last, until, limit - len(known))
            known += [(time, f"{prefix or ''}{time.isoformat()}") for time in more]
        if prefix is not None:
            self._next_memo[prefix] = (schedule, now, known)
        return known

    async def _missing_runs(
        self, schedules: list[dict[str, Any]], now: datetime
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows of the runs (and their first states) these schedules lack."""
        async with self.database.read() as session:
            existing = await repo.future_keys(
                session, {row["deployment_id"] for row in schedules}, now
            )
        runs, states = [], []
        for schedule in schedules:
            exists = existing.get(schedule["deployment_id"], _NONE)
            try:
                kept = self._kept(schedule["schedule"], now, run_key_prefix(schedule["id"]))
            except ValueError as exc:  # stored before a stricter check: skip, say why
                logger.warning("schedule %s cannot be scheduled: %s", schedule["id"], exc)
                continue
            for time, key in kept:
                if key in exists:
                    continue
                run, state = _scheduled_run(schedule, time, key, now)
                runs.append(run)
                states.append(state)
        return runs, states


def _scheduled_run(
    schedule: dict[str, Any], time: datetime, key: str, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    proposed = StateSchema(
        type=StateType.SCHEDULED, state_details=StateDetails(scheduled_time=time)
    )
    state, state_values = initial_state(proposed, now)
    run_id = new_id()
    run = {
        "id": run_id,
        "project_id": schedule["project_id"],
        "flow_id": schedule["flow_id"],
        "name": random_run_name(),
        "parameters": {
            **(schedule["deployment_parameters"] or {}),
            **(schedule["parameters"] or {}),
        },
        "tags": list(schedule["tags"] or []),
        "parent_flow_run_id": None,
        "parent_task_run_id": None,
        "deployment_id": schedule["deployment_id"],
        "run_count": 0,
        "retries": 0,
        "retry_delay_seconds": 0.0,
        "expected_start_time": time,
        "start_time": None,
        "end_time": None,
        "total_run_time": 0.0,
        "work_pool_id": schedule["work_pool_id"],
        "work_queue_id": schedule["work_queue_id"],
        "job_variables": {},
        "lease_owner": None,
        "lease_expires": None,
        "idempotency_key": key,
        "created": now,
        **state_values,
    }
    return run, history_values(run_id, state)


def _wakeup_key(run: dict[str, Any]) -> str:
    if run["work_pool_id"] is not None:
        return pool_key(run["work_pool_id"])
    return deployment_key(run["deployment_id"])
