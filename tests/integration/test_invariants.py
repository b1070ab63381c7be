"""The invariant checker the other tests rely on: it must see a broken invariant."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from adapters.db import invariants
from adapters.db.engine import Database
from adapters.db.tables import customer_holds, stock_levels
from adapters.db.uow import SqlUnitOfWork
from services import reservations
from tests.clock import FakeClock
from tests.conftest import START, reset
from tests.helpers import given_stock, given_stores, reserve_cmd, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_consistent_database_has_no_violations_and_a_broken_one_has(db: Database) -> None:
    await reset(db)
    clock = FakeClock(START)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(db)

    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 5, ("S1", "B"): 1}, safety=2)
    await reservations.reserve(reserve_cmd(lines={"A": 3}, store_id="S1"), uow=uow, clock=clock)
    assert await invariants.violations(db) == {}

    async with db.write() as conn:
        await conn.execute(
            sa.update(stock_levels).where(stock_levels.c.sku == "A").values(reserved=4)
        )
        await conn.execute(sa.update(customer_holds).values(active_reservations=7))
        await conn.commit()
    broken = await invariants.violations(db)
    await reset(db)

    assert set(broken) == {
        "reserved equals the units of active reservation lines",
        "no oversell (reserved within on hand less safety stock)",
        "the ledger adds up to on hand and reserved",
        "customer reservation counters match",
    }
