"""Pickup handoff: the pickup window and ready-step rules, the expiry warning mark, payments.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reservation_policy") as batch:
        batch.add_column(sa.Column("pickup_window_seconds", sa.Integer()))
        batch.add_column(
            sa.Column(
                "allow_pickup_without_ready",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("warned_for", sa.DateTime(timezone=True)))
    op.create_table(
        "payments",
        sa.Column("reservation_id", sa.String(36), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("received_by", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_payments_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_payments_reservation_id_reservations"),
        ),
        sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_payments")),
    )


def downgrade() -> None:
    op.drop_table("payments")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("warned_for")
    with op.batch_alter_table("reservation_policy") as batch:
        batch.drop_column("allow_pickup_without_ready")
        batch.drop_column("pickup_window_seconds")
