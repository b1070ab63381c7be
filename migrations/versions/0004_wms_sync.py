"""Two-way WMS sync: the inbox of stock batches, the outbound movement feed, leases,
reconciliation, accuracy samples, low-stock thresholds and re-sourced reservations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Room on each page for the row's next version: updates of a stock row (every reserve,
        # every WMS count) stay on its page and leave the indexes alone (HOT updates).
        op.execute("ALTER TABLE stock_levels SET (fillfactor = 70)")
    with op.batch_alter_table("stock_levels") as batch:
        batch.add_column(sa.Column("wms_sequence", sa.BigInteger()))
        batch.add_column(sa.Column("low_stock_threshold", sa.Integer()))
        batch.add_column(
            sa.Column("low_stock_alerted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("resourced_from", sa.String(36)))
    with op.batch_alter_table("stock_movements") as batch:
        batch.add_column(
            sa.Column("wms_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_stock_movements_wms_pending",
        "stock_movements",
        ["id"],
        sqlite_where=sa.text("wms_pending"),
        postgresql_where=sa.text("wms_pending"),
    )
    op.create_table(
        "wms_inbox",
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("levels", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("applied", sa.Integer),
        sa.Column("stale", sa.Integer),
        sa.Column("error_code", sa.String(40)),
        sa.Column("error", sa.String(1000)),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.CheckConstraint(
            "status IN ('RECEIVED', 'APPLIED', 'REJECTED')", name=op.f("ck_wms_inbox_status_known")
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_wms_inbox")),
    )
    op.create_index("ix_wms_inbox_status_received_at", "wms_inbox", ["status", "received_at"])
    op.create_table(
        "wms_outbound",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("ledger_id", BigId),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("reservation_id", sa.String(36)),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.String(500)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS),
        sa.CheckConstraint(
            "status IN ('PENDING', 'DELIVERED', 'DEAD')", name=op.f("ck_wms_outbound_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wms_outbound")),
        sa.UniqueConstraint("ledger_id", name=op.f("uq_wms_outbound_ledger_id")),
        sa.UniqueConstraint(
            "store_id", "sku", "sequence", name=op.f("uq_wms_outbound_store_id_sku_sequence")
        ),
    )
    op.create_index(
        "ix_wms_outbound_status_store_id_sku_sequence",
        "wms_outbound",
        ["status", "store_id", "sku", "sequence"],
    )
    op.create_table(
        "wms_streams",
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("store_id", "sku", name=op.f("pk_wms_streams")),
    )
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_leases")),
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("stores", sa.Integer, nullable=False, server_default="0"),
        sa.Column("compared", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("repaired", sa.Integer, nullable=False, server_default="0"),
        sa.Column("open", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.String(500)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
    )
    op.create_index("ix_reconciliation_runs_started_at", "reconciliation_runs", ["started_at"])
    op.create_table(
        "stock_discrepancies",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("ropos_value", sa.Integer),
        sa.Column("wms_value", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(500)),
        sa.Column("detected_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.String(64)),
        sa.CheckConstraint(
            "status IN ('REPAIRED', 'OPEN', 'RESOLVED')",
            name=op.f("ck_stock_discrepancies_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_discrepancies")),
    )
    op.create_index(
        "ix_stock_discrepancies_status_detected_at",
        "stock_discrepancies",
        ["status", "detected_at"],
    )
    op.create_index(
        "ix_stock_discrepancies_store_id_detected_at",
        "stock_discrepancies",
        ["store_id", "detected_at"],
    )
    op.create_table(
        "accuracy_samples",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reservation_id", sa.String(36)),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.CheckConstraint(
            "source IN ('PICK', 'RECONCILIATION')", name=op.f("ck_accuracy_samples_source_known")
        ),
        sa.CheckConstraint(
            "ok >= 0 AND ok <= lines", name=op.f("ck_accuracy_samples_ok_within_lines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accuracy_samples")),
        sa.UniqueConstraint(
            "reservation_id",
            "sku",
            "source",
            name=op.f("uq_accuracy_samples_reservation_id_sku_source"),
        ),
    )
    op.create_index("ix_accuracy_samples_occurred_at", "accuracy_samples", ["occurred_at"])
    op.create_index(
        "ix_accuracy_samples_store_id_occurred_at",
        "accuracy_samples",
        ["store_id", "occurred_at"],
    )


def downgrade() -> None:
    for table in (
        "accuracy_samples",
        "stock_discrepancies",
        "reconciliation_runs",
        "worker_leases",
        "wms_streams",
        "wms_outbound",
        "wms_inbox",
    ):
        op.drop_table(table)
    op.drop_index("ix_stock_movements_wms_pending", table_name="stock_movements")
    with op.batch_alter_table("stock_movements") as batch:
        batch.drop_column("wms_pending")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("resourced_from")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE stock_levels RESET (fillfactor)")
    with op.batch_alter_table("stock_levels") as batch:
        batch.drop_column("low_stock_alerted")
        batch.drop_column("low_stock_threshold")
        batch.drop_column("wms_sequence")
