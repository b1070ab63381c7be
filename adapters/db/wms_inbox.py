"""The inbox of stock-levels batches from the WMS: each stored before it is acknowledged, then
marked applied or rejected."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.tables import insert_on_conflict, wms_inbox
from domain.wms import BatchStatus, StoredBatch

_ERROR_MAX = 1_000


class WmsInboxRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def find(self, batch_id: str, *, for_update: bool = False) -> StoredBatch | None:
        query = sa.select(wms_inbox).where(wms_inbox.c.batch_id == batch_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        if row is None:
            return None
        return StoredBatch(
            row.batch_id,
            row.payload,
            BatchStatus(row.status),
            row.attempts,
            row.applied,
            row.stale,
            row.error_code,
            row.error,
            row.received_at,
        )

    async def lock(self, batch_id: str) -> BatchStatus | None:
        """Lock the batch's row (not reading its payload); its status, or None if unknown."""
        row = (
            await self.conn.execute(
                sa.select(wms_inbox.c.status)
                .where(wms_inbox.c.batch_id == batch_id)
                .with_for_update()
            )
        ).first()
        return BatchStatus(row.status) if row else None

    async def add(
        self, batch_id: str, payload: Mapping[str, Any], levels: int, now: datetime
    ) -> bool:
        """Store a batch as RECEIVED; False if its id is already stored."""
        stmt = (
            insert_on_conflict(self.conn, wms_inbox)
            .values(
                batch_id=batch_id,
                payload=dict(payload),
                levels=levels,
                status=BatchStatus.RECEIVED.value,
                attempts=0,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=[wms_inbox.c.batch_id])
        )
        return (await self.conn.execute(stmt)).rowcount == 1

    async def finish(
        self,
        batch_id: str,
        *,
        status: BatchStatus,
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
                status=status.value,
                applied=applied,
                stale=stale,
                error_code=error_code,
                error=error[:_ERROR_MAX] if error else None,
                finished_at=now,
                attempts=wms_inbox.c.attempts + 1,
            )
        )

    async def count_attempt(self, batch_id: str, error: str) -> None:
        await self.conn.execute(
            sa.update(wms_inbox)
            .where(wms_inbox.c.batch_id == batch_id)
            .values(attempts=wms_inbox.c.attempts + 1, error=error[:_ERROR_MAX])
        )

    async def to_retry(self, received_before: datetime, limit: int) -> list[tuple[str, int]]:
        """(batch id, attempts so far) of stored batches not applied yet, oldest first."""
        rows = await self.conn.execute(
            sa.select(wms_inbox.c.batch_id, wms_inbox.c.attempts)
            .where(
                wms_inbox.c.status == BatchStatus.RECEIVED.value,
                wms_inbox.c.received_at <= received_before,
            )
            .order_by(wms_inbox.c.received_at)
            .limit(limit)
        )
        return [(row.batch_id, row.attempts) for row in rows]
