"""Acting on a validated channel order, in one transaction with the message's final status:

- CREATE for pickup: reserve at the store mapped from the channel's location, else the one
  nearest the customer that can serve it, else the account's default store; idempotency key
  `channel:account:externalId`. OUT_OF_STOCK and LIMIT_EXCEEDED end it REJECTED with that code.
- CANCEL (or an order the channel says is cancelled): release what the order holds.
- UPDATE that changes the lines: the old reservations cancelled and the new lines reserved in
  one transaction, or nothing changes and the message says why.
- An event older than the one applied changes nothing (IGNORED, stale); an order not for pickup
  is kept in canonical form and IGNORED.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from domain.clock import Clock
from domain.commands import Reserve
from domain.errors import DomainError, LimitExceeded, NotFound, OutOfStock
from domain.geo import validate_radius
from domain.intake import (
    ChannelAccount,
    ChannelOrder,
    Decision,
    HeldOrder,
    IntakeMessage,
    IntakeStatus,
    OrderEvent,
    OrderState,
    RuleAction,
    intake_customer_id,
)
from domain.intake_rules import Verdict
from domain.kpis import ReserveOutcome
from domain.reservations import MovementReason, Reservation
from services.intake import outcomes
from services.reservations import StockTaken, finish, reserve_in
from services.unit_of_work import RetryableConflict, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
CANCEL_REASON = "Cancelled by the sales channel"
ALREADY_RESERVED = "order.already_reserved"
AMEND_REASON = "Amended by the sales channel"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: IntakeStatus
    decisions: tuple[Decision, ...] = ()
    order: ChannelOrder | None = None
    error_code: str | None = None
    error: str | None = None
    group_id: str | None = None
    # Where the order's reserve was tried (the store that serves it, or the one named), if any.
    store_id: str | None = None

    @property
    def reserve_outcome(self) -> ReserveOutcome | None:
        """What the order's reserve attempt came to, for the KPIs; None when the message asked
        for no reserve (a cancel, an order not for pickup, a stale or unchanged update, one
        reserved before)."""
        order = self.order
        if order is None or order.event is OrderEvent.CANCEL or order.cancelled:
            return None
        if not order.pickup.requested:
            return None
        if self.status is IntakeStatus.REJECTED:
            return ReserveOutcome.of_code(self.error_code)
        if self.status is IntakeStatus.ACCEPTED and not any(
            d.rule == ALREADY_RESERVED for d in self.decisions
        ):
            return ReserveOutcome.RESERVED
        return None


class _Refused(Exception):
    """A business refusal found inside the transaction: roll back, then record it."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class _AlreadyFinished(Exception):
    pass


Check = Callable[[UnitOfWork, ChannelOrder], Awaitable[Verdict]]


async def act(
    message: IntakeMessage,
    order: ChannelOrder,
    decisions: tuple[Decision, ...],
    account: ChannelAccount,
    check: Check,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    radius_km: float,
) -> Outcome | None:
    """Validate the order (`check`: the account's profile against the catalog as this
    transaction sees it), do what it asks and finish the message, all in one transaction. None
    when another worker had finished it already."""
    plan = _Plan(order, decisions, account, validate_radius(radius_km), check)
    for attempt in range(MAX_ATTEMPTS):
        try:
            return await _attempt(message, plan, uow=uow, clock=clock)
        except RetryableConflict as conflict:
            if conflict.what == "unknown_reference":
                unknown = await _unknown_reference(plan, uow=uow)
                if unknown is not None:
                    return await _record(message, unknown, uow=uow, clock=clock)
            if attempt == MAX_ATTEMPTS - 1:
                raise
        except StockTaken:
            if attempt == MAX_ATTEMPTS - 1:
                raise
        except _AlreadyFinished:
            return None
        except _Refused as refused:
            return await _record(message, refused.outcome, uow=uow, clock=clock)
    raise AssertionError("unreachable")


