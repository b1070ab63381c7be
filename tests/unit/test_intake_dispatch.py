"""The intake worker's dispatch: which claimed orders start, and when it claims more. Orders
flow without rounds; while several accounts have orders, each holds at most its weighted share
of the slots, so a flooding account never takes the whole worker and a quiet account's order
starts at once; cancels go before the orders claimed with them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from domain.intake import (
    ChannelAccount,
    FetchBack,
    IntakeLane,
    IntakeMessage,
    IntakeStatus,
    SalesChannel,
)
from services.intake.worker import Claimed, Dispatch, OrderReads, Sweep, _Thin

CHANNEL = SalesChannel.SHOPIFY
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
_ids = itertools.count(1)


def order(account: str, *, lane: IntakeLane = IntakeLane.NEW, weight: int = 1) -> OrderReads:
    n = next(_ids)
    message = IntakeMessage(
        id=f"m{n}",
        channel=CHANNEL,
        account=account,
        status=IntakeStatus.RECEIVED,
        received_at=NOW,
        attempts=1,
        next_attempt_at=NOW,
        dedupe_key=f"event:{n}",
        lane=lane,
    )
    owner = ChannelAccount(channel=CHANNEL, account=account, weight=weight)
    return [_Thin(message, owner, FetchBack(external_id=f"o{n}", topic="orders/create"))]


def claimed(*orders: OrderReads, backlog: dict[str, int] | None = None) -> Claimed:
    """A claim of `orders`; `backlog`: the accounts' messages still due after it."""
    accounts = {o[0].message.account for o in orders}
    left = {(CHANNEL, a): (backlog or {}).get(a, 0) for a in accounts}
    return Claimed(Sweep(len(orders), 0), list(orders), left)


def feed(dispatch: Dispatch, taken: Claimed, now: float) -> None:
    """Hand the dispatch a claim as if it had asked for it now."""
    dispatch.claimed(taken, dispatch.ticket(now), now)


def accounts_of(started: list[OrderReads]) -> list[str]:
    return [reads[0].message.account for reads in started]


def test_one_account_alone_takes_every_slot() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    feed(dispatch, claimed(*(order("alpha") for _ in range(20))), 0.0)
    assert accounts_of(dispatch.next(0.0)) == ["alpha"] * 8
    assert dispatch.next(0.0) == []  # every slot busy


def test_a_flooding_account_holds_its_share_and_a_quiet_one_starts_at_once() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    flood = [order("alpha") for _ in range(40)]
    feed(dispatch, claimed(*flood, order("beta"), order("gamma"), backlog={"alpha": 400}), 0.0)
    started = accounts_of(dispatch.next(0.0))
    # Three accounts of weight 1: a share is 8/3, so 2 slots each; beta and gamma start at once
    # although alpha's 40 orders were claimed before theirs.
    assert sorted(started) == ["alpha", "alpha", "beta", "gamma"]
    # Slots are left free (headroom): the next quiet order does not wait for alpha's to finish.
    feed(dispatch, claimed(order("beta")), 0.1)
    assert accounts_of(dispatch.next(0.1)) == ["beta"]


def test_a_free_slot_goes_to_the_account_with_the_fewest_in_flight() -> None:
    dispatch = Dispatch(concurrency=4, batch_size=10)
    a = [order("alpha") for _ in range(6)]
    feed(dispatch, claimed(*a, backlog={"alpha": 100}), 0.0)
    assert len(dispatch.next(0.0)) == 4  # alone: all four slots
    feed(dispatch, claimed(order("beta")), 0.1)
    assert dispatch.next(0.1) == []  # every slot busy: beta waits for the first to free
    dispatch.done(a[0], 0.2)
    assert accounts_of(dispatch.next(0.2)) == ["beta"]  # not alpha's next, claimed before it


def test_shares_follow_the_weights() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    heavy = [order("alpha", weight=3) for _ in range(20)]
    light = [order("beta", weight=1) for _ in range(20)]
    feed(dispatch, claimed(*heavy, *light, backlog={"alpha": 100, "beta": 100}), 0.0)
    assert sorted(accounts_of(dispatch.next(0.0))) == ["alpha"] * 6 + ["beta"] * 2
    assert dispatch.share((CHANNEL, "alpha"), 0.0) == 6


def test_the_share_holds_while_others_sent_lately_then_the_whole_worker_again() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50, hold_seconds=2.0)
    beta = order("beta")
    feed(dispatch, claimed(beta), 0.0)
    dispatch.next(0.0)
    dispatch.done(beta, 0.5)
    flood = [order("alpha") for _ in range(20)]
    feed(dispatch, claimed(*flood, backlog={"alpha": 100}), 1.0)
    assert len(dispatch.next(1.0)) == 4  # beta sent 0.5 s ago: alpha holds its half
    assert len(dispatch.next(2.6)) == 4  # beta quiet for 2 s: the whole worker is alpha's


def test_cancels_start_before_the_orders_claimed_with_them() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    cancel = order("alpha", lane=IntakeLane.CANCEL)
    creates = [order("alpha"), order("beta")]
    feed(dispatch, claimed(cancel, *creates), 0.0)
    first = dispatch.next(0.0)
    assert first == [cancel]  # the creates wait for the stock the cancel releases
    dispatch.done(cancel, 0.1)
    assert sorted(accounts_of(dispatch.next(0.1))) == ["alpha", "beta"]


