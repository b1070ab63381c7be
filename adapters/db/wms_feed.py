"""The outbound feed to the WMS: the ledger's movements not yet queued, their numbering per
(store, SKU), and the queue of movements with where each delivery stands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.fast import Statements
from adapters.db.tables import insert_on_conflict, stock_movements, wms_outbound, wms_streams
from domain.stock import LedgerEntry, Movement
from domain.wms import KIND_OF_REASON, MovementKind, MovementStatus, Queued, WmsMovement

_NEXT_SEQUENCES_SQL = (
    "INSERT INTO wms_streams (store_id, sku, last_sequence) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) "
    "ON CONFLICT (store_id, sku) DO UPDATE "
    "SET last_sequence = wms_streams.last_sequence + EXCLUDED.last_sequence "
    "RETURNING store_id, sku, last_sequence"
)
_INSERT_MOVEMENT_ROWS = wms_outbound.insert()
_IDS_PER_STATEMENT = 1_000
_ERROR_MAX = 500
_PENDING = MovementStatus.PENDING.value


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
        MovementStatus(row.status),
        row.last_error,
        row.delivered_at,
        row.discarded_at,
        row.discarded_by,
        row.discard_reason,
    )


class WmsFeedRepository:
    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements

    async def unqueued(self, limit: int) -> list[LedgerEntry]:
        """Ledger lines the WMS must hear of and that are not in the feed yet, oldest first."""
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
        return [
            LedgerEntry(
                row.id,
                Movement(
                    row.store_id,
                    row.sku,
                    row.on_hand_delta,
                    row.reserved_delta,
                    row.reason,
                    row.reservation_id,
                ),
                row.occurred_at,
            )
            for row in rows.all()
            if row.reason in KIND_OF_REASON
        ]

    async def next_sequences(
        self, counts: Mapping[tuple[str, str], int]
    ) -> dict[tuple[str, str], int]:
        """Reserve `count` sequence numbers per (store, SKU); returns the first of each."""
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
        first: dict[tuple[str, str], int] = {}
        for (store_id, sku), count in sorted(counts.items()):
            stmt = insert_on_conflict(self.conn, wms_streams).values(
                store_id=store_id, sku=sku, last_sequence=count
            )
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
        """Queue movements, each with the ledger line it came from (None: made by
        reconciliation)."""
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
                    "status": _PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for m, ledger_id in movements
            ],
        )

    async def clear_pending(self, ledger_ids: Sequence[int]) -> None:
        for start in range(0, len(ledger_ids), _IDS_PER_STATEMENT):
            await self.conn.execute(
                sa.update(stock_movements)
                .where(
                    stock_movements.c.id.in_(list(ledger_ids[start : start + _IDS_PER_STATEMENT]))
                )
                .values(wms_pending=False)
            )

    async def forget_unqueued(self) -> int:
        """Mark every ledger line not yet queued as not for the WMS; how many there were."""
        result = await self.conn.execute(
            sa.update(stock_movements)
            .where(stock_movements.c.wms_pending)
            .values(wms_pending=False)
        )
        return int(result.rowcount or 0)

    async def pending(self, now: datetime, limit: int) -> list[Queued]:
        """Undelivered movements that may go now, per (store, SKU) in sequence order: due, and
        with no earlier one of their row still waiting for its retry (so a row in backoff never
        holds up the others, and never is overtaken)."""
        waiting = wms_outbound.alias("waiting")
        rows = await self.conn.execute(
            sa.select(wms_outbound)
            .where(
                wms_outbound.c.status == _PENDING,
                wms_outbound.c.next_attempt_at <= now,
                ~sa.exists().where(
                    waiting.c.status == _PENDING,
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

    async def dead_of_store(self, store_id: str) -> dict[str, list[str]]:
        """Per SKU of the store, the ids of its dead movements (the WMS never took them)."""
        rows = await self.conn.execute(
            sa.select(wms_outbound.c.sku, wms_outbound.c.id)
            .where(
                wms_outbound.c.status == MovementStatus.DEAD.value,
                wms_outbound.c.store_id == store_id,
            )
            .order_by(wms_outbound.c.sku, wms_outbound.c.sequence)
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.sku, []).append(row.id)
        return found

    async def in_flight(self, store_id: str, since: datetime) -> set[str]:
        """SKUs of the store with movements the WMS has not confirmed yet (or not even queued),
        or confirmed only since `since` (after the figures being compared were read)."""
        queued = await self.conn.execute(
            sa.select(wms_outbound.c.sku)
            .where(
                wms_outbound.c.store_id == store_id,
                sa.or_(wms_outbound.c.status == _PENDING, wms_outbound.c.delivered_at >= since),
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
                .where(wms_outbound.c.id.in_(list(ids)), wms_outbound.c.status == _PENDING)
                .values(
                    status=MovementStatus.DELIVERED.value,
                    delivered_at=now,
                    attempts=wms_outbound.c.attempts + 1,
                    last_error=None,
                )
            )

    async def mark_failed(
        self, ids: Sequence[str], *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        if ids:
            status = MovementStatus.DEAD if dead else MovementStatus.PENDING
            await self.conn.execute(
                sa.update(wms_outbound)
                .where(wms_outbound.c.id.in_(list(ids)), wms_outbound.c.status == _PENDING)
                .values(
                    status=status.value,
                    attempts=wms_outbound.c.attempts + 1,
                    next_attempt_at=next_attempt_at,
                    last_error=error[:_ERROR_MAX],
                )
            )

    async def get(self, movement_id: str, *, for_update: bool = False) -> Queued | None:
        query = sa.select(wms_outbound).where(wms_outbound.c.id == movement_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return queued_from_row(row) if row else None

    async def discard(self, movement_id: str, *, actor: str, reason: str, now: datetime) -> None:
        """A dead movement given up on, with who did it, why and when."""
        await self.conn.execute(
            sa.update(wms_outbound)
            .where(
                wms_outbound.c.id == movement_id,
                wms_outbound.c.status == MovementStatus.DEAD.value,
            )
            .values(
                status=MovementStatus.DISCARDED.value,
                discarded_at=now,
                discarded_by=actor[:200],
                discard_reason=reason[:500],
            )
        )

    async def requeue(self, movement_id: str, sequence: int, now: datetime) -> None:
        """A dead movement goes round again, as the newest of its (store, SKU)."""
        await self.conn.execute(
            sa.update(wms_outbound)
            .where(wms_outbound.c.id == movement_id)
            .values(
                status=_PENDING,
                sequence=sequence,
                attempts=0,
                next_attempt_at=now,
                last_error=None,
            )
        )
