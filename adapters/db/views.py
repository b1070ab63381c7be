"""The read side: queries for the API, each in a read-only transaction (never a write lock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa

from adapters.db import kpis as kpi_reads
from adapters.db.caches import StoreDirectory
from adapters.db.engine import Database
from adapters.db.impact import delivery_impact, movement_impact
from adapters.db.reconciliation import discrepancy_from_row, run_from_row
from adapters.db.repositories import (
    STOCK_LEVELS,
    delivery_from_row,
    load_lines,
    policy_from_row,
    reservation_from_row,
)
from adapters.db.tables import (
    accuracy_samples,
    reconciliation_runs,
    reservation_policy,
    reservations,
    stock_discrepancies,
    stores,
    webhook_deliveries,
    wms_outbound,
)
from adapters.db.wms_feed import queued_from_row
from domain.accuracy import AccuracyCount
from domain.catalog import Store
from domain.geo import GeoPoint
from domain.kpis import PICKUP_WAIT_TARGET_SECONDS, DurationFacts, KpiFacts
from domain.policy import ReservationPolicy
from domain.reconciliation import Discrepancy, ReconciliationRun
from domain.reservations import ACTIVE_STATUSES, Reservation
from domain.stock import StockLevel
from domain.webhooks import Delivery
from domain.wms import Queued

T = TypeVar("T")
_ACTIVE = sorted(str(s) for s in ACTIVE_STATUSES)
_STORE_COLUMNS = (
    stores.c.id,
    stores.c.name,
    stores.c.lat,
    stores.c.lon,
    stores.c.timezone,
    stores.c.address,
)


_ALL_STORES = sa.select(*_STORE_COLUMNS)
_STORES_BY_IDS = sa.select(*_STORE_COLUMNS).where(
    stores.c.id.in_(sa.bindparam("b_ids", expanding=True))
)
_RESERVATION_BY_CODE = (
    sa.select(reservations)
    .where(reservations.c.code == sa.bindparam("b_code"))
    .order_by(reservations.c.status.in_(_ACTIVE).desc(), reservations.c.created_at.desc())
    .limit(1)
)
_RESERVATIONS_BY_IDS = sa.select(reservations).where(
    reservations.c.id.in_(sa.bindparam("b_ids", expanding=True))
)


# The stock read on PostgreSQL (bench/availability.py runs it too, as the database's floor).
STOCK_LEVELS_PG = (
    "SELECT store_id, sku, on_hand, reserved, safety_stock FROM stock_levels "
    "WHERE store_id = ANY($1::varchar[]) AND sku = ANY($2::varchar[])"
)


def _store(row: Any) -> Store:
    return Store(row.id, row.name, row.lat, row.lon, row.timezone, row.address)


class Views:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._directory_lock = asyncio.Lock()

    async def nearest_stores(
        self, center: GeoPoint, radius_km: float, limit: int
    ) -> list[tuple[Store, float]]:
        return (await self._directory()).nearest(center, radius_km, limit)

    async def stores_page(self, first: int) -> list[Store]:
        return (await self._directory()).first(first)

    async def stores_by_ids(self, ids: Sequence[str]) -> dict[str, Store]:
        found = (await self._directory()).by_ids(ids)
        missing = [i for i in ids if i not in found]
        if missing:  # added by another replica since the directory was read
            async with self.db.read() as conn:
                rows = await conn.execute(_STORES_BY_IDS, {"b_ids": missing})
                found.update({row.id: _store(row) for row in rows})
        return found

    async def _directory(self) -> StoreDirectory:
        directory = self.db.store_directory
        if not directory.fresh:
            async with self._directory_lock:
                if not directory.fresh:
                    async with self.db.read() as conn:
                        directory.load([_store(row) for row in await conn.execute(_ALL_STORES)])
        return directory

    async def stock_levels(
        self, store_ids: Sequence[str], skus: Sequence[str]
    ) -> dict[tuple[str, str], StockLevel]:
        rows: Any
        if self.db.is_sqlite:
            async with self.db.read() as conn:
                rows = await conn.execute(
                    STOCK_LEVELS, {"b_stores": list(store_ids), "b_skus": list(skus)}
                )
        else:
            # The read behind every product page: one prepared statement with two arrays (IN
            # lists would make a statement per list length), straight on asyncpg.
            async with self.db.pg_reader() as driver:
                rows = await driver.fetch(STOCK_LEVELS_PG, list(store_ids), list(skus))
        return {
            (store_id, sku): StockLevel(store_id, sku, on_hand, reserved, safety)
            for store_id, sku, on_hand, reserved, safety in rows
        }

    async def reservations_by_ids(self, ids: Sequence[str]) -> dict[str, Reservation]:
        found = await self._reservations(_RESERVATIONS_BY_IDS, {"b_ids": list(ids)})
        return {r.id: r for r in found}

    async def reservation_by_code(self, code: str) -> Reservation | None:
        """The active reservation with this pickup code, else the latest that had it."""
        found = await self._reservations(_RESERVATION_BY_CODE, {"b_code": code})
        return found[0] if found else None

    async def reservations_of_customer(
        self, customer_id: str, *, active_only: bool, first: int
    ) -> list[Reservation]:
        query = sa.select(reservations).where(reservations.c.customer_id == customer_id)
        if active_only:
            query = query.where(reservations.c.status.in_(_ACTIVE))
        return await self._reservations(
            query.order_by(reservations.c.created_at.desc(), reservations.c.id).limit(first)
        )

    async def pickup_queue(self, store_id: str, first: int) -> list[Reservation]:
        return await self._reservations(
            sa.select(reservations)
            .where(reservations.c.store_id == store_id, reservations.c.status.in_(_ACTIVE))
            .order_by(reservations.c.expires_at, reservations.c.id)
            .limit(first)
        )

    async def webhook_deliveries(
        self, status: str, store_id: str | None, first: int, *, by_impact_at: datetime | None = None
    ) -> list[Delivery]:
        """Newest first; with by_impact_at, the most impact (Delivery.impact) at that time first."""
        return await self._newest(
            webhook_deliveries,
            webhook_deliveries.c.created_at,
            delivery_from_row,
            first,
            rank=None if by_impact_at is None else partial(delivery_impact, by_impact_at),
            status=status,
            store_id=store_id,
        )

    async def kpi_facts(self, store_id: str | None, since: datetime, until: datetime) -> KpiFacts:
        r = reservations.c
        ready_target = (await self.policy()).ready_target_seconds
        async with self.db.read() as conn:

            async def facts(
                start: sa.Column[Any], end: sa.Column[Any], target: float | None
            ) -> DurationFacts:
                cells, sample = await kpi_reads.durations(
                    conn, start, end, since, until, store_id=store_id, target_seconds=target
                )
                return DurationFacts(tuple(cells), tuple(sample))

            return KpiFacts(
                attempts=tuple(await kpi_reads.attempt_counts(conn, store_id, since, until)),
                time_to_ready=await facts(r.created_at, r.ready_at, ready_target),
                pickup_wait=await facts(r.arrived_at, r.collected_at, PICKUP_WAIT_TARGET_SECONDS),
                ready_to_collected=await facts(r.ready_at, r.collected_at, None),
                endings=await kpi_reads.endings(conn, since, until, store_id=store_id),
            )

    async def accuracy_counts(
        self, store_id: str | None, since: datetime, until: datetime
    ) -> list[AccuracyCount]:
        query = sa.select(
            accuracy_samples.c.store_id,
            accuracy_samples.c.source,
            sa.func.sum(accuracy_samples.c.lines).label("lines"),
            sa.func.sum(accuracy_samples.c.ok).label("ok"),
        ).where(accuracy_samples.c.occurred_at >= since, accuracy_samples.c.occurred_at <= until)
        if store_id is not None:
            query = query.where(accuracy_samples.c.store_id == store_id)
        query = query.group_by(accuracy_samples.c.store_id, accuracy_samples.c.source)
        async with self.db.read() as conn:
            return [
                AccuracyCount(row.store_id, row.source, int(row.lines), int(row.ok))
                for row in await conn.execute(query)
            ]

    async def stock_discrepancies(
        self, status: str | None, store_id: str | None, first: int
    ) -> list[Discrepancy]:
        return await self._newest(
            stock_discrepancies,
            stock_discrepancies.c.detected_at,
            discrepancy_from_row,
            first,
            status=status,
            store_id=store_id,
        )

    async def wms_movements(
        self,
        status: str | None,
        store_id: str | None,
        first: int,
        *,
        by_impact_at: datetime | None = None,
    ) -> list[Queued]:
        """Newest first; with by_impact_at, the most impact (Queued.impact) at that time first."""
        return await self._newest(
            wms_outbound,
            wms_outbound.c.created_at,
            queued_from_row,
            first,
            rank=None if by_impact_at is None else partial(movement_impact, by_impact_at),
            status=status,
            store_id=store_id,
        )

    async def _newest(
        self,
        table: sa.Table,
        newest: sa.Column[Any],
        convert: Callable[[Any], T],
        first: int,
        rank: Callable[[str], sa.ColumnElement[Any]] | None = None,
        **equal: str | None,
    ) -> list[T]:
        """The newest `first` rows of an ops list, filtered on the columns given a value; with
        `rank` (an expression for the dialect), the highest ranked first, then the oldest."""
        query = sa.select(table)
        for column, value in equal.items():
            if value is not None:
                query = query.where(table.c[column] == value)
        async with self.db.read() as conn:
            if rank is None:
                query = query.order_by(newest.desc(), table.c.id)
            else:
                query = query.order_by(rank(conn.dialect.name).desc(), newest, table.c.id)
            return [convert(row) for row in await conn.execute(query.limit(first))]

    async def reconciliation_runs(self, first: int) -> list[ReconciliationRun]:
        query = (
            sa.select(reconciliation_runs)
            .order_by(reconciliation_runs.c.started_at.desc(), reconciliation_runs.c.id)
            .limit(first)
        )
        async with self.db.read() as conn:
            return [run_from_row(row) for row in await conn.execute(query)]

    async def policy(self) -> ReservationPolicy:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(reservation_policy).where(reservation_policy.c.id == 1)
                )
            ).one()
            return policy_from_row(row)

    async def _reservations(
        self, query: sa.Select[Any], params: dict[str, Any] | None = None
    ) -> list[Reservation]:
        """Reservations with their lines: two statements, however many reservations."""
        async with self.db.read() as conn:
            rows = (await conn.execute(query, params)).all()
            if not rows:
                return []
            lines = await load_lines(conn, [row.id for row in rows])
            return [reservation_from_row(row, lines.get(row.id, ())) for row in rows]
