"""Initial schema: stores, SKUs, stock, reservations and their rules, outbox, stock ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
CODE = sa.String(64)
ACTIVE = "status IN ('HELD', 'READY_FOR_PICKUP')"


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("id", CODE, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("lat >= -90 AND lat <= 90", name=op.f("ck_stores_lat_range")),
        sa.CheckConstraint("lon >= -180 AND lon <= 180", name=op.f("ck_stores_lon_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
    )
    op.create_index("ix_stores_lat_lon", "stores", ["lat", "lon"])

    op.create_table(
        "skus",
        sa.Column("code", CODE, nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("unit_price", sa.Numeric(12, 2)),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_skus")),
    )

    op.create_table(
        "stock_levels",
        sa.Column("store_id", CODE, nullable=False),
        sa.Column("sku", CODE, nullable=False),
        sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("safety_stock", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_levels_on_hand_not_negative")),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_stock_levels_reserved_not_negative")),
        sa.CheckConstraint(
            "safety_stock >= 0", name=op.f("ck_stock_levels_safety_stock_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_stock_levels_store_id_stores")
        ),
        sa.ForeignKeyConstraint(["sku"], ["skus.code"], name=op.f("fk_stock_levels_sku_skus")),
        sa.PrimaryKeyConstraint("store_id", "sku", name=op.f("pk_stock_levels")),
    )
    op.create_index("ix_stock_levels_sku_store_id", "stock_levels", ["sku", "store_id"])

    op.create_table(
        "idempotency_keys",
        sa.Column("customer_id", CODE, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "key", name=op.f("pk_idempotency_keys")),
    )

    op.create_table(
        "reservations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("customer_id", CODE, nullable=False),
        sa.Column("store_id", CODE, nullable=False),
        sa.Column("channel", CODE),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("hold_seconds", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("ready_at", TS),
        sa.Column("collected_at", TS),
        sa.Column("cancelled_at", TS),
        sa.Column("expired_at", TS),
        sa.Column("cancel_reason", sa.String(500)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('HELD', 'READY_FOR_PICKUP', 'COLLECTED', 'CANCELLED', 'EXPIRED')",
            name=op.f("ck_reservations_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_reservations_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    op.create_index(
        "ix_reservations_status_expires_at", "reservations", ["status", "expires_at"]
    )
    op.create_index(
        "ix_reservations_customer_id_status", "reservations", ["customer_id", "status"]
    )
    op.create_index("ix_reservations_store_id_status", "reservations", ["store_id", "status"])
    op.create_index("ix_reservations_group_id", "reservations", ["group_id"])
    op.create_index(
        "uq_reservations_active_code",
        "reservations",
        ["code"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )

    op.create_table(
        "reservation_lines",
        sa.Column("reservation_id", sa.String(36), nullable=False),
        sa.Column("sku", CODE, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservation_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_reservation_lines_reservation_id_reservations"),
        ),
        sa.ForeignKeyConstraint(
            ["sku"], ["skus.code"], name=op.f("fk_reservation_lines_sku_skus")
        ),
        sa.PrimaryKeyConstraint("reservation_id", "sku", name=op.f("pk_reservation_lines")),
    )

    op.create_table(
        "customer_holds",
        sa.Column("customer_id", CODE, nullable=False),
        sa.Column("active_reservations", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "active_reservations >= 0", name=op.f("ck_customer_holds_active_not_negative")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_holds")),
    )
    op.create_table(
        "customer_sku_holds",
        sa.Column("customer_id", CODE, nullable=False),
        sa.Column("sku", CODE, nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.CheckConstraint("units >= 0", name=op.f("ck_customer_sku_holds_units_not_negative")),
        sa.PrimaryKeyConstraint("customer_id", "sku", name=op.f("pk_customer_sku_holds")),
    )

    policy = op.create_table(
        "reservation_policy",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("default_hold_seconds", sa.Integer, nullable=False),
        sa.Column("allowed_hold_seconds", sa.JSON, nullable=False),
        sa.Column("max_active_reservations_per_customer", sa.Integer, nullable=False),
        sa.Column("max_units_per_sku_per_customer", sa.Integer, nullable=False),
        sa.Column("expiry_warning_seconds", sa.Integer, nullable=False),
        sa.Column("max_stores_per_group", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_reservation_policy_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_policy")),
    )
    op.bulk_insert(
        policy,
        [
            {
                "id": 1,
                "default_hold_seconds": 7200,
                "allowed_hold_seconds": [7200, 86400],
                "max_active_reservations_per_customer": 5,
                "max_units_per_sku_per_customer": 10,
                "expiry_warning_seconds": 900,
                "max_stores_per_group": 3,
                "updated_at": datetime(2026, 11, 26, tzinfo=UTC),
            }
        ],
    )

    op.create_table(
        "outbox",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("reservation_id", sa.String(36)),
        sa.Column("store_id", CODE),
        sa.Column("customer_id", CODE),
        sa.Column("sequence", sa.Integer),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("published_at", TS),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index("ix_outbox_published_at_position", "outbox", ["published_at", "position"])

    op.create_table(
        "stock_movements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("store_id", CODE, nullable=False),
        sa.Column("sku", CODE, nullable=False),
        sa.Column("on_hand_delta", sa.Integer, nullable=False),
        sa.Column("reserved_delta", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("reservation_id", sa.String(36)),
        sa.Column("occurred_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    op.create_index("ix_stock_movements_store_id_sku", "stock_movements", ["store_id", "sku"])
    op.create_index("ix_stock_movements_reservation_id", "stock_movements", ["reservation_id"])


def downgrade() -> None:
    op.drop_table("stock_movements")
    op.drop_table("outbox")
    op.drop_table("reservation_policy")
    op.drop_table("customer_sku_holds")
    op.drop_table("customer_holds")
    op.drop_table("reservation_lines")
    op.drop_index("uq_reservations_active_code", table_name="reservations")
    op.drop_table("reservations")
    op.drop_table("idempotency_keys")
    op.drop_table("stock_levels")
    op.drop_table("skus")
    op.drop_table("stores")
