"""Deleting what has served its purpose: bookkeeping of deliveries and runs, never business records
(reservations, payments, the stock ledger stay)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.tables import (
    accuracy_samples,
    idempotency_keys,
    intake_counts,
    intake_messages,
    outbox,
    reconciliation_runs,
    reserve_attempts,
    stock_discrepancies,
    webhook_deliveries,
    wms_inbox,
    wms_outbound,
)
from domain.intake import IntakeStatus
from domain.reconciliation import DiscrepancyStatus
from domain.webhooks import DeliveryStatus
from domain.wms import BatchStatus, MovementStatus

_Rule = tuple[sa.Table, Callable[[datetime], Any]]

_child = intake_messages.alias("child")


def _intake_done(cutoff: datetime) -> Any:
    """Intake messages that ended (their raw bodies and the customer data in them go with them),
    except dead letters waiting for ops and the parents of messages still waiting or dead (a
    child reads its order from its parent's body)."""
    waiting = sa.exists().where(
        (_child.c.parent_id == intake_messages.c.id)
        & _child.c.status.in_([IntakeStatus.RECEIVED, IntakeStatus.RETRYING, IntakeStatus.DEAD])
    )
    return (
        intake_messages.c.status.in_(
            [s for s in IntakeStatus if s.final and s is not IntakeStatus.DEAD]
        )
        & (intake_messages.c.finished_at < cutoff)
        & ~waiting
    )


# What may go once older than the cutoff: each a table and the condition on its rows.
RULES: Mapping[str, _Rule] = {
    # Published events: consumers have had them long ago.
    "outbox": (
        outbox,
        lambda cutoff: outbox.c.published_at.is_not(None) & (outbox.c.published_at < cutoff),
    ),
    # Delivered and discarded webhooks and WMS movements (dead and pending ones stay until
    # someone acts).
    "webhook_deliveries": (
        webhook_deliveries,
        lambda cutoff: (
            (
                (webhook_deliveries.c.status == DeliveryStatus.DELIVERED)
                & (webhook_deliveries.c.delivered_at < cutoff)
            )
            | (
                (webhook_deliveries.c.status == DeliveryStatus.DISCARDED)
                & (webhook_deliveries.c.discarded_at < cutoff)
            )
        ),
    ),
    "wms_outbound": (
        wms_outbound,
        lambda cutoff: (
            (
                (wms_outbound.c.status == MovementStatus.DELIVERED)
                & (wms_outbound.c.delivered_at < cutoff)
            )
            | (
                (wms_outbound.c.status == MovementStatus.DISCARDED)
                & (wms_outbound.c.discarded_at < cutoff)
            )
        ),
    ),
    # Stock batches applied or rejected (their levels are in the ledger; a batch still waiting
    # stays).
    "wms_inbox": (
        wms_inbox,
        lambda cutoff: (
            wms_inbox.c.status.in_([BatchStatus.APPLIED, BatchStatus.REJECTED])
            & (wms_inbox.c.finished_at < cutoff)
        ),
    ),
    # A retry of a reserve this long after its first try is a new request.
    "idempotency_keys": (idempotency_keys, lambda cutoff: idempotency_keys.c.created_at < cutoff),
    # Reconciliation's records; open discrepancies stay until ops close them.
    "stock_discrepancies": (
        stock_discrepancies,
        lambda cutoff: (
            (stock_discrepancies.c.status != DiscrepancyStatus.OPEN)
            & (stock_discrepancies.c.detected_at < cutoff)
        ),
    ),
    "reconciliation_runs": (
        reconciliation_runs,
        lambda cutoff: reconciliation_runs.c.started_at < cutoff,
    ),
    "intake_messages": (intake_messages, _intake_done),
    # The intake's per-minute counts of what it kept no message for (its health's windows).
    "intake_counts": (intake_counts, lambda cutoff: intake_counts.c.minute < cutoff),
    "accuracy_samples": (
        accuracy_samples,
        lambda cutoff: accuracy_samples.c.occurred_at < cutoff,
    ),
    "reserve_attempts": (reserve_attempts, lambda cutoff: reserve_attempts.c.minute < cutoff),
}


class RetentionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def purge(self, kind: str, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` rows of `kind` older than the cutoff; how many went."""
        table, condition = RULES[kind]
        key = list(table.primary_key.columns)
        if len(key) == 1:
            chosen = sa.select(key[0]).where(condition(cutoff)).limit(limit)
            stmt = sa.delete(table).where(key[0].in_(chosen.scalar_subquery()))
        else:
            chosen = sa.select(*key).where(condition(cutoff)).limit(limit)
            stmt = sa.delete(table).where(sa.tuple_(*key).in_(chosen))
        result = await self.conn.execute(stmt)
        return int(result.rowcount or 0)
