"""An index for retention of task runs run outside any flow (their end time).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_task_runs__end_time"), "task_runs", ["end_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_task_runs__end_time"), table_name="task_runs")
