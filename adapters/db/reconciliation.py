"""Reconciliation's records: its runs and the discrepancies they found."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.tables import reconciliation_runs, stock_discrepancies
from domain.reconciliation import (
    Discrepancy,
    DiscrepancyKind,
    DiscrepancyStatus,
    ReconciliationRun,
)

_NOTE_MAX = 500


def discrepancy_from_row(row: Any) -> Discrepancy:
    return Discrepancy(
        row.id,
        row.run_id,
        row.store_id,
        row.sku,
        DiscrepancyKind(row.kind),
        row.ropos_value,
        row.wms_value,
        DiscrepancyStatus(row.status),
        row.resolution,
        row.detected_at,
        row.resolved_at,
        row.resolved_by,
    )


def run_from_row(row: Any) -> ReconciliationRun:
    return ReconciliationRun(
        id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        stores=row.stores,
        compared=row.compared,
        skipped=row.skipped,
        repaired=row.repaired,
        open=row.open,
        error=row.error,
    )


class ReconciliationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

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

    async def finish_run(self, run: ReconciliationRun) -> None:
        await self.conn.execute(
            sa.update(reconciliation_runs)
            .where(reconciliation_runs.c.id == run.id)
            .values(
                finished_at=run.finished_at,
                stores=run.stores,
                compared=run.compared,
                skipped=run.skipped,
                repaired=run.repaired,
                open=run.open,
                error=run.error,
            )
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
                        "kind": d.kind.value,
                        "ropos_value": d.ropos_value,
                        "wms_value": d.wms_value,
                        "status": d.status.value,
                        "resolution": d.resolution,
                        "detected_at": d.detected_at,
                    }
                    for d in found
                ],
            )

    async def open_kinds(self, store_id: str) -> dict[str, frozenset[DiscrepancyKind]]:
        """Per SKU of the store, the kinds of its discrepancies that are still open."""
        rows = await self.conn.execute(
            sa.select(stock_discrepancies.c.sku, stock_discrepancies.c.kind).where(
                stock_discrepancies.c.status == DiscrepancyStatus.OPEN.value,
                stock_discrepancies.c.store_id == store_id,
            )
        )
        found: dict[str, set[DiscrepancyKind]] = {}
        for row in rows:
            found.setdefault(row.sku, set()).add(DiscrepancyKind(row.kind))
        return {sku: frozenset(kinds) for sku, kinds in found.items()}

    async def get_discrepancy(self, discrepancy_id: str) -> Discrepancy | None:
        row = (
            await self.conn.execute(
                sa.select(stock_discrepancies).where(stock_discrepancies.c.id == discrepancy_id)
            )
        ).first()
        return discrepancy_from_row(row) if row else None

    async def resolve_discrepancy(
        self, discrepancy_id: str, note: str, by: str, now: datetime
    ) -> Discrepancy | None:
        """Close an open discrepancy with the note; the closed one (also when another caller
        closed it first), or None when there is none to close."""
        result = await self.conn.execute(
            sa.update(stock_discrepancies)
            .where(
                stock_discrepancies.c.id == discrepancy_id,
                stock_discrepancies.c.status == DiscrepancyStatus.OPEN.value,
            )
            .values(
                status=DiscrepancyStatus.RESOLVED.value,
                resolution=note[:_NOTE_MAX],
                resolved_at=now,
                resolved_by=by,
            )
        )
        found = await self.get_discrepancy(discrepancy_id)
        if found is None:
            return None
        if result.rowcount != 1 and found.status is not DiscrepancyStatus.RESOLVED:
            return None
        return found
