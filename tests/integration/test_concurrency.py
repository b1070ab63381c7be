"""Contention: many reserves at once against the same stock or the same customer's limits.
The invariants (reserved equals active lines, no oversell, counters) are checked after each test
by the clean_db fixture."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence

import pytest

from adapters.db.engine import Database
from domain.clock import Clock
from domain.commands import Reserve
from domain.errors import LimitExceeded, OutOfStock
from domain.policy import ReservationPolicy
from services import policy as policy_service
from services import reservations
from services.reservations import ReservationGroup
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock
from tests.helpers import ORIGIN, given_stock, given_stores, level, reserve_cmd, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def reserve_all(
    uow: UnitOfWorkFactory, clock: Clock, commands: Iterable[Reserve]
) -> list[ReservationGroup | BaseException]:
    return await asyncio.gather(
        *(reservations.reserve(cmd, uow=uow, clock=clock) for cmd in commands),
        return_exceptions=True,
    )


def outcomes(
    results: Sequence[ReservationGroup | BaseException],
) -> tuple[list[ReservationGroup], list[OutOfStock], list[LimitExceeded]]:
    ok = [r for r in results if isinstance(r, ReservationGroup)]
    unexpected = [
        r for r in results if not isinstance(r, ReservationGroup | OutOfStock | LimitExceeded)
    ]
    assert not unexpected, unexpected[:3]
    return (
        ok,
        [r for r in results if isinstance(r, OutOfStock)],
        [r for r in results if isinstance(r, LimitExceeded)],
    )


async def test_300_simultaneous_reserves_against_100_units_at_a_store(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "HOT"): 100})

    results = await reserve_all(
        uow, clock, [reserve_cmd(f"c{i}", {"HOT": 1}, store_id="S1") for i in range(300)]
    )

    ok, out_of_stock, limited = outcomes(results)
    assert (len(ok), len(out_of_stock), len(limited)) == (100, 200, 0)
    assert all(e.skus == ["HOT"] for e in out_of_stock)
    assert await level(clean_db, "S1", "HOT") == (100, 100)


async def test_300_simultaneous_reserves_near_a_point_never_oversell(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0), store_at("S2", 1), store_at("S3", 2))
    await given_stock(uow, clock, {("S1", "HOT"): 40, ("S2", "HOT"): 30, ("S3", "HOT"): 30})

    results = await reserve_all(
        uow, clock, [reserve_cmd(f"c{i}", {"HOT": 1}, near=ORIGIN) for i in range(300)]
    )

    ok, out_of_stock, _ = outcomes(results)
    assert (len(ok), len(out_of_stock)) == (100, 200)
    assert [await level(clean_db, s, "HOT") for s in ("S1", "S2", "S3")] == [
        (40, 40),
        (30, 30),
        (30, 30),
    ]


async def test_one_customer_racing_against_a_limit_of_one_reservation(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 100})
    await policy_service.update_policy(
        ReservationPolicy(max_active_reservations_per_customer=1), uow=uow, clock=clock
    )

    results = await reserve_all(
        uow, clock, [reserve_cmd("eve", {"A": 1}, store_id="S1") for _ in range(50)]
    )

    ok, _, limited = outcomes(results)
    assert (len(ok), len(limited)) == (1, 49)
    assert {e.limit for e in limited} == {"maxActiveReservationsPerCustomer"}
    assert await level(clean_db, "S1", "A") == (100, 1)


async def test_one_customer_racing_against_the_units_per_sku_limit(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 100})
    await policy_service.update_policy(
        ReservationPolicy(
            max_active_reservations_per_customer=100, max_units_per_sku_per_customer=10
        ),
        uow=uow,
        clock=clock,
    )

    results = await reserve_all(
        uow, clock, [reserve_cmd("eve", {"A": 1}, store_id="S1") for _ in range(30)]
    )

    ok, _, limited = outcomes(results)
    assert (len(ok), len(limited)) == (10, 20)
    assert {e.limit for e in limited} == {"maxUnitsPerSkuPerCustomer"}
    assert await level(clean_db, "S1", "A") == (100, 10)


async def test_the_same_idempotency_key_sent_20_times_at_once_locks_once(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 100})
    cmd = reserve_cmd("c1", {"A": 3}, store_id="S1", idempotency_key="checkout-7")

    results = await reserve_all(uow, clock, [cmd] * 20)

    ok, _, _ = outcomes(results)
    assert len(ok) == 20
    assert len({group.id for group in ok}) == 1
    assert sum(not group.replayed for group in ok) == 1
    assert await level(clean_db, "S1", "A") == (100, 3)


async def test_multi_line_reserves_in_any_order_do_not_deadlock(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    skus = ["A", "B", "C", "D", "E"]
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", sku): 60 for sku in skus})
    rng = random.Random(7)
    commands: list[Reserve] = []
    for i in range(100):
        picked = rng.sample(skus, 3)
        commands.append(reserve_cmd(f"c{i}", dict.fromkeys(picked, 1), store_id="S1"))

    results = await reserve_all(uow, clock, commands)

    ok, out_of_stock, _ = outcomes(results)
    assert len(ok) + len(out_of_stock) == 100
    reserved = {sku: (await level(clean_db, "S1", sku))[1] for sku in skus}
    assert sum(reserved.values()) == 3 * len(ok)
