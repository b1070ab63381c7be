"""The store's postal address (for the shopper's page), and DISCARDED for dead POS webhook
deliveries and dead WMS movements: ops give up on one, and who, why and when are kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
QUEUES = ("webhook_deliveries", "wms_outbound")
WITH_DISCARDED = "status IN ('PENDING', 'DELIVERED', 'DEAD', 'DISCARDED')"
WITHOUT_DISCARDED = "status IN ('PENDING', 'DELIVERED', 'DEAD')"


def upgrade() -> None:
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("address", sa.String(200)))
    for table in QUEUES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("discarded_at", TS))
            batch.add_column(sa.Column("discarded_by", sa.String(200)))
            batch.add_column(sa.Column("discard_reason", sa.String(500)))
            batch.drop_constraint(op.f(f"ck_{table}_status_known"), type_="check")
            batch.create_check_constraint("status_known", WITH_DISCARDED)


def downgrade() -> None:
    for table in QUEUES:
        # Before DISCARDED there was only DEAD for what ops had not acted on.
        op.execute(f"UPDATE {table} SET status = 'DEAD' WHERE status = 'DISCARDED'")
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_status_known"), type_="check")
            batch.create_check_constraint("status_known", WITHOUT_DISCARDED)
            batch.drop_column("discard_reason")
            batch.drop_column("discarded_by")
            batch.drop_column("discarded_at")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("address")
