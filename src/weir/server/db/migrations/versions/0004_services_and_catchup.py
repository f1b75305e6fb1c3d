"""Loop services' state (who holds each, how its passes went); deployments gain a
catch-up policy and a lateness limit; workers remember since when they are offline;
indexes for retention and for late runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from weir.server.db.types import Timestamp

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = Timestamp()
_INDEXES = (
    ("flow_runs", ("end_time",)),
    ("flow_runs", ("state_type", "expected_start_time")),
    ("logs", ("timestamp",)),
)


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("lease_expires", TIMESTAMP, nullable=True),
        sa.Column("last_heartbeat", TIMESTAMP, nullable=True),
        sa.Column("last_pass_seconds", sa.Float(), nullable=True),
        sa.Column("last_result", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_time", TIMESTAMP, nullable=True),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_services")),
    )
    # existing deployments keep running every late run, as before
    op.add_column(
        "deployments",
        sa.Column("catchup", sa.String(16), nullable=False, server_default="all"),
    )
    op.add_column("deployments", sa.Column("max_lateness_seconds", sa.Float(), nullable=True))
    op.add_column("workers", sa.Column("offline_since", TIMESTAMP, nullable=True))
    for table, columns in _INDEXES:
        op.create_index(op.f(f"ix_{table}__{'_'.join(columns)}"), table, list(columns))


def downgrade() -> None:
    for table, columns in _INDEXES:
        op.drop_index(op.f(f"ix_{table}__{'_'.join(columns)}"), table_name=table)
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("offline_since")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("max_lateness_seconds")
        batch.drop_column("catchup")
    op.drop_table("services")
