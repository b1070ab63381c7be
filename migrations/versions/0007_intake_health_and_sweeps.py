"""The intake's health and its gap sweep: per-account counts by minute of what the edge and the
worker refused or repeated without keeping a message (signature failures, duplicates, backlog
refusals, fetch-back errors); each message's channel time (the lag behind the channel); and how
far each account's sweep for missed orders has gone.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "intake_counts",
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("what", sa.String(20), primary_key=True),
        sa.Column("minute", TS, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.add_column("intake_messages", sa.Column("channel_at", TS))
    op.add_column("channel_accounts", sa.Column("swept_until", TS))


def downgrade() -> None:
    with op.batch_alter_table("channel_accounts") as batch:
        batch.drop_column("swept_until")
    with op.batch_alter_table("intake_messages") as batch:
        batch.drop_column("channel_at")
    op.drop_table("intake_counts")
