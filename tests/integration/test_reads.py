"""The read side's straight-to-asyncpg path on PostgreSQL (Database.pg_reader): a connection the
server closed is never handed out again, whether it died in the pool or during a statement."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from adapters.db.engine import Database
from adapters.db.views import Views


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("pg_reader is the PostgreSQL read path: set ROPOS_TEST_DATABASE_URL")


async def _terminate(db: Database, pid: int) -> None:
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")


async def _pid(db: Database) -> int:
    async with db.pg_reader() as driver:
        pid: int = await driver.fetchval("SELECT pg_backend_pid()")
    return pid


@pytest.mark.usefixtures("postgres_only", "clean_db")
async def test_a_connection_closed_in_the_pool_is_replaced_before_the_read(
    database_url: str,
) -> None:
    db = Database(database_url, pool_size=1)
    admin = Database(database_url, pool_size=1)
    try:
        views = Views(db)
        assert await views.stock_levels(["S001"], ["SKU-1"]) == {}
        first = await _pid(db)
        await _terminate(admin, first)
        await asyncio.sleep(0.2)  # the client sees the socket close
        assert await views.stock_levels(["S001"], ["SKU-1"]) == {}
        assert await _pid(db) != first
    finally:
        await db.dispose()
        await admin.dispose()


@pytest.mark.usefixtures("postgres_only", "clean_db")
async def test_a_connection_lost_during_a_read_fails_that_read_only(database_url: str) -> None:
    db = Database(database_url, pool_size=1)
    admin = Database(database_url, pool_size=1)
    try:
        first = await _pid(db)

        async def long_read() -> None:
            async with db.pg_reader() as driver:
                await driver.fetch("SELECT pg_sleep(5)")

        task = asyncio.create_task(long_read())
        await asyncio.sleep(0.3)
        await _terminate(admin, first)
        # ConnectionDoesNotExistError, or AdminShutdownError if the server's notice is read first
        with pytest.raises(asyncpg.PostgresError):
            await asyncio.wait_for(task, 5)
        assert await Views(db).stock_levels(["S001"], ["SKU-1"]) == {}
        assert await _pid(db) != first
    finally:
        await db.dispose()
        await admin.dispose()
