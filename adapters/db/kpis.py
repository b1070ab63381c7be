"""The KPIs' storage: reserve attempts counted by minute (written in sums by
services.kpis.AttemptCounts), and the reads the figures are made from, each per store and
channel in one grouped query: attempts by outcome, durations between two moments of
reservations, and how reservations ended."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.tables import accuracy_samples, insert_on_conflict, reservations, reserve_attempts
from domain.accuracy import SampleSource
from domain.kpis import (
    AttemptCount,
    Cell,
    DurationCell,
    Endings,
    ReserveOutcome,
    Sample,
)
from services.unit_of_work import AttemptCell

# Percentiles are read from at most this many of the window's newest durations of a kind (the
# counts and means are exact whatever the window holds).
SAMPLE_LIMIT = 20_000
NONE = ""  # the key of "no store" and "no channel" in reserve_attempts


# Cells per statement: 6 parameters each, well under asyncpg's and SQLite's limits.
CHUNK = 1000


class AttemptRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def count(self, cells: Sequence[tuple[AttemptCell, int]]) -> None:
        """Add each cell's attempts to its minute's count: one statement per CHUNK cells (one
        round trip whatever the number of stores and channels counted in the interval)."""
        rows: dict[tuple[datetime, str, str, str, str], int] = {}
        for (minute, store_id, channel, source, outcome), n in cells:
            # Two cells may be one row once stored (a long channel cut to 64 characters): one
            # statement must not update a row twice, so they are summed first.
            key = (minute, store_id or NONE, (channel or NONE)[:64], source.value, outcome.value)
            rows[key] = rows.get(key, 0) + n
        items = list(rows.items())
        for start in range(0, len(items), CHUNK):
            stmt = insert_on_conflict(self.conn, reserve_attempts).values(
                [
                    {
                        "minute": minute,
                        "store_id": store_id,
                        "channel": channel,
                        "source": source,
                        "outcome": outcome,
                        "count": n,
                    }
                    for (minute, store_id, channel, source, outcome), n in items[
                        start : start + CHUNK
                    ]
                ]
            )
            await self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[
                        reserve_attempts.c.minute,
                        reserve_attempts.c.store_id,
                        reserve_attempts.c.channel,
                        reserve_attempts.c.source,
                        reserve_attempts.c.outcome,
                    ],
                    set_={"count": reserve_attempts.c.count + stmt.excluded.count},
                )
            )


async def attempt_counts(
    conn: AsyncConnection, store_id: str | None, since: datetime, until: datetime
) -> list[AttemptCount]:
    """Attempts per store, channel and outcome in the minutes the window touches."""
    c = reserve_attempts.c
    query = (
        sa.select(c.store_id, c.channel, c.outcome, sa.func.sum(c.count).label("n"))
        .where(c.minute >= since.replace(second=0, microsecond=0), c.minute <= until)
        .group_by(c.store_id, c.channel, c.outcome)
    )
    if store_id is not None:
        query = query.where(c.store_id == store_id)
    return [
        AttemptCount(
            row.store_id or None, row.channel or None, ReserveOutcome(row.outcome), int(row.n)
        )
        for row in await conn.execute(query)
    ]


def seconds_between(conn: AsyncConnection, start: Any, end: Any) -> sa.ColumnElement[float]:
    """`end - start` in seconds, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return sa.type_coerce(sa.func.extract("epoch", end - start), sa.Float)
    # SQLite keeps UTC as naive text, which julianday reads.
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86_400.0


def _seconds(value: Any) -> float:
    """To the millisecond: SQLite's julianday arithmetic is off by microseconds."""
    return max(0.0, round(float(value), 3))


