"""Deployments and their schedules, work pools, work queues, workers, concurrency
limits and their slots; flow runs gain their pool and queue, job variables and a
lease.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from weir.server.db.types import JSON, Timestamp

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = Timestamp()


def _fk(
    table: str, column: str, referred: str, ondelete: str = "CASCADE"
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}__{column}__{referred}"),
        ondelete=ondelete,
    )


def _keys(table: str, *unique: str) -> list[sa.Constraint]:
    keys: list[sa.Constraint] = [sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))]
    if unique:
        keys.append(sa.UniqueConstraint(*unique, name=op.f(f"uq_{table}__{'_'.join(unique)}")))
    return keys


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created", TIMESTAMP, nullable=False),
        sa.Column("updated", TIMESTAMP, nullable=False),
    ]


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}__{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "concurrency_limits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_stamps(),
        _fk("concurrency_limits", "project_id", "projects"),
        *_keys("concurrency_limits", "project_id", "name"),
    )
    op.create_table(
        "concurrency_slots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("limit_id", sa.Uuid(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("occupy", sa.Integer(), nullable=False),
        sa.Column("expires", TIMESTAMP, nullable=False),
        _fk("concurrency_slots", "limit_id", "concurrency_limits"),
        *_keys("concurrency_slots"),
    )
    _index("concurrency_slots", "holder")
    _index("concurrency_slots", "limit_id", "expires")
    op.create_table(
        "work_pools",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("base_job_template", JSON, nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        *_stamps(),
        _fk("work_pools", "project_id", "projects"),
        *_keys("work_pools", "project_id", "name"),
    )
    op.create_table(
        "work_queues",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("last_polled", TIMESTAMP, nullable=True),
        *_stamps(),
        _fk("work_queues", "project_id", "projects"),
        _fk("work_queues", "work_pool_id", "work_pools"),
        *_keys("work_queues", "work_pool_id", "name"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("last_heartbeat_time", TIMESTAMP, nullable=False),
        sa.Column("heartbeat_interval_seconds", sa.Float(), nullable=False),
        *_stamps(),
        _fk("workers", "project_id", "projects"),
        _fk("workers", "work_pool_id", "work_pools"),
        *_keys("workers", "work_pool_id", "name"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("entrypoint", sa.String(1000), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("parameter_openapi_schema", JSON, nullable=True),
        sa.Column("enforce_parameter_schema", sa.Boolean(), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=True),
        sa.Column("work_queue_id", sa.Uuid(), nullable=True),
        sa.Column("job_variables", JSON, nullable=False),
        sa.Column("pull_steps", JSON, nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("collision_strategy", sa.String(16), nullable=False),
        *_stamps(),
        _fk("deployments", "flow_id", "flows"),
        _fk("deployments", "project_id", "projects"),
        _fk("deployments", "work_pool_id", "work_pools", "SET NULL"),
        _fk("deployments", "work_queue_id", "work_queues", "SET NULL"),
        *_keys("deployments", "flow_id", "name"),
    )
    _index("deployments", "project_id", "name")
    _index("deployments", "work_pool_id")
    op.create_table(
        "deployment_schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("schedule", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("slug", sa.String(200), nullable=True),
        *_stamps(),
        _fk("deployment_schedules", "deployment_id", "deployments"),
        *_keys("deployment_schedules"),
    )
    _index("deployment_schedules", "deployment_id")
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("work_pool_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("work_queue_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("job_variables", JSON, nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_expires", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
    _index("flow_runs", "lease_expires")
    op.create_index(
        op.f("ix_flow_runs__deployment_id_idempotency_key"),
        "flow_runs",
        ["deployment_id", "idempotency_key"],
        unique=True,
    )
    _index("flow_runs", "work_pool_id", "state_type", "expected_start_time")


def downgrade() -> None:
    op.drop_index(op.f("ix_flow_runs__deployment_id_idempotency_key"), "flow_runs")
    op.drop_index(op.f("ix_flow_runs__work_pool_id_state_type_expected_start_time"), "flow_runs")
    op.drop_index(op.f("ix_flow_runs__lease_expires"), "flow_runs")
    with op.batch_alter_table("flow_runs") as batch:
        for column in (
            "lease_expires",
            "lease_owner",
            "job_variables",
            "work_queue_id",
            "work_pool_id",
        ):
            batch.drop_column(column)
    # children before parents; dropping a table drops its indexes
    for table in (
        "deployment_schedules",
        "deployments",
        "workers",
        "work_queues",
        "work_pools",
        "concurrency_slots",
        "concurrency_limits",
    ):
        op.drop_table(table)
