"""Alembic is the one way the schema is made: up from empty to head and back, on this backend,
and the tables the code queries are exactly what the migrations make."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapters.db.engine import Database
from adapters.db.tables import metadata
from gateway import migrate
from tests.conftest import _create_postgres_database, _drop_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def empty_db(tmp_path: Path) -> AsyncIterator[Database]:
    server = os.environ.get("ROPOS_TEST_DATABASE_URL")
    if server:
        url, name = await _create_postgres_database(server)
    else:
        url, name = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", ""
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()
        if server:
            await _drop_postgres_database(server, name)


async def tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_upgrade_from_empty_to_head_and_down_to_base(empty_db: Database) -> None:
    assert await migrate.current_revision(empty_db) is None

    await migrate.upgrade(empty_db)
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
    assert set(metadata.tables) <= await tables(empty_db)

    await migrate.downgrade(empty_db, "base")
    assert await migrate.current_revision(empty_db) is None
    assert await tables(empty_db) <= {"alembic_version"}

    await migrate.upgrade(empty_db)
    assert await migrate.current_revision(empty_db) == migrate.head_revision()


async def test_migrations_make_exactly_the_tables_the_code_uses(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)

    def differences(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with empty_db.engine.connect() as conn:
        diff = await conn.run_sync(differences)
    assert diff == []


async def test_the_default_policy_row_comes_with_the_schema(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    async with empty_db.read() as conn:
        row = (
            await conn.execute(sa.text("SELECT default_hold_seconds FROM reservation_policy"))
        ).one()
    assert row.default_hold_seconds == 7200