def _count_if(condition: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


async def durations(
    conn: AsyncConnection,
    start: sa.Column[Any],
    end: sa.Column[Any],
    since: datetime,
    until: datetime,
    *,
    store_id: str | None = None,
    target_seconds: float | None = None,
) -> tuple[list[DurationCell], list[Sample]]:
    """`end - start` of the reservations whose `end` falls in the window (both set), per store
    and channel (count, sum, within the target), and the newest SAMPLE_LIMIT of them."""
    r = reservations.c
    took = seconds_between(conn, start, end)
    window = sa.and_(start.is_not(None), end >= since, end <= until)
    if store_id is not None:
        window = sa.and_(window, r.store_id == store_id)
    # A millisecond of slack: SQLite's julianday arithmetic is off by microseconds.
    within = (
        _count_if(took <= target_seconds + 0.001) if target_seconds is not None else sa.literal(0)
    )
    summary = (
        sa.select(
            r.store_id,
            r.channel,
            sa.func.count().label("n"),
            sa.func.sum(took).label("total"),
            within.label("within"),
        )
        .where(window)
        .group_by(r.store_id, r.channel)
    )
    cells = [
        DurationCell(row.store_id, row.channel, int(row.n), _seconds(row.total), int(row.within))
        for row in await conn.execute(summary)
    ]
    newest = (
        sa.select(r.store_id, r.channel, took.label("s"))
        .where(window)
        .order_by(end.desc())
        .limit(SAMPLE_LIMIT)
    )
    sample = [(row.store_id, row.channel, _seconds(row.s)) for row in await conn.execute(newest)]
    return cells, sample


async def endings(
    conn: AsyncConnection, since: datetime, until: datetime, *, store_id: str | None = None
) -> dict[Cell, Endings]:
    """How the reservations that ended in the window ended, and the picks taken in it, per
    store and channel."""
    r = reservations.c

    def within(column: sa.Column[Any]) -> Any:
        return sa.and_(column >= since, column <= until)

    ready = r.ready_at.is_not(None)
    query = (
        sa.select(
            r.store_id,
            r.channel,
            _count_if(within(r.collected_at)).label("collected"),
            _count_if(within(r.cancelled_at)).label("cancelled"),
            _count_if(within(r.expired_at)).label("expired"),
            _count_if(sa.and_(within(r.expired_at), ready)).label("expired_after_ready"),
            _count_if(
                sa.and_(
                    ready,
                    sa.or_(within(r.collected_at), within(r.cancelled_at), within(r.expired_at)),
                )
            ).label("ended_after_ready"),
        )
        .where(sa.or_(within(r.collected_at), within(r.cancelled_at), within(r.expired_at)))
        .group_by(r.store_id, r.channel)
    )
    if store_id is not None:
        query = query.where(r.store_id == store_id)
    found: dict[Cell, Endings] = {}
    for row in await conn.execute(query):
        found[(row.store_id, row.channel)] = Endings(
            collected=int(row.collected),
            cancelled=int(row.cancelled),
            expired=int(row.expired),
            expired_after_ready=int(row.expired_after_ready),
            ended_after_ready=int(row.ended_after_ready),
            picked=0,
            short_picked=0,
        )
    for (store, channel), (picked, short) in (
        await _picks(conn, since, until, store_id=store_id)
    ).items():
        ended = found.get((store, channel), Endings(0, 0, 0, 0, 0, 0, 0))
        found[(store, channel)] = ended + Endings(0, 0, 0, 0, 0, picked, short)
    return found


async def _picks(
    conn: AsyncConnection, since: datetime, until: datetime, *, store_id: str | None
) -> dict[Cell, tuple[int, int]]:
    """Reservations picked in the window (a pick sample taken), and of them those with a line
    not found in full, per store and channel."""
    a = accuracy_samples.c
    per_reservation = (
        sa.select(
            a.reservation_id,
            sa.func.min(sa.case((a.ok < a.lines, 0), else_=1)).label("in_full"),
        )
        .where(
            a.source == SampleSource.PICK.value,
            a.reservation_id.is_not(None),
            a.occurred_at >= since,
            a.occurred_at <= until,
        )
        .group_by(a.reservation_id)
    )
    if store_id is not None:
        per_reservation = per_reservation.where(a.store_id == store_id)
    picks = per_reservation.subquery()
    r = reservations.c
    query = (
        sa.select(
            r.store_id,
            r.channel,
            sa.func.count().label("picked"),
            sa.func.coalesce(sa.func.sum(1 - picks.c.in_full), 0).label("short"),
        )
        .select_from(picks.join(reservations, reservations.c.id == picks.c.reservation_id))
        .group_by(r.store_id, r.channel)
    )
    return {
        (row.store_id, row.channel): (int(row.picked), int(row.short))
        for row in await conn.execute(query)
    }
