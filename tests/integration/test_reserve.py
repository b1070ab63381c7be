"""Reserving: at a named store, at the nearest store, split over stores; rules and failures."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.db.engine import Database
from domain.errors import BadInput, LimitExceeded, NotFound, OutOfStock
from domain.reservations import Status
from services import reservations
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock
from tests.helpers import ORIGIN, given_stock, given_stores, level, reserve_cmd, snapshot, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def chain(uow: UnitOfWorkFactory, clock: FakeClock) -> None:
    # S1 at 0 km, S2 at 2 km, S3 at 5 km, S4 at 80 km (outside the default 50 km).
    await given_stores(
        uow, clock, store_at("S1", 0), store_at("S2", 2), store_at("S3", 5), store_at("S4", 80)
    )


async def test_reserve_at_a_named_store_locks_every_line(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S2", "A"): 5, ("S2", "B"): 3})

    group = await reservations.reserve(
        reserve_cmd(lines={"A": 2, "B": 3}, store_id="S2"), uow=uow, clock=clock
    )

    (r,) = group.reservations
    assert (r.store_id, r.status, r.customer_id) == ("S2", Status.HELD, "c1")
    assert {line.sku: line.quantity for line in r.lines} == {"A": 2, "B": 3}
    assert (r.expires_at - r.created_at).total_seconds() == 7200
    assert await level(clean_db, "S2", "A") == (5, 2)
    assert await level(clean_db, "S2", "B") == (3, 3)


async def test_reserve_near_takes_the_nearest_store_that_has_every_line(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(
        uow,
        clock,
        {
            ("S1", "A"): 5,
            ("S1", "B"): 0,
            ("S2", "A"): 1,
            ("S2", "B"): 1,
            ("S3", "A"): 9,
            ("S3", "B"): 9,
        },
    )

    group = await reservations.reserve(
        reserve_cmd(lines={"A": 1, "B": 1}, near=ORIGIN), uow=uow, clock=clock
    )

    assert [r.store_id for r in group.reservations] == ["S2"]


async def test_reserve_near_splits_over_the_fewest_stores(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    # No store has both; S1 has A, S2 and S3 have B: the split is S1 + S2 (nearer than S1 + S3).
    await given_stock(uow, clock, {("S1", "A"): 5, ("S2", "B"): 5, ("S3", "B"): 5, ("S3", "A"): 1})

    group = await reservations.reserve(
        reserve_cmd(lines={"A": 2, "B": 4}, near=ORIGIN), uow=uow, clock=clock
    )

    by_store = {
        r.store_id: {line.sku: line.quantity for line in r.lines} for r in group.reservations
    }
    assert by_store == {"S1": {"A": 2}, "S2": {"B": 4}}
    assert len({r.group_id for r in group.reservations}) == 1
    assert len({r.code for r in group.reservations}) == 2


async def test_split_stays_within_the_radius(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 1, ("S4", "A"): 10})
    before = await snapshot(clean_db)

    with pytest.raises(OutOfStock) as error:
        await reservations.reserve(reserve_cmd(lines={"A": 3}, near=ORIGIN), uow=uow, clock=clock)

    assert error.value.skus == ["A"]
    assert await snapshot(clean_db) == before


async def test_out_of_stock_names_the_short_skus_and_changes_nothing(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 5, ("S1", "B"): 1, ("S1", "C"): 0})
    before = await snapshot(clean_db)

    with pytest.raises(OutOfStock) as error:
        await reservations.reserve(
            reserve_cmd(lines={"A": 2, "B": 2, "C": 1}, store_id="S1"), uow=uow, clock=clock
        )

    assert error.value.skus == ["B", "C"]
    assert await snapshot(clean_db) == before


async def test_safety_stock_is_not_reservable(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 5}, safety=2)

    await reservations.reserve(reserve_cmd(lines={"A": 3}, store_id="S1"), uow=uow, clock=clock)
    with pytest.raises(OutOfStock):
        await reservations.reserve(
            reserve_cmd("c2", lines={"A": 1}, store_id="S1"), uow=uow, clock=clock
        )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"store_id": "NOPE"}, "Unknown store"), ({"near": ORIGIN}, "Unknown SKU")],
)
async def test_unknown_store_or_sku_is_not_found_and_changes_nothing(
    uow: UnitOfWorkFactory,
    clock: FakeClock,
    clean_db: Database,
    chain: None,
    kwargs: dict[str, Any],
    expected: str,
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 5})
    before = await snapshot(clean_db)
    lines = {"A": 1} if "store_id" in kwargs else {"A": 1, "GHOST": 1}

    with pytest.raises(NotFound, match=expected):
        await reservations.reserve(reserve_cmd(lines=lines, **kwargs), uow=uow, clock=clock)

    assert await snapshot(clean_db) == before


async def test_hold_seconds_must_be_allowed_by_the_policy(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 5})

    day = await reservations.reserve(
        reserve_cmd(lines={"A": 1}, store_id="S1", hold_seconds=86400), uow=uow, clock=clock
    )
    assert (day.reservations[0].expires_at - clock.now()).total_seconds() == 86400
    with pytest.raises(BadInput, match="holdSeconds must be one of"):
        await reservations.reserve(
            reserve_cmd(lines={"A": 1}, store_id="S1", hold_seconds=999), uow=uow, clock=clock
        )


async def test_active_reservation_limit_says_which_limit(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 50})
    for _ in range(5):
        await reservations.reserve(reserve_cmd(lines={"A": 1}, store_id="S1"), uow=uow, clock=clock)
    before = await snapshot(clean_db)

    with pytest.raises(LimitExceeded) as error:
        await reservations.reserve(reserve_cmd(lines={"A": 1}, store_id="S1"), uow=uow, clock=clock)

    assert error.value.limit == "maxActiveReservationsPerCustomer"
    assert await snapshot(clean_db) == before


async def test_units_per_sku_limit_counts_every_active_reservation(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 50, ("S1", "B"): 50})
    await reservations.reserve(reserve_cmd(lines={"A": 7}, store_id="S1"), uow=uow, clock=clock)

    with pytest.raises(LimitExceeded) as error:
        await reservations.reserve(
            reserve_cmd(lines={"A": 4, "B": 1}, store_id="S1"), uow=uow, clock=clock
        )

    assert error.value.limit == "maxUnitsPerSkuPerCustomer"
    assert error.value.details["skus"] == ["A"]
    # Another customer is not affected by c1's holds.
    await reservations.reserve(
        reserve_cmd("c2", lines={"A": 4}, store_id="S1"), uow=uow, clock=clock
    )


async def test_cancel_releases_stock_and_frees_the_limits(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 10})
    group = await reservations.reserve(
        reserve_cmd(lines={"A": 10}, store_id="S1"), uow=uow, clock=clock
    )

    cancelled = await reservations.cancel(
        group.reservations[0].id, "changed my mind", uow=uow, clock=clock
    )

    assert cancelled.status is Status.CANCELLED
    assert cancelled.cancel_reason == "changed my mind"
    assert await level(clean_db, "S1", "A") == (10, 0)
    again = await reservations.reserve(
        reserve_cmd(lines={"A": 10}, store_id="S1"), uow=uow, clock=clock
    )
    assert again.reservations[0].status is Status.HELD


async def test_idempotency_key_returns_the_same_group_and_locks_once(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 10})
    cmd = reserve_cmd(lines={"A": 3}, store_id="S1", idempotency_key="order-42")

    first = await reservations.reserve(cmd, uow=uow, clock=clock)
    second = await reservations.reserve(cmd, uow=uow, clock=clock)

    assert second.id == first.id
    assert second.replayed
    assert not first.replayed
    assert [r.id for r in second.reservations] == [r.id for r in first.reservations]
    assert await level(clean_db, "S1", "A") == (10, 3)


async def test_idempotency_key_reused_for_another_request_is_refused(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 10})
    await reservations.reserve(
        reserve_cmd(lines={"A": 3}, store_id="S1", idempotency_key="k"), uow=uow, clock=clock
    )
    before = await snapshot(clean_db)

    with pytest.raises(BadInput, match="already used"):
        await reservations.reserve(
            reserve_cmd(lines={"A": 4}, store_id="S1", idempotency_key="k"), uow=uow, clock=clock
        )
    assert await snapshot(clean_db) == before


async def test_the_same_key_from_another_customer_is_another_request(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 10})
    cmd: dict[str, Any] = {"lines": {"A": 1}, "store_id": "S1", "idempotency_key": "k"}

    a = await reservations.reserve(reserve_cmd("c1", **cmd), uow=uow, clock=clock)
    b = await reservations.reserve(reserve_cmd("c2", **cmd), uow=uow, clock=clock)

    assert a.id != b.id
    assert await level(clean_db, "S1", "A") == (10, 2)


async def test_every_change_writes_outbox_events_and_ledger_lines(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, chain: None
) -> None:
    await given_stock(uow, clock, {("S1", "A"): 10})
    before = await snapshot(clean_db)

    group = await reservations.reserve(
        reserve_cmd(lines={"A": 2}, store_id="S1"), uow=uow, clock=clock
    )
    after_reserve = await snapshot(clean_db)
    await reservations.cancel(group.reservations[0].id, None, uow=uow, clock=clock)
    after_cancel = await snapshot(clean_db)

    # One reservation event (it names the store and lines whose stock changed) and one ledger
    # line, each time.
    assert after_reserve["outbox"] - before["outbox"] == 1
    assert after_reserve["stock_movements"] - before["stock_movements"] == 1
    assert after_cancel["outbox"] - after_reserve["outbox"] == 1
    assert after_cancel["stock_movements"] - after_reserve["stock_movements"] == 1


async def test_the_catalog_finds_a_sku_created_after_it_was_asked_for(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    async with uow() as tx:
        assert await tx.catalog.known(["A"], ["S1", "S9"]) == (set(), {"S1"})

    await given_stock(uow, clock, {("S1", "A"): 1})  # the SKU is added to the catalogue

    async with uow() as tx:  # what was not found is not remembered
        assert await tx.catalog.known(["A"], ["S1", "S9"]) == ({"A"}, {"S1"})
        assert await tx.catalog.known([], []) == (set(), set())
