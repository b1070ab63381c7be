"""Migration 0010 both ways with data in it: a discarded delivery and movement go back to DEAD
(the only status before DISCARDED for what ops had not acted on), and the database refuses a
status it does not know either side."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.db.engine import Database
from gateway import migrate
from tests.conftest import _create_postgres_database, _drop_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DELIVERY = (
    "INSERT INTO webhook_deliveries (id, event_id, event_type, store_id, url, payload, status, "
    "attempts, next_attempt_at, created_at) VALUES (:id, :id, 'EXPIRED', 'S001', "
    "'https://pos.example.com', '{}', :status, 1, :now, :now)"
)
MOVEMENT = (
    "INSERT INTO wms_outbound (id, store_id, sku, sequence, kind, quantity, occurred_at, status, "
    "attempts, next_attempt_at, created_at) VALUES (:id, 'S001', 'SKU-1', :seq, 'LOCK', 1, :now, "
    ":status, 1, :now, :now)"
)


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


async def statuses(db: Database) -> tuple[list[str], list[str]]:
    async with db.engine.connect() as conn:
        webhooks = (await conn.execute(sa.text("SELECT status FROM webhook_deliveries"))).all()
        movements = (await conn.execute(sa.text("SELECT status FROM wms_outbound"))).all()
    return sorted(r[0] for r in webhooks), sorted(r[0] for r in movements)


async def test_discarded_rows_survive_a_downgrade_as_dead(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    async with empty_db.engine.begin() as conn:
        for i, status in enumerate(("DEAD", "DISCARDED", "DELIVERED")):
            await conn.execute(sa.text(DELIVERY), {"id": f"d{i}", "status": status, "now": NOW})
            await conn.execute(
                sa.text(MOVEMENT), {"id": f"m{i}", "seq": i, "status": status, "now": NOW}
            )
    with pytest.raises(IntegrityError):
        async with empty_db.engine.begin() as conn:
            await conn.execute(sa.text(DELIVERY), {"id": "x", "status": "LOST", "now": NOW})

    await migrate.downgrade(empty_db, "0009")

    assert await statuses(empty_db) == (["DEAD", "DEAD", "DELIVERED"],) * 2
    with pytest.raises(IntegrityError):
        async with empty_db.engine.begin() as conn:
            await conn.execute(
                sa.text(MOVEMENT), {"id": "x", "seq": 9, "status": "DISCARDED", "now": NOW}
            )

    await migrate.upgrade(empty_db)
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
