"""The shopper's arrival: when they checked in at the store, and the note they left for it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("arrived_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("arrival_note", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("arrival_note")
        batch.drop_column("arrived_at")
