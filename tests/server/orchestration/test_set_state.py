"""`set_flow_run_state` on a real database (SQLite and PostgreSQL): what it writes to the
run and its history, rejections, and two writers racing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from weir.core.ids import new_id
from weir.core.schemas.states import OrchestrationStatus, StateDetails, StateSchema
from weir.core.states import StateType
from weir.server.db.engine import Database
from weir.server.db.migrate import ensure_schema
from weir.server.db.models import Flow, FlowRun, FlowRunState, Project
from weir.server.orchestration import set_flow_run_state
from weir.server.orchestration.set_state import FlowRunNotFound

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def with_run(
    url: str, scenario: Callable[[Database, uuid.UUID, uuid.UUID], Awaitable[None]]
) -> None:
    """Run `scenario(database, project_id, flow_run_id)` on a new run with no state."""

    async def main() -> None:
        database = Database(url)
        try:
            await ensure_schema(database)
            project_id, run_id = new_id(), new_id()
            async with database.write() as session:
                await session.execute(
                    sa.insert(Project).values(id=project_id, name="etl", created=T0)
                )
                flow_id = new_id()
                await session.execute(
                    sa.insert(Flow).values(
                        id=flow_id, project_id=project_id, name="nightly", created=T0, updated=T0
                    )
                )
                await session.execute(
                    sa.insert(FlowRun).values(
                        id=run_id,
                        project_id=project_id,
                        flow_id=flow_id,
                        name="brave-otter",
                        created=T0,
                        updated=T0,
                    )
                )
            await scenario(database, project_id, run_id)
        finally:
            await database.dispose()

    asyncio.run(main())


async def propose(
    database: Database,
    project_id: uuid.UUID,
    run_id: uuid.UUID,
    type: StateType,
    at: datetime,
    **details: Any,
) -> tuple[OrchestrationStatus, StateSchema | None]:
    state = StateSchema(type=type, timestamp=at, state_details=StateDetails(**details))
    async with database.write() as session:
        result = await set_flow_run_state(session, run_id, state, project_id=project_id, now=at)
    return result.status, result.state


async def load(database: Database, run_id: uuid.UUID) -> FlowRun:
    async with database.read() as session:
        return (
            await session.execute(sa.select(FlowRun.__table__).where(FlowRun.id == run_id))
        ).one()


async def history(database: Database, run_id: uuid.UUID) -> list[tuple[str, str, datetime]]:
    async with database.read() as session:
        rows = await session.execute(
            sa.select(FlowRunState.type, FlowRunState.name, FlowRunState.timestamp)
            .where(FlowRunState.flow_run_id == run_id)
            .order_by(FlowRunState.timestamp)
        )
        return [(t, n, ts) for t, n, ts in rows]


def test_pending_to_running_counts_the_run_and_keeps_its_retry_policy(database_url: str) -> None:
    async def scenario(database: Database, project_id: uuid.UUID, run_id: uuid.UUID) -> None:
        assert (await propose(database, project_id, run_id, StateType.PENDING, T0))[0] == "ACCEPT"
        before = await load(database, run_id)
        assert (before.run_count, before.start_time, before.retries) == (0, None, 0)

        at = T0 + timedelta(seconds=5)
        status, state = await propose(
            database, project_id, run_id, StateType.RUNNING, at, retries=2, retry_delay_seconds=7.5
        )
        assert status is OrchestrationStatus.ACCEPT
        assert state is not None and state.type is StateType.RUNNING
        run = await load(database, run_id)
        assert (run.state_type, run.state_name, run.state_timestamp) == ("RUNNING", "Running", at)
        assert (run.run_count, run.start_time) == (1, at)
        assert (run.retries, run.retry_delay_seconds) == (2, 7.5)
        assert run.version == before.version + 1

    with_run(database_url, scenario)


def test_running_to_completed_ends_the_run_and_records_history(database_url: str) -> None:
    async def scenario(database: Database, project_id: uuid.UUID, run_id: uuid.UUID) -> None:
        steps = [
            (StateType.PENDING, T0),
            (StateType.RUNNING, T0 + timedelta(seconds=1)),
            (StateType.COMPLETED, T0 + timedelta(seconds=91, milliseconds=500)),
        ]
        for type, at in steps:
            assert (await propose(database, project_id, run_id, type, at))[0] == "ACCEPT"
        run = await load(database, run_id)
        assert run.state_type == "COMPLETED"
        assert run.end_time == steps[-1][1]
        assert run.total_run_time == pytest.approx(90.5)
        assert await history(database, run_id) == [
            ("PENDING", "Pending", steps[0][1]),
            ("RUNNING", "Running", steps[1][1]),
            ("COMPLETED", "Completed", steps[2][1]),
        ]

    with_run(database_url, scenario)


def test_a_failure_with_retries_left_is_stored_as_awaiting_retry(database_url: str) -> None:
    async def scenario(database: Database, project_id: uuid.UUID, run_id: uuid.UUID) -> None:
        await propose(database, project_id, run_id, StateType.PENDING, T0)
        await propose(database, project_id, run_id, StateType.RUNNING, T0, retries=1)
        at = T0 + timedelta(seconds=3)
        status, state = await propose(database, project_id, run_id, StateType.FAILED, at)
        assert status is OrchestrationStatus.ACCEPT
        assert state is not None and (state.type, state.name) == ("SCHEDULED", "AwaitingRetry")
        run = await load(database, run_id)
        assert (run.state_type, run.state_name, run.expected_start_time) == (
            "SCHEDULED",
            "AwaitingRetry",
            at,
        )
        assert run.end_time is None

    with_run(database_url, scenario)


def test_a_rejection_leaves_the_run_as_it_was(database_url: str) -> None:
    async def scenario(database: Database, project_id: uuid.UUID, run_id: uuid.UUID) -> None:
        await propose(database, project_id, run_id, StateType.PENDING, T0)
        await propose(database, project_id, run_id, StateType.RUNNING, T0 + timedelta(seconds=1))
        before = await load(database, run_id)
        status, state = await propose(
            database, project_id, run_id, StateType.PENDING, T0 + timedelta(seconds=2)
        )
        assert status is OrchestrationStatus.REJECT
        assert state is not None
        assert (state.type, state.timestamp) == (StateType.RUNNING, T0 + timedelta(seconds=1))
        after = await load(database, run_id)
        assert (after.state_type, after.version, after.updated) == (
            "RUNNING",
            before.version,
            before.updated,
        )
        assert [t for t, _, _ in await history(database, run_id)] == ["PENDING", "RUNNING"]

    with_run(database_url, scenario)


def test_of_two_writers_racing_to_final_states_exactly_one_wins(database_url: str) -> None:
    async def scenario(database: Database, project_id: uuid.UUID, run_id: uuid.UUID) -> None:
        await propose(database, project_id, run_id, StateType.PENDING, T0)
        await propose(database, project_id, run_id, StateType.RUNNING, T0)
        both_read = asyncio.Barrier(2)
        # SQLite serialises write transactions, so there the second writer only starts
        # after the first commits; on PostgreSQL both read the RUNNING run first.
        race = database.dialect != "sqlite"

        async def writer(type: StateType) -> OrchestrationStatus:
            at = T0 + timedelta(seconds=10)
            async with database.write() as session:
                if race:
                    await session.execute(sa.select(FlowRun.__table__).where(FlowRun.id == run_id))
                    await both_read.wait()
                result = await set_flow_run_state(
                    session, run_id, StateSchema(type=type), project_id=project_id, now=at
                )
            return result.status

        statuses = await asyncio.gather(writer(StateType.COMPLETED), writer(StateType.FAILED))
        assert sorted(statuses) == [OrchestrationStatus.ACCEPT, OrchestrationStatus.REJECT]
        winner = "COMPLETED" if statuses[0] is OrchestrationStatus.ACCEPT else "FAILED"
        run = await load(database, run_id)
        assert run.state_type == winner
        assert [t for t, _, _ in await history(database, run_id)][-1] == winner
        assert len(await history(database, run_id)) == 3

    with_run(database_url, scenario)


def test_an_unknown_run_or_one_of_another_project_is_not_found(database_url: str) -> None:
    async def scenario(database: Database, project_id: uuid.UUID, run_id: uuid.UUID) -> None:
        other_project = new_id()
        async with database.write() as session:
            await session.execute(
                sa.insert(Project).values(id=other_project, name="other", created=T0)
            )
        for flow_run_id, project in [(new_id(), project_id), (run_id, other_project)]:
            with pytest.raises(FlowRunNotFound):
                await propose(database, project, flow_run_id, StateType.PENDING, T0)
        assert (await load(database, run_id)).state_type is None

    with_run(database_url, scenario)
