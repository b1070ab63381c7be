"""The reserve-attempt counts are written in one statement per interval, whatever the number of
stores and channels counted: a row that two counted cells map to (a channel name cut to its
stored length) is summed, not updated twice by one statement (PostgreSQL refuses that)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.db.engine import Database
from adapters.db.kpis import CHUNK, attempt_counts
from domain.kpis import ReserveOutcome, ReserveSource
from services.kpis import AttemptCounts
from services.unit_of_work import UnitOfWorkFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINUTE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def counted(db: Database) -> dict[tuple[str | None, str | None, ReserveOutcome], int]:
    async with db.read() as conn:
        rows = await attempt_counts(conn, None, MINUTE, MINUTE + timedelta(hours=1))
    return {(r.store_id, r.channel, r.outcome): r.count for r in rows}


async def test_many_cells_and_two_that_are_one_row_are_written_at_once(
    uow: UnitOfWorkFactory, clean_db: Database
) -> None:
    counts = AttemptCounts()
    counts.start(uow)
    long = "c" * 64
    for store in range(CHUNK + 5):  # more cells than one statement takes
        counts.add(
            ReserveSource.GRAPHQL,
            ReserveOutcome.RESERVED,
            MINUTE,
            store_id=f"S{store}",
            channel="web",
        )
    counts.add(
        ReserveSource.INTAKE, ReserveOutcome.OUT_OF_STOCK, MINUTE, store_id="S1", channel=long + "x"
    )
    counts.add(
        ReserveSource.INTAKE, ReserveOutcome.OUT_OF_STOCK, MINUTE, store_id="S1", channel=long + "y"
    )
    await counts.stop()  # writes what is pending

    found = await counted(clean_db)
    assert len(found) == CHUNK + 6
    assert found[("S7", "web", ReserveOutcome.RESERVED)] == 1
    assert found[("S1", long, ReserveOutcome.OUT_OF_STOCK)] == 2
    assert counts.totals()[("intake", "out_of_stock")] == 2


async def test_a_second_interval_adds_to_the_minutes_row(
    uow: UnitOfWorkFactory, clean_db: Database
) -> None:
    counts = AttemptCounts()
    counts.start(uow)
    for _ in range(2):
        counts.add(
            ReserveSource.GRAPHQL, ReserveOutcome.RESERVED, MINUTE, store_id="S1", channel=None
        )
        await counts.flush()

    assert (await counted(clean_db))[("S1", None, ReserveOutcome.RESERVED)] == 2
    await counts.stop()
