"""Claiming intake messages fairly: each account's due messages take turns, an account of
weight w taking w turns to another's one, so a quiet account's orders never wait behind a
flooding account's backlog; within an account cancels go first, then the orders worth most,
what runs again last."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.intake import (
    ChannelOrder,
    IntakeLane,
    IntakeMessage,
    IntakeStatus,
    OrderEvent,
    OrderLine,
    Pickup,
    SalesChannel,
)
from services.intake import accounts, ops
from services.intake.accounts import AccountChange
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock
from tests.conftest import START

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3"


async def given_account(uow: UnitOfWorkFactory, clock: FakeClock, code: str, weight: int) -> None:
    await accounts.upsert_account(
        AccountChange(channel=SalesChannel.GENERIC, account=code, secret=SECRET, weight=weight),
        uow=uow,
        clock=clock,
    )


async def given_waiting(
    uow: UnitOfWorkFactory,
    code: str,
    count: int,
    *,
    first_second: int,
    lane: IntakeLane = IntakeLane.NEW,
    values: list[Decimal | None] | None = None,
) -> list[str]:
    """`count` messages of the account, received a second apart from START + first_second,
    worth `values` (as the edge read them; none by default)."""
    ids = []
    async with uow() as tx:
        for n in range(count):
            at = START + timedelta(seconds=first_second + n)
            message = IntakeMessage(
                id=str(uuid.uuid4()),
                channel=SalesChannel.GENERIC,
                account=code,
                status=IntakeStatus.RECEIVED,
                received_at=at,
                attempts=0,
                next_attempt_at=at,
                dedupe_key=f"event:{code}-{lane.name}-{n}",
                lane=lane,
                order_value=values[n] if values else None,
            )
            await tx.intake.add(message, b"{}")
            ids.append(message.id)
        await tx.commit()
    return ids


async def claim(
    uow: UnitOfWorkFactory,
    clock: FakeClock,
    limit: int,
    exclude: frozenset[tuple[SalesChannel, str]] = frozenset(),
) -> list[IntakeMessage]:
    async with uow() as tx:
        now = clock.now()
        claimed = await tx.intake.claim_due(now, now + timedelta(minutes=1), limit, exclude=exclude)
        await tx.commit()
    return claimed.messages


async def test_a_quiet_account_is_not_kept_waiting_behind_a_flooding_one(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await given_account(uow, clock, "flood", 1)
    await given_account(uow, clock, "quiet", 1)
    flood = await given_waiting(uow, "flood", 20, first_second=0)
    quiet = await given_waiting(uow, "quiet", 2, first_second=100)  # after all of the flood's
    clock.set(START + timedelta(seconds=200))

    claimed = await claim(uow, clock, 6)

    # Turns: flood 0, quiet 0, flood 1, quiet 1, flood 2, flood 3 (each account oldest first)
    assert {m.id for m in claimed} == {*flood[:4], *quiet}
    # and in the order they became due
    assert [m.id for m in claimed] == [*flood[:4], *quiet]
    assert all(m.attempts == 1 for m in claimed)


async def test_an_account_of_weight_three_takes_three_turns_to_anothers_one(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await given_account(uow, clock, "big", 3)
    await given_account(uow, clock, "small", 1)
    await given_waiting(uow, "big", 20, first_second=0)
    await given_waiting(uow, "small", 20, first_second=0)
    clock.set(START + timedelta(seconds=100))

    claimed = await claim(uow, clock, 8)

    assert Counter(m.account for m in claimed) == {"big": 6, "small": 2}
    # What one claim took is leased: the next claim goes on with the turns that are left.
    again = await claim(uow, clock, 8)
    assert not {m.id for m in claimed} & {m.id for m in again}
    assert Counter(m.account for m in again) == {"big": 6, "small": 2}


async def test_messages_of_an_account_that_is_gone_are_still_taken(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    orphans = await given_waiting(uow, "gone", 2, first_second=0)  # no account row: weight 1
    clock.set(START + timedelta(seconds=10))

    assert [m.id for m in await claim(uow, clock, 5)] == orphans


async def test_within_an_account_cancels_go_first_and_what_runs_again_last(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await given_account(uow, clock, "shop", 1)
    again = await given_waiting(uow, "shop", 2, first_second=0, lane=IntakeLane.AGAIN)
    new = await given_waiting(uow, "shop", 3, first_second=10)
    cancels = await given_waiting(uow, "shop", 1, first_second=20, lane=IntakeLane.CANCEL)
    clock.set(START + timedelta(seconds=100))

    first = await claim(uow, clock, 3)
    assert {m.id for m in first} == {*cancels, *new[:2]}  # the cancel, newest, came first
    assert {m.lane for m in first} == {IntakeLane.CANCEL, IntakeLane.NEW}
    then = await claim(uow, clock, 3)
    assert [m.id for m in then] == [*again, new[2]]  # in the order they became due


async def test_a_retry_and_a_replay_run_again_in_the_last_lane_a_resubmit_with_the_new(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await given_account(uow, clock, "shop", 1)
    retried, replayed, resubmitted = await given_waiting(uow, "shop", 3, first_second=0)
    now = clock.now()
    async with uow() as tx:
        await tx.intake.finish(retried, IntakeStatus.RETRYING, now, next_attempt_at=now)
        await tx.intake.finish(replayed, IntakeStatus.REJECTED, now)
        await tx.intake.finish(resubmitted, IntakeStatus.REJECTED, now)
        await tx.commit()

    await ops.replay(replayed, "ops-1", uow=uow, clock=clock)
    corrected = ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="shop",
        external_id="ORD-1",
        event=OrderEvent.CREATE,
        lines=(OrderLine(sku="SKU-1", quantity=1),),
        pickup=Pickup(requested=True),
    )
    await ops.resubmit(resubmitted, corrected, "ops-1", uow=uow, clock=clock)

    async with uow() as tx:
        lanes = {i: (await tx.intake.get(i)) for i in (retried, replayed, resubmitted)}
    assert {i: m.lane for i, m in lanes.items() if m is not None} == {
        retried: IntakeLane.AGAIN,
        replayed: IntakeLane.AGAIN,
        resubmitted: IntakeLane.NEW,
    }


async def test_within_a_lane_the_orders_worth_most_go_first(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await given_account(uow, clock, "shop", 1)
    values = [Decimal("20"), None, Decimal("900.50"), Decimal("75"), Decimal("900.50")]
    new = await given_waiting(uow, "shop", 5, first_second=0, values=values)
    again = await given_waiting(
        uow, "shop", 1, first_second=0, lane=IntakeLane.AGAIN, values=[Decimal("10000")]
    )
    clock.set(START + timedelta(seconds=100))

    first = await claim(uow, clock, 2)
    assert {m.id for m in first} == {new[2], new[4]}  # the two worth 900.50
    then = await claim(uow, clock, 3)
    assert {m.id for m in then} == {new[3], new[0], new[1]}  # 75, 20, then the unknown
    assert [m.id for m in await claim(uow, clock, 5)] == again  # a retry, however much it is worth


async def test_a_claim_leaves_out_the_accounts_it_is_told_to(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """The worker leaves out an account that has its share waiting in the process already: a
    quiet account's arrival is claimed at once without taking more of the flood."""
    for code in ("flood", "other", "quiet"):
        await given_account(uow, clock, code, 1)
    flood = await given_waiting(uow, "flood", 10, first_second=0)
    other = await given_waiting(uow, "other", 1, first_second=20)
    quiet = await given_waiting(uow, "quiet", 2, first_second=30)
    clock.set(START + timedelta(seconds=100))

    claimed = await claim(
        uow,
        clock,
        8,
        exclude=frozenset({(SalesChannel.GENERIC, "flood"), (SalesChannel.GENERIC, "x")}),
    )

    assert [m.id for m in claimed] == [*other, *quiet]
    assert [m.id for m in await claim(uow, clock, 3)] == flood[:3]  # still there, and due