@dataclass(slots=True)
class _Plan:
    received: ChannelOrder
    read_decisions: tuple[Decision, ...]
    account: ChannelAccount
    radius_km: float
    check: Check
    use_default_store: bool = False
    # The store the last reserve was tried at, or that serves it.
    store_id: str | None = None
    # What acting itself decided (a fallback store, a replayed reservation): kept across tries.
    notes: tuple[Decision, ...] = ()
    # The order as the rules left it, and their decisions: set by each try.
    order: ChannelOrder | None = None
    decisions: tuple[Decision, ...] = ()

    def outcome(
        self,
        status: IntakeStatus,
        *,
        error_code: str | None = None,
        error: str | None = None,
        group_id: str | None = None,
    ) -> Outcome:
        return Outcome(
            status,
            decisions=(*self.decisions, *self.notes),
            order=self.order or self.received,
            error_code=error_code,
            error=error,
            group_id=group_id,
            store_id=self.store_id or (self.order or self.received).pickup.store_id,
        )

    @property
    def current(self) -> ChannelOrder:
        return self.order or self.received


async def _attempt(
    message: IntakeMessage, plan: _Plan, *, uow: UnitOfWorkFactory, clock: Clock
) -> Outcome:
    received = plan.received
    order_key = (received.channel, received.account, received.external_id)
    async with uow() as tx:
        now = clock.now()
        # The message, and the order it is of (two workers never act on one order at once).
        current = await tx.intake.get(message.id, for_update=True, and_order=order_key)
        if current is None or current.status.final:
            raise _AlreadyFinished
        verdict = await plan.check(tx, received)
        plan.order = verdict.order
        plan.decisions = (*plan.read_decisions, *verdict.decisions)
        if verdict.rejected is not None:
            outcome = plan.outcome(
                IntakeStatus.REJECTED,
                error_code=verdict.rejected.code or "REJECTED",
                error=verdict.rejected.message,
            )
        else:
            order = verdict.order
            if (order.channel, order.account, order.external_id) != order_key:
                await tx.channel_orders.lock(order.channel, order.account, order.external_id)
            held = await tx.channel_orders.get(
                order.channel, order.account, order.external_id, for_update=True
            )
            outcome = await _decide(tx, message, plan, held, now)
        await outcomes.finish(
            tx,
            current,
            outcome.status,
            now,
            decisions=outcome.decisions,
            order=outcome.order,
            error_code=outcome.error_code,
            error=outcome.error,
            group_id=outcome.group_id,
        )
        await tx.commit()
    return outcome


async def _decide(
    tx: UnitOfWork, message: IntakeMessage, plan: _Plan, held: HeldOrder | None, now: datetime
) -> Outcome:
    order = plan.current
    if _stale(order, held):
        assert held is not None
        return plan.outcome(
            IntakeStatus.IGNORED,
            error_code="STALE",
            error=f"An event of this order from {_iso(held.version_time)} was applied already; "
            f"this one is from {_iso(order.version_time)}.",
            group_id=held.group_id,
        )
    if order.event is OrderEvent.CANCEL or order.cancelled:
        return await _cancel(tx, message, plan, held, now)
    if not order.pickup.requested:
        return await _not_pickup(tx, message, plan, held, now)
    if held is not None and held.state is OrderState.CANCELLED:
        await tx.channel_orders.put(order, OrderState.CANCELLED, held.group_id, message.id, now)
        return plan.outcome(
            IntakeStatus.IGNORED, error_code="CANCELLED", error="The order was cancelled before."
        )
    if held is not None and held.state is OrderState.RESERVED and held.group_id:
        return await _amend(tx, message, plan, held, now)
    group_id = await _reserve(tx, plan, now, idempotent=True)
    await tx.channel_orders.put(order, OrderState.RESERVED, group_id, message.id, now)
    return plan.outcome(IntakeStatus.ACCEPTED, group_id=group_id)


def _stale(order: ChannelOrder, held: HeldOrder | None) -> bool:
    if held is None or held.version_time is None or order.version_time is None:
        return False
    return order.version_time < held.version_time


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else "an unknown time"


