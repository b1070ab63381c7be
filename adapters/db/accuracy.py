"""Stock accuracy samples: reserved lines checked at pick time and at reconciliation."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.tables import accuracy_samples, insert_on_conflict
from domain.accuracy import AccuracySample, SampleSource


class AccuracyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, samples: Iterable[AccuracySample]) -> None:
        """Record samples; a pick sample already taken for the same reservation and SKU is kept
        as it was."""
        rows = [
            {
                "store_id": s.store_id,
                "sku": s.sku,
                "source": s.source.value,
                "reservation_id": s.reservation_id,
                "lines": s.lines,
                "ok": s.ok,
                "occurred_at": s.occurred_at,
            }
            for s in samples
        ]
        if rows:
            stmt = insert_on_conflict(self.conn, accuracy_samples).on_conflict_do_nothing(
                index_elements=[
                    accuracy_samples.c.reservation_id,
                    accuracy_samples.c.sku,
                    accuracy_samples.c.source,
                ]
            )
            await self.conn.execute(stmt, rows)

    async def picked_skus(self, reservation_id: str) -> set[str]:
        """The SKUs of the reservation that already have a pick sample."""
        rows = await self.conn.execute(
            sa.select(accuracy_samples.c.sku).where(
                accuracy_samples.c.reservation_id == reservation_id,
                accuracy_samples.c.source == SampleSource.PICK.value,
            )
        )
        return {row.sku for row in rows}
