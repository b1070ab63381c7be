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


def claimed(*orders: OrderReads) -> Claimed:
    accounts = {o[0].message.account for o in orders}
    return Claimed(Sweep(len(orders), 0, len(accounts)), list(orders))


def accounts_of(started: list[OrderReads]) -> list[str]:
    return [reads[0].message.account for reads in started]


def test_one_account_alone_takes_every_slot() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    dispatch.claimed(
        claimed(*(order("alpha") for _ in range(20))),
        asked=50,
        excluded=False,
        arrivals=0,
        now=0.0,
    )
    assert accounts_of(dispatch.next(0.0)) == ["alpha"] * 8
    assert dispatch.next(0.0) == []  # every slot busy


def test_a_flooding_account_holds_its_share_and_a_quiet_one_starts_at_once() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    flood = [order("alpha") for _ in range(40)]
    dispatch.claimed(
        claimed(*flood, order("beta"), order("gamma")),
        asked=50,
        excluded=False,
        arrivals=0,
        now=0.0,
    )
    started = accounts_of(dispatch.next(0.0))
    # Three accounts of weight 1: a share is 8/3, so 2 slots each; beta and gamma start at once
    # although alpha's 40 orders were claimed before theirs.
    assert sorted(started) == ["alpha", "alpha", "beta", "gamma"]
    # Slots are left free (headroom): the next quiet order does not wait for alpha's to finish.
    dispatch.claimed(claimed(order("beta")), asked=8, excluded=True, arrivals=0, now=0.1)
    assert accounts_of(dispatch.next(0.1)) == ["beta"]


def test_a_free_slot_goes_to_the_account_with_the_fewest_in_flight() -> None:
    dispatch = Dispatch(concurrency=4, batch_size=10)
    a = [order("alpha") for _ in range(6)]
    dispatch.claimed(claimed(*a), asked=10, excluded=False, arrivals=0, now=0.0)
    assert len(dispatch.next(0.0)) == 4  # alone: all four slots
    dispatch.claimed(claimed(order("beta")), asked=10, excluded=False, arrivals=0, now=0.1)
    assert dispatch.next(0.1) == []  # every slot busy: beta waits for the first to free
    dispatch.done(a[0], 0.2)
    assert accounts_of(dispatch.next(0.2)) == ["beta"]  # not alpha's next, claimed before it


def test_shares_follow_the_weights() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    heavy = [order("alpha", weight=3) for _ in range(20)]
    light = [order("beta", weight=1) for _ in range(20)]
    dispatch.claimed(claimed(*heavy, *light), asked=50, excluded=False, arrivals=0, now=0.0)
    assert sorted(accounts_of(dispatch.next(0.0))) == ["alpha"] * 6 + ["beta"] * 2
    assert dispatch.share((CHANNEL, "alpha"), 0.0) == 6


def test_the_share_holds_while_others_sent_lately_then_the_whole_worker_again() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50, hold_seconds=2.0)
    beta = order("beta")
    dispatch.claimed(claimed(beta), asked=50, excluded=False, arrivals=0, now=0.0)
    dispatch.next(0.0)
    dispatch.done(beta, 0.5)
    flood = [order("alpha") for _ in range(20)]
    dispatch.claimed(claimed(*flood), asked=50, excluded=False, arrivals=0, now=1.0)
    assert len(dispatch.next(1.0)) == 4  # beta sent 0.5 s ago: alpha holds its half
    assert len(dispatch.next(2.6)) == 4  # beta quiet for 2 s: the whole worker is alpha's


def test_cancels_start_before_the_orders_claimed_with_them() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    cancel = order("alpha", lane=IntakeLane.CANCEL)
    creates = [order("alpha"), order("beta")]
    dispatch.claimed(claimed(cancel, *creates), asked=50, excluded=False, arrivals=0, now=0.0)
    first = dispatch.next(0.0)
    assert first == [cancel]  # the creates wait for the stock the cancel releases
    dispatch.done(cancel, 0.1)
    assert sorted(accounts_of(dispatch.next(0.1))) == ["alpha", "beta"]


def test_claims_a_batch_when_few_wait_and_more_may_be_due() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    assert dispatch.claim_size() == 50  # at start: whatever is due
    dispatch.claimed(
        claimed(*(order("alpha") for _ in range(50))),
        asked=50,
        excluded=False,
        arrivals=0,
        now=0.0,
    )
    dispatch.next(0.0)
    assert dispatch.queued == 42
    assert dispatch.claim_size() == 0  # enough waiting here
    # A claim that found less than it asked for: nothing more is due until told otherwise.
    dispatch = Dispatch(concurrency=8, batch_size=50)
    dispatch.claimed(claimed(order("alpha")), asked=50, excluded=False, arrivals=0, now=0.0)
    assert dispatch.claim_size() == 0
    dispatch.due()  # the periodic look
    assert dispatch.claim_size() == 50 - 1


def test_an_arrival_claims_at_once_unless_its_account_has_its_share_waiting() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    dispatch.claimed(
        claimed(*(order("alpha") for _ in range(30)), order("beta")),
        asked=50,
        excluded=False,
        arrivals=0,
        now=0.0,
    )
    dispatch.next(0.0)
    assert dispatch.claim_size() == 0
    dispatch.arrived((CHANNEL, "alpha"), 0.1)  # alpha has plenty waiting here: no claim for it
    assert dispatch.claim_size() == 0
    assert dispatch.excluded(0.1) == {(CHANNEL, "alpha")}
    dispatch.arrived((CHANNEL, "beta"), 0.1)  # beta's order must not wait for the next batch
    assert dispatch.claim_size() == 50 - dispatch.queued
    # An arrival during the claim (perhaps after its snapshot) asks for another.
    began = dispatch.claiming()
    dispatch.arrived((CHANNEL, "gamma"), 0.2)
    dispatch.claimed(claimed(order("beta")), asked=24, excluded=True, arrivals=began, now=0.3)
    assert dispatch.claim_size() > 0
    dispatch.claimed(claimed(), asked=23, excluded=True, arrivals=dispatch.claiming(), now=0.4)
    assert dispatch.claim_size() == 0


def test_an_arrival_nobody_names_claims() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    dispatch.claimed(claimed(), asked=50, excluded=False, arrivals=0, now=0.0)
    assert dispatch.claim_size() == 0
    dispatch.arrived(None, 0.1)  # ops replayed something
    assert dispatch.claim_size() == 50


def test_slots_alternate_between_accounts_rather_than_going_in_claim_order() -> None:
    dispatch = Dispatch(concurrency=8, batch_size=50)
    first = [order("alpha") for _ in range(3)]
    then = [order("beta") for _ in range(3)]
    dispatch.claimed(claimed(*first, *then), asked=50, excluded=False, arrivals=0, now=0.0)
    assert accounts_of(dispatch.next(0.0)) == ["alpha", "beta"] * 3
