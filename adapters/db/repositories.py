"""Repositories: every SQL statement of the write side. Each works on the connection of one unit of
work; none commits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.caches import KnownCodes, PolicyCache, StoreDirectory
from adapters.db.fast import Statements
from adapters.db.queue import claim_due
from adapters.db.tables import (
    customer_holds,
    customer_sku_holds,
    idempotency_keys,
    insert_on_conflict,
    outbox,
    payments,
    reservation_lines,
    reservation_policy,
    reservations,
    skus,
    stock_levels,
    stock_movements,
    stores,
    webhook_deliveries,
)
from domain.events import Event, PendingEvent, ReservationEvent
from domain.geo import GeoPoint, bounding_box, distance_km
from domain.pickup import Payment
from domain.policy import ReservationPolicy
from domain.reservations import Line, Reservation, Status
from domain.sourcing import Candidate
from domain.stock import Movement, StockLevel, WatchedLevel
from domain.webhooks import Delivery, DeliveryStatus, WebhookTarget
from domain.wms import KIND_OF_REASON
from services import event_codec

# Statements are built once: building them per call costs more CPU than running them.
_INSERT_RESERVATIONS = reservations.insert()


class InvariantViolated(RuntimeError):
    """The database disagrees with what the code knows must hold; never expected."""


# --- stock ----------------------------------------------------------------------------------------

_available = stock_levels.c.on_hand - stock_levels.c.reserved - stock_levels.c.safety_stock
_key = (stock_levels.c.store_id == sa.bindparam("b_store")) & (
    stock_levels.c.sku == sa.bindparam("b_sku")
)
_returning = (stock_levels.c.on_hand, stock_levels.c.reserved, stock_levels.c.safety_stock)

# The lock: a conditional update, never read-then-write. No row back means not enough available.
_LOCK = (
    sa.update(stock_levels)
    .where(_key & (_available >= sa.bindparam("b_qty")))
    .values(
        reserved=stock_levels.c.reserved + sa.bindparam("b_qty"), updated_at=sa.bindparam("b_now")
    )
    .returning(*_returning)
)
# Stock rows of some stores and SKUs (the cross product; callers keep what they asked for).
STOCK_LEVELS = sa.select(
    stock_levels.c.store_id,
    stock_levels.c.sku,
    stock_levels.c.on_hand,
    stock_levels.c.reserved,
    stock_levels.c.safety_stock,
).where(
    stock_levels.c.store_id.in_(sa.bindparam("b_stores", expanding=True)),
    stock_levels.c.sku.in_(sa.bindparam("b_skus", expanding=True)),
)
# The same, with the low-stock threshold and flag (what the relay reads).
_WATCHED_LEVELS = sa.select(
    stock_levels.c.store_id,
    stock_levels.c.sku,
    stock_levels.c.on_hand,
    stock_levels.c.reserved,
    stock_levels.c.safety_stock,
    stock_levels.c.low_stock_threshold,
    stock_levels.c.low_stock_alerted,
).where(
    stock_levels.c.store_id.in_(sa.bindparam("b_stores", expanding=True)),
    stock_levels.c.sku.in_(sa.bindparam("b_skus", expanding=True)),
)
# Collected: the units leave the store, and the lock on them ends.
_CONSUME = (
    sa.update(stock_levels)
    .where(
        _key
        & (stock_levels.c.reserved >= sa.bindparam("b_qty"))
        & (stock_levels.c.on_hand >= sa.bindparam("b_qty"))
    )
    .values(
        on_hand=stock_levels.c.on_hand - sa.bindparam("b_qty"),
        reserved=stock_levels.c.reserved - sa.bindparam("b_qty"),
        updated_at=sa.bindparam("b_now"),
    )
    .returning(*_returning)
)
_RELEASE = (
    sa.update(stock_levels)
    .where(_key & (stock_levels.c.reserved >= sa.bindparam("b_qty")))
    .values(
        reserved=stock_levels.c.reserved - sa.bindparam("b_qty"), updated_at=sa.bindparam("b_now")
    )
    .returning(*_returning)
)


class StockRepository:
    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements

    async def lock(
        self, store_id: str, sku: str, quantity: int, now: datetime
    ) -> StockLevel | None:
        """Add `quantity` to reserved if that many units are available; None if not."""
        row = await self.statements.first(
            _LOCK, {"b_qty": quantity, "b_now": now, "b_store": store_id, "b_sku": sku}
        )
        if row is None:
            return None
        return StockLevel(store_id, sku, row["on_hand"], row["reserved"], row["safety_stock"])

    async def release(self, store_id: str, sku: str, quantity: int, now: datetime) -> StockLevel:
        row = (
            await self.conn.execute(
                _RELEASE, {"b_store": store_id, "b_sku": sku, "b_qty": quantity, "b_now": now}
            )
        ).first()
        if row is None:
            raise InvariantViolated(f"cannot release {quantity} of {sku} at {store_id}")
        return StockLevel(store_id, sku, row.on_hand, row.reserved, row.safety_stock)

    async def consume(self, store_id: str, sku: str, quantity: int, now: datetime) -> StockLevel:
        row = (
            await self.conn.execute(
                _CONSUME, {"b_store": store_id, "b_sku": sku, "b_qty": quantity, "b_now": now}
            )
        ).first()
        if row is None:
            raise InvariantViolated(f"cannot hand over {quantity} of {sku} at {store_id}")
        return StockLevel(store_id, sku, row.on_hand, row.reserved, row.safety_stock)

    async def candidates(
        self, near: GeoPoint, radius_km: float, wanted: Iterable[str]
    ) -> list[Candidate]:
        """Stores within the radius, nearest first, with what they have of the wanted SKUs."""
        box = bounding_box(near, radius_km)
        wanted = list(wanted)
        query = (
            sa.select(
                stores.c.id,
                stores.c.lat,
                stores.c.lon,
                stock_levels.c.sku,
                _available.label("available"),
            )
            .select_from(
                stores.join(
                    stock_levels,
                    (stock_levels.c.store_id == stores.c.id) & stock_levels.c.sku.in_(wanted),
                )
            )
            .where(
                stores.c.lat.between(box.min_lat, box.max_lat),
                stores.c.lon.between(box.min_lon, box.max_lon),
                _available > 0,
            )
        )
        found: dict[str, tuple[float, dict[str, int]]] = {}
        for row in await self.conn.execute(query):
            entry = found.get(row.id)
            if entry is None:
                distance = distance_km(near, row.lat, row.lon)
                if distance > radius_km:
                    continue
                entry = found[row.id] = (distance, {})
            entry[1][row.sku] = row.available
        result = [Candidate(store_id, d, available) for store_id, (d, available) in found.items()]
        result.sort(key=lambda c: (c.distance_km, c.store_id))
        return result

    async def available_at(self, store_id: str, wanted: Iterable[str]) -> dict[str, int]:
        rows = await self.conn.execute(
            sa.select(stock_levels.c.sku, _available.label("available")).where(
                stock_levels.c.store_id == store_id, stock_levels.c.sku.in_(list(wanted))
            )
        )
        return {row.sku: row.available for row in rows}

    async def levels(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StockLevel]:
        """The rows for these (store, SKU) keys, read without locking them."""
        if not keys:
            return {}
        wanted = set(keys)
        rows = await self.conn.execute(
            STOCK_LEVELS,
            {"b_stores": sorted({s for s, _ in wanted}), "b_skus": sorted({k for _, k in wanted})},
        )
        return {
            (store_id, sku): StockLevel(store_id, sku, on_hand, reserved, safety)
            for store_id, sku, on_hand, reserved, safety in rows
            if (store_id, sku) in wanted
        }

    async def watched_levels(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], WatchedLevel]:
        """The rows for these keys with their low-stock thresholds, read without locking."""
        if not keys:
            return {}
        wanted = set(keys)
        rows = await self.conn.execute(
            _WATCHED_LEVELS,
            {"b_stores": sorted({s for s, _ in wanted}), "b_skus": sorted({k for _, k in wanted})},
        )
        return {
            (row[0], row[1]): WatchedLevel(
                StockLevel(*row[:5], low_stock_threshold=row[5]), alerted=row[6]
            )
            for row in rows
            if (row[0], row[1]) in wanted
        }


class LedgerRepository:
    def __init__(self, statements: Statements) -> None:
        self.statements = statements

    async def record(self, movements: Sequence[Movement], now: datetime) -> None:
        await self.statements.insert_rows(
            stock_movements,
            [
                {
                    "store_id": m.store_id,
                    "sku": m.sku,
                    "on_hand_delta": m.on_hand_delta,
                    "reserved_delta": m.reserved_delta,
                    "reason": m.reason,
                    "reservation_id": m.reservation_id,
                    "occurred_at": now,
                    "wms_pending": m.reason in KIND_OF_REASON,
                }
                for m in movements
            ],
        )


# --- customers' holds -----------------------------------------------------------------------------


def _holds_statements(dialect: str) -> tuple[Any, Any]:
    """The two counter upserts, built once per dialect: insert the customer's first hold, or add
    to it only if the sum stays within the limit (no row back means over the limit)."""
    found = _HOLDS_STATEMENTS.get(dialect)
    if found is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        new_active = insert(customer_holds).values(
            customer_id=sa.bindparam("b_customer"), active_reservations=sa.bindparam("b_count")
        )
        active = new_active.on_conflict_do_update(
            index_elements=[customer_holds.c.customer_id],
            set_={
                "active_reservations": customer_holds.c.active_reservations
                + new_active.excluded.active_reservations
            },
            where=customer_holds.c.active_reservations + new_active.excluded.active_reservations
            <= sa.bindparam("b_limit"),
        ).returning(customer_holds.c.customer_id)
        new_units = insert(customer_sku_holds).values(
            customer_id=sa.bindparam("b_customer"),
            sku=sa.bindparam("b_sku"),
            units=sa.bindparam("b_units"),
        )
        units = new_units.on_conflict_do_update(
            index_elements=[customer_sku_holds.c.customer_id, customer_sku_holds.c.sku],
            set_={"units": customer_sku_holds.c.units + new_units.excluded.units},
            where=customer_sku_holds.c.units + new_units.excluded.units <= sa.bindparam("b_limit"),
        ).returning(customer_sku_holds.c.sku)
        found = _HOLDS_STATEMENTS[dialect] = (active, units)
    return found


_HOLDS_STATEMENTS: dict[str, tuple[Any, Any]] = {}


def _units_of_many() -> Any:
    """PostgreSQL: the per-SKU upsert for several SKUs in one statement, each list one array
    parameter (compiled once, whatever the number of SKUs); rows go in array order."""
    rows = (
        sa.func.unnest(
            sa.bindparam("b_skus", type_=postgresql.ARRAY(sa.String)),
            sa.bindparam("b_units_each", type_=postgresql.ARRAY(sa.Integer)),
        )
        .table_valued("sku", "units")
        .render_derived(name="u")
    )
    new_units = postgresql.insert(customer_sku_holds).from_select(
        ["customer_id", "sku", "units"],
        sa.select(sa.bindparam("b_customer", type_=sa.String), rows.c.sku, rows.c.units),
    )
    return new_units.on_conflict_do_update(
        index_elements=[customer_sku_holds.c.customer_id, customer_sku_holds.c.sku],
        set_={"units": customer_sku_holds.c.units + new_units.excluded.units},
        where=customer_sku_holds.c.units + new_units.excluded.units <= sa.bindparam("b_limit"),
    ).returning(customer_sku_holds.c.sku)


_UNITS_OF_MANY = _units_of_many()


class HoldsRepository:
    """Per-customer counters of active reservations and of units per SKU."""

    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements
        self._active, self._units = _holds_statements(conn.dialect.name)

    async def add_reservations(self, customer_id: str, count: int, limit: int) -> bool:
        """Count `count` more active reservations for the customer unless that passes `limit`."""
        if count > limit:
            return False
        params = {"b_customer": customer_id, "b_count": count, "b_limit": limit}
        return await self.statements.first(self._active, params) is not None

    async def add_units(self, customer_id: str, units: Mapping[str, int], limit: int) -> list[str]:
        """Count more units per SKU for the customer; returns the SKUs that would go over `limit`
        (then nothing must be kept: the caller rolls back)."""
        over = sorted(sku for sku, quantity in units.items() if quantity > limit)
        if over:
            return over
        ordered = sorted(units.items())  # rows in SKU order, so locks come in that order
        if len(ordered) > 1 and self.conn.dialect.name == "postgresql":
            params = {
                "b_customer": customer_id,
                "b_skus": [sku for sku, _ in ordered],
                "b_units_each": [quantity for _, quantity in ordered],
                "b_limit": limit,
            }
            counted = {row["sku"] for row in await self.statements.all(_UNITS_OF_MANY, params)}
            return [sku for sku, _ in ordered if sku not in counted]
        # One statement per SKU (a multi-row INSERT .. ON CONFLICT would compile anew each call).
        for sku, quantity in ordered:
            params = {
                "b_customer": customer_id,
                "b_sku": sku,
                "b_units": quantity,
                "b_limit": limit,
            }
            if await self.statements.first(self._units, params) is None:
                over.append(sku)
        return over

    async def remove(
        self, customer_id: str, reservations_count: int, units: Mapping[str, int]
    ) -> None:
        result = await self.conn.execute(
            _RELEASE_ACTIVE, {"b_customer": customer_id, "b_count": reservations_count}
        )
        if result.rowcount != 1:
            raise InvariantViolated(
                f"customer {customer_id} holds fewer reservations than released"
            )
        for sku, quantity in sorted(units.items()):
            result = await self.conn.execute(
                _RELEASE_UNITS, {"b_customer": customer_id, "b_sku": sku, "b_units": quantity}
            )
            if result.rowcount != 1:
                raise InvariantViolated(
                    f"customer {customer_id} holds fewer units of {sku} than released"
                )
        await self.conn.execute(_FORGET_ZERO_UNITS, {"b_customer": customer_id})


_RELEASE_ACTIVE = (
    sa.update(customer_holds)
    .where(
        customer_holds.c.customer_id == sa.bindparam("b_customer"),
        customer_holds.c.active_reservations >= sa.bindparam("b_count"),
    )
    .values(active_reservations=customer_holds.c.active_reservations - sa.bindparam("b_count"))
)
_RELEASE_UNITS = (
    sa.update(customer_sku_holds)
    .where(
        customer_sku_holds.c.customer_id == sa.bindparam("b_customer"),
        customer_sku_holds.c.sku == sa.bindparam("b_sku"),
        customer_sku_holds.c.units >= sa.bindparam("b_units"),
    )
    .values(units=customer_sku_holds.c.units - sa.bindparam("b_units"))
)
_FORGET_ZERO_UNITS = sa.delete(customer_sku_holds).where(
    customer_sku_holds.c.customer_id == sa.bindparam("b_customer"), customer_sku_holds.c.units == 0
)


# --- reservations ---------------------------------------------------------------------------------


class ReservationRepository:
    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements

    async def add_idempotency_key(
        self, customer_id: str, key: str, request_hash: str, group_id: str, now: datetime
    ) -> bool:
        """Take the customer's key for this request; False when another request took it first."""
        taken = await self.statements.first(
            _TAKE_IDEMPOTENCY_KEY[self.conn.dialect.name],
            {
                "customer_id": customer_id,
                "key": key,
                "request_hash": request_hash,
                "group_id": group_id,
                "created_at": now,
            },
        )
        return taken is not None

    async def find_idempotency_key(self, customer_id: str, key: str) -> tuple[str, str] | None:
        """(group id, request hash) of the request that first used the key, if any."""
        row = await self.statements.first(
            _IDEMPOTENCY_KEY, {"b_customer": customer_id, "b_key": key}
        )
        return (row["group_id"], row["request_hash"]) if row is not None else None

    async def add(self, new: Sequence[Reservation], now: datetime) -> None:
        await self.statements.run_many(
            _INSERT_RESERVATIONS,
            [
                {
                    "id": r.id,
                    "group_id": r.group_id,
                    "code": r.code,
                    "customer_id": r.customer_id,
                    "store_id": r.store_id,
                    "channel": r.channel,
                    "status": str(r.status),
                    "hold_seconds": r.hold_seconds,
                    "created_at": r.created_at,
                    "expires_at": r.expires_at,
                    "version": r.version,
                    "updated_at": now,
                    "resourced_from": r.resourced_from,
                }
                for r in new
            ],
        )
        await self.statements.insert_rows(
            reservation_lines,
            [
                {"reservation_id": r.id, "sku": line.sku, "quantity": line.quantity}
                for r in new
                for line in r.lines
            ],
        )

    async def get(self, reservation_id: str, *, for_update: bool = False) -> Reservation | None:
        query = _RESERVATION_FOR_UPDATE if for_update else _RESERVATION
        found = await self._load(query, {"b_id": reservation_id})
        return found[0] if found else None

    async def in_group(self, group_id: str) -> list[Reservation]:
        return await self._load(
            sa.select(reservations)
            .where(reservations.c.group_id == group_id)
            .order_by(reservations.c.store_id, reservations.c.id)
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Reservation]:
        """Active reservations past their expiry, locked; rows another worker holds are skipped."""
        return await self._load(
            sa.select(reservations)
            .where(
                reservations.c.status.in_([Status.HELD.value, Status.READY_FOR_PICKUP.value]),
                reservations.c.expires_at <= now,
            )
            .order_by(reservations.c.expires_at, reservations.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def claim_expiring(
        self, now: datetime, lead_seconds: int, limit: int
    ) -> list[Reservation]:
        """Active reservations within `lead_seconds` of their expiry and not yet warned about
        this expiry, locked; rows another worker holds are skipped."""
        return await self._load(
            sa.select(reservations)
            .where(
                reservations.c.status.in_([Status.HELD.value, Status.READY_FOR_PICKUP.value]),
                reservations.c.expires_at > now,
                reservations.c.expires_at <= now + timedelta(seconds=lead_seconds),
                sa.or_(
                    reservations.c.warned_for.is_(None),
                    reservations.c.warned_for != reservations.c.expires_at,
                ),
            )
            .order_by(reservations.c.expires_at, reservations.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def active_lines_at(self, store_id: str, sku: str) -> list[tuple[str, int]]:
        """(reservation id, units) of the active reservations holding the SKU at the store,
        newest first: the order in which a shortage takes them back."""
        rows = await self.conn.execute(
            sa.select(reservations.c.id, reservation_lines.c.quantity)
            .select_from(
                reservations.join(
                    reservation_lines, reservation_lines.c.reservation_id == reservations.c.id
                )
            )
            .where(
                reservations.c.store_id == store_id,
                reservations.c.status.in_([Status.HELD.value, Status.READY_FOR_PICKUP.value]),
                reservation_lines.c.sku == sku,
            )
            .order_by(reservations.c.created_at.desc(), reservations.c.id.desc())
        )
        return [(row.id, row.quantity) for row in rows]

    async def active_line_counts(self, store_id: str) -> dict[str, int]:
        """Per SKU, how many active reservation lines of the store hold it."""
        rows = await self.conn.execute(
            sa.select(reservation_lines.c.sku, sa.func.count().label("lines"))
            .select_from(
                reservations.join(
                    reservation_lines, reservation_lines.c.reservation_id == reservations.c.id
                )
            )
            .where(
                reservations.c.store_id == store_id,
                reservations.c.status.in_([Status.HELD.value, Status.READY_FOR_PICKUP.value]),
            )
            .group_by(reservation_lines.c.sku)
        )
        return {row.sku: row.lines for row in rows}

    async def save_lines(self, reservation: Reservation) -> None:
        """Make the stored lines what the reservation now holds (a shortage shrank them)."""
        kept = {line.sku: line.quantity for line in reservation.lines}
        await self.conn.execute(
            sa.delete(reservation_lines).where(
                reservation_lines.c.reservation_id == reservation.id,
                reservation_lines.c.sku.not_in(list(kept)),
            )
        )
        for sku, quantity in kept.items():
            await self.conn.execute(
                sa.update(reservation_lines)
                .where(
                    reservation_lines.c.reservation_id == reservation.id,
                    reservation_lines.c.sku == sku,
                )
                .values(quantity=quantity)
            )

    async def add_payment(
        self, reservation_id: str, payment: Payment, received_by: str, now: datetime
    ) -> None:
        await self.conn.execute(
            _INSERT_PAYMENT,
            {
                "reservation_id": reservation_id,
                "amount": payment.amount,
                "currency": payment.currency,
                "method": payment.method,
                "reference": payment.reference,
                "received_by": received_by,
                "received_at": now,
            },
        )

    async def payment_of(self, reservation_id: str) -> Payment | None:
        row = (await self.conn.execute(_PAYMENT_OF, {"b_id": reservation_id})).first()
        if row is None:
            return None
        return Payment(row.amount, row.currency, row.method, row.reference)

    async def save(self, reservation: Reservation, previous_version: int, now: datetime) -> None:
        result = await self.conn.execute(
            _SAVE_RESERVATION,
            {
                "b_id": reservation.id,
                "b_version": previous_version,
                "status": str(reservation.status),
                "expires_at": reservation.expires_at,
                "ready_at": reservation.ready_at,
                "collected_at": reservation.collected_at,
                "cancelled_at": reservation.cancelled_at,
                "expired_at": reservation.expired_at,
                "cancel_reason": reservation.cancel_reason,
                "warned_for": reservation.warned_for,
                "arrived_at": reservation.arrived_at,
                "arrival_note": reservation.arrival_note,
                "version": reservation.version,
                "updated_at": now,
            },
        )
        if result.rowcount != 1:
            raise InvariantViolated(
                f"reservation {reservation.id} changed underneath a locked update"
            )

    async def _load(
        self, query: sa.Select[Any], params: Mapping[str, Any] | None = None
    ) -> list[Reservation]:
        rows = (await self.conn.execute(query, params)).all()
        if not rows:
            return []
        lines = await load_lines(self.conn, [row.id for row in rows])
        return [reservation_from_row(row, lines.get(row.id, ())) for row in rows]


def _take_key(insert: Any) -> Any:
    return (
        insert(idempotency_keys)
        .on_conflict_do_nothing(
            index_elements=[idempotency_keys.c.customer_id, idempotency_keys.c.key]
        )
        .returning(idempotency_keys.c.group_id)
    )


# The request's key, or nothing when another request has it (a twin still in flight holds its
# row: this waits for it to commit, then finds the key taken, or to roll back, then takes it).
_TAKE_IDEMPOTENCY_KEY = {
    "postgresql": _take_key(postgresql.insert),
    "sqlite": _take_key(sqlite.insert),
}
_IDEMPOTENCY_KEY = sa.select(idempotency_keys.c.group_id, idempotency_keys.c.request_hash).where(
    idempotency_keys.c.customer_id == sa.bindparam("b_customer"),
    idempotency_keys.c.key == sa.bindparam("b_key"),
)
_RESERVATION = sa.select(reservations).where(reservations.c.id == sa.bindparam("b_id"))
_INSERT_PAYMENT = payments.insert()
_PAYMENT_OF = sa.select(payments).where(payments.c.reservation_id == sa.bindparam("b_id"))
_RESERVATION_FOR_UPDATE = _RESERVATION.with_for_update()
_SAVE_RESERVATION = (
    sa.update(reservations)
    .where(
        reservations.c.id == sa.bindparam("b_id"),
        reservations.c.version == sa.bindparam("b_version"),
    )
    .values(
        {
            name: sa.bindparam(name)
            for name in (
                "status",
                "expires_at",
                "ready_at",
                "collected_at",
                "cancelled_at",
                "expired_at",
                "cancel_reason",
                "warned_for",
                "arrived_at",
                "arrival_note",
                "version",
                "updated_at",
            )
        }
    )
)
_LINES = (
    sa.select(reservation_lines)
    .where(reservation_lines.c.reservation_id.in_(sa.bindparam("b_ids", expanding=True)))
    .order_by(reservation_lines.c.reservation_id, reservation_lines.c.sku)
)


async def load_lines(
    conn: AsyncConnection, reservation_ids: Sequence[str]
) -> dict[str, tuple[Line, ...]]:
    result: dict[str, list[Line]] = {}
    for row in await conn.execute(_LINES, {"b_ids": list(reservation_ids)}):
        result.setdefault(row.reservation_id, []).append(Line(row.sku, row.quantity))
    return {key: tuple(value) for key, value in result.items()}


def reservation_from_row(row: Any, lines: Iterable[Line]) -> Reservation:
    return Reservation(
        id=row.id,
        group_id=row.group_id,
        code=row.code,
        customer_id=row.customer_id,
        store_id=row.store_id,
        channel=row.channel,
        status=Status(row.status),
        lines=tuple(lines),
        hold_seconds=row.hold_seconds,
        created_at=row.created_at,
        expires_at=row.expires_at,
        ready_at=row.ready_at,
        collected_at=row.collected_at,
        cancelled_at=row.cancelled_at,
        expired_at=row.expired_at,
        cancel_reason=row.cancel_reason,
        warned_for=row.warned_for,
        resourced_from=row.resourced_from,
        arrived_at=row.arrived_at,
        arrival_note=row.arrival_note,
        version=row.version,
    )


# --- catalogue ------------------------------------------------------------------------------------


# Which of some SKUs and stores exist, in one statement: on PostgreSQL each list is one array
# parameter, so the statement is compiled once whatever the lists' lengths.
_ARRAY = postgresql.ARRAY(sa.String)
_KNOWN = sa.union_all(
    sa.select(sa.literal_column("'sku'").label("kind"), skus.c.code.label("code")).where(
        skus.c.code == sa.any_(sa.bindparam("b_skus", type_=_ARRAY))
    ),
    sa.select(sa.literal_column("'store'").label("kind"), stores.c.id.label("code")).where(
        stores.c.id == sa.any_(sa.bindparam("b_stores", type_=_ARRAY))
    ),
)


class CatalogRepository:
    """Stores and SKUs."""

    def __init__(
        self,
        conn: AsyncConnection,
        directory: StoreDirectory | None = None,
        after_commit: list[Callable[[], None]] | None = None,
        statements: Statements | None = None,
        known: tuple[KnownCodes, KnownCodes] | None = None,
    ) -> None:
        self.conn = conn
        self.directory = directory
        self.after_commit = after_commit
        self.statements = statements
        self.known_skus: KnownCodes | None = known[0] if known else None
        self.known_stores: KnownCodes | None = known[1] if known else None

    async def known(
        self, sku_codes: Iterable[str], store_ids: Iterable[str]
    ) -> tuple[set[str], set[str]]:
        """(the SKUs, the stores) of those asked that exist: from the in-process caches where
        they hold them (what exists, never what does not), the rest in one statement."""
        wanted_skus, wanted_stores = set(sku_codes), set(store_ids)
        skus_found = self.known_skus.known(wanted_skus) if self.known_skus else set()
        stores_found = self.known_stores.known(wanted_stores) if self.known_stores else set()
        ask_skus = sorted(wanted_skus - skus_found)
        ask_stores = sorted(wanted_stores - stores_found)
        if ask_skus or ask_stores:
            more_skus, more_stores = await self._read_known(ask_skus, ask_stores)
            if self.known_skus is not None and self.known_stores is not None:
                self.known_skus.add(more_skus)
                self.known_stores.add(more_stores)
            skus_found |= more_skus
            stores_found |= more_stores
        return skus_found, stores_found

    async def _read_known(
        self, sku_codes: list[str], store_ids: list[str]
    ) -> tuple[set[str], set[str]]:
        if self.statements is None or self.conn.dialect.name != "postgresql":
            return await self.existing_skus(sku_codes), await self.existing_stores(store_ids)
        rows = await self.statements.all(_KNOWN, {"b_skus": sku_codes, "b_stores": store_ids})
        found: dict[str, set[str]] = {"sku": set(), "store": set()}
        for row in rows:
            found[row["kind"]].add(row["code"])
        return found["sku"], found["store"]

    async def existing_stores(self, store_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(store_ids))
        if not ids:
            return set()
        rows = await self.conn.execute(sa.select(stores.c.id).where(stores.c.id.in_(ids)))
        return {row.id for row in rows}

    async def store_ids(self) -> list[str]:
        rows = await self.conn.execute(sa.select(stores.c.id).order_by(stores.c.id))
        return [row.id for row in rows]

    async def store_location(self, store_id: str) -> GeoPoint | None:
        row = (
            await self.conn.execute(
                sa.select(stores.c.lat, stores.c.lon).where(stores.c.id == store_id)
            )
        ).first()
        return GeoPoint(row.lat, row.lon) if row else None

    async def existing_skus(self, codes: Iterable[str]) -> set[str]:
        wanted = sorted(set(codes))
        if not wanted:
            return set()
        rows = await self.conn.execute(sa.select(skus.c.code).where(skus.c.code.in_(wanted)))
        return {row.code for row in rows}

    async def upsert_stores(self, rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
        stmt = insert_on_conflict(self.conn, stores)
        stmt = stmt.on_conflict_do_update(
            index_elements=[stores.c.id],
            set_={c: stmt.excluded[c] for c in ("name", "lat", "lon", "timezone", "updated_at")},
        )
        # A row without "address" keeps the store's address (a new store then has none).
        keep = [row for row in rows if "address" not in row]
        replace = [row for row in rows if "address" in row]
        if keep:
            await self.conn.execute(
                stmt, [{**row, "created_at": now, "updated_at": now} for row in keep]
            )
        if replace:
            stmt = insert_on_conflict(self.conn, stores)
            columns = ("name", "lat", "lon", "timezone", "address", "updated_at")
            stmt = stmt.on_conflict_do_update(
                index_elements=[stores.c.id], set_={c: stmt.excluded[c] for c in columns}
            )
            await self.conn.execute(
                stmt, [{**row, "created_at": now, "updated_at": now} for row in replace]
            )
        if self.directory is not None and self.after_commit is not None:
            self.after_commit.append(self.directory.clear)

    async def addresses(self, store_ids: Iterable[str]) -> dict[str, str | None]:
        wanted = sorted(set(store_ids))
        if not wanted:
            return {}
        rows = await self.conn.execute(
            sa.select(stores.c.id, stores.c.address).where(stores.c.id.in_(wanted))
        )
        return {row.id: row.address for row in rows}

    async def upsert_skus(
        self, rows: Sequence[Mapping[str, Any]], now: datetime, *, overwrite: bool = True
    ) -> None:
        """Add SKUs; with overwrite, also replace name and unit price of existing ones."""
        if not rows:
            return
        stmt = insert_on_conflict(self.conn, skus)
        if overwrite:
            stmt = stmt.on_conflict_do_update(
                index_elements=[skus.c.code],
                set_={"name": stmt.excluded.name, "unit_price": stmt.excluded.unit_price},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[skus.c.code])
        await self.conn.execute(
            stmt,
            [
                {
                    "code": row["code"],
                    "name": row.get("name"),
                    "unit_price": Decimal(str(row["unit_price"]))
                    if row.get("unit_price") is not None
                    else None,
                    "created_at": now,
                }
                for row in rows
            ],
        )


# --- policy ---------------------------------------------------------------------------------------

_POLICY_FIELDS = (
    "default_hold_seconds",
    "max_active_reservations_per_customer",
    "max_units_per_sku_per_customer",
    "expiry_warning_seconds",
    "max_stores_per_group",
    "pickup_window_seconds",
    "allow_pickup_without_ready",
    "ready_target_seconds",
)


_SELECT_POLICY = sa.select(reservation_policy).where(reservation_policy.c.id == 1)


class PolicyRepository:
    def __init__(
        self,
        conn: AsyncConnection,
        cache: PolicyCache | None = None,
        after_commit: list[Callable[[], None]] | None = None,
    ) -> None:
        self.conn = conn
        self.cache = cache
        self.after_commit = after_commit

    async def get(self) -> ReservationPolicy:
        cached = self.cache.get() if self.cache else None
        if cached is not None:
            return cached
        policy = policy_from_row((await self.conn.execute(_SELECT_POLICY)).one())
        if self.cache:
            self.cache.put(policy)
        return policy

    async def save(self, policy: ReservationPolicy, now: datetime) -> None:
        await self.conn.execute(
            sa.update(reservation_policy)
            .where(reservation_policy.c.id == 1)
            .values(
                allowed_hold_seconds=list(policy.allowed_hold_seconds),
                updated_at=now,
                **{name: getattr(policy, name) for name in _POLICY_FIELDS},
            )
        )
        if self.cache is not None and self.after_commit is not None:
            self.after_commit.append(self.cache.clear)


def policy_from_row(row: Any) -> ReservationPolicy:
    return ReservationPolicy(
        allowed_hold_seconds=tuple(int(s) for s in row.allowed_hold_seconds),
        **{name: getattr(row, name) for name in _POLICY_FIELDS},
    )


# --- outbox ---------------------------------------------------------------------------------------


class OutboxRepository:
    """The transactional outbox. What a unit of work adds is written in one INSERT when it
    commits (flush), in the order it was added: a reserve and the intake message it finishes
    cost one statement, not one each."""

    def __init__(
        self,
        conn: AsyncConnection,
        statements: Statements,
        after_commit: list[Callable[[], None]] | None = None,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.statements = statements
        self.after_commit = after_commit
        self.notify = notify
        self._pending: list[dict[str, Any]] = []

    async def add(self, new: Sequence[Event]) -> None:
        notify, after_commit = self.notify, self.after_commit
        if new and notify is not None and after_commit is not None and notify not in after_commit:
            # Wake the relay as soon as these are committed, instead of at its next sweep.
            after_commit.append(notify)
        self._pending.extend(
            [
                {
                    "event_id": e.id,
                    "type": e.type,
                    "reservation_id": e.reservation_id if isinstance(e, ReservationEvent) else None,
                    "store_id": e.store_id,
                    "customer_id": e.customer_id if isinstance(e, ReservationEvent) else None,
                    "sequence": e.sequence if isinstance(e, ReservationEvent) else None,
                    "payload": event_codec.encode(e),
                    "occurred_at": e.occurred_at,
                }
                for e in new
            ]
        )

    async def flush(self) -> None:
        """Write what was added (the unit of work calls it just before it commits)."""
        rows, self._pending = self._pending, []
        await self.statements.insert_rows(outbox, rows)

    async def claim_unpublished(self, limit: int) -> list[PendingEvent]:
        """The oldest events not yet published, locked; rows another relay holds are skipped."""
        rows = await self.conn.execute(_CLAIM_UNPUBLISHED, {"b_limit": limit})
        return [
            PendingEvent(
                position=row.position,
                event_id=row.event_id,
                type=row.type,
                store_id=row.store_id,
                reservation_id=row.reservation_id,
                payload=row.payload,
            )
            for row in rows
        ]

    async def mark_published(self, positions: Sequence[int], now: datetime) -> None:
        await self.conn.execute(_MARK_PUBLISHED, {"b_positions": list(positions), "b_now": now})


_CLAIM_UNPUBLISHED = (
    sa.select(
        outbox.c.position,
        outbox.c.event_id,
        outbox.c.type,
        outbox.c.store_id,
        outbox.c.reservation_id,
        outbox.c.payload,
    )
    .where(outbox.c.published_at.is_(None))
    .order_by(outbox.c.position)
    .limit(sa.bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)
_MARK_PUBLISHED = (
    sa.update(outbox)
    .where(outbox.c.position.in_(sa.bindparam("b_positions", expanding=True)))
    .values(published_at=sa.bindparam("b_now"), attempts=outbox.c.attempts + 1)
)


# --- POS webhooks ---------------------------------------------------------------------------------


def delivery_from_row(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        store_id=row.store_id,
        url=row.url,
        payload=row.payload,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        discarded_at=row.discarded_at,
        discarded_by=row.discarded_by,
        discard_reason=row.discard_reason,
    )


class WebhookRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def targets(self, store_ids: Iterable[str]) -> dict[str, WebhookTarget]:
        ids = sorted(set(store_ids))
        if not ids:
            return {}
        rows = await self.conn.execute(
            sa.select(stores.c.id, stores.c.webhook_url, stores.c.webhook_secret).where(
                stores.c.id.in_(ids), stores.c.webhook_url.is_not(None)
            )
        )
        return {row.id: WebhookTarget(row.webhook_url, row.webhook_secret) for row in rows}

    async def set_target(self, store_id: str, target: WebhookTarget | None, now: datetime) -> bool:
        result = await self.conn.execute(
            sa.update(stores)
            .where(stores.c.id == store_id)
            .values(
                webhook_url=target.url if target else None,
                webhook_secret=target.secret if target else None,
                updated_at=now,
            )
        )
        return result.rowcount == 1

    async def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        stmt = insert_on_conflict(self.conn, webhook_deliveries).on_conflict_do_nothing(
            index_elements=[webhook_deliveries.c.event_id, webhook_deliveries.c.store_id]
        )
        await self.conn.execute(
            stmt,
            [
                {
                    "id": d.id,
                    "event_id": d.event_id,
                    "event_type": d.event_type,
                    "store_id": d.store_id,
                    "url": d.url,
                    "payload": d.payload,
                    "status": str(d.status),
                    "attempts": d.attempts,
                    "next_attempt_at": d.next_attempt_at,
                    "created_at": d.created_at,
                }
                for d in deliveries
            ],
        )

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Delivery, str | None]]:
        """Pending deliveries due now, each with the store's current secret (None when the store
        no longer has a webhook). They are leased: counted as tried and not due again until
        `lease_until`, so a worker that dies mid-request leaves them for another to retry."""
        rows = await claim_due(
            self.conn,
            sa.select(webhook_deliveries, stores.c.webhook_secret)
            .select_from(
                webhook_deliveries.outerjoin(stores, stores.c.id == webhook_deliveries.c.store_id)
            )
            .where(
                webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
            .limit(limit),
            webhook_deliveries,
            lease_until=lease_until,
        )
        return [
            (
                dataclasses.replace(delivery_from_row(row), attempts=row.attempts + 1),
                row.webhook_secret,
            )
            for row in rows
        ]

    async def record(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        now: datetime,
        next_attempt_at: datetime,
        status_code: int | None,
        error: str | None,
    ) -> None:
        await self.conn.execute(
            sa.update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(
                status=str(status),
                next_attempt_at=next_attempt_at,
                last_status_code=status_code,
                last_error=error[:500] if error else None,
                delivered_at=now if status is DeliveryStatus.DELIVERED else None,
            )
        )

    async def replay(self, delivery_id: str, now: datetime) -> Delivery | None:
        """A dead delivery back to pending, due now, with a fresh count of attempts."""
        row = (
            await self.conn.execute(
                sa.update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.status == DeliveryStatus.DEAD.value,
                )
                .values(status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now)
                .returning(*webhook_deliveries.c)
            )
        ).first()
        return delivery_from_row(row) if row else None

    async def discard(
        self, delivery_id: str, *, actor: str, reason: str, now: datetime
    ) -> Delivery | None:
        """A dead delivery given up on, with who did it, why and when; None if it is not dead."""
        row = (
            await self.conn.execute(
                sa.update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.status == DeliveryStatus.DEAD.value,
                )
                .values(
                    status=DeliveryStatus.DISCARDED.value,
                    discarded_at=now,
                    discarded_by=actor[:200],
                    discard_reason=reason[:500],
                )
                .returning(*webhook_deliveries.c)
            )
        ).first()
        return delivery_from_row(row) if row else None

    async def get(self, delivery_id: str) -> Delivery | None:
        row = (
            await self.conn.execute(
                sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
            )
        ).first()
        return delivery_from_row(row) if row else None
