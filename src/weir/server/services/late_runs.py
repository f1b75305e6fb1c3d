"""Late runs: SCHEDULED runs that nothing started in time, and the catch-up policy of
their deployment (DESIGN.md §3, docs/schedules.md).

Every `late_runs_interval_seconds` a pass looks at the SCHEDULED runs expected more
than `late_runs_after_seconds` ago and decides, run by run:

- a run of a deployment with `max_lateness_seconds`, later than that and never
  started, is CANCELLED `Missed` (manual runs too: the limit is about the run's
  time, not who made it);
- a run its deployment's schedules made is CANCELLED `Skipped` when the catch-up
  policy is `skip`, or when it is `latest` and a later run of the same schedule is
  late too (or already ran);
- any other run named `Scheduled` becomes SCHEDULED `Late` and still runs.

Runs created by hand (`weir deployment run`) and retries (`AwaitingRetry`) are not
skipped: the catch-up policy is about the schedules' backlog. Every change goes
through `set_flow_run_state`. Runs already `Late` are looked at again only while a
policy could still change them (`latest`, `skip`, a lateness limit). Runs are read in
batches (by the flow_runs(state_type, expected_start_time) index), each batch in
one short write transaction; on PostgreSQL the batch is locked `FOR UPDATE SKIP
LOCKED`, so a claim never hands out a run this pass is changing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.deployments import Catchup, describe_seconds
from weir.core.schemas.states import OrchestrationStatus, StateDetails, StateSchema
from weir.core.states import StateType
from weir.server.db.models import Deployment, Flow, FlowRun
from weir.server.db.repos import dialect_name
from weir.server.db.repos.deployment_schedules import SCHEDULER_KEY_PREFIX, run_key_prefix
from weir.server.orchestration import set_flow_run_state
from weir.server.services.base import Service

BATCH_SIZE = 200
# batches in one pass, so one pass stays short; the next pass goes on
MAX_BATCHES = 10
# `scheduled <schedule id> `: the part of a scheduled run's key naming its schedule
_PREFIX_LENGTH = len(run_key_prefix(uuid.UUID(int=0)))

_runs = cast(sa.Table, FlowRun.__table__)
_deployments = cast(sa.Table, Deployment.__table__)
_flows = cast(sa.Table, Flow.__table__)


class LateRuns(Service):
    name = "late_runs"

    @property
    def interval_seconds(self) -> float:
        return self.settings.server.late_runs_interval_seconds

    async def run_once(self, now: datetime) -> int:
        """One pass; the number of runs marked Late, Skipped or Missed. Runs newly late
        come first, then the Late ones a policy may still change (so a backlog of
        those never holds up new ones)."""
        cutoff = now - timedelta(seconds=self.settings.server.late_runs_after_seconds)
        changed = 0
        for named in ("Scheduled", "Late"):
            after: tuple[datetime, uuid.UUID] | None = None
            for _ in range(MAX_BATCHES):
                async with self.database.write() as session:
                    rows = await _read_batch(session, named, cutoff, after)
                    latest = await _latest_times(session, rows, cutoff)
                    for row in rows:
                        proposed = verdict(row, now, latest)
                        if proposed is None:
                            continue
                        result = await set_flow_run_state(
                            session, row["id"], proposed, project_id=row["project_id"], now=now
                        )
                        if result.status is OrchestrationStatus.ACCEPT:
                            changed += 1
                if len(rows) < BATCH_SIZE:
                    break
                after = (rows[-1]["expected_start_time"], rows[-1]["id"])
        return changed


def verdict(
    run: dict[str, Any], now: datetime, latest: dict[tuple[uuid.UUID, str], datetime]
) -> StateSchema | None:
    """The state a late run moves to, or None to leave it as it is. `latest` holds the
    time of the latest late run of each (deployment, schedule key prefix)."""
    expected: datetime = run["expected_start_time"]
    late = (now - expected).total_seconds()
    never_started = run["run_count"] == 0
    limit = run["max_lateness_seconds"]
    name = f"{run['flow_name']}/{run['deployment_name']}"
    if never_started and limit is not None and late > limit:
        return _cancelled(
            "Missed",
            f"Not started {describe_seconds(late)} after its scheduled time "
            f"{expected.isoformat(timespec='seconds')}, past the deployment's max lateness "
            f"of {describe_seconds(limit)}. Raise it with `weir deployment set-catchup "
            f"{name} --max-lateness DURATION`, or remove it with --no-max-lateness.",
        )
    key = run["idempotency_key"] or ""
    if never_started and key.startswith(SCHEDULER_KEY_PREFIX):
        if run["catchup"] == Catchup.SKIP.value:
            return _cancelled(
                "Skipped",
                f"Skipped by the deployment's catch-up policy 'skip': it was "
                f"{describe_seconds(late)} late and nothing had started it; the next "
                f"on-time run runs. Change it with `weir deployment set-catchup {name} all`.",
            )
        newest = latest.get((run["deployment_id"], key[:_PREFIX_LENGTH]))
        if run["catchup"] == Catchup.LATEST.value and newest is not None and newest > expected:
            return _cancelled(
                "Skipped",
                f"Skipped by the deployment's catch-up policy 'latest': a later run of its "
                f"schedule (at {newest.isoformat(timespec='seconds')}) runs instead. "
                f"Change it with `weir deployment set-catchup {name} all`.",
            )
    if run["state_name"] == "Scheduled":
        return StateSchema(
            type=StateType.SCHEDULED,
            name="Late",
            message=f"Expected to start at {expected.isoformat(timespec='seconds')}; "
            "no worker has started it yet.",
            state_details=StateDetails(scheduled_time=expected),
        )
    return None


def _cancelled(name: str, message: str) -> StateSchema:
    return StateSchema(type=StateType.CANCELLED, name=name, message=message)


async def _read_batch(
    session: AsyncSession,
    named: str,
    cutoff: datetime,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[dict[str, Any]]:
    """Late runs named `named` (`Scheduled`; or `Late`, of deployments with a policy
    that may still change them), after `after` in (expected start time, id) order."""
    r, d = _runs.c, _deployments.c
    clauses = [r.state_name == named]
    if named == "Late":
        clauses += [
            r.run_count == 0,
            sa.or_(
                d.catchup.in_((Catchup.LATEST.value, Catchup.SKIP.value)),
                d.max_lateness_seconds.is_not(None),
            ),
        ]
    statement = (
        sa.select(
            r.id,
            r.project_id,
            r.deployment_id,
            r.expected_start_time,
            r.state_name,
            r.idempotency_key,
            r.run_count,
            d.name.label("deployment_name"),
            d.catchup,
            d.max_lateness_seconds,
            _flows.c.name.label("flow_name"),
        )
        .select_from(
            _runs.outerjoin(_deployments, d.id == r.deployment_id).outerjoin(
                _flows, _flows.c.id == d.flow_id
            )
        )
        .where(
            r.state_type == StateType.SCHEDULED.value,
            r.expected_start_time <= cutoff,
            *clauses,
        )
        .order_by(r.expected_start_time, r.id)
        .limit(BATCH_SIZE)
    )
    if after is not None:
        time, run_id = after
        statement = statement.where(
            sa.or_(
                r.expected_start_time > time,
                sa.and_(r.expected_start_time == time, r.id > run_id),
            )
        )
    if dialect_name(session) == "postgresql":
        statement = statement.with_for_update(skip_locked=True, of=_runs)
    return [dict(row._mapping) for row in await session.execute(statement)]


async def _latest_times(
    session: AsyncSession, rows: list[dict[str, Any]], cutoff: datetime
) -> dict[tuple[uuid.UUID, str], datetime]:
    """For the schedules of the `latest` deployments in `rows`: the time of their latest
    run that is late too (in any state: one that ran counts)."""
    earliest: dict[uuid.UUID, datetime] = {}
    for row in rows:
        key = row["idempotency_key"] or ""
        if row["catchup"] == Catchup.LATEST.value and key.startswith(SCHEDULER_KEY_PREFIX):
            deployment_id = row["deployment_id"]
            earliest.setdefault(deployment_id, row["expected_start_time"])
    if not earliest:
        return {}
    r = _runs.c
    # literal bounds, so PostgreSQL sees the same expression in SELECT and GROUP BY
    prefix = sa.func.substr(
        r.idempotency_key, sa.literal_column("1"), sa.literal_column(str(_PREFIX_LENGTH))
    )
    statement = (
        sa.select(r.deployment_id, prefix.label("prefix"), sa.func.max(r.expected_start_time))
        .where(
            r.deployment_id.in_(list(earliest)),
            r.idempotency_key.startswith(SCHEDULER_KEY_PREFIX),
            r.expected_start_time <= cutoff,
            r.expected_start_time >= min(earliest.values()),
        )
        .group_by(r.deployment_id, prefix)
    )
    return {(row[0], row[1]): row[2] for row in await session.execute(statement)}
