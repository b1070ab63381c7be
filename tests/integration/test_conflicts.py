"""Each race a second try wins, provoked on the real database: the unit of work raises the
RetryableConflict that names it, and nothing it wrote stays. On PostgreSQL through both ways a
statement reaches the server (SQLAlchemy, and straight on asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from asyncpg.exceptions import PostgresError

from adapters.db.engine import Database
from adapters.db.tables import idempotency_keys, skus, stock_levels
from adapters.db.uow import SqlUnitOfWork
from domain.reservations import Line, Reservation
from domain.stock import StockLevel
from services import reservations
from services.unit_of_work import RetryableConflict, UnitOfWork, UnitOfWorkFactory
from tests.clock import FakeClock
from tests.helpers import given_stock, given_stores, reserve_cmd, snapshot, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def stock(uow: UnitOfWorkFactory, clock: FakeClock) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 5, ("S1", "B"): 5})


def held(clock: FakeClock, *, code: str, store_id: str = "S1", id: str = "r-new") -> Reservation:
    return Reservation.hold(
        id=id,
        group_id="g-new",
        code=code,
        customer_id="c2",
        store_id=store_id,
        channel=None,
        lines=[Line("A", 1)],
        hold_seconds=7200,
        now=clock.now(),
    )


def level_row(clock: FakeClock, store_id: str, sku: str) -> dict[str, object]:
    return {
        "store_id": store_id,
        "sku": sku,
        "on_hand": 0,
        "reserved": 0,
        "safety_stock": 0,
        "low_stock_alerted": False,
        "updated_at": clock.now(),
    }


Write = Callable[[SqlUnitOfWork], Awaitable[object]]


async def conflict(db: Database, write: Write) -> str:
    """What the unit of work that ran `write(tx)` and meant to commit raised."""

    async def run() -> None:
        async with SqlUnitOfWork(db) as tx:
            await write(tx)
            await tx.commit()

    with pytest.raises(RetryableConflict) as raised:
        await run()
    return raised.value.what


def key_row(clock: FakeClock, request_hash: str, group_id: str) -> dict[str, object]:
    return {
        "customer_id": "c1",
        "key": "k",
        "request_hash": request_hash,
        "group_id": group_id,
        "created_at": clock.now(),
    }


async def test_an_idempotency_key_row_written_twice(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    async with uow() as tx:
        assert await tx.reservations.add_idempotency_key("c1", "k", "hash-1", "g-1", clock.now())
        await tx.commit()
    before = await snapshot(clean_db)

    what = await conflict(
        clean_db,
        lambda tx: tx.conn.execute(idempotency_keys.insert(), key_row(clock, "hash-2", "g-2")),
    )

    assert what == "idempotency_key"
    assert await snapshot(clean_db) == before


async def test_an_idempotency_key_taken_meanwhile_is_answered_taken_and_changes_nothing(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    async with uow() as tx:
        assert await tx.reservations.add_idempotency_key("c1", "k", "hash-1", "g-1", clock.now())
        await tx.commit()
    before = await snapshot(clean_db)

    async with uow() as tx:
        taken = not await tx.reservations.add_idempotency_key(
            "c1", "k", "hash-2", "g-2", clock.now()
        )
        found = await tx.reservations.find_idempotency_key("c1", "k")
        await tx.commit()

    assert taken
    assert found == ("g-1", "hash-1")
    assert await snapshot(clean_db) == before
    async with clean_db.read() as conn:
        keys = (await conn.execute(sa.select(idempotency_keys.c.group_id))).scalars().all()
    assert keys == ["g-1"]


async def test_a_pickup_code_an_active_reservation_has(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, stock: None
) -> None:
    group = await reservations.reserve(
        reserve_cmd(lines={"A": 1}, store_id="S1"), uow=uow, clock=clock
    )
    before = await snapshot(clean_db)

    what = await conflict(
        clean_db,
        lambda tx: tx.reservations.add([held(clock, code=group.reservations[0].code)], clock.now()),
    )

    assert what == "pickup_code"
    assert await snapshot(clean_db) == before


@pytest.mark.parametrize("rows", [1, 40], ids=["one-row", "array-insert"])
async def test_a_stock_row_made_meanwhile_through_the_statements(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, stock: None, rows: int
) -> None:
    before = await snapshot(clean_db)
    # The new rows go first, the row that exists last: nothing of the batch may stay.
    levels = [StockLevel("S1", f"N{i}", 0, 0, 0) for i in range(rows - 1)]
    levels.append(StockLevel("S1", "A", 9, 0, 0))
    new_skus = [{"code": level.sku, "created_at": clock.now()} for level in levels[:-1]]

    async def write(tx: SqlUnitOfWork) -> None:
        if new_skus:
            await tx.conn.execute(skus.insert(), new_skus)
        await tx.levels.insert(levels, clock.now())

    assert await conflict(clean_db, write) == "deadlock"
    assert await snapshot(clean_db) == before
    async with clean_db.read() as conn:
        codes = (await conn.execute(sa.select(skus.c.code).order_by(skus.c.code))).scalars()
        assert list(codes) == ["A", "B"]


async def test_a_stock_row_made_meanwhile_through_sqlalchemy(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, stock: None
) -> None:
    before = await snapshot(clean_db)

    what = await conflict(
        clean_db, lambda tx: tx.conn.execute(stock_levels.insert(), level_row(clock, "S1", "B"))
    )

    assert what == "deadlock"
    assert await snapshot(clean_db) == before


async def test_a_reservation_at_a_store_that_does_not_exist(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, stock: None
) -> None:
    before = await snapshot(clean_db)

    what = await conflict(
        clean_db,
        lambda tx: tx.reservations.add([held(clock, code="ZZZZZZ", store_id="S9")], clock.now()),
    )

    assert what == "unknown_reference"
    assert await snapshot(clean_db) == before


async def test_a_stock_row_of_a_sku_that_does_not_exist(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, stock: None
) -> None:
    before = await snapshot(clean_db)

    what = await conflict(
        clean_db, lambda tx: tx.conn.execute(stock_levels.insert(), level_row(clock, "S1", "NOPE"))
    )

    assert what == "unknown_reference"
    assert await snapshot(clean_db) == before


# What a server with lc_messages = 'de_DE.UTF-8' sends (asyncpg raises them as they come).
GERMAN = {
    "idempotency_key": {
        "C": "23505",
        "M": "doppelter Schlüsselwert verletzt Unique-Constraint »pk_idempotency_keys«",
        "n": "pk_idempotency_keys",
    },
    "unknown_reference": {
        "C": "23503",
        "M": "Einfügen oder Aktualisieren in Tabelle »reservations« verletzt "
        "Fremdschlüssel-Constraint »fk_reservations_store_id_stores«",
        "n": "fk_reservations_store_id_stores",
    },
    "deadlock": {"C": "40P01", "M": "Verklemmung (Deadlock) entdeckt"},
}


@pytest.mark.parametrize("what", sorted(GERMAN))
async def test_a_postgresql_error_worded_in_german_is_still_a_conflict(
    uow: UnitOfWorkFactory, clean_db: Database, what: str
) -> None:
    german = PostgresError.new({"S": "FEHLER", **GERMAN[what]})

    async def write(tx: SqlUnitOfWork) -> None:
        raise german

    assert await conflict(clean_db, write) == what


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no lock cycle to break")


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("second", ["sqlalchemy", "asyncpg"])
async def test_a_lock_cycle_postgresql_breaks(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, stock: None, second: str
) -> None:
    before = await snapshot(clean_db)
    both_hold_one = asyncio.Barrier(2)

    async def lock(tx: UnitOfWork, sku: str, how: str) -> None:
        if how == "asyncpg":
            assert await tx.stock.lock("S1", sku, 1, clock.now()) is not None
        else:
            assert await tx.levels.lock([("S1", sku)])

    async def cross(first_sku: str, then_sku: str) -> str | None:
        try:
            async with uow() as tx:
                await lock(tx, first_sku, "sqlalchemy" if second == "asyncpg" else "asyncpg")
                await both_hold_one.wait()
                await lock(tx, then_sku, second)
        except RetryableConflict as raised:
            return raised.what
        return None

    outcomes = await asyncio.wait_for(asyncio.gather(cross("A", "B"), cross("B", "A")), 30)

    assert set(outcomes) == {"deadlock", None}  # one of the two was failed, the other went on
    assert await snapshot(clean_db) == before
