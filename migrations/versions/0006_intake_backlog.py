"""The intake's backlog per account: a partial index of the waiting messages, which the edge
counts before it stores a delivery; and each message's lane (cancels, new, again), the order of
an account's turns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("status IN ('RECEIVED', 'RETRYING')")


def upgrade() -> None:
    op.add_column(
        "intake_messages",
        sa.Column("lane", sa.SmallInteger, nullable=False, server_default="1"),
    )
    op.create_index(
        "ix_intake_messages_waiting",
        "intake_messages",
        ["channel", "account"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_intake_messages_waiting", table_name="intake_messages")
    with op.batch_alter_table("intake_messages") as batch:
        batch.drop_column("lane")
