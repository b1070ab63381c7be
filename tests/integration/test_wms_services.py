"""The WMS use cases on the real database: a batch stored but not applied is applied later,
shrinks racing reserves keep the invariants, one feed at a time numbers the movements, and a
WMS outage delays movements without losing or reordering them. The invariants are checked after
each test by the clean_db fixture."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

import pytest

from adapters.db.engine import Database
from domain.errors import BadInput, OutOfStock
from domain.wms import (
    CircuitBreaker,
    MovementResult,
    Outcome,
    WmsLevel,
    WmsMovement,
    WmsUnavailable,
    parse_batch,
)
from gateway.workers import WmsFeed
from services import leases, reservations, stock
from services.reservations import ReservationGroup
from services.unit_of_work import UnitOfWorkFactory
from services.wms import feed, inbox
from tests.clock import FakeClock
from tests.helpers import given_stock, given_stores, level, reserve_cmd, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")


class RecordingWms:
    """A WMS in memory that may be down; records what it applied, in order."""

    def __init__(self) -> None:
        self.down = False
        self.applied: list[WmsMovement] = []
        self.seen: set[str] = set()
        self.calls = 0

    async def send(self, movements: Sequence[WmsMovement]) -> list[MovementResult]:
        self.calls += 1
        if self.down:
            raise WmsUnavailable("503 from the WMS")
        results = []
        for m in movements:
            if m.id in self.seen:
                results.append(MovementResult(m.id, Outcome.DUPLICATE))
            else:
                self.seen.add(m.id)
                self.applied.append(m)
                results.append(MovementResult(m.id, Outcome.APPLIED))
        return results

    async def levels(self, store_id: str) -> list[WmsLevel]:
        return []

    async def close(self) -> None:
        return None


async def test_a_batch_stored_but_not_applied_is_applied_by_the_retry(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    # The process stored the batch and died before applying it
    payload = {"batchId": "crash-1", "levels": [{"storeId": "S1", "sku": "A", "onHand": 7}]}
    async with uow() as tx:
        assert await tx.wms_inbox.add("crash-1", payload, 1, clock.now())
        await tx.commit()
    assert await inbox.retry_received(uow=uow, clock=clock) == 0  # too fresh: maybe still applying

    clock.advance(10)
    assert await inbox.retry_received(uow=uow, clock=clock) == 1

    assert await level(clean_db, "S1", "A") == (7, 0)
    async with uow() as tx:
        stored = await tx.wms_inbox.find("crash-1")
    assert stored is not None
    assert stored.status == "APPLIED"
    assert stored.applied == 1
    assert await inbox.retry_received(uow=uow, clock=clock) == 0


async def test_shrinks_racing_reserves_never_leave_more_reserved_than_on_hand(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0), store_at("S2", 1))
    await given_stock(uow, clock, {("S1", "HOT"): 60, ("S2", "HOT"): 20})
    counts = [40, 30, 20, 10]

    async def shrink(i: int, on_hand: int) -> object:
        payload = {
            "batchId": f"shrink-{i}",
            "levels": [{"storeId": "S1", "sku": "HOT", "onHand": on_hand}],
        }
        return await inbox.receive_batch(parse_batch(payload), payload, uow=uow, clock=clock)

    results = await asyncio.gather(
        *(
            reservations.reserve(
                reserve_cmd(f"c{i}", {"HOT": 1}, store_id="S1"), uow=uow, clock=clock
            )
            for i in range(80)
        ),
        *(shrink(i, n) for i, n in enumerate(counts)),
        return_exceptions=True,
    )

    unexpected = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, OutOfStock)
    ]
    assert not unexpected, unexpected[:3]
    outcomes = [r for r in results if isinstance(r, inbox.BatchOutcome)]
    assert [o.status for o in outcomes] == ["APPLIED"] * len(counts)
    assert sum(isinstance(r, ReservationGroup) for r in results) >= 10
    on_hand, reserved = await level(clean_db, "S1", "HOT")
    assert on_hand in counts
    assert reserved <= on_hand
    s2_on_hand, s2_reserved = await level(clean_db, "S2", "HOT")
    assert s2_reserved <= s2_on_hand == 20


async def test_one_feed_at_a_time_holds_the_lease(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    assert await leases.take(uow, feed.LEASE, "a", clock, 10)
    assert not await leases.take(uow, feed.LEASE, "b", clock, 10)
    assert await leases.take(uow, feed.LEASE, "a", clock, 10)  # renewed by its holder
    clock.advance(11)
    assert await leases.take(uow, feed.LEASE, "b", clock, 10)  # the holder went quiet
    assert not await leases.take(uow, feed.LEASE, "a", clock, 10)


async def test_an_outage_delays_movements_and_loses_or_reorders_none(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 50, ("S1", "B"): 50})
    target = RecordingWms()
    breaker = CircuitBreaker(threshold=2, cooldown_seconds=30)

    async def run_feed() -> feed.FeedStats:
        while await feed.queue_movements(uow=uow, clock=clock, limit=7):
            pass
        return await feed.deliver_movements(
            uow=uow, clock=clock, wms=target, breaker=breaker, max_attempts=100, batch_size=5
        )

    target.down = True
    groups = []
    for i in range(12):
        groups.append(
            await reservations.reserve(
                reserve_cmd(f"c{i}", {"A": 1, "B": 2}, store_id="S1"), uow=uow, clock=clock
            )
        )
        if i % 3 == 0:
            await reservations.cancel(groups[-1].reservations[0].id, None, uow=uow, clock=clock)
        await run_feed()
        clock.advance(1)
    assert target.applied == []
    assert target.calls <= 4  # the circuit opened after two failures; no call while it is open

    target.down = False
    for _ in range(40):
        clock.advance(60)
        await run_feed()
    per_row: dict[tuple[str, str], list[WmsMovement]] = defaultdict(list)
    for m in target.applied:
        per_row[(m.store_id, m.sku)].append(m)
    # 12 locks and 4 releases on each row, each once, numbered 1..16 in the order they happened
    for row in (("S1", "A"), ("S1", "B")):
        moved = per_row[row]
        assert [m.sequence for m in moved] == list(range(1, 17)), row
        assert len({m.id for m in moved}) == 16
        reserved = 0
        for m in moved:
            reserved += m.quantity if m.kind == "LOCK" else -m.quantity
            assert reserved >= 0, "a release arrived before its lock"
        assert reserved == (await level(clean_db, *row))[1]


async def test_two_batches_making_the_same_new_row_at_once_both_apply(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))

    async def push(batch_id: str, on_hand: int, sequence: int) -> inbox.BatchOutcome:
        payload = {
            "batchId": batch_id,
            "levels": [{"storeId": "S1", "sku": "NEW", "onHand": on_hand, "sequence": sequence}],
        }
        return await inbox.receive_batch(parse_batch(payload), payload, uow=uow, clock=clock)

    first, second = await asyncio.gather(push("a", 4, 1), push("b", 9, 2))

    assert (first.status, second.status) == ("APPLIED", "APPLIED")
    # Whichever ran second saw the other's row: the newer count is the one that stays
    assert await level(clean_db, "S1", "NEW") == (9, 0)


async def test_two_feeds_at_once_deliver_each_movement_once_in_order(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 500})
    target = RecordingWms()
    feeds = [
        WmsFeed(
            uow,
            target,
            clock,
            holder=name,
            interval=0.05,
            batch_size=3,
            max_attempts=10,
            breaker=CircuitBreaker(),
        )
        for name in ("replica-1", "replica-2")
    ]

    for i in range(30):
        group = await reservations.reserve(
            reserve_cmd(f"c{i}", {"A": 1}, store_id="S1"), uow=uow, clock=clock
        )
        if i % 2:
            await reservations.cancel(group.reservations[0].id, None, uow=uow, clock=clock)
        await asyncio.gather(*(feed.run_once() for feed in feeds))
    for _ in range(5):
        await asyncio.gather(*(feed.run_once() for feed in feeds))

    assert [m.sequence for m in target.applied] == list(range(1, 46))  # 30 locks, 15 releases
    assert len({m.id for m in target.applied}) == 45
    assert sum(m.quantity if m.kind == "LOCK" else -m.quantity for m in target.applied) == 15


async def test_a_baseline_passes_over_the_movements_made_before_a_wms_was_connected(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 10})
    for i in range(3):  # while no WMS was connected
        await reservations.reserve(
            reserve_cmd(f"c{i}", {"A": 1}, store_id="S1"), uow=uow, clock=clock
        )

    assert await feed.baseline(uow=uow) == 3
    await reservations.reserve(reserve_cmd("after", {"A": 1}, store_id="S1"), uow=uow, clock=clock)

    assert await feed.queue_movements(uow=uow, clock=clock) == 1  # only what came after


async def test_a_batch_refused_after_it_wrote_leaves_stock_as_it_was(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 10})
    await reservations.reserve(reserve_cmd("c", {"A": 5}, store_id="S1"), uow=uow, clock=clock)

    async def refuse(*args: object, **kwargs: object) -> list[object]:
        raise BadInput("refused after the levels were written")

    monkeypatch.setattr(stock, "resolve_shortages", refuse)
    payload = {"batchId": "late-refusal", "levels": [{"storeId": "S1", "sku": "A", "onHand": 2}]}
    outcome = await inbox.receive_batch(parse_batch(payload), payload, uow=uow, clock=clock)

    assert (outcome.status, outcome.error_code) == ("REJECTED", "BAD_USER_INPUT")
    assert await level(clean_db, "S1", "A") == (10, 5)
    async with uow() as tx:
        stored = await tx.wms_inbox.find("late-refusal")
    assert stored is not None
    assert stored.status == "REJECTED"


async def test_a_row_waiting_for_its_retry_holds_up_no_other_row(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 10, ("S1", "B"): 10})
    for i in range(5):  # more of A's movements than a delivery looks at
        await reservations.reserve(
            reserve_cmd(f"a{i}", {"A": 1}, store_id="S1"), uow=uow, clock=clock
        )
    await feed.queue_movements(uow=uow, clock=clock)
    target = RecordingWms()
    target.down = True
    breaker = CircuitBreaker(threshold=100)
    await feed.deliver_movements(
        uow=uow, clock=clock, wms=target, breaker=breaker, max_attempts=10, batch_size=1
    )  # A's first lock failed: it, and A's others behind it, wait for its retry

    target.down = False
    for i in range(3):  # more than one batch of B's movements, while A still waits
        await reservations.reserve(
            reserve_cmd(f"b{i}", {"B": 1}, store_id="S1"), uow=uow, clock=clock
        )
    await feed.queue_movements(uow=uow, clock=clock)
    for _ in range(3):
        await feed.deliver_movements(
            uow=uow, clock=clock, wms=target, breaker=breaker, max_attempts=10, batch_size=1
        )

    assert [(m.sku, m.sequence) for m in target.applied] == [("B", 1), ("B", 2), ("B", 3)]


async def test_an_unexpected_error_of_the_wms_adapter_leaves_no_trial_call_hanging(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 10})
    await reservations.reserve(reserve_cmd("a", {"A": 1}, store_id="S1"), uow=uow, clock=clock)
    await feed.queue_movements(uow=uow, clock=clock)

    class Broken(RecordingWms):
        async def send(self, movements: Sequence[WmsMovement]) -> list[MovementResult]:
            raise RuntimeError("a bug in the adapter")

    breaker = CircuitBreaker(threshold=1, cooldown_seconds=10)
    breaker.failed(clock.now())
    clock.advance(11)  # half-open: the next call is the trial
    with pytest.raises(RuntimeError):
        await feed.deliver_movements(
            uow=uow, clock=clock, wms=Broken(), breaker=breaker, max_attempts=10
        )

    assert breaker.state(clock.now()) == "OPEN"  # the trial counted as failed
    clock.advance(3600)
    assert breaker.allow(clock.now())  # and a later trial is let through