async def test_a_claim_leases_the_fair_pick_and_returns_each_body_and_due_count(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """The worker's claim: on PostgreSQL one statement picks, locks, leases and returns the
    messages with their raw bodies, in the order they became due."""
    for code in ("flood", "quiet"):
        await given_account(uow, clock, code, 1)
    flood = await given_waiting(uow, "flood", 5, first_second=0)
    quiet = await given_waiting(uow, "quiet", 1, first_second=50)
    async with uow() as tx:
        await tx.intake.add(
            IntakeMessage(
                id="with-body",
                channel=SalesChannel.GENERIC,
                account="quiet",
                status=IntakeStatus.RECEIVED,
                received_at=START + timedelta(seconds=60),
                attempts=0,
                next_attempt_at=START + timedelta(seconds=60),
                dedupe_key="event:with-body",
            ),
            b'{"order": 1}',
        )
        await tx.commit()
    clock.set(START + timedelta(seconds=100))
    lease = clock.now() + timedelta(minutes=1)

    async with uow() as tx:
        claim = await tx.intake.claim_due(clock.now(), lease, 4)
        await tx.commit()
    claimed, bodies = claim.messages, claim.bodies

    # Turns: flood 0, quiet 0, flood 1, quiet 1; in the order they became due.
    assert [m.id for m in claimed] == [*flood[:2], *quiet, "with-body"]
    assert bodies == {m.id: b"{}" for m in claimed} | {"with-body": b'{"order": 1}'}
    assert all(m.attempts == 1 for m in claimed)
    # How many of each account's messages were due: the flood has 3 more waiting.
    assert claim.due == {(SalesChannel.GENERIC, "flood"): 5, (SalesChannel.GENERIC, "quiet"): 2}
    async with uow() as tx:
        stored = [await tx.intake.get(m.id) for m in claimed]
    assert all(s is not None and s.attempts == 1 and s.next_attempt_at == lease for s in stored)
    # Leased: not due again; the rest of the flood is.
    async with uow() as tx:
        again = await tx.intake.claim_due(
            clock.now(), lease, 10, exclude={(SalesChannel.GENERIC, "quiet")}
        )
        await tx.commit()
    assert [m.id for m in again.messages] == flood[2:]
    assert again.due == {(SalesChannel.GENERIC, "flood"): 3}