async def _cancel(
    tx: UnitOfWork, message: IntakeMessage, plan: _Plan, held: HeldOrder | None, now: datetime
) -> Outcome:
    order = plan.current
    if held is None or held.state is not OrderState.RESERVED or not held.group_id:
        await tx.channel_orders.put(
            order, OrderState.CANCELLED, held.group_id if held else None, message.id, now
        )
        return plan.outcome(
            IntakeStatus.IGNORED,
            error_code="NOTHING_HELD",
            error="The order holds nothing to release.",
        )
    released = await _release_group(tx, held.group_id, CANCEL_REASON, now)
    await tx.channel_orders.put(order, OrderState.CANCELLED, held.group_id, message.id, now)
    if not released:
        return plan.outcome(
            IntakeStatus.IGNORED,
            error_code="NOTHING_HELD",
            error="The order's reservations had ended already (collected, expired or cancelled).",
            group_id=held.group_id,
        )
    return plan.outcome(IntakeStatus.ACCEPTED, group_id=held.group_id)


async def _not_pickup(
    tx: UnitOfWork, message: IntakeMessage, plan: _Plan, held: HeldOrder | None, now: datetime
) -> Outcome:
    order = plan.current
    if held is not None and held.state is OrderState.RESERVED and held.group_id:
        # An update moved the order to delivery: what it held for pickup goes back.
        await _release_group(tx, held.group_id, "No longer a pickup order", now)
        await tx.channel_orders.put(order, OrderState.NOT_PICKUP, held.group_id, message.id, now)
        return plan.outcome(IntakeStatus.ACCEPTED, group_id=held.group_id)
    await tx.channel_orders.put(order, OrderState.NOT_PICKUP, None, message.id, now)
    return plan.outcome(IntakeStatus.IGNORED, error_code="NOT_PICKUP", error="Not a pickup order.")


async def _amend(
    tx: UnitOfWork, message: IntakeMessage, plan: _Plan, held: HeldOrder, now: datetime
) -> Outcome:
    order = plan.current
    assert held.group_id is not None
    active = [r for r in await tx.reservations.in_group(held.group_id) if r.is_active]
    if _units(order) == _held_units(active):
        await tx.channel_orders.put(order, OrderState.RESERVED, held.group_id, message.id, now)
        return plan.outcome(
            IntakeStatus.IGNORED,
            error_code="NO_CHANGE",
            error="The update changes nothing ROPOS holds.",
            group_id=held.group_id,
        )
    if not active:
        await tx.channel_orders.put(order, OrderState.RESERVED, held.group_id, message.id, now)
        return plan.outcome(
            IntakeStatus.IGNORED,
            error_code="NOTHING_HELD",
            error="The order's reservations had ended already; the update changes nothing.",
            group_id=held.group_id,
        )
    await _release_group(tx, held.group_id, AMEND_REASON, now)
    group_id = await _reserve(tx, plan, now, idempotent=False)
    await tx.channel_orders.put(order, OrderState.RESERVED, group_id, message.id, now)
    return plan.outcome(IntakeStatus.ACCEPTED, group_id=group_id)


def _units(order: ChannelOrder) -> Counter[str]:
    units: Counter[str] = Counter()
    for line in order.lines:
        if line.sku:
            units[line.sku] += line.quantity
    return units


def _held_units(active: list[Reservation]) -> Counter[str]:
    units: Counter[str] = Counter()
    for reservation in active:
        for line in reservation.lines:
            units[line.sku] += line.quantity
    return units


async def _release_group(tx: UnitOfWork, group_id: str, reason: str, now: datetime) -> int:
    """Cancel every active reservation of the group, in id order (the lock order)."""
    ids = sorted(r.id for r in await tx.reservations.in_group(group_id) if r.is_active)
    cancelled: list[Reservation] = []
    for reservation_id in ids:
        reservation = await tx.reservations.get(reservation_id, for_update=True)
        if reservation is None or not reservation.is_active or reservation.is_due(now):
            continue  # ended meanwhile, or the expiry sweeper's now
        previous = reservation.version
        reservation.cancel(now, reason)
        await tx.reservations.save(reservation, previous, now)
        cancelled.append(reservation)
    await finish(tx, cancelled, MovementReason.CANCEL, now)
    return len(cancelled)


