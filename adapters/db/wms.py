"""The WMS side of storage: the inbox of stock batches, bulk level writes, the outbound movement
feed, leases, reconciliation records, accuracy samples and low-stock thresholds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.fast import Statements
from adapters.db.tables import (
    accuracy_samples,
    reconciliation_runs,
    reservation_lines,
    reservations,
    stock_discrepancies,
    stock_levels,
    stock_movements,
    stores,
    wms_inbox,
    wms_outbound,
    wms_streams,
    worker_leases,
)
from domain.stock import WatchedLevel
from domain.wms import (
    KIND_OF_REASON,
    Discrepancy,
    LevelRow,
    MovementKind,
    Queued,
    StoredBatch,
    WmsMovement,
)

_available = stock_levels.c.on_hand - stock_levels.c.reserved - stock_levels.c.safety_stock


def _level(row: Any) -> LevelRow:
    return LevelRow(
        row.store_id,
        row.sku,
        row.on_hand,
        row.reserved,
        row.safety_stock,
        row.wms_sequence,
        row.low_stock_threshold,
    )


def queued_from_row(row: Any) -> Queued:
    return Queued(
        WmsMovement(
            id=row.id,
            store_id=row.store_id,
            sku=row.sku,
            sequence=row.sequence,
            kind=MovementKind(row.kind),
            quantity=row.quantity,
            reservation_id=row.reservation_id,
            occurred_at=row.occurred_at,
        ),
        row.attempts,
        row.next_attempt_at,
        row.status,
        row.last_error,
        row.delivered_at,
    )


def discrepancy_from_row(row: Any) -> Discrepancy:
    return Discrepancy(
        row.id,
        row.run_id,
        row.store_id,
        row.sku,
        row.kind,
        row.ropos_value,
        row.wms_value,
        row.status,
        row.resolution,
        row.detected_at,
        row.resolved_at,
        row.resolved_by,
    )


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
_NEXT_SEQUENCES_SQL = (
    "INSERT INTO wms_streams (store_id, sku, last_sequence) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) "
    "ON CONFLICT (store_id, sku) DO UPDATE "
    "SET last_sequence = wms_streams.last_sequence + EXCLUDED.last_sequence "
    "RETURNING store_id, sku, last_sequence"
)
_WRITE_MANY_SQL = (
    "UPDATE stock_levels AS t SET on_hand = v.on_hand, safety_stock = v.safety_stock, "
    "wms_sequence = v.wms_sequence, low_stock_threshold = v.low_stock_threshold, "
    "updated_at = $7 "
    "FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[], $5::int8[], $6::int4[]) "
    "AS v(store_id, sku, on_hand, safety_stock, wms_sequence, low_stock_threshold) "
    "WHERE t.store_id = v.store_id AND t.sku = v.sku"
)
_INSERT_MOVEMENT_ROWS = wms_outbound.insert()
_LOCK_ONE = (
    sa.select(*_LEVEL_COLUMNS)
    .where(
        stock_levels.c.store_id == sa.bindparam("b_store"),
        stock_levels.c.sku == sa.bindparam("b_sku"),
    )
    .with_for_update()
)


class WmsRepository:
    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements
        self.postgres = conn.dialect.name == "postgresql"

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self.postgres else sqlite.insert(table)

    # --- the inbox --------------------------------------------------------------------------------

    async def find_batch(self, batch_id: str, *, for_update: bool = False) -> StoredBatch | None:
        query = sa.select(wms_inbox).where(wms_inbox.c.batch_id == batch_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        if row is None:
            return None
        return StoredBatch(
            row.batch_id,
            row.payload,
            row.status,
            row.attempts,
            row.applied,
            row.stale,
            row.error_code,
            row.error,
            row.received_at,
        )

    async def lock_batch(self, batch_id: str) -> str | None:
        """Lock the batch's row (not reading its payload); its status, or None if unknown."""
        row = (
            await self.conn.execute(
                sa.select(wms_inbox.c.status)
                .where(wms_inbox.c.batch_id == batch_id)
                .with_for_update()
            )
        ).first()
        return row.status if row else None

    async def add_batch(
        self, batch_id: str, payload: Mapping[str, Any], levels: int, now: datetime
    ) -> bool:
        """Store a batch as RECEIVED; False if its id is already stored."""
        stmt = (
            self._insert(wms_inbox)
            .values(
                batch_id=batch_id,
                payload=dict(payload),
                levels=levels,
                status="RECEIVED",
                attempts=0,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=[wms_inbox.c.batch_id])
        )
        return (await self.conn.execute(stmt)).rowcount == 1

    async def finish_batch(
        self,
        batch_id: str,
        *,
        status: str,
        now: datetime,
        applied: int | None = None,
        stale: int | None = None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None:
        await self.conn.execute(
            sa.update(wms_inbox)
            .where(wms_inbox.c.batch_id == batch_id)
            .values(
                status=status,
                applied=applied,
                stale=stale,
                error_code=error_code,
                error=error[:1000] if error else None,
                finished_at=now,
                attempts=wms_inbox.c.attempts + 1,
            )
        )

    async def count_attempt(self, batch_id: str, error: str) -> None:
        await self.conn.execute(
            sa.update(wms_inbox)
            .where(wms_inbox.c.batch_id == batch_id)
            .values(attempts=wms_inbox.c.attempts + 1, error=error[:1000])
        )

    async def batches_to_retry(
        self, received_before: datetime, limit: int
    ) -> list[tuple[str, int]]:
        """(batch id, attempts so far) of stored batches not applied yet, oldest first."""
        rows = await self.conn.execute(
            sa.select(wms_inbox.c.batch_id, wms_inbox.c.attempts)
            .where(wms_inbox.c.status == "RECEIVED", wms_inbox.c.received_at <= received_before)
            .order_by(wms_inbox.c.received_at)
            .limit(limit)
        )
        return [(row.batch_id, row.attempts) for row in rows]

    # --- levels -----------------------------------------------------------------------------------

    async def lock_levels(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LevelRow]:
        """The rows of these (store, SKU) keys, locked in key order (PostgreSQL)."""
        if not keys:
            return {}
        wanted = sorted(set(keys))
        if len(wanted) == 1:
            store_id, sku = wanted[0]
            row = (await self.conn.execute(_LOCK_ONE, {"b_store": store_id, "b_sku": sku})).first()
            return {wanted[0]: _level(row)} if row is not None else {}
        wanted_set = set(wanted)
        stores_of = sorted({s for s, _ in wanted})
        skus_of = sorted({k for _, k in wanted})
        found: dict[tuple[str, str], LevelRow] = {}
        driver = self.statements.driver
        if driver is not None:
            # Straight on asyncpg: one statement with two array parameters, rows locked in key
            # order (the order every writer of these rows takes its locks in).
            records = await driver.fetch(
                _LOCK_MANY_SQL, [s for s, _ in wanted], [k for _, k in wanted]
            )
            return {(r[0], r[1]): LevelRow(*r) for r in records}
        # Rows are read by the cross product of the stores and SKUs, in key order, and filtered
        # here: one statement whatever the batch's size.
        for start in range(0, len(skus_of), 5_000):
            query = (
                sa.select(*_LEVEL_COLUMNS)
                .where(
                    stock_levels.c.store_id.in_(stores_of),
                    stock_levels.c.sku.in_(skus_of[start : start + 5_000]),
                )
                .order_by(stock_levels.c.store_id, stock_levels.c.sku)
                .with_for_update()
            )
            for row in await self.conn.execute(query):
                key = (row.store_id, row.sku)
                if key in wanted_set:
                    found[key] = _level(row)
        return found

    async def write_levels(self, rows: Sequence[LevelRow], now: datetime) -> None:
        """Write on hand, safety stock, WMS sequence and threshold of existing rows, in bulk."""
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

    async def insert_levels(self, rows: Sequence[LevelRow], now: datetime) -> None:
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

    async def store_location(self, store_id: str) -> tuple[float, float] | None:
        row = (
            await self.conn.execute(
                sa.select(stores.c.lat, stores.c.lon).where(stores.c.id == store_id)
            )
        ).first()
        return (row.lat, row.lon) if row else None

    async def levels_of_store(self, store_id: str) -> dict[str, LevelRow]:
        rows = await self.conn.execute(
            sa.select(*_LEVEL_COLUMNS).where(stock_levels.c.store_id == store_id)
        )
        return {row.sku: _level(row) for row in rows}

    async def store_ids(self) -> list[str]:
        return [
            row.id for row in await self.conn.execute(sa.select(stores.c.id).order_by(stores.c.id))
        ]

    # --- low stock --------------------------------------------------------------------------------

    async def flag_low_stock(self, changes: Sequence[WatchedLevel]) -> list[WatchedLevel]:
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

    # --- the outbound feed ------------------------------------------------------------------------

    async def unqueued_movements(self, limit: int) -> list[Any]:
        """Ledger rows the WMS must hear of and that are not in the feed yet, oldest first."""
        rows = await self.conn.execute(
            sa.select(
                stock_movements.c.id,
                stock_movements.c.store_id,
                stock_movements.c.sku,
                stock_movements.c.on_hand_delta,
                stock_movements.c.reserved_delta,
                stock_movements.c.reason,
                stock_movements.c.reservation_id,
                stock_movements.c.occurred_at,
            )
            .where(stock_movements.c.wms_pending)
            .order_by(stock_movements.c.id)
            .limit(limit)
        )
        return [row for row in rows.all() if row.reason in KIND_OF_REASON]

    async def next_sequences(
        self, counts: Mapping[tuple[str, str], int]
    ) -> dict[tuple[str, str], int]:
        """Reserve `count` sequence numbers per (store, SKU); returns the first of each."""
        first: dict[tuple[str, str], int] = {}
        driver = self.statements.driver
        if driver is not None and len(counts) > 1:
            keys = sorted(counts)
            rows = await driver.fetch(
                _NEXT_SEQUENCES_SQL,
                [s for s, _ in keys],
                [k for _, k in keys],
                [counts[key] for key in keys],
            )
            return {(r[0], r[1]): r[2] - counts[(r[0], r[1])] + 1 for r in rows}
        for (store_id, sku), count in sorted(counts.items()):
            stmt = self._insert(wms_streams).values(store_id=store_id, sku=sku, last_sequence=count)
            stmt = stmt.on_conflict_do_update(
                index_elements=[wms_streams.c.store_id, wms_streams.c.sku],
                set_={"last_sequence": wms_streams.c.last_sequence + count},
            ).returning(wms_streams.c.last_sequence)
            last = (await self.conn.execute(stmt)).scalar_one()
            first[(store_id, sku)] = last - count + 1
        return first

    async def queue(
        self, movements: Sequence[tuple[WmsMovement, int | None]], now: datetime
    ) -> None:
        if not movements:
            return
        await self.conn.execute(
            _INSERT_MOVEMENT_ROWS,
            [
                {
                    "id": m.id,
                    "ledger_id": ledger_id,
                    "store_id": m.store_id,
                    "sku": m.sku,
                    "sequence": m.sequence,
                    "kind": m.kind.value,
                    "quantity": m.quantity,
                    "reservation_id": m.reservation_id,
                    "occurred_at": m.occurred_at,
                    "status": "PENDING",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for m, ledger_id in movements
            ],
        )

    async def forget_unqueued(self) -> int:
        """Mark every movement not yet queued as not for the WMS; how many there were."""
        result = await self.conn.execute(
            sa.update(stock_movements)
            .where(stock_movements.c.wms_pending)
            .values(wms_pending=False)
        )
        return int(result.rowcount or 0)

    async def clear_pending(self, ledger_ids: Sequence[int]) -> None:
        for start in range(0, len(ledger_ids), 1_000):
            await self.conn.execute(
                sa.update(stock_movements)
                .where(stock_movements.c.id.in_(list(ledger_ids[start : start + 1_000])))
                .values(wms_pending=False)
            )

    async def pending_outbound(self, now: datetime, limit: int) -> list[Queued]:
        """Undelivered movements that may go now, per (store, SKU) in sequence order: due, and
        with no earlier one of their row still waiting for its retry (so a row in backoff never
        holds up the others, and never is overtaken)."""
        waiting = wms_outbound.alias("waiting")
        rows = await self.conn.execute(
            sa.select(wms_outbound)
            .where(
                wms_outbound.c.status == "PENDING",
                wms_outbound.c.next_attempt_at <= now,
                ~sa.exists().where(
                    waiting.c.status == "PENDING",
                    waiting.c.store_id == wms_outbound.c.store_id,
                    waiting.c.sku == wms_outbound.c.sku,
                    waiting.c.sequence < wms_outbound.c.sequence,
                    waiting.c.next_attempt_at > now,
                ),
            )
            .order_by(wms_outbound.c.store_id, wms_outbound.c.sku, wms_outbound.c.sequence)
            .limit(limit)
        )
        return [queued_from_row(row) for row in rows]

    async def dead_movements(self, store_id: str) -> dict[str, list[str]]:
        """Per SKU of the store, the ids of its dead movements (the WMS never took them)."""
        rows = await self.conn.execute(
            sa.select(wms_outbound.c.sku, wms_outbound.c.id)
            .where(wms_outbound.c.status == "DEAD", wms_outbound.c.store_id == store_id)
            .order_by(wms_outbound.c.sku, wms_outbound.c.sequence)
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.sku, []).append(row.id)
        return found

    async def streams_in_flight(self, store_id: str, since: datetime) -> set[str]:
        """SKUs of the store with movements the WMS has not confirmed yet (or not even queued),
        or confirmed only since `since` (after the figures being compared were read)."""
        queued = await self.conn.execute(
            sa.select(wms_outbound.c.sku)
            .where(
                wms_outbound.c.store_id == store_id,
                sa.or_(
                    wms_outbound.c.status == "PENDING",
                    wms_outbound.c.delivered_at >= since,
                ),
            )
            .distinct()
        )
        unqueued = await self.conn.execute(
            sa.select(stock_movements.c.sku)
            .where(stock_movements.c.wms_pending, stock_movements.c.store_id == store_id)
            .distinct()
        )
        return {row.sku for row in queued} | {row.sku for row in unqueued}

    async def mark_delivered(self, ids: Sequence[str], now: datetime) -> None:
        if ids:
            await self.conn.execute(
                sa.update(wms_outbound)
                # Only what is still pending: a late answer never undoes a newer outcome.
                .where(wms_outbound.c.id.in_(list(ids)), wms_outbound.c.status == "PENDING")
                .values(
                    status="DELIVERED",
                    delivered_at=now,
                    attempts=wms_outbound.c.attempts + 1,
                    last_error=None,
                )
            )

    async def mark_failed(
        self, ids: Sequence[str], *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        if ids:
            await self.conn.execute(
                sa.update(wms_outbound)
                .where(wms_outbound.c.id.in_(list(ids)), wms_outbound.c.status == "PENDING")
                .values(
                    status="DEAD" if dead else "PENDING",
                    attempts=wms_outbound.c.attempts + 1,
                    next_attempt_at=next_attempt_at,
                    last_error=error[:500],
                )
            )

    async def get_outbound(self, movement_id: str, *, for_update: bool = False) -> Queued | None:
        query = sa.select(wms_outbound).where(wms_outbound.c.id == movement_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return queued_from_row(row) if row else None

    async def requeue(self, movement_id: str, sequence: int, now: datetime) -> None:
        """A dead movement goes round again, as the newest of its (store, SKU)."""
        await self.conn.execute(
            sa.update(wms_outbound)
            .where(wms_outbound.c.id == movement_id)
            .values(
                status="PENDING",
                sequence=sequence,
                attempts=0,
                next_attempt_at=now,
                last_error=None,
            )
        )

    # --- leases -----------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, now: datetime, seconds: float) -> bool:
        """Take or keep the named lease until now + seconds; False if another holder has it."""
        until = now + timedelta(seconds=seconds)
        result = await self.conn.execute(
            sa.update(worker_leases)
            .where(
                worker_leases.c.name == name,
                sa.or_(worker_leases.c.holder == holder, worker_leases.c.expires_at <= now),
            )
            .values(holder=holder, expires_at=until)
        )
        if result.rowcount == 1:
            return True
        stmt = (
            self._insert(worker_leases)
            .values(name=name, holder=holder, expires_at=until)
            .on_conflict_do_nothing(index_elements=[worker_leases.c.name])
        )
        return (await self.conn.execute(stmt)).rowcount == 1

    async def release_lease(self, name: str, holder: str, now: datetime) -> None:
        await self.conn.execute(
            sa.update(worker_leases)
            .where(worker_leases.c.name == name, worker_leases.c.holder == holder)
            .values(expires_at=now)
        )

    # --- reconciliation ---------------------------------------------------------------------------

    async def last_run_started(self) -> datetime | None:
        row = (
            await self.conn.execute(sa.select(sa.func.max(reconciliation_runs.c.started_at)))
        ).first()
        value = row[0] if row else None
        if isinstance(value, datetime) and value.tzinfo is None:  # SQLite's aggregate: naive UTC
            value = value.replace(tzinfo=UTC)
        return value

    async def add_run(self, run_id: str, now: datetime) -> None:
        await self.conn.execute(reconciliation_runs.insert().values(id=run_id, started_at=now))

    async def finish_run(self, run_id: str, now: datetime, **counts: Any) -> None:
        await self.conn.execute(
            sa.update(reconciliation_runs)
            .where(reconciliation_runs.c.id == run_id)
            .values(finished_at=now, **counts)
        )

    async def add_discrepancies(self, found: Sequence[Discrepancy]) -> None:
        if found:
            await self.conn.execute(
                stock_discrepancies.insert(),
                [
                    {
                        "id": d.id,
                        "run_id": d.run_id,
                        "store_id": d.store_id,
                        "sku": d.sku,
                        "kind": d.kind,
                        "ropos_value": d.ropos_value,
                        "wms_value": d.wms_value,
                        "status": d.status,
                        "resolution": d.resolution,
                        "detected_at": d.detected_at,
                    }
                    for d in found
                ],
            )

    async def open_discrepancy_keys(self, store_id: str) -> set[tuple[str, str]]:
        rows = await self.conn.execute(
            sa.select(stock_discrepancies.c.sku, stock_discrepancies.c.kind).where(
                stock_discrepancies.c.status == "OPEN", stock_discrepancies.c.store_id == store_id
            )
        )
        return {(row.sku, row.kind) for row in rows}

    async def resolve_discrepancy(
        self, discrepancy_id: str, note: str, by: str, now: datetime
    ) -> Discrepancy | None:
        result = await self.conn.execute(
            sa.update(stock_discrepancies)
            .where(
                stock_discrepancies.c.id == discrepancy_id, stock_discrepancies.c.status == "OPEN"
            )
            .values(status="RESOLVED", resolution=note[:500], resolved_at=now, resolved_by=by)
        )
        row = (
            await self.conn.execute(
                sa.select(stock_discrepancies).where(stock_discrepancies.c.id == discrepancy_id)
            )
        ).first()
        if row is None:
            return None
        if result.rowcount != 1 and row.status != "RESOLVED":
            return None
        return discrepancy_from_row(row)

    async def get_discrepancy(self, discrepancy_id: str) -> Discrepancy | None:
        row = (
            await self.conn.execute(
                sa.select(stock_discrepancies).where(stock_discrepancies.c.id == discrepancy_id)
            )
        ).first()
        return discrepancy_from_row(row) if row else None

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
                reservations.c.status.in_(["HELD", "READY_FOR_PICKUP"]),
            )
            .group_by(reservation_lines.c.sku)
        )
        return {row.sku: row.lines for row in rows}

    # --- accuracy ---------------------------------------------------------------------------------

    async def add_samples(self, samples: Iterable[Mapping[str, Any]]) -> None:
        rows = [dict(s) for s in samples]
        if rows:
            stmt = self._insert(accuracy_samples).on_conflict_do_nothing(
                index_elements=[
                    accuracy_samples.c.reservation_id,
                    accuracy_samples.c.sku,
                    accuracy_samples.c.source,
                ]
            )
            await self.conn.execute(stmt, rows)

    async def sampled_skus(self, reservation_id: str) -> set[str]:
        rows = await self.conn.execute(
            sa.select(accuracy_samples.c.sku).where(
                accuracy_samples.c.reservation_id == reservation_id,
                accuracy_samples.c.source == "PICK",
            )
        )
        return {row.sku for row in rows}
