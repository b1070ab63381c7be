"""A unit of work on PostgreSQL is one transaction, whether a statement goes through SQLAlchemy or
straight to asyncpg (adapters/db/fast.py), and every connection it gives back to the pool is out
of any transaction: after a failed statement, a lost connection, a cancelled request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from adapters.db.engine import Database
from adapters.db.tables import idempotency_keys, stock_levels, stock_movements
from adapters.db.uow import SqlUnitOfWork
from domain.stock import Movement, StockLevel
from services.unit_of_work import RetryableConflict, UnitOfWorkFactory
from tests.clock import FakeClock

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip(
            "the asyncpg side of a unit of work is PostgreSQL's: set ROPOS_TEST_DATABASE_URL"
        )


async def written(db: Database) -> tuple[int, int]:
    """(rows written through SQLAlchemy, through the statements), as another connection sees."""
    async with db.read() as conn:
        keys = (
            await conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys))
        ).scalar_one()
        lines = (
            await conn.execute(sa.select(sa.func.count()).select_from(stock_movements))
        ).scalar_one()
    return keys, lines


def key_row(clock: FakeClock, group_id: str) -> dict[str, object]:
    return {
        "customer_id": "c1",
        "key": "k",
        "request_hash": "hash",
        "group_id": group_id,
        "created_at": clock.now(),
    }


async def write_both_ways(tx: SqlUnitOfWork, clock: FakeClock, lines: int) -> None:
    # A key through SQLAlchemy's connection; the ledger lines straight on asyncpg (one line:
    # a prepared executemany; 40: one statement of arrays). No deltas: the stock stays as it was.
    await tx.conn.execute(idempotency_keys.insert(), key_row(clock, "g-1"))
    await tx.ledger.record([Movement("S1", "A", 0, 0, "SYNC")] * lines, clock.now())


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("lines", [1, 40])
async def test_both_ways_are_gone_after_leaving_without_commit(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, lines: int
) -> None:
    async with SqlUnitOfWork(clean_db) as tx:
        await write_both_ways(tx, clock, lines)
        assert await written(clean_db) == (0, 0)

    assert await written(clean_db) == (0, 0)


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("lines", [1, 40])
async def test_both_ways_are_there_after_the_commit_and_not_before(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, lines: int
) -> None:
    async with SqlUnitOfWork(clean_db) as tx:
        await write_both_ways(tx, clock, lines)
        assert await written(clean_db) == (0, 0)
        await tx.commit()
        assert await written(clean_db) == (1, lines)

    assert await written(clean_db) == (1, lines)


@pytest.mark.usefixtures("postgres_only")
async def test_a_refused_unit_of_work_after_writes_both_ways_takes_them_all_back(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    async with SqlUnitOfWork(clean_db) as tx:
        await tx.conn.execute(idempotency_keys.insert(), key_row(clock, "g-1"))
        await tx.commit()

    async def write_then_collide() -> None:
        async with SqlUnitOfWork(clean_db) as tx:
            await tx.ledger.record([Movement("S1", "A", 0, 0, "SYNC")], clock.now())
            await tx.conn.execute(idempotency_keys.insert(), key_row(clock, "g-2"))

    with pytest.raises(RetryableConflict):
        await write_then_collide()

    assert await written(clean_db) == (1, 0)


@pytest.mark.usefixtures("postgres_only")
async def test_a_single_statement_unit_of_work_commits_each_statement_as_it_runs(
    clock: FakeClock, clean_db: Database
) -> None:
    async with SqlUnitOfWork(clean_db, single=True) as tx:
        await tx.ledger.record([Movement("S1", "A", 0, 0, "SYNC")], clock.now())
        assert await written(clean_db) == (0, 1)  # seen before any commit
        await tx.conn.execute(idempotency_keys.insert(), key_row(clock, "g-1"))
        assert await written(clean_db) == (1, 1)
    # Left without commit: nothing to take back, and no transaction held open.
    assert await written(clean_db) == (1, 1)
    async with clean_db.read() as conn:
        open_transactions = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%'"
                )
            )
        ).scalar_one()
    assert open_transactions == 0


# --- what goes back to the pool ------------------------------------------------------------------


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Database]:
    """A database handle with a pool of one connection: the next unit of work gets the same one,
    unless the last one threw it away."""
    db = Database(database_url, pool_size=1)
    yield db
    await db.dispose()


async def pid_of(tx: SqlUnitOfWork) -> int:
    pid: int = (await tx.conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


async def in_transaction(db: Database) -> list[int]:
    """The backends of this database sitting in a transaction with nothing to run."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        )
        return list(rows.scalars())


