"""Reservation use cases: reserve, cancel, expire what is due, warn of expiry."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.clock import Clock
from domain.codes import new_pickup_code
from domain.commands import Reserve, validate_reason
from domain.errors import BadInput, NotFound, OutOfStock
from domain.reservations import MovementReason, Reservation
from domain.sourcing import Allocation, plan
from domain.stock import Movement
from services.unit_of_work import (
    RetryableConflict,
    UnitOfWork,
    UnitOfWorkFactory,
    retrying_deadlocks,
)

log = logging.getLogger(__name__)

# A reserve that loses a race (stock taken between sourcing and locking, a pickup code or an
# idempotency key taken by a concurrent transaction) is tried again this many times in all.
MAX_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class ReservationGroup:
    """What one `reserve` created: one reservation per store that serves part of it."""

    id: str
    customer_id: str
    reservations: tuple[Reservation, ...]
    replayed: bool = False


class StockTaken(Exception):
    """A conditional update found fewer units than sourcing saw: plan again."""

    def __init__(self, sku: str) -> None:
        super().__init__(sku)
        self.sku = sku


def new_id() -> str:
    return str(uuid.uuid4())


async def reserve(cmd: Reserve, *, uow: UnitOfWorkFactory, clock: Clock) -> ReservationGroup:
    """Lock every line of `cmd` at one store (or split over the fewest near stores), all or none."""
    request_hash = cmd.fingerprint()
    taken: str | None = None
    for _attempt in range(MAX_ATTEMPTS):
        try:
            return await _reserve_once(cmd, request_hash, uow(), clock)
        except StockTaken as race:
            taken = race.sku
        except RetryableConflict as conflict:
            if conflict.what == "unknown_reference":
                await _explain_unknown(uow, cmd)
                continue  # it exists now: created meanwhile
            if conflict.what != "idempotency_key":
                continue
            # A twin request with the same key committed first: answer with its group.
            async with uow() as tx:
                found = await tx.reservations.find_idempotency_key(
                    cmd.customer_id, cmd.idempotency_key or ""
                )
                if found is not None:
                    return await _replay(tx, cmd.customer_id, found, request_hash)
    raise OutOfStock([taken] if taken else [line.sku for line in cmd.lines])


async def _reserve_once(
    cmd: Reserve, request_hash: str, tx: UnitOfWork, clock: Clock
) -> ReservationGroup:
    async with tx:
        group = await reserve_in(tx, cmd, request_hash, clock.now())
        if group.replayed:
            return group  # nothing written: the transaction rolls back
        await tx.commit()
    log.info(
        "reserved",
        extra={
            "group_id": group.id,
            "customer_id": cmd.customer_id,
            "reservation_ids": [r.id for r in group.reservations],
            "store_ids": [r.store_id for r in group.reservations],
        },
    )
    return group


async def reserve_in(
    tx: UnitOfWork, cmd: Reserve, request_hash: str, now: datetime
) -> ReservationGroup:
    """The locking part of `reserve`, inside the caller's transaction (which commits it, or rolls
    it back with whatever else it did): the intake amends an order in one transaction this way.
    Raises StockTaken when a race took the units near a point (plan again: run it anew)."""
    policy = await tx.policy.get()
    hold_seconds = policy.hold_seconds_for(cmd.hold_seconds)
    policy.check_units_requested(cmd.units)
    group_id = new_id()
    # The key's row goes first: a concurrent twin with the same key waits on it, then finds the
    # key taken and answers with this group.
    if cmd.idempotency_key and not await tx.reservations.add_idempotency_key(
        cmd.customer_id, cmd.idempotency_key, request_hash, group_id, now
    ):
        found = await tx.reservations.find_idempotency_key(cmd.customer_id, cmd.idempotency_key)
        if found is None:  # taken by a request that has since ended (its key expired): again
            raise RetryableConflict("idempotency_key")
        return await _replay(tx, cmd.customer_id, found, request_hash)
    allocations = await _source(tx, cmd, policy.max_stores_per_group)

    if not await tx.holds.add_reservations(
        cmd.customer_id, len(allocations), policy.max_active_reservations_per_customer
    ):
        raise policy.reservations_exceeded()
    over = await tx.holds.add_units(
        cmd.customer_id, cmd.units, policy.max_units_per_sku_per_customer
    )
    if over:
        raise policy.units_exceeded(over)

    held = [
        Reservation.hold(
            id=new_id(),
            group_id=group_id,
            code=new_pickup_code(),
            customer_id=cmd.customer_id,
            store_id=allocation.store_id,
            channel=cmd.channel,
            lines=allocation.lines,
            hold_seconds=hold_seconds,
            now=now,
        )
        for allocation in allocations
    ]
    # Rows first, stock locks last: a hot stock row stays locked only for its conditional
    # update and the commit. Unknown stores or SKUs fail the inserts (foreign keys).
    await tx.reservations.add(held, now)
    locks = sorted((r.store_id, line.sku, line.quantity, r.id) for r in held for line in r.lines)
    await tx.ledger.record(
        [Movement(store, sku, 0, q, MovementReason.RESERVE, rid) for store, sku, q, rid in locks],
        now,
    )
    await tx.outbox.add([e for r in held for e in r.events])
    # Deterministic row order, so concurrent multi-line reserves never deadlock.
    for store_id, sku, quantity, _ in locks:
        if await tx.stock.lock(store_id, sku, quantity, now) is None:
            await _explain_shortage(tx, cmd, store_id, sku)
    return ReservationGroup(group_id, cmd.customer_id, tuple(held))


async def _source(tx: UnitOfWork, cmd: Reserve, max_stores: int) -> list[Allocation]:
    if cmd.store_id is not None:
        return [Allocation(cmd.store_id, 0.0, cmd.lines)]
    assert cmd.near is not None
    assert cmd.radius_km is not None
    candidates = await tx.stock.candidates(cmd.near, cmd.radius_km, cmd.units)
    try:
        return plan(cmd.units, candidates, max_stores)
    except OutOfStock:
        await _ensure_skus_exist(tx, cmd)
        raise


async def _ensure_skus_exist(tx: UnitOfWork, cmd: Reserve) -> None:
    unknown = sorted(set(cmd.units) - await tx.catalog.existing_skus(cmd.units))
    if unknown:
        raise NotFound(f"Unknown SKU: {', '.join(unknown)}", skus=unknown)


async def _explain_shortage(tx: UnitOfWork, cmd: Reserve, store_id: str, sku: str) -> None:
    """A lock failed: at a named store, name every short SKU; near a point, plan again."""
    if cmd.store_id is None:
        raise StockTaken(sku)
    available = await tx.stock.available_at(store_id, cmd.units)
    short = [s for s, q in cmd.units.items() if available.get(s, 0) < q] or [sku]
    raise OutOfStock(
        short, f"Not enough stock at {store_id} to reserve: {', '.join(sorted(short))}"
    )


async def _explain_unknown(uow: UnitOfWorkFactory, cmd: Reserve) -> None:
    """A reservation row named a store or SKU that does not exist: say which."""
    async with uow() as tx:
        if cmd.store_id is not None and not await tx.catalog.existing_stores([cmd.store_id]):
            raise NotFound(f"Unknown store: {cmd.store_id}", storeId=cmd.store_id)
        await _ensure_skus_exist(tx, cmd)


async def _replay(
    tx: UnitOfWork, customer_id: str, found: tuple[str, str], request_hash: str
) -> ReservationGroup:
    group_id, stored_hash = found
    if stored_hash != request_hash:
        raise BadInput(
            "This idempotencyKey was already used for a different reservation request; "
            "use a new key for a new request.",
            field="idempotencyKey",
        )
    return ReservationGroup(
        group_id, customer_id, tuple(await tx.reservations.in_group(group_id)), replayed=True
    )


async def cancel(
    reservation_id: str, reason: str | None, *, uow: UnitOfWorkFactory, clock: Clock
) -> Reservation:
    """Cancel an active reservation and release its stock at once."""
    reason = validate_reason(reason)

    async def attempt() -> Reservation:
        async with uow() as tx:
            now = clock.now()
            reservation = await tx.reservations.get(reservation_id, for_update=True)
            if reservation is None:
                raise NotFound(f"No reservation {reservation_id}.")
            previous = reservation.version
            reservation.cancel(now, reason)
            await tx.reservations.save(reservation, previous, now)
            await finish(tx, [reservation], MovementReason.CANCEL, now)
            await tx.commit()
        return reservation

    reservation = await retrying_deadlocks(attempt)
    log.info(
        "cancelled", extra={"reservation_id": reservation.id, "store_id": reservation.store_id}
    )
    return reservation


async def expire_due(*, uow: UnitOfWorkFactory, clock: Clock, batch_size: int = 200) -> int:
    """Expire every active reservation whose time is up and release its stock. Safe to run in
    several processes at once: each claims rows the others have not locked."""
    total = 0
    while True:
        async with uow() as tx:
            now = clock.now()
            due = await tx.reservations.claim_due(now, batch_size)
            for reservation in due:
                previous = reservation.version
                reservation.expire(now)
                await tx.reservations.save(reservation, previous, now)
            await finish(tx, due, MovementReason.EXPIRE, now)
            await tx.commit()
        total += len(due)
        for reservation in due:
            log.info(
                "expired",
                extra={"reservation_id": reservation.id, "store_id": reservation.store_id},
            )
        if len(due) < batch_size:
            return total


async def warn_expiring(*, uow: UnitOfWorkFactory, clock: Clock, batch_size: int = 200) -> int:
    """Send the EXPIRING_SOON warning for every active reservation within the policy's lead time
    of its expiry, once per expiry. Safe to run in several processes at once."""
    total = 0
    while True:
        async with uow() as tx:
            now = clock.now()
            policy = await tx.policy.get()
            if policy.expiry_warning_seconds <= 0:
                return total
            due = await tx.reservations.claim_expiring(
                now, policy.expiry_warning_seconds, batch_size
            )
            for reservation in due:
                previous = reservation.version
                reservation.warn_expiring(now)
                await tx.reservations.save(reservation, previous, now)
            await tx.outbox.add([e for r in due for e in r.events])
            await tx.commit()
        total += len(due)
        if len(due) < batch_size:
            return total


async def finish(
    tx: UnitOfWork, finished: Sequence[Reservation], reason: MovementReason, now: datetime
) -> None:
    """End the locks of reservations that just became final, in deterministic row order: their
    units go back to available (cancelled, expired) or leave the store (collected, `reason`
    COLLECT: on hand and reserved both drop). Counters, ledger and outbox follow."""
    if not finished:
        return
    consumed = reason is MovementReason.COLLECT
    per_customer: dict[str, tuple[int, dict[str, int]]] = {}
    per_row: dict[tuple[str, str], int] = defaultdict(int)
    movements: list[Movement] = []
    for r in finished:
        count, units = per_customer.get(r.customer_id, (0, {}))
        for line in r.lines:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
            per_row[(r.store_id, line.sku)] += line.quantity
            on_hand_delta = -line.quantity if consumed else 0
            movements.append(
                Movement(r.store_id, line.sku, on_hand_delta, -line.quantity, reason, r.id)
            )
        per_customer[r.customer_id] = (count + 1, units)
    for customer_id in sorted(per_customer):
        count, units = per_customer[customer_id]
        await tx.holds.remove(customer_id, count, units)
    for (store_id, sku), quantity in sorted(per_row.items()):
        if consumed:
            await tx.stock.consume(store_id, sku, quantity, now)
        else:
            await tx.stock.release(store_id, sku, quantity, now)
    await tx.ledger.record(movements, now)
    await tx.outbox.add([e for r in finished for e in r.events])
