"""The KPIs: every reserve attempt counted by minute, store, channel, source and outcome (the
reservation success rate), and the policy's time-to-ready target.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reserve_attempts",
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("outcome", sa.String(20), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("reservation_policy") as batch:
        batch.add_column(
            sa.Column("ready_target_seconds", sa.Integer, nullable=False, server_default="7200")
        )


def downgrade() -> None:
    with op.batch_alter_table("reservation_policy") as batch:
        batch.drop_column("ready_target_seconds")
    op.drop_table("reserve_attempts")
