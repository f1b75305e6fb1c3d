"""Retention, one pass at a time: old finished runs go with their task runs, states and
logs, in bounded batches; unfinished and recent runs stay; old logs go."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.server.api.pool_helpers import place_run
from weir.core.ids import new_id
from weir.server.db.engine import Database
from weir.server.db.models import FlowRun, FlowRunState, Log, TaskRun, TaskRunState
from weir.server.services.retention import Retention
from weir.settings import Settings

pytestmark = pytest.mark.anyio
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=100)


def retention(database: Database, days: float = 90, **options: Any) -> Retention:
    return Retention(database, Settings(server={"retention_days": days}), **options)


async def finished_run(
    client: httpx.AsyncClient, database: Database, *, ended: datetime, final: str = "COMPLETED"
) -> str:
    """A run that ran, with a task run and a log line, and ended at `ended`."""
    run = (
        await client.post(
            "/api/flow_runs/", json={"flow_name": "etl", "state": {"type": "RUNNING"}}
        )
    ).json()
    task = {
        "id": str(new_id()),
        "flow_run_id": run["id"],
        "name": "extract",
        "task_key": "extract-1",
        "states": [{"type": "RUNNING", "timestamp": ended.isoformat()}],
    }
    assert (await client.post("/api/task_runs/bulk", json=[task])).status_code == 200
    line = {
        "name": "weir",
        "level": 20,
        "message": "hi",
        "timestamp": NOW.isoformat(),
        "flow_run_id": run["id"],
    }
    assert (await client.post("/api/logs/", json=[line])).status_code == 201
    done = await client.post(
        f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": final}}
    )
    assert done.status_code == 201, done.text
    await place_run(database, run["id"], end_time=ended)
    return str(run["id"])


async def count(database: Database, model: Any, **where: Any) -> int:
    table = model.__table__
    statement = sa.select(sa.func.count()).select_from(table)
    for column, value in where.items():
        statement = statement.where(table.c[column] == value)
    async with database.read() as session:
        return int((await session.execute(statement)).scalar_one())


async def test_old_finished_runs_go_with_their_task_runs_states_and_logs(
    client: httpx.AsyncClient, database: Database
) -> None:
    old = [
        await finished_run(client, database, ended=OLD, final=final)
        for final in ("COMPLETED", "FAILED")
    ]
    recent = await finished_run(client, database, ended=NOW - timedelta(days=89))
    running = (
        await client.post(
            "/api/flow_runs/", json={"flow_name": "etl", "state": {"type": "RUNNING"}}
        )
    ).json()["id"]
    await place_run(database, running, start_time=OLD - timedelta(days=1))

    assert await retention(database).run_once(NOW) == 2
    for run_id in old:
        key = uuid.UUID(run_id)
        assert await count(database, FlowRun, id=key) == 0
        assert await count(database, FlowRunState, flow_run_id=key) == 0
        assert await count(database, TaskRun, flow_run_id=key) == 0
        assert await count(database, Log, flow_run_id=key) == 0
    assert await count(database, TaskRunState) == 1  # the recent run's task run's
    for kept in (recent, running):
        assert await count(database, FlowRun, id=uuid.UUID(kept)) == 1
    assert await count(database, TaskRun, flow_run_id=uuid.UUID(recent)) == 1
    assert await count(database, Log, flow_run_id=uuid.UUID(recent)) == 1
    assert await retention(database).run_once(NOW) == 0


async def test_old_finished_task_runs_outside_any_flow_go_with_their_states(
    client: httpx.AsyncClient, database: Database
) -> None:
    def task(final: str | None, ended: datetime) -> dict[str, Any]:
        states = [{"type": "RUNNING", "timestamp": (ended - timedelta(minutes=1)).isoformat()}]
        if final is not None:
            states.append({"type": final, "timestamp": ended.isoformat()})
        body = {"id": str(new_id()), "name": "t", "task_key": "t-1", "states": states}
        return body | ({"end_time": ended.isoformat()} if final else {})  # as the SDK sends

    old = [task("COMPLETED", OLD), task("FAILED", OLD)]
    kept = [task("COMPLETED", NOW - timedelta(days=89)), task(None, OLD)]  # recent; unfinished
    response = await client.post("/api/task_runs/bulk", json=old + kept)
    assert response.status_code == 200, response.text
    in_a_flow = await finished_run(client, database, ended=NOW)  # its task run ended long ago
    async with database.write() as session:
        await session.execute(
            sa.update(TaskRun).where(TaskRun.flow_run_id.is_not(None)).values(end_time=OLD)
        )

    assert await retention(database).run_once(NOW) == 2
    remaining = {str(i) for i in await ids(database, TaskRun)}
    assert remaining == {kept[0]["id"], kept[1]["id"]} | {
        str(i) for i in await ids(database, TaskRun, flow_run_id=uuid.UUID(in_a_flow))
    }
    assert await count(database, TaskRunState) == 2 + 1 + 1  # kept ones' and the flow's


async def ids(database: Database, model: Any, **where: Any) -> list[uuid.UUID]:
    table = model.__table__
    statement = sa.select(table.c.id)
    for column, value in where.items():
        statement = statement.where(table.c[column] == value)
    async with database.read() as session:
        return list((await session.scalars(statement)).all())


async def test_old_logs_go_whatever_their_run(
    client: httpx.AsyncClient, database: Database
) -> None:
    run = (
        await client.post(
            "/api/flow_runs/", json={"flow_name": "etl", "state": {"type": "RUNNING"}}
        )
    ).json()
    lines = [
        {"name": "weir", "level": 20, "message": m, "timestamp": t.isoformat(), "flow_run_id": f}
        for m, t, f in [
            ("old", OLD, run["id"]),
            ("old, no run", OLD, None),
            ("new", NOW, run["id"]),
        ]
    ]
    assert (await client.post("/api/logs/", json=lines)).status_code == 201
    assert await retention(database).run_once(NOW) == 2
    async with database.read() as session:
        messages = (await session.scalars(sa.select(Log.message))).all()
    assert messages == ["new"]
    assert await count(database, FlowRun) == 1


async def test_a_pass_deletes_a_bounded_number_of_batches(
    client: httpx.AsyncClient, database: Database
) -> None:
    for _ in range(5):
        await finished_run(client, database, ended=OLD)
    # 5 runs and their 5 logs (the logs are recent: they go with their runs)
    service = retention(database, batch_size=2, max_batches=2)
    assert await service.run_once(NOW) == 4
    assert await count(database, FlowRun) == 1
    assert await service.run_once(NOW) == 1
    assert await count(database, FlowRun) == 0
    assert await count(database, Log) == 0


async def test_zero_days_keeps_everything(client: httpx.AsyncClient, database: Database) -> None:
    await finished_run(client, database, ended=OLD)
    assert await retention(database, days=0).run_once(NOW) == 0
    assert await count(database, FlowRun) == 1
