"""What /metrics reads from the database at scrape time: a handful of aggregate queries, each on
an index and over the rows that are waiting or active (few, whatever the history holds), except
the intake's counts by status, which run over the messages retention keeps. The gateway caches
the answer for a moment and bounds it with a timeout (gateway/metrics.py); here it is only read.

Times come back as they are stored: the gateway turns them into ages with its clock when it
renders them, so a cached figure still ages while it is cached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import QueuePool

from adapters.db.engine import Database
from adapters.db.fast import Statements
from adapters.db.intake import IntakeRepository
from adapters.db.tables import (
    channel_accounts,
    intake_messages,
    outbox,
    reservations,
    webhook_deliveries,
    wms_outbound,
)
from domain.intake import IntakeStatus
from domain.reservations import ACTIVE_STATUSES

# The statuses of the queues' rows that need watching: still to go, and given up on.
QUEUE_STATUSES = ("PENDING", "DEAD")
ACTIVE = tuple(sorted(s.value for s in ACTIVE_STATUSES))
INTAKE_STATUSES = tuple(s.value for s in IntakeStatus)


@dataclass(frozen=True, slots=True)
class AccountIntake:
    """One channel account's messages held now: the deliveries stored (a body holding several
    orders once), every message by status, the backlog (RECEIVED + RETRYING) and when its
    oldest was received."""

    received: int = 0
    statuses: Mapping[str, int] = field(default_factory=dict)
    backlog: int = 0
    oldest_waiting: datetime | None = None


@dataclass(frozen=True, slots=True)
class DatabaseFigures:
    # Active reservations by status, and the earliest expiry among them (None: none active).
    reservations: Mapping[str, int]
    earliest_active_expiry: datetime | None
    # Outbox events not yet published, and when the oldest of them happened.
    unpublished: int
    oldest_unpublished: datetime | None
    # POS webhook deliveries and WMS movements by QUEUE_STATUSES.
    webhooks: Mapping[str, int]
    wms_movements: Mapping[str, int]
    # Per (channel, account): every configured account, and any that messages came from.
    intake: Mapping[tuple[str, str], AccountIntake]


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """The connection pool now: its size, connections in use, open beyond the size, idle."""

    size: int
    checked_out: int
    overflow: int
    idle: int


async def read_figures(db: Database) -> DatabaseFigures:
    """Every figure, read on one connection (on SQLite in one read transaction)."""
    async with db.read() as conn:
        r = reservations.c
        active: dict[str, int] = dict.fromkeys(ACTIVE, 0)
        earliest: datetime | None = None
        for status, n, soonest in await conn.execute(
            sa.select(r.status, sa.func.count(), sa.func.min(r.expires_at))
            .where(r.status.in_(ACTIVE))
            .group_by(r.status)
        ):
            active[status] = int(n)
            soonest = _utc(soonest)
            if soonest is not None and (earliest is None or soonest < earliest):
                earliest = soonest

        o = outbox.c
        unpublished = int(
            (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(outbox).where(o.published_at.is_(None))
                )
            ).scalar_one()
        )
        # The lowest position among the unpublished is the oldest (the index's order).
        oldest_unpublished = (
            await conn.execute(
                sa.select(o.occurred_at)
                .where(o.published_at.is_(None))
                .order_by(o.published_at, o.position)
                .limit(1)
            )
        ).scalar_one_or_none()

        return DatabaseFigures(
            reservations=active,
            earliest_active_expiry=earliest,
            unpublished=unpublished,
            oldest_unpublished=_utc(oldest_unpublished),
            webhooks=await _queue(conn, webhook_deliveries),
            wms_movements=await _queue(conn, wms_outbound),
            intake=await _intake(conn),
        )


async def _queue(conn: Any, table: sa.Table) -> dict[str, int]:
    counts = dict.fromkeys(QUEUE_STATUSES, 0)
    for status, n in await conn.execute(
        sa.select(table.c.status, sa.func.count())
        .where(table.c.status.in_(QUEUE_STATUSES))
        .group_by(table.c.status)
    ):
        counts[status] = int(n)
    return counts


async def _intake(conn: Any) -> dict[tuple[str, str], AccountIntake]:
    m = intake_messages.c
    keys = {
        (channel, account)
        for channel, account in await conn.execute(
            sa.select(channel_accounts.c.channel, channel_accounts.c.account)
        )
    }
    statuses: dict[tuple[str, str], dict[str, int]] = {}
    received: dict[tuple[str, str], int] = {}
    for channel, account, status, n, deliveries in await conn.execute(
        sa.select(
            m.channel,
            m.account,
            m.status,
            sa.func.count(),
            sa.func.sum(sa.case((m.parent_id.is_(None), 1), else_=0)),
        ).group_by(m.channel, m.account, m.status)
    ):
        key = (channel, account)
        statuses.setdefault(key, {})[status] = int(n)
        received[key] = received.get(key, 0) + int(deliveries or 0)
    # The repository's own count of the backlog (the partial index of waiting rows); it reads
    # with the connection alone, so no statement runner of a unit of work is needed.
    waiting = await IntakeRepository(conn, Statements(conn, None)).waiting()
    keys |= set(statuses) | set(waiting)
    found = {}
    for key in keys:
        backlog, oldest = waiting.get(key, (0, None))
        found[key] = AccountIntake(
            received=received.get(key, 0),
            statuses={status: statuses.get(key, {}).get(status, 0) for status in INTAKE_STATUSES},
            backlog=backlog,
            oldest_waiting=oldest,
        )
    return found


def pool_status(db: Database) -> PoolStatus | None:
    """The engine's pool figures (no I/O); None for a pool that keeps no connections."""
    pool = db.engine.pool
    if not isinstance(pool, QueuePool):
        return None
    # overflow() counts from -size while the pool is not yet full: only the connections opened
    # beyond the size are overflow.
    return PoolStatus(
        size=pool.size(),
        checked_out=pool.checkedout(),
        overflow=max(0, pool.overflow()),
        idle=pool.checkedin(),
    )


def _utc(value: datetime | str | None) -> datetime | None:
    # SQLite's min() of a timestamp comes back as text, and naive.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
