"""Retention: the bookkeeping tables (published events, delivered webhooks and WMS movements,
applied WMS batches, idempotency keys, reconciliation records, finished intake messages with
their raw bodies, the intake's and the reserve attempts' per-minute counts) would grow without end; what is
older than the retention period is deleted, in small transactions. Business records (reservations,
their lines, payments, the stock ledger) are never deleted here."""

from __future__ import annotations

import logging
from datetime import timedelta

from domain.clock import Clock
from services.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

KINDS = (
    "outbox",
    "webhook_deliveries",
    "wms_outbound",
    "wms_inbox",
    "idempotency_keys",
    "stock_discrepancies",
    "reconciliation_runs",
    "intake_messages",
    "intake_counts",
    "accuracy_samples",
    "reserve_attempts",
)
# The KPIs are asked for over windows of up to 366 days: what they are counted from (stock
# accuracy's samples, the reserve attempts' counts) stays at least that long.
ACCURACY_DAYS = 367
KPI_KINDS = ("accuracy_samples", "reserve_attempts")
BATCH = 2_000


async def sweep(*, uow: UnitOfWorkFactory, clock: Clock, days: float) -> dict[str, int]:
    """Delete what is older than `days` (accuracy samples: at least ACCURACY_DAYS); returns how
    many rows went per table. Safe in several processes at once (a row deleted twice is one
    deleted row)."""
    if days <= 0:
        return {}
    now = clock.now()
    deleted: dict[str, int] = {}
    for kind in KINDS:
        keep = max(days, ACCURACY_DAYS) if kind in KPI_KINDS else days
        cutoff = now - timedelta(days=keep)
        total = 0
        while True:
            async with uow() as tx:
                gone = await tx.retention.purge(kind, cutoff, BATCH)
                await tx.commit()
            total += gone
            if gone < BATCH:
                break
        if total:
            deleted[kind] = total
    if deleted:
        log.info("retention sweep", extra={"deleted": deleted})
    return deleted