async def _reserve(tx: UnitOfWork, plan: _Plan, now: datetime, *, idempotent: bool) -> str:
    order = plan.current
    store_id = order.pickup.store_id
    near = order.customer_location if store_id is None else None
    if store_id is None and (near is None or plan.use_default_store):
        store_id, near = plan.account.default_store_id, None
    plan.store_id = store_id
    if store_id is None and near is None:
        raise _Refused(
            plan.outcome(
                IntakeStatus.REJECTED,
                error_code="NO_PICKUP_STORE",
                error="No store to pick up at: the location is not mapped, the order has no "
                "customer location and the account has no default store.",
            )
        )
    try:
        cmd = Reserve.build(
            customer_id=intake_customer_id(order),
            lines=sorted(_units(order).items()),
            store_id=store_id,
            near=near,
            radius_km=plan.radius_km if near is not None else None,
            idempotency_key=order.idempotency_key if idempotent else None,
            channel=f"{order.channel.value}:{order.account}"[:64],
        )
        group = await reserve_in(tx, cmd, cmd.fingerprint(), now)
    except OutOfStock as error:
        if near is not None and plan.account.default_store_id and not plan.use_default_store:
            plan.use_default_store = True
            plan.notes = (
                *plan.notes,
                Decision(
                    "pickup.fallback_default_store",
                    RuleAction.REPAIR,
                    "No store near the customer can serve every line; tried the account's "
                    f"default store {plan.account.default_store_id}.",
                    "pickup.storeId",
                ),
            )
            raise StockTaken(error.skus[0] if error.skus else "") from None
        raise _Refused(_refusal(plan, error)) from None
    except (LimitExceeded, NotFound) as error:
        raise _Refused(_refusal(plan, error)) from None
    except DomainError as error:
        if error.code in ("BAD_USER_INPUT", "LIMIT_EXCEEDED"):
            raise _Refused(_refusal(plan, error)) from None
        raise
    plan.store_id = group.reservations[0].store_id if group.reservations else store_id
    if group.replayed:
        plan.notes = (
            *plan.notes,
            Decision(
                ALREADY_RESERVED,
                RuleAction.WARN,
                "This order was reserved before; the same reservation stands.",
            ),
        )
    return group.id


async def _unknown_reference(plan: _Plan, *, uow: UnitOfWorkFactory) -> Outcome | None:
    """A reservation row named a SKU or store that does not exist: which (None when it exists
    now, created meanwhile: try again)."""
    skus = set(_units(plan.current))
    store = plan.current.pickup.store_id or plan.account.default_store_id
    async with uow() as tx:
        missing = sorted(skus - await tx.catalog.existing_skus(skus))
        no_store = store is not None and not await tx.catalog.existing_stores([store])
    if missing:
        return plan.outcome(
            IntakeStatus.REJECTED,
            error_code="UNKNOWN_SKU",
            error=f"Unknown SKU: {', '.join(missing)}",
        )
    if no_store:
        return plan.outcome(
            IntakeStatus.REJECTED, error_code="UNKNOWN_STORE", error=f"Unknown store: {store}"
        )
    return None


def _refusal(plan: _Plan, error: DomainError) -> Outcome:
    code = "UNKNOWN_SKU" if isinstance(error, NotFound) and "skus" in error.details else error.code
    return plan.outcome(IntakeStatus.REJECTED, error_code=code, error=error.message)


async def _record(
    message: IntakeMessage, outcome: Outcome, *, uow: UnitOfWorkFactory, clock: Clock
) -> Outcome | None:
    async with uow() as tx:
        current = await tx.intake.get(message.id, for_update=True)
        if current is None or current.status.final:
            return None
        await outcomes.finish(
            tx,
            current,
            outcome.status,
            clock.now(),
            decisions=outcome.decisions,
            order=outcome.order,
            error_code=outcome.error_code,
            error=outcome.error,
        )
        await tx.commit()
    return outcome