async def commit_both_ways(db: Database, clock: FakeClock) -> int:
    """Write both ways in a new unit of work and commit; returns its connection's backend."""
    async with SqlUnitOfWork(db) as tx:
        pid = await pid_of(tx)
        await write_both_ways(tx, clock, 1)
        await tx.commit()
    return pid


async def fail_a_statement(tx: SqlUnitOfWork, way: str, clock: FakeClock) -> None:
    """A stock row of a store that does not exist: the server refuses it (foreign key)."""
    if way == "asyncpg":
        await tx.levels.insert([StockLevel("S9", "A", 1, 0, 0)], clock.now())
        return
    row = {
        "store_id": "S9",
        "sku": "A",
        "on_hand": 1,
        "reserved": 0,
        "safety_stock": 0,
        "low_stock_alerted": False,
        "updated_at": clock.now(),
    }
    await tx.conn.execute(stock_levels.insert(), row)


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("way", ["sqlalchemy", "asyncpg"])
async def test_a_failed_statement_leaves_the_connection_usable_for_the_next_unit_of_work(
    one_connection: Database, clock: FakeClock, clean_db: Database, way: str
) -> None:
    pids: list[int] = []

    async def write_then_fail() -> None:
        async with SqlUnitOfWork(one_connection) as tx:
            pids.append(await pid_of(tx))
            await write_both_ways(tx, clock, 1)
            await fail_a_statement(tx, way, clock)

    with pytest.raises(RetryableConflict):
        await write_then_fail()
    (failed_on,) = pids

    # The same connection, rolled back rather than thrown away, and in no transaction.
    assert await commit_both_ways(one_connection, clock) == failed_on
    assert await written(clean_db) == (1, 1)
    assert await in_transaction(clean_db) == []


async def terminate(db: Database, pid: int) -> None:
    """End the backend, as a server restart would, and wait until it has gone."""
    async with db.read() as conn:
        await conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})


async def until_running(db: Database, query: str) -> None:
    """Wait until a backend of this database is running the query."""
    for _ in range(500):
        async with db.read() as conn:
            running = await conn.execute(
                sa.text(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND query = :query"
                ),
                {"query": query},
            )
            if running.first() is not None:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nobody ran {query!r}")


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("way", ["sqlalchemy", "asyncpg"])
async def test_a_connection_lost_in_a_unit_of_work_is_not_handed_out_again(
    one_connection: Database, clock: FakeClock, clean_db: Database, way: str
) -> None:
    pids: list[int] = []

    async def write_then_lose_the_server() -> None:
        async with SqlUnitOfWork(one_connection) as tx:
            pids.append(await pid_of(tx))
            await write_both_ways(tx, clock, 1)
            await terminate(clean_db, pids[0])
            await fail_a_statement(tx, way, clock)

    # Whatever the drivers call a lost server (asyncpg's or SQLAlchemy's error): any will do.
    with pytest.raises(Exception, match=r"(?i)connection|terminat|closed"):
        await write_then_lose_the_server()
    (lost,) = pids

    assert await commit_both_ways(one_connection, clock) != lost
    assert await written(clean_db) == (1, 1)


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("way", ["sqlalchemy", "asyncpg"])
async def test_a_unit_of_work_cancelled_mid_statement_leaves_no_transaction_open(
    one_connection: Database, clock: FakeClock, clean_db: Database, way: str
) -> None:
    sleep = "SELECT pg_sleep(5)"

    async def slow_request() -> None:
        async with SqlUnitOfWork(one_connection) as tx:
            await write_both_ways(tx, clock, 1)
            if way == "asyncpg":
                driver = tx.levels.statements.driver
                assert driver is not None
                await driver.fetch(sleep)
            else:
                await tx.conn.execute(sa.text(sleep))

    request = asyncio.create_task(slow_request())
    await until_running(clean_db, sleep)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request

    assert await written(clean_db) == (0, 0)
    await commit_both_ways(one_connection, clock)
    assert await written(clean_db) == (1, 1)
    assert await in_transaction(clean_db) == []
