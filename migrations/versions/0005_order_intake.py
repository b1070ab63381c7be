"""The order intake: channel accounts, intake messages, channel orders.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "channel_accounts",
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(500)),
        sa.Column("previous_secret", sa.String(500)),
        sa.Column("previous_secret_until", TS),
        sa.Column("default_store_id", sa.String(64)),
        sa.Column("locations", sa.JSON, nullable=False),
        sa.Column("products", sa.JSON, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("api_base_url", sa.String(500)),
        sa.Column("api_token", sa.String(2000)),
        sa.Column("assume_pickup", sa.Boolean, nullable=False),
        sa.Column("notification_url", sa.String(500)),
        sa.Column("max_backlog", sa.Integer, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("auth_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("oversized", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["default_store_id"],
            ["stores.id"],
            name=op.f("fk_channel_accounts_default_store_id_stores"),
        ),
        sa.PrimaryKeyConstraint("channel", "account", name=op.f("pk_channel_accounts")),
    )
    op.create_table(
        "intake_messages",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.String(36)),
        sa.Column("dedupe_key", sa.String(300), nullable=False),
        sa.Column("topic", sa.String(100)),
        sa.Column("event_id", sa.String(200)),
        sa.Column("body", sa.LargeBinary),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("error_code", sa.String(40)),
        sa.Column("error", sa.String(1000)),
        sa.Column("decisions", sa.JSON, nullable=False),
        sa.Column("order_json", sa.JSON),
        sa.Column("external_id", sa.String(128)),
        sa.Column("order_value", sa.Numeric(20, 4)),
        sa.Column("reservation_group_id", sa.String(36)),
        sa.CheckConstraint(
            "status IN ('RECEIVED', 'RETRYING', 'ACCEPTED', 'IGNORED', 'REJECTED', 'DEAD', "
            "'DISCARDED')",
            name=op.f("ck_intake_messages_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_messages")),
        sa.UniqueConstraint(
            "channel",
            "account",
            "dedupe_key",
            name=op.f("uq_intake_messages_channel_account_dedupe_key"),
        ),
    )
    op.create_index(
        "ix_intake_messages_status_next_attempt_at",
        "intake_messages",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_intake_messages_channel_account_received_at",
        "intake_messages",
        ["channel", "account", "received_at"],
    )
    op.create_index("ix_intake_messages_parent_id", "intake_messages", ["parent_id"])
    op.create_table(
        "channel_orders",
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version_time", TS),
        sa.Column("group_id", sa.String(36)),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("order_json", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "state IN ('RESERVED', 'CANCELLED', 'NOT_PICKUP')",
            name=op.f("ck_channel_orders_state_known"),
        ),
        sa.PrimaryKeyConstraint(
            "channel", "account", "external_id", name=op.f("pk_channel_orders")
        ),
    )


def downgrade() -> None:
    op.drop_table("channel_orders")
    op.drop_index("ix_intake_messages_parent_id", table_name="intake_messages")
    op.drop_index("ix_intake_messages_channel_account_received_at", table_name="intake_messages")
    op.drop_index("ix_intake_messages_status_next_attempt_at", table_name="intake_messages")
    op.drop_table("intake_messages")
    op.drop_table("channel_accounts")
