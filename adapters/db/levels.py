"""Whole stock rows, as counts and reconciliation lock, read and write them in bulk, and the
low-stock flags the relay keeps on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.fast import Statements
from adapters.db.tables import stock_levels
from domain.stock import StockLevel, WatchedLevel

_LEVEL_COLUMNS = (
    stock_levels.c.store_id,
    stock_levels.c.sku,
    stock_levels.c.on_hand,
    stock_levels.c.reserved,
    stock_levels.c.safety_stock,
    stock_levels.c.wms_sequence,
    stock_levels.c.low_stock_threshold,
)
_WRITE_LEVEL = (
    sa.update(stock_levels)
    .where(
        stock_levels.c.store_id == sa.bindparam("b_store"),
        stock_levels.c.sku == sa.bindparam("b_sku"),
    )
    .values(
        on_hand=sa.bindparam("b_on_hand"),
        safety_stock=sa.bindparam("b_safety"),
        wms_sequence=sa.bindparam("b_sequence"),
        low_stock_threshold=sa.bindparam("b_threshold"),
        updated_at=sa.bindparam("b_now"),
    )
)
# Exactly the batch's (store, SKU) pairs (not the cross product of its stores and SKUs), locked in
# key order.
_LOCK_MANY_SQL = (
    "SELECT t.store_id, t.sku, t.on_hand, t.reserved, t.safety_stock, t.wms_sequence, "
    "t.low_stock_threshold FROM stock_levels AS t "
    "JOIN unnest($1::text[], $2::text[]) AS k(store_id, sku) "
    "ON t.store_id = k.store_id AND t.sku = k.sku "
    "ORDER BY t.store_id, t.sku FOR UPDATE OF t"
)
_WRITE_MANY_SQL = (
    "UPDATE stock_levels AS t SET on_hand = v.on_hand, safety_stock = v.safety_stock, "
    "wms_sequence = v.wms_sequence, low_stock_threshold = v.low_stock_threshold, "
    "updated_at = $7 "
    "FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[], $5::int8[], $6::int4[]) "
    "AS v(store_id, sku, on_hand, safety_stock, wms_sequence, low_stock_threshold) "
    "WHERE t.store_id = v.store_id AND t.sku = v.sku"
)
_LOCK_ONE = (
    sa.select(*_LEVEL_COLUMNS)
    .where(
        stock_levels.c.store_id == sa.bindparam("b_store"),
        stock_levels.c.sku == sa.bindparam("b_sku"),
    )
    .with_for_update()
)
# SQLite: the cross product of a batch's stores and SKUs is read in slices of this many SKUs.
_SKUS_PER_READ = 5_000


def _level(row: Any) -> StockLevel:
    return StockLevel(
        row.store_id,
        row.sku,
        row.on_hand,
        row.reserved,
        row.safety_stock,
        row.wms_sequence,
        row.low_stock_threshold,
    )


class LevelsRepository:
    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements

    async def lock(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StockLevel]:
        """The rows of these (store, SKU) keys, locked in key order (the order every writer of
        these rows takes its locks in)."""
        if not keys:
            return {}
        wanted = sorted(set(keys))
        if len(wanted) == 1:
            store_id, sku = wanted[0]
            row = (await self.conn.execute(_LOCK_ONE, {"b_store": store_id, "b_sku": sku})).first()
            return {wanted[0]: _level(row)} if row is not None else {}
        driver = self.statements.driver
        if driver is not None:
            # Straight on asyncpg: one statement with two array parameters.
            records = await driver.fetch(
                _LOCK_MANY_SQL, [s for s, _ in wanted], [k for _, k in wanted]
            )
            return {(r[0], r[1]): StockLevel(*r) for r in records}
        # Rows are read by the cross product of the stores and SKUs, in key order, and filtered
        # here: one statement per slice whatever the batch's size.
        wanted_set = set(wanted)
        stores_of = sorted({s for s, _ in wanted})
        skus_of = sorted({k for _, k in wanted})
        found: dict[tuple[str, str], StockLevel] = {}
        for start in range(0, len(skus_of), _SKUS_PER_READ):
            query = (
                sa.select(*_LEVEL_COLUMNS)
                .where(
                    stock_levels.c.store_id.in_(stores_of),
                    stock_levels.c.sku.in_(skus_of[start : start + _SKUS_PER_READ]),
                )
                .order_by(stock_levels.c.store_id, stock_levels.c.sku)
                .with_for_update()
            )
            for row in await self.conn.execute(query):
                key = (row.store_id, row.sku)
                if key in wanted_set:
                    found[key] = _level(row)
        return found

    async def write(self, rows: Sequence[StockLevel], now: datetime) -> None:
        """Write on hand, safety stock, WMS sequence and threshold of existing rows, in bulk;
        reserved is left as it is (only reservations move it)."""
        if not rows:
            return
        driver = self.statements.driver
        if driver is not None and len(rows) > 1:
            # One statement for the whole batch: the new values go as arrays, joined by key.
            await driver.execute(
                _WRITE_MANY_SQL,
                [r.store_id for r in rows],
                [r.sku for r in rows],
                [r.on_hand for r in rows],
                [r.safety_stock for r in rows],
                [r.wms_sequence for r in rows],
                [r.low_stock_threshold for r in rows],
                now,
            )
            return
        await self.statements.run_many(
            _WRITE_LEVEL,
            [
                {
                    "b_on_hand": r.on_hand,
                    "b_safety": r.safety_stock,
                    "b_sequence": r.wms_sequence,
                    "b_threshold": r.low_stock_threshold,
                    "b_now": now,
                    "b_store": r.store_id,
                    "b_sku": r.sku,
                }
                for r in rows
            ],
        )

    async def insert(self, rows: Sequence[StockLevel], now: datetime) -> None:
        await self.statements.insert_rows(
            stock_levels,
            [
                {
                    "store_id": r.store_id,
                    "sku": r.sku,
                    "on_hand": r.on_hand,
                    "reserved": 0,
                    "safety_stock": r.safety_stock,
                    "wms_sequence": r.wms_sequence,
                    "low_stock_threshold": r.low_stock_threshold,
                    "low_stock_alerted": False,
                    "updated_at": now,
                }
                for r in rows
            ],
        )

    async def of_store(self, store_id: str) -> dict[str, StockLevel]:
        """Every row of the store, by SKU, read without locking."""
        rows = await self.conn.execute(
            sa.select(*_LEVEL_COLUMNS).where(stock_levels.c.store_id == store_id)
        )
        return {row.sku: _level(row) for row in rows}


class LowStockRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def flag(self, changes: Sequence[WatchedLevel]) -> list[WatchedLevel]:
        """Set the low-stock flag of rows that fell below their threshold, clear it on rows that
        recovered; return the ones newly flagged. Conditional updates: of several processes
        that saw the same fall, one flags it (and reports it)."""
        flagged: list[WatchedLevel] = []
        for watched in changes:
            below = not watched.alerted
            result = await self.conn.execute(
                sa.update(stock_levels)
                .where(
                    stock_levels.c.store_id == watched.level.store_id,
                    stock_levels.c.sku == watched.level.sku,
                    stock_levels.c.low_stock_alerted == watched.alerted,
                )
                .values(low_stock_alerted=below)
            )
            if below and result.rowcount == 1:
                flagged.append(watched)
        return flagged

    async def set_threshold(self, store_id: str, sku: str, threshold: int | None) -> bool:
        result = await self.conn.execute(
            sa.update(stock_levels)
            .where(stock_levels.c.store_id == store_id, stock_levels.c.sku == sku)
            .values(low_stock_threshold=threshold, low_stock_alerted=False)
        )
        return result.rowcount == 1
