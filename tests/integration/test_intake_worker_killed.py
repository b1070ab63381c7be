"""A worker killed in the middle of the intake (SIGKILL, a real `ropos worker` process, on
PostgreSQL) loses no message and applies none twice: what it had taken comes back when its lease
runs out, and another worker finishes it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.db.engine import Database
from adapters.db.invariants import violations
from adapters.db.tables import intake_messages, reservations
from domain.clock import SystemClock
from domain.intake import (
    ChannelOrder,
    Customer,
    IntakeStatus,
    Money,
    OrderEvent,
    OrderLine,
    Pickup,
    SalesChannel,
    to_json,
)
from services.intake import accounts, edge
from services.intake.accounts import AccountChange
from services.unit_of_work import UnitOfWorkFactory
from tests.helpers import given_stock, given_stores, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROPOS = Path(sys.executable).with_name("ropos")
ROOT = Path(__file__).resolve().parents[2]
ORDERS = 120


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("workers in several processes claim with SKIP LOCKED: PostgreSQL only")


def order(n: int) -> ChannelOrder:
    clock = SystemClock()
    return ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="acme",
        external_id=f"ORD-{n:04d}",
        event=OrderEvent.CREATE,
        placed_at=clock.now() - timedelta(minutes=5),
        customer=Customer(id=f"C-{n}", guest=False),
        currency="EUR",
        total=Money(Decimal("10.00"), "EUR"),
        lines=(OrderLine(sku="SKU-1", quantity=1, unit_price=Money(Decimal("10.00"), "EUR")),),
        pickup=Pickup(requested=True, channel_location_id="LOC-1"),
    )


async def status_counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(intake_messages.c.status, sa.func.count()).group_by(intake_messages.c.status)
        )
        return {status: int(count) for status, count in rows.all()}


async def start_worker(database_url: str, log: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "ROPOS_DATABASE_URL": database_url,
        "ROPOS_BROKER_URL": "memory://",
        "ROPOS_INTAKE_LEASE_SECONDS": "2",
        "ROPOS_INTAKE_BATCH_SIZE": "20",
        "ROPOS_INTAKE_INTERVAL_SECONDS": "0.1",
        "ROPOS_LOG_LEVEL": "WARNING",
        "ROPOS_ENV": "dev",
    }
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            str(ROPOS), "worker", cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def wait_for(db: Database, done: int, seconds: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(int(seconds / 0.05)):
        counts = await status_counts(db)
        if counts.get(IntakeStatus.ACCEPTED.value, 0) >= done:
            return counts
        await asyncio.sleep(0.05)
    return counts


@pytest.mark.usefixtures("postgres_only")
async def test_a_worker_killed_mid_intake_loses_nothing_and_applies_nothing_twice(
    database_url: str, clean_db: Database, uow: UnitOfWorkFactory, tmp_path: Path
) -> None:
    clock = SystemClock()
    await given_stores(uow, clock, store_at("S001", 0))
    await given_stock(uow, clock, {("S001", "SKU-1"): 1000})
    account = await accounts.upsert_account(
        AccountChange(
            channel=SalesChannel.GENERIC,
            account="acme",
            secret="whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3",
            locations={"LOC-1": "S001"},
        ),
        uow=uow,
        clock=clock,
    )
    for n in range(ORDERS):
        body = json.dumps(to_json(order(n))).encode()
        receipt = await edge.receive(
            account, {"webhook-id": f"msg-{n}"}, body, None, uow=uow, clock=clock
        )
        assert receipt.message_id is not None

    log = tmp_path / "worker.log"
    first = await start_worker(database_url, log)
    try:
        counts = await wait_for(clean_db, 5, 30.0)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    killed_at = await status_counts(clean_db)
    assert 0 < killed_at.get("ACCEPTED", 0) < ORDERS, (counts, killed_at, log.read_text()[-2000:])

    second = await start_worker(database_url, log)
    try:
        counts = await wait_for(clean_db, ORDERS, 60.0)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
    assert counts == {"ACCEPTED": ORDERS}, log.read_text()[-3000:]
    async with clean_db.engine.connect() as conn:
        held = (
            await conn.execute(sa.select(sa.func.count()).select_from(reservations))
        ).scalar_one()
        groups = (
            await conn.execute(
                sa.select(sa.func.count(sa.distinct(intake_messages.c.reservation_group_id)))
            )
        ).scalar_one()
    assert (held, groups) == (ORDERS, ORDERS)
    assert await violations(clean_db) == {}
