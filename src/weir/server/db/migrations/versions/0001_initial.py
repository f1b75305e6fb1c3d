"""Initial schema: projects, flows, flow runs and their states, task runs and their
states, logs; and the `default` project.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import SchemaItem

from weir.server.db.types import JSON

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen here, as a migration must be; equal to weir.server.db.migrate.DEFAULT_PROJECT_ID.
DEFAULT_PROJECT_ID = uuid.UUID("00000000-0000-7000-8000-000000000001")
TIMESTAMP = sa.DateTime(timezone=True)


def _id(table: str) -> list[SchemaItem]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _fk(table: str, column: str, referred: str, nullable: bool) -> list[SchemaItem]:
    return [
        sa.Column(column, sa.Uuid(), nullable=nullable),
        sa.ForeignKeyConstraint(
            [column],
            [f"{referred}.id"],
            name=op.f(f"fk_{table}__{column}__{referred}"),
            ondelete="CASCADE",
        ),
    ]


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}__{'_'.join(columns)}"), table, list(columns))


def _created_updated() -> list[SchemaItem]:
    return [
        sa.Column("created", TIMESTAMP, nullable=False),
        sa.Column("updated", TIMESTAMP, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "projects",
        *_id("projects"),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("name", name=op.f("uq_projects__name")),
    )
    op.create_table(
        "flows",
        *_id("flows"),
        *_fk("flows", "project_id", "projects", nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        *_created_updated(),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_flows__project_id_name")),
    )
    _create_flow_runs()
    op.create_table(
        "flow_run_states",
        *_id("flow_run_states"),
        *_fk("flow_run_states", "flow_run_id", "flow_runs", nullable=False),
        *_state_columns(),
        sa.Column("state_details", JSON, nullable=False),
        sa.Column("data", JSON, nullable=True),
    )
    _index("flow_run_states", "flow_run_id", "timestamp")
    _create_task_runs()
    op.create_table(
        "task_run_states",
        *_id("task_run_states"),
        *_fk("task_run_states", "task_run_id", "task_runs", nullable=False),
        *_state_columns(),
    )
    _index("task_run_states", "task_run_id", "timestamp")
    op.create_table(
        "logs",
        *_id("logs"),
        *_fk("logs", "project_id", "projects", nullable=False),
        *_fk("logs", "flow_run_id", "flow_runs", nullable=True),
        sa.Column("task_run_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("timestamp", TIMESTAMP, nullable=False),
    )
    _index("logs", "flow_run_id", "timestamp")
    _index("logs", "project_id", "timestamp")
    _insert_default_project()


def _state_columns() -> list[SchemaItem]:
    return [
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("timestamp", TIMESTAMP, nullable=False),
    ]


def _run_state_columns() -> list[SchemaItem]:
    return [
        sa.Column("state_type", sa.String(16), nullable=True),
        sa.Column("state_name", sa.String(64), nullable=True),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("state_timestamp", TIMESTAMP, nullable=True),
    ]


def _create_flow_runs() -> None:
    op.create_table(
        "flow_runs",
        *_id("flow_runs"),
        *_fk("flow_runs", "project_id", "projects", nullable=False),
        *_fk("flow_runs", "flow_id", "flows", nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        *_run_state_columns(),
        sa.Column("state_details", JSON, nullable=False),
        sa.Column("state_data", JSON, nullable=True),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("parent_flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("parent_task_run_id", sa.Uuid(), nullable=True),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay_seconds", sa.Float(), nullable=False),
        sa.Column("expected_start_time", TIMESTAMP, nullable=True),
        sa.Column("start_time", TIMESTAMP, nullable=True),
        sa.Column("end_time", TIMESTAMP, nullable=True),
        sa.Column("total_run_time", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_created_updated(),
    )
    for column in (
        "id",
        "state_type",
        "flow_id",
        "start_time",
        "expected_start_time",
        "end_time",
        "name",
    ):
        _index("flow_runs", "project_id", column)
    _index("flow_runs", "parent_flow_run_id")
    _index("flow_runs", "deployment_id")


def _create_task_runs() -> None:
    op.create_table(
        "task_runs",
        *_id("task_runs"),
        *_fk("task_runs", "project_id", "projects", nullable=False),
        *_fk("task_runs", "flow_run_id", "flow_runs", nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("task_key", sa.String(400), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        *_run_state_columns(),
        sa.Column("state_data", JSON, nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=True),
        sa.Column("cache_key", sa.String(200), nullable=True),
        sa.Column("start_time", TIMESTAMP, nullable=True),
        sa.Column("end_time", TIMESTAMP, nullable=True),
        sa.Column("total_run_time", sa.Float(), nullable=False),
        *_created_updated(),
    )
    _index("task_runs", "flow_run_id")
    for column in ("id", "state_type", "start_time"):
        _index("task_runs", "project_id", column)


def _insert_default_project() -> None:
    projects = sa.table(
        "projects",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("created", TIMESTAMP),
    )
    dialect = postgresql if op.get_context().dialect.name == "postgresql" else sqlite
    op.execute(
        dialect.insert(projects)
        .values(id=DEFAULT_PROJECT_ID, name="default", created=datetime.now(UTC))
        .on_conflict_do_nothing()
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    for table in (
        "logs",
        "task_run_states",
        "task_runs",
        "flow_run_states",
        "flow_runs",
        "flows",
        "projects",
    ):
        op.drop_table(table)
