"""Work pools for deployment tests, written straight to the database (the pool API has
its own tests): a pool of type `process` with the default template and a `default`
queue, plus any other queues named."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from weir.core.clock import utcnow
from weir.core.ids import new_id
from weir.core.job_templates import default_base_job_template
from weir.server.db.engine import Database
from weir.server.db.models import Project, WorkPool, WorkQueue


async def create_pool(
    database: Database,
    name: str = "local",
    *,
    project: str = "default",
    queues: tuple[str, ...] = (),
    template: dict[str, Any] | None = None,
) -> dict[str, uuid.UUID]:
    """Create the pool; answer the ids of the pool (`pool`) and of each queue by name."""
    now = utcnow()
    async with database.write() as session:
        project_id = (
            await session.execute(sa.select(Project.id).where(Project.name == project))
        ).scalar_one()
        pool_id = new_id()
        await session.execute(
            sa.insert(WorkPool).values(
                id=pool_id,
                project_id=project_id,
                name=name,
                type="process",
                base_job_template=template or default_base_job_template("process"),
                is_paused=False,
                created=now,
                updated=now,
            )
        )
        ids = {"pool": pool_id}
        for priority, queue in enumerate(("default", *queues), start=1):
            ids[queue] = new_id()
            await session.execute(
                sa.insert(WorkQueue).values(
                    id=ids[queue],
                    project_id=project_id,
                    work_pool_id=pool_id,
                    name=queue,
                    priority=priority,
                    is_paused=False,
                    created=now,
                    updated=now,
                )
            )
    return ids
