"""Automatic expiry: due reservations become EXPIRED and release their stock, nobody acting."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from adapters.db.engine import Database
from adapters.db.tables import outbox
from domain.errors import ReservationExpired
from domain.reservations import Status
from services import reservations
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock
from tests.helpers import given_stock, given_stores, level, reserve_cmd, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def store(uow: UnitOfWorkFactory, clock: FakeClock) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 100})


async def test_nothing_expires_before_its_time(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    await reservations.reserve(reserve_cmd(lines={"A": 2}, store_id="S1"), uow=uow, clock=clock)
    clock.advance(7199)

    assert await reservations.expire_due(uow=uow, clock=clock) == 0
    assert await level(clean_db, "S1", "A") == (100, 2)


async def test_a_due_reservation_expires_and_releases_its_stock(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    group = await reservations.reserve(
        reserve_cmd(lines={"A": 2}, store_id="S1"), uow=uow, clock=clock
    )
    clock.advance(7200)

    assert await reservations.expire_due(uow=uow, clock=clock) == 1

    async with uow() as tx:
        expired = await tx.reservations.get(group.reservations[0].id)
    assert expired is not None
    assert expired.status is Status.EXPIRED
    assert expired.expired_at == clock.now()
    assert expired.version == 2
    assert await level(clean_db, "S1", "A") == (100, 0)
    async with clean_db.read() as conn:
        types = (
            (await conn.execute(sa.select(outbox.c.type).order_by(outbox.c.position)))
            .scalars()
            .all()
        )
    assert types[-1] == "EXPIRED"


async def test_long_and_short_holds_expire_each_at_their_own_time(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    await reservations.reserve(reserve_cmd("a", {"A": 1}, store_id="S1"), uow=uow, clock=clock)
    await reservations.reserve(
        reserve_cmd("b", {"A": 1}, store_id="S1", hold_seconds=86400), uow=uow, clock=clock
    )

    clock.advance(7200)
    assert await reservations.expire_due(uow=uow, clock=clock) == 1
    clock.advance(86400 - 7200)
    assert await reservations.expire_due(uow=uow, clock=clock) == 1
    assert await level(clean_db, "S1", "A") == (100, 0)


async def test_cancel_after_expiry_time_is_refused_with_reservation_expired(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    group = await reservations.reserve(
        reserve_cmd(lines={"A": 1}, store_id="S1"), uow=uow, clock=clock
    )
    clock.advance(7201)

    with pytest.raises(ReservationExpired):
        await reservations.cancel(group.reservations[0].id, None, uow=uow, clock=clock)
    assert await level(clean_db, "S1", "A") == (100, 1)


async def test_sweeps_in_batches_until_nothing_is_due(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    for i in range(25):
        await reservations.reserve(
            reserve_cmd(f"c{i}", {"A": 1}, store_id="S1"), uow=uow, clock=clock
        )
    clock.advance(7200)

    assert await reservations.expire_due(uow=uow, clock=clock, batch_size=10) == 25
    assert await level(clean_db, "S1", "A") == (100, 0)


async def test_concurrent_sweepers_expire_each_reservation_once(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    for i in range(60):
        await reservations.reserve(
            reserve_cmd(f"c{i}", {"A": 1}, store_id="S1"), uow=uow, clock=clock
        )
    clock.advance(7200)

    counts = await asyncio.gather(
        *(reservations.expire_due(uow=uow, clock=clock, batch_size=7) for _ in range(4))
    )

    assert sum(counts) == 60
    assert await level(clean_db, "S1", "A") == (100, 0)
    async with clean_db.read() as conn:
        expired_events = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.type == "EXPIRED")
            )
        ).scalar_one()
    assert expired_events == 60


async def expiring_soon_events(db: Database) -> int:
    async with db.read() as conn:
        return (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.type == "EXPIRING_SOON")
            )
        ).scalar_one()


async def test_the_expiry_warning_goes_out_once_at_the_lead_time(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    await reservations.reserve(reserve_cmd(lines={"A": 1}, store_id="S1"), uow=uow, clock=clock)

    clock.advance(7200 - 901)
    assert await reservations.warn_expiring(uow=uow, clock=clock) == 0
    clock.advance(1)  # 15 minutes (the default lead) before expiry
    assert await reservations.warn_expiring(uow=uow, clock=clock) == 1
    clock.advance(60)
    assert await reservations.warn_expiring(uow=uow, clock=clock) == 0

    assert await expiring_soon_events(clean_db) == 1


async def test_a_new_expiry_gets_its_own_warning(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, store: None
) -> None:
    from domain.policy import ReservationPolicy
    from services import pickup
    from services import policy as policy_service

    await policy_service.update_policy(
        ReservationPolicy(pickup_window_seconds=3600), uow=uow, clock=clock
    )
    group = await reservations.reserve(
        reserve_cmd(lines={"A": 1}, store_id="S1"), uow=uow, clock=clock
    )
    clock.advance(7200 - 600)
    assert await reservations.warn_expiring(uow=uow, clock=clock) == 1

    await pickup.mark_ready(group.reservations[0].id, uow=uow, clock=clock)  # an hour from now
    clock.advance(3600 - 600)

    assert await reservations.warn_expiring(uow=uow, clock=clock) == 1
    assert await expiring_soon_events(clean_db) == 2