def size_of(dispatch: Dispatch, now: float) -> int:
    ticket = dispatch.claim(now)
    return ticket.size if ticket is not None else 0


def test_claims_a_batch_when_few_wait_and_more_may_be_due() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    assert size_of(dispatch, 0.0) == 50  # at start: whatever is due
    feed(dispatch, claimed(*(order("alpha") for _ in range(50))), 0.0)
    dispatch.next(0.0)
    assert dispatch.queued == 42
    assert size_of(dispatch, 0.0) == 0  # enough waiting here
    # A claim that found less than it asked for: nothing more is due until told otherwise.
    dispatch = Dispatch(concurrency=8, batch_size=50)
    feed(dispatch, claimed(order("alpha")), 0.0)
    assert size_of(dispatch, 0.0) == 0
    dispatch.due()  # the periodic look
    assert size_of(dispatch, 0.0) == 50 - 1


def test_an_arrival_claims_at_once_unless_its_account_has_its_share_waiting() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    feed(
        dispatch,
        claimed(*(order("alpha") for _ in range(30)), order("beta"), backlog={"alpha": 100}),
        0.0,
    )
    dispatch.next(0.0)
    assert size_of(dispatch, 0.1) == 0
    assert dispatch.excluded(0.1) == {(CHANNEL, "alpha")}
    dispatch.arrived((CHANNEL, "alpha"), 0.1)  # alpha has plenty waiting here: no claim for it
    assert size_of(dispatch, 0.1) == 0
    dispatch.arrived((CHANNEL, "beta"), 0.1)  # beta's order must not wait for the next batch
    ticket = dispatch.claim(0.1)
    assert ticket is not None
    assert ticket.exclude == {(CHANNEL, "alpha")}
    # An arrival during the claim (perhaps after its snapshot) asks for another.
    dispatch.arrived((CHANNEL, "gamma"), 0.2)
    dispatch.claimed(claimed(order("beta")), ticket, 0.3)
    assert size_of(dispatch, 0.3) > 0
    feed(dispatch, claimed(), 0.4)
    assert size_of(dispatch, 0.4) == 0


def test_an_account_left_out_is_claimed_again_once_its_queue_is_below_its_share() -> None:
    dispatch = Dispatch(concurrency=4, batch_size=10)
    alpha = [order("alpha") for _ in range(4)]
    feed(dispatch, claimed(*alpha, order("beta"), backlog={"alpha": 10}), 0.0)
    started = dispatch.next(0.0)  # shares of 2: alpha 2, beta 1; alpha's other 2 wait here
    assert len(started) == 3
    ticket = dispatch.claim(0.1)
    assert ticket is None  # nothing arrived, the claim came short: nothing more is due
    dispatch.arrived((CHANNEL, "alpha"), 0.1)  # left out: alpha has its share waiting here
    assert dispatch.claim(0.1) is None
    for reads in started:
        dispatch.done(reads, 0.2)
    dispatch.next(0.2)  # alpha's two waiting start: none of its left here
    ticket = dispatch.claim(0.2)
    assert ticket is not None  # what arrived for alpha meanwhile is claimed now
    dispatch.claimed(claimed(), ticket, 0.3)
    assert dispatch.claim(0.3) is None  # and once taken up, no more claims for it


def test_an_arrival_nobody_names_claims() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    feed(dispatch, claimed(), 0.0)
    assert size_of(dispatch, 0.0) == 0
    dispatch.arrived(None, 0.1)  # ops replayed something
    assert size_of(dispatch, 0.1) == 50


def test_slots_alternate_between_accounts_rather_than_going_in_claim_order() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    first = [order("alpha") for _ in range(3)]
    then = [order("beta") for _ in range(3)]
    feed(dispatch, claimed(*first, *then), 0.0)
    assert accounts_of(dispatch.next(0.0)) == ["alpha", "beta"] * 3


def test_an_account_without_a_backlog_is_not_held_to_its_share() -> None:
    """A quiet account's burst takes the free slots: shares hold back only a backlog."""
    dispatch = Dispatch(concurrency=8, batch_size=50)
    flood = [order("alpha") for _ in range(2)]
    burst = [order("beta") for _ in range(6)]
    feed(dispatch, claimed(*flood, *burst, backlog={"alpha": 300}), 0.0)
    # Shares of 4 each: beta's burst has no backlog behind it, so it takes 6 slots.
    assert sorted(accounts_of(dispatch.next(0.0))) == ["alpha"] * 2 + ["beta"] * 6
    assert dispatch.limit((CHANNEL, "alpha"), 0.0) == 4
    assert dispatch.limit((CHANNEL, "beta"), 0.0) == 8


def test_a_few_messages_a_short_claim_left_are_not_a_backlog() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    feed(dispatch, claimed(order("alpha"), order("beta"), backlog={"alpha": 7, "beta": 8}), 0.0)
    assert dispatch.limit((CHANNEL, "alpha"), 0.0) == 8
    assert dispatch.limit((CHANNEL, "beta"), 0.0) == 4
