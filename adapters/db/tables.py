"""The tables. Alembic migrations make them; this metadata is what the code queries with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeDecorator

# Named constraints keep Alembic's batch mode (SQLite ALTERs) working.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite keeps no zone: stored as naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Code = sa.String(64)

stores = sa.Table(
    "stores",
    metadata,
    sa.Column("id", Code, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Where the store's POS wants its events POSTed (for POS systems that keep no socket open),
    # and the secret their HMAC signature is made with.
    sa.Column("webhook_url", sa.String(500)),
    sa.Column("webhook_secret", sa.String(200)),
    # One line of postal address, shown to the shopper collecting there.
    sa.Column("address", sa.String(200)),
    sa.CheckConstraint("lat >= -90 AND lat <= 90", name="lat_range"),
    sa.CheckConstraint("lon >= -180 AND lon <= 180", name="lon_range"),
    sa.Index("ix_stores_lat_lon", "lat", "lon"),
)

skus = sa.Table(
    "skus",
    metadata,
    sa.Column("code", Code, primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("unit_price", sa.Numeric(12, 2)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

stock_levels = sa.Table(
    "stock_levels",
    metadata,
    sa.Column("store_id", Code, sa.ForeignKey("stores.id"), primary_key=True),
    sa.Column("sku", Code, sa.ForeignKey("skus.code"), primary_key=True),
    sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("safety_stock", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The WMS's sequence number of the last count or change applied: older ones change nothing.
    sa.Column("wms_sequence", sa.BigInteger),
    # LOW_STOCK goes out when available falls below the threshold, once until it recovers.
    sa.Column("low_stock_threshold", sa.Integer),
    sa.Column("low_stock_alerted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    sa.CheckConstraint("safety_stock >= 0", name="safety_stock_not_negative"),
    sa.Index("ix_stock_levels_sku_store_id", "sku", "store_id"),
)

# An idempotency key names the group of reservations its first request created: the same key
# from the same customer returns that group, and never locks twice.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("customer_id", Code, primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("group_id", sa.String(36), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    # The reserve call that made it: reservations split over stores share it.
    sa.Column("group_id", sa.String(36), nullable=False),
    sa.Column("code", sa.String(16), nullable=False),
    sa.Column("customer_id", Code, nullable=False),
    sa.Column("store_id", Code, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("channel", Code),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("hold_seconds", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ready_at", UTCDateTime),
    sa.Column("collected_at", UTCDateTime),
    sa.Column("cancelled_at", UTCDateTime),
    sa.Column("expired_at", UTCDateTime),
    sa.Column("cancel_reason", sa.String(500)),
    # The reservation whose units this one took over when that store ran short.
    sa.Column("resourced_from", sa.String(36)),
    # The expiry the EXPIRING_SOON warning went out for.
    sa.Column("warned_for", UTCDateTime),
    # When the shopper checked in at the store, and what they told it (a car bay...).
    sa.Column("arrived_at", UTCDateTime),
    sa.Column("arrival_note", sa.String(200)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(
        "status IN ('HELD', 'READY_FOR_PICKUP', 'COLLECTED', 'CANCELLED', 'EXPIRED')",
        name="status_known",
    ),
    sa.Index("ix_reservations_status_expires_at", "status", "expires_at"),
    sa.Index("ix_reservations_customer_id_status", "customer_id", "status"),
    sa.Index("ix_reservations_store_id_status", "store_id", "status"),
    sa.Index("ix_reservations_group_id", "group_id"),
    # A pickup code names one active reservation; codes of finished ones may come round again.
    sa.Index(
        "uq_reservations_active_code",
        "code",
        unique=True,
        sqlite_where=sa.text("status IN ('HELD', 'READY_FOR_PICKUP')"),
        postgresql_where=sa.text("status IN ('HELD', 'READY_FOR_PICKUP')"),
    ),
)

reservation_lines = sa.Table(
    "reservation_lines",
    metadata,
    sa.Column("reservation_id", sa.String(36), sa.ForeignKey("reservations.id"), primary_key=True),
    sa.Column("sku", Code, sa.ForeignKey("skus.code"), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
)

# Per-customer counters: the limits are checked with conditional updates on these rows, so two
# simultaneous reserves by one customer cannot both pass a limit.
customer_holds = sa.Table(
    "customer_holds",
    metadata,
    sa.Column("customer_id", Code, primary_key=True),
    sa.Column("active_reservations", sa.Integer, nullable=False),
    sa.CheckConstraint("active_reservations >= 0", name="active_not_negative"),
)

customer_sku_holds = sa.Table(
    "customer_sku_holds",
    metadata,
    sa.Column("customer_id", Code, primary_key=True),
    sa.Column("sku", Code, primary_key=True),
    sa.Column("units", sa.Integer, nullable=False),
    sa.CheckConstraint("units >= 0", name="units_not_negative"),
)

reservation_policy = sa.Table(
    "reservation_policy",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("default_hold_seconds", sa.Integer, nullable=False),
    sa.Column("allowed_hold_seconds", sa.JSON, nullable=False),
    sa.Column("max_active_reservations_per_customer", sa.Integer, nullable=False),
    sa.Column("max_units_per_sku_per_customer", sa.Integer, nullable=False),
    sa.Column("expiry_warning_seconds", sa.Integer, nullable=False),
    sa.Column("max_stores_per_group", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("pickup_window_seconds", sa.Integer),
    sa.Column("allow_pickup_without_ready", sa.Boolean, nullable=False, server_default=sa.false()),
    # How soon after reserving the goods should be ready (the time-to-ready figure's target).
    sa.Column("ready_target_seconds", sa.Integer, nullable=False, server_default="7200"),
    sa.CheckConstraint("id = 1", name="single_row"),
)

# Every reserve attempt (GraphQL and the intake) by minute, store, channel, where it came in and
# what it came to (domain.kpis.ReserveOutcome): the reservation success rate's counts. '' for
# no store (none was chosen) and no channel. Summed in memory and written each second.
reserve_attempts = sa.Table(
    "reserve_attempts",
    metadata,
    sa.Column("minute", UTCDateTime, primary_key=True),
    sa.Column("store_id", Code, primary_key=True),
    sa.Column("channel", Code, primary_key=True),
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("outcome", sa.String(20), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

# The money taken at the till for a collected reservation; one per reservation.
payments = sa.Table(
    "payments",
    metadata,
    sa.Column("reservation_id", sa.String(36), sa.ForeignKey("reservations.id"), primary_key=True),
    sa.Column("amount", sa.Numeric(12, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("reference", sa.String(128), nullable=False),
    sa.Column("received_by", sa.String(64), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("position", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("reservation_id", sa.String(36)),
    sa.Column("store_id", Code),
    sa.Column("customer_id", Code),
    sa.Column("sequence", sa.Integer),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("published_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_outbox_published_at_position", "published_at", "position"),
)

# The ledger: every change of on hand or reserved, with its reason. Append only.
stock_movements = sa.Table(
    "stock_movements",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("store_id", Code, nullable=False),
    sa.Column("sku", Code, nullable=False),
    sa.Column("on_hand_delta", sa.Integer, nullable=False),
    sa.Column("reserved_delta", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("reservation_id", sa.String(36)),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    # Set for the movements the WMS must hear of, until the WMS feed has queued them.
    sa.Column("wms_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_stock_movements_store_id_sku", "store_id", "sku"),
    sa.Index("ix_stock_movements_reservation_id", "reservation_id"),
    sa.Index(
        "ix_stock_movements_wms_pending",
        "id",
        sqlite_where=sa.text("wms_pending"),
        postgresql_where=sa.text("wms_pending"),
    ),
)

# Events on their way to a store's POS webhook: retried with backoff, dead after too many tries.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("store_id", Code, nullable=False),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    # Who gave up on a dead one, why and when (status DISCARDED).
    sa.Column("discarded_at", UTCDateTime),
    sa.Column("discarded_by", sa.String(200)),
    sa.Column("discard_reason", sa.String(500)),
    sa.CheckConstraint(
        "status IN ('PENDING', 'DELIVERED', 'DEAD', 'DISCARDED')", name="status_known"
    ),
    sa.UniqueConstraint("event_id", "store_id"),
    sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

# --- the WMS --------------------------------------------------------------------------------------

# Every batch of stock levels the WMS sent, stored before it is acknowledged; a batch id seen
# before is answered from here and applies nothing twice.
wms_inbox = sa.Table(
    "wms_inbox",
    metadata,
    sa.Column("batch_id", sa.String(128), primary_key=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("levels", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("applied", sa.Integer),
    sa.Column("stale", sa.Integer),
    sa.Column("error_code", sa.String(40)),
    sa.Column("error", sa.String(1000)),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.CheckConstraint("status IN ('RECEIVED', 'APPLIED', 'REJECTED')", name="status_known"),
    sa.Index("ix_wms_inbox_status_received_at", "status", "received_at"),
)

# The movements on their way to the WMS, numbered per (store, SKU) in the order they happened.
wms_outbound = sa.Table(
    "wms_outbound",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("ledger_id", BigId, unique=True),
    sa.Column("store_id", Code, nullable=False),
    sa.Column("sku", Code, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("reservation_id", sa.String(36)),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    # Who gave up on a dead one, why and when (status DISCARDED).
    sa.Column("discarded_at", UTCDateTime),
    sa.Column("discarded_by", sa.String(200)),
    sa.Column("discard_reason", sa.String(500)),
    sa.CheckConstraint(
        "status IN ('PENDING', 'DELIVERED', 'DEAD', 'DISCARDED')", name="status_known"
    ),
    sa.UniqueConstraint("store_id", "sku", "sequence"),
    sa.Index(
        "ix_wms_outbound_status_store_id_sku_sequence", "status", "store_id", "sku", "sequence"
    ),
)

# The last movement sequence given out per (store, SKU).
wms_streams = sa.Table(
    "wms_streams",
    metadata,
    sa.Column("store_id", Code, primary_key=True),
    sa.Column("sku", Code, primary_key=True),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
)

# Work that one process at a time must do (the WMS feed, reconciliation), held for a while.
worker_leases = sa.Table(
    "worker_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("stores", sa.Integer, nullable=False, server_default="0"),
    sa.Column("compared", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("repaired", sa.Integer, nullable=False, server_default="0"),
    sa.Column("open", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.String(500)),
    sa.Index("ix_reconciliation_runs_started_at", "started_at"),
)

# What reconciliation found different between ROPOS and the WMS, and what became of it.
stock_discrepancies = sa.Table(
    "stock_discrepancies",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("store_id", Code, nullable=False),
    sa.Column("sku", Code, nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("ropos_value", sa.Integer),
    sa.Column("wms_value", sa.Integer),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("resolution", sa.String(500)),
    sa.Column("detected_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", Code),
    sa.CheckConstraint("status IN ('REPAIRED', 'OPEN', 'RESOLVED')", name="status_known"),
    sa.Index("ix_stock_discrepancies_status_detected_at", "status", "detected_at"),
    sa.Index("ix_stock_discrepancies_store_id_detected_at", "store_id", "detected_at"),
)

# Was reserved stock really there? One sample per reserved line at pick time, and one per
# (store, SKU) holding reservations at each reconciliation, weighted by its active lines.
accuracy_samples = sa.Table(
    "accuracy_samples",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("store_id", Code, nullable=False),
    sa.Column("sku", Code, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("reservation_id", sa.String(36)),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("ok", sa.Integer, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("source IN ('PICK', 'RECONCILIATION')", name="source_known"),
    sa.CheckConstraint("ok >= 0 AND ok <= lines", name="ok_within_lines"),
    sa.UniqueConstraint("reservation_id", "sku", "source"),
    sa.Index("ix_accuracy_samples_occurred_at", "occurred_at"),
    sa.Index("ix_accuracy_samples_store_id_occurred_at", "store_id", "occurred_at"),
)


# --- the order intake -----------------------------------------------------------------------------

# One merchant account of one sales channel: its signing secrets (the previous one verifies
# until `previous_secret_until`, for rotation without downtime), where its orders are picked up,
# how its product ids map to SKUs.
channel_accounts = sa.Table(
    "channel_accounts",
    metadata,
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("account", Code, primary_key=True),
    sa.Column("secret", sa.String(500)),
    sa.Column("previous_secret", sa.String(500)),
    sa.Column("previous_secret_until", UTCDateTime),
    sa.Column("default_store_id", Code, sa.ForeignKey("stores.id")),
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
    # How far the gap sweep has asked the channel's API for changed orders.
    sa.Column("swept_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Every delivery the edge accepted, stored (raw body included) before it was answered, and what
# became of it. A body holding several orders is one message; each order goes on as a message
# of its own with `parent_id`. `dedupe_key` is the channel's event id, else the body's digest.
intake_messages = sa.Table(
    "intake_messages",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("account", Code, nullable=False),
    sa.Column("parent_id", sa.String(36)),
    sa.Column("dedupe_key", sa.String(300), nullable=False),
    sa.Column("topic", sa.String(100)),
    sa.Column("event_id", sa.String(200)),
    sa.Column("body", sa.LargeBinary),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("error_code", sa.String(40)),
    sa.Column("error", sa.String(1000)),
    sa.Column("decisions", sa.JSON, nullable=False),
    sa.Column("order_json", sa.JSON),
    sa.Column("external_id", sa.String(128)),
    sa.Column("order_value", sa.Numeric(20, 4)),
    sa.Column("reservation_group_id", sa.String(36)),
    # The order's own time (its update, else its placing) as the channel stated it: the lag.
    sa.Column("channel_at", UTCDateTime),
    # domain.intake.IntakeLane: 0 cancels, 1 new, 2 retries and replays (an account's turns).
    sa.Column("lane", sa.SmallInteger, nullable=False, server_default="1"),
    sa.CheckConstraint(
        "status IN ('RECEIVED', 'RETRYING', 'ACCEPTED', 'IGNORED', 'REJECTED', 'DEAD', "
        "'DISCARDED')",
        name="status_known",
    ),
    sa.UniqueConstraint("channel", "account", "dedupe_key"),
    sa.Index("ix_intake_messages_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_intake_messages_channel_account_received_at", "channel", "account", "received_at"),
    sa.Index("ix_intake_messages_parent_id", "parent_id"),
    # An account's backlog, counted at the edge: only the waiting rows are in it.
    sa.Index(
        "ix_intake_messages_waiting",
        "channel",
        "account",
        postgresql_where=sa.text("status IN ('RECEIVED', 'RETRYING')"),
        sqlite_where=sa.text("status IN ('RECEIVED', 'RETRYING')"),
    ),
)

# What the edge and the worker counted per account and minute without keeping a message for
# it (domain.intake.IntakeCount: signature failures, duplicates, backlog refusals, fetch-back
# errors), for the intake's health over a window.
intake_counts = sa.Table(
    "intake_counts",
    metadata,
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("account", Code, primary_key=True),
    sa.Column("what", sa.String(20), primary_key=True),
    sa.Column("minute", UTCDateTime, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

# What ROPOS did with each channel order: the reservation group it holds, and the version (the
# channel's update time) of the last event applied, so an older event changes nothing.
channel_orders = sa.Table(
    "channel_orders",
    metadata,
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("account", Code, primary_key=True),
    sa.Column("external_id", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("version_time", UTCDateTime),
    sa.Column("group_id", sa.String(36)),
    sa.Column("message_id", sa.String(36), nullable=False),
    sa.Column("order_json", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("state IN ('RESERVED', 'CANCELLED', 'NOT_PICKUP')", name="state_known"),
)


def insert_on_conflict(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT that takes ON CONFLICT clauses, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
