"""Test set-up: which backend (SQLite by default; PostgreSQL and Redis when the environment names
them), a fresh migrated database per run, a clean one per test, a controlled clock, helpers.

    ROPOS_TEST_DATABASE_URL  e.g. postgresql+asyncpg://root@/postgres?host=/var/run/postgresql
                             (a server: the run creates its own fresh database there and drops it)
    ROPOS_TEST_BROKER_URL    e.g. redis://127.0.0.1:6379/0 (default memory://)
    ROPOS_TEST_STRICT=1      a skipped test fails the run (CI's backend run)
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.db import invariants
from adapters.db.engine import Database
from adapters.db.tables import metadata
from adapters.db.uow import SqlUnitOfWork
from adapters.db.views import Views
from gateway import migrate
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STRICT = os.environ.get("ROPOS_TEST_STRICT") == "1"


# --- a skip is a failure in the strict (backend) run ----------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in a strict backend run (ROPOS_TEST_STRICT=1): {report.longrepr}"
        )


# --- the database ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def backend() -> str:
    url = os.environ.get("ROPOS_TEST_DATABASE_URL")
    return make_url(url).get_backend_name() if url else "sqlite"


async def _create_postgres_database(server_url: str) -> tuple[str, str]:
    """A new empty database on the server; returns (its URL, its name)."""
    url = make_url(server_url)
    name = f"ropos_test_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


async def _drop_postgres_database(server_url: str, name: str) -> None:
    admin = create_async_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh database for this run, migrated to head by Alembic (never create_all)."""
    server = os.environ.get("ROPOS_TEST_DATABASE_URL")
    if not server:
        path = tmp_path_factory.mktemp("db") / "ropos-test.db"
        url = f"sqlite+aiosqlite:///{path}"
        await _migrate(url)
        yield url
        return
    url, name = await _create_postgres_database(server)
    try:
        await _migrate(url)
        yield url
    finally:
        await _drop_postgres_database(server, name)


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=20, max_overflow=20)
    yield database
    await database.dispose()


_DEFAULT_POLICY: dict[str, Any] = {
    "id": 1,
    "default_hold_seconds": 7200,
    "allowed_hold_seconds": [7200, 86400],
    "max_active_reservations_per_customer": 5,
    "max_units_per_sku_per_customer": 10,
    "expiry_warning_seconds": 900,
    "max_stores_per_group": 3,
}


async def reset(db: Database) -> None:
    """Empty every table and put the default policy back."""
    for attempt in range(5):
        try:
            await _reset_once(db)
            break
        except DBAPIError as error:
            # A running gateway's sweeper may hold row locks TRUNCATE waits for, while waiting for
            # a table TRUNCATE has already locked: PostgreSQL picks one of the two to fail.
            if "deadlock" not in str(error) or attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))  # let the other transaction finish
    db.forget_cached()


async def _reset_once(db: Database) -> None:
    tables = list(reversed(metadata.sorted_tables))
    async with db.write() as conn:
        if db.dialect == "postgresql":
            names = ", ".join(t.name for t in tables)
            await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                await conn.execute(table.delete())
        policy = metadata.tables["reservation_policy"]
        await conn.execute(sa.insert(policy).values(**_DEFAULT_POLICY, updated_at=START))
        await conn.commit()


@pytest_asyncio.fixture(loop_scope="session")
async def clean_db(db: Database, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """The run's database, emptied before the test; the invariants are checked after it."""
    await reset(db)
    yield db
    shortage = request.node.get_closest_marker("shortage") is not None
    broken = await invariants.violations(db, allow_shortage=shortage)
    assert not broken, f"invariants broken after the test: {broken}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def uow(clean_db: Database) -> UnitOfWorkFactory:
    return lambda: SqlUnitOfWork(clean_db)


@pytest.fixture
def views(clean_db: Database) -> Views:
    return Views(clean_db)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        tier = Path(str(item.fspath)).relative_to(root).parts[0]
        item.add_marker(getattr(pytest.mark, tier))
