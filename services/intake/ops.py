"""What ops do with intake messages: look them up, replay one or many (read again from the raw
body), discard one with a reason, and fix-and-resubmit (a corrected canonical order runs again
from validation)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from domain.clock import Clock
from domain.errors import BadInput, InvalidTransition, NotFound
from domain.intake import (
    ChannelOrder,
    Decision,
    HeldOrder,
    IntakeLane,
    IntakeMessage,
    IntakeStatus,
    RuleAction,
    SalesChannel,
)
from services.intake import outcomes
from services.intake.accounts import check_code
from services.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

# What may be replayed or resubmitted: whatever did not end in an action taken.
REPLAYABLE = (
    IntakeStatus.DEAD,
    IntakeStatus.REJECTED,
    IntakeStatus.IGNORED,
    IntakeStatus.DISCARDED,
    IntakeStatus.RETRYING,
)
DISCARDABLE = (
    IntakeStatus.RECEIVED,
    IntakeStatus.RETRYING,
    IntakeStatus.DEAD,
    IntakeStatus.REJECTED,
)
MAX_LIST = 500
MAX_REPLAY = 10_000


def _account_filter(account: str | None) -> str | None:
    """An account filter names an account by its code: anything else (a NUL, which PostgreSQL
    cannot even compare) is bad input, not a search that fails on our side."""
    return None if account is None else check_code(account)


async def message(message_id: str, *, uow: UnitOfWorkFactory) -> IntakeMessage | None:
    async with uow() as tx:
        return await tx.intake.get(message_id)


async def messages(
    *,
    statuses: Sequence[IntakeStatus],
    channel: SalesChannel | None,
    account: str | None,
    first: int,
    by_impact: bool,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> list[IntakeMessage]:
    if not 1 <= first <= MAX_LIST:
        raise BadInput(f"first must be 1 to {MAX_LIST}.", field="first")
    account = _account_filter(account)
    async with uow() as tx:
        return await tx.intake.search(
            statuses=statuses,
            channel=channel,
            account=account,
            limit=first,
            by_impact=by_impact,
            now=clock.now(),
        )


async def channel_order(
    channel: SalesChannel, account: str, external_id: str, *, uow: UnitOfWorkFactory
) -> HeldOrder | None:
    account = check_code(account)
    if "\x00" in external_id:
        raise BadInput("externalId must not contain a NUL character.", field="externalId")
    async with uow() as tx:
        return await tx.channel_orders.get(channel, account, external_id)


async def replay(
    message_id: str, actor: str, *, uow: UnitOfWorkFactory, clock: Clock
) -> IntakeMessage:
    """Run the message again from its raw body, now, with fresh attempts."""
    note = Decision("ops.replay", RuleAction.REPAIR, f"Replayed by {actor}.")
    return await _requeue(message_id, None, note, IntakeLane.AGAIN, uow=uow, clock=clock)


async def resubmit(
    message_id: str, order: ChannelOrder, actor: str, *, uow: UnitOfWorkFactory, clock: Clock
) -> IntakeMessage:
    """Run the message again with the order ops corrected, from validation on."""
    async with uow() as tx:
        found = await tx.intake.get(message_id)
    if found is None:
        raise NotFound(f"No intake message {message_id}.")
    if order.channel is not found.channel or order.account != found.account:
        raise BadInput(
            "The corrected order must keep the message's channel and account.", field="order"
        )
    if found.order is not None and order.external_id != found.order.external_id:
        raise BadInput(
            "The corrected order must keep the order's externalId.", field="order.externalId"
        )
    note = Decision("ops.resubmit", RuleAction.REPAIR, f"Corrected and resubmitted by {actor}.")
    # One order ops corrected by hand: it goes with the new deliveries, not behind the retries.
    return await _requeue(message_id, order, note, IntakeLane.NEW, uow=uow, clock=clock)


async def _requeue(
    message_id: str,
    order: ChannelOrder | None,
    note: Decision,
    lane: IntakeLane,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> IntakeMessage:
    async with uow() as tx:
        found = await tx.intake.get(message_id, for_update=True)
        if found is None:
            raise NotFound(f"No intake message {message_id}.")
        if not await tx.intake.requeue(
            message_id,
            clock.now(),
            order=order,
            decisions=(note,),
            statuses=REPLAYABLE,
            lane=lane,
        ):
            raise InvalidTransition(
                f"Intake message {message_id} is {found.status.value}; only "
                f"{', '.join(s.value for s in REPLAYABLE)} messages run again."
            )
        updated = await tx.intake.get(message_id)
        await tx.commit()
    assert updated is not None
    log.info("intake message requeued", extra={"message_id": message_id, "rule": note.rule})
    return updated


async def replay_many(
    *,
    status: IntakeStatus,
    channel: SalesChannel | None,
    account: str | None,
    actor: str,
    uow: UnitOfWorkFactory,
    clock: Clock,
    limit: int = MAX_REPLAY,
) -> int:
    """Replay every message of `status` (of a channel, of an account), up to `limit`."""
    if status not in REPLAYABLE:
        raise BadInput(
            f"Only {', '.join(s.value for s in REPLAYABLE)} messages run again.", field="status"
        )
    account = _account_filter(account)
    async with uow() as tx:
        found = await tx.intake.search(
            statuses=(status,),
            channel=channel,
            account=account,
            limit=limit,
            by_impact=False,
            now=clock.now(),
        )
    count = 0
    for m in found:
        try:
            await replay(m.id, actor, uow=uow, clock=clock)
            count += 1
        except InvalidTransition:
            continue  # it moved meanwhile
    return count


async def discard(
    message_id: str, reason: str, actor: str, *, uow: UnitOfWorkFactory, clock: Clock
) -> IntakeMessage:
    """Give up on a message, with the reason ops give."""
    reason = reason.strip()
    if not 0 < len(reason) <= 500:
        raise BadInput("Give a reason of 1 to 500 characters.", field="reason")
    async with uow() as tx:
        found = await tx.intake.get(message_id, for_update=True)
        if found is None:
            raise NotFound(f"No intake message {message_id}.")
        if found.status not in DISCARDABLE:
            raise InvalidTransition(
                f"Intake message {message_id} is {found.status.value} and cannot be discarded."
            )
        await outcomes.finish(
            tx,
            found,
            IntakeStatus.DISCARDED,
            clock.now(),
            decisions=(
                *found.decisions,
                Decision("ops.discard", RuleAction.REJECT, f"Discarded by {actor}: {reason}"),
            ),
            error_code=found.error_code,
            error=found.error,
        )
        updated = await tx.intake.get(message_id)
        await tx.commit()
    assert updated is not None
    return updated
