"""`set_flow_run_states`: many runs' proposals decided at once, as `set_flow_run_state`
would decide each, in order (a process running hundreds of flows reports their states
together).

The runs are read with one query and written with one statement per kind of change:
the rows are locked for the transaction (`FOR UPDATE` on PostgreSQL; SQLite's write
transaction holds the whole database), so no other writer can change them between the
read and the write, and the compare-and-swap on `version` always matches. A later
proposal for a run sees the outcome of an earlier one in the same batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.states import OrchestrationResult, OrchestrationStatus, StateSchema
from weir.server import metrics
from weir.server.db.models import FlowRun
from weir.server.db.repos import bulk, dialect_name
from weir.server.db.repos import flow_runs as flow_run_repo
from weir.server.orchestration.set_state import (
    current_state,
    decide_on,
    history_values,
    run_update,
)

Proposal = tuple[uuid.UUID, StateSchema, bool]  # run id, proposed state, force
_runs = cast(sa.Table, FlowRun.__table__)


async def set_flow_run_states(
    session: AsyncSession,
    proposals: Sequence[Proposal],
    *,
    project_id: uuid.UUID,
    now: datetime,
) -> list[OrchestrationResult | None]:
    """One answer per proposal, in order; None for a run this project does not have.
    The caller owns the transaction."""
    runs = await _read_locked(session, sorted({run_id for run_id, _, _ in proposals}), project_id)
    answers: list[OrchestrationResult | None] = []
    updates: dict[sa.Update, list[dict[str, Any]]] = {}  # by statement (set of columns)
    history: list[dict[str, Any]] = []
    changed: list[tuple[Any, StateSchema]] = []
    for run_id, proposed, force in proposals:
        run = runs.get(run_id)
        if run is None:
            answers.append(None)
            continue
        decision, state, values = decide_on(run, proposed, now, force)
        if state is None or values is None:
            answers.append(
                OrchestrationResult(
                    status=decision.status,
                    state=current_state(vars(run)),
                    details=decision.details(),
                )
            )
            continue
        statement, parameters = run_update(run, values)
        updates.setdefault(statement, []).append(parameters)
        history.append(history_values(run.id, state))
        changed.append((SimpleNamespace(**vars(run)), state))  # the row before the change
        vars(run).update(values)  # what the next proposal for this run sees
        answers.append(
            OrchestrationResult(
                status=OrchestrationStatus.ACCEPT, state=state, details=decision.details()
            )
        )
    for statement, rows in updates.items():
        await bulk.executemany(session, statement, rows)
    await flow_run_repo.insert_states(session, history)
    for before, state in changed:
        await metrics.flow_run_state_changed(session, before, state)
    return answers


async def _read_locked(
    session: AsyncSession, ids: list[uuid.UUID], project_id: uuid.UUID
) -> dict[uuid.UUID, SimpleNamespace]:
    statement = (
        sa.select(_runs)
        .where(_runs.c.id.in_(ids), _runs.c.project_id == project_id)
        .order_by(_runs.c.id)  # rows locked in one order: two batches never deadlock
    )
    if dialect_name(session) == "postgresql":
        statement = statement.with_for_update()
    rows = await session.execute(statement)
    return {row.id: SimpleNamespace(**row._mapping) for row in rows}
