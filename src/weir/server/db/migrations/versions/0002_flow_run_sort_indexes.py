"""Indexes in the order of the descending flow-run sorts (START_TIME_DESC,
EXPECTED_START_TIME_DESC): a page is read in index order instead of sorting every
run of the project.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SORT_COLUMNS = ("start_time", "expected_start_time")


def upgrade() -> None:
    # NULLs come last in the API's sorts: PostgreSQL's DESC puts them first unless
    # told; SQLite's puts them last already (and rejects NULLS LAST in an index).
    nulls_last = " NULLS LAST" if op.get_context().dialect.name == "postgresql" else ""
    for column in _SORT_COLUMNS:
        op.create_index(
            f"ix_flow_runs__project_id_{column}_desc",
            "flow_runs",
            ["project_id", sa.text(f"{column} DESC{nulls_last}"), sa.text("id DESC")],
        )


def downgrade() -> None:
    for column in _SORT_COLUMNS:
        op.drop_index(f"ix_flow_runs__project_id_{column}_desc", table_name="flow_runs")
