"""Claiming due work from a table, the one way every queue here does it (POS webhook deliveries,
intake messages): the due rows, oldest first, locked with SKIP LOCKED on PostgreSQL (so every
replica may claim at once without waiting on each other), and leased in the same statement's
transaction: their attempt counted and their next attempt moved to the lease's end, so a
worker that dies mid-job leaves them to be taken again. On SQLite the writer's BEGIN IMMEDIATE
already serializes claimers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim_due(
    conn: AsyncConnection,
    query: sa.Select[Any],
    table: sa.Table,
    *,
    lease_until: datetime,
    extra: dict[str, Any] | None = None,
) -> Sequence[sa.Row[Any]]:
    """Run `query` (the due rows of `table`, ordered and limited) with row locks skipping
    those another claimer holds, then lease what it found. The rows come back as read, before
    the lease (their `attempts` is one less than stored)."""
    rows: Sequence[sa.Row[Any]] = (
        await conn.execute(query.with_for_update(of=table, skip_locked=True))
    ).all()
    if rows:
        key = table.c.id
        await conn.execute(
            sa.update(table)
            .where(key.in_([row.id for row in rows]))
            .values(attempts=table.c.attempts + 1, next_attempt_at=lease_until, **(extra or {}))
        )
    return rows
