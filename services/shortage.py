"""When a store has fewer units than it has reserved: the WMS counted fewer (shrink, damage, a
miscount), or staff did not find them at pick time. The affected reservation lines, newest first,
move to the nearest other store that has the units, or are let go (STOCK_SHORTAGE); the customer
and the store's POS get the event."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from domain.access import Actor
from domain.accuracy import AccuracySample, SampleSource
from domain.clock import Clock
from domain.codes import new_pickup_code
from domain.errors import BadInput, NotFound
from domain.events import Resourced
from domain.reservations import Line, MovementReason, Reservation
from domain.stock import Movement
from services.pickup import ensure_collectable
from services.unit_of_work import RetryableConflict, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# How far from the short store another store may be to take the units over.
DEFAULT_RESOURCE_RADIUS_KM = 25.0
MAX_ATTEMPTS = 4


def _new_id() -> str:
    return str(uuid.uuid4())


async def resolve_shortages(
    tx: UnitOfWork,
    keys: Iterable[tuple[str, str]],
    now: datetime,
    *,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> list[Reservation]:
    """For every (store, SKU) among `keys` whose on hand is below its reserved units, take back
    whole lines, newest reservation first, until what is reserved fits. Returns the reservations
    that changed (shortened, cancelled, or made elsewhere)."""
    changed: list[Reservation] = []
    for store_id, sku in sorted(set(keys)):
        levels = await tx.levels.lock([(store_id, sku)])
        level = levels.get((store_id, sku))
        if level is None or level.reserved <= level.on_hand:
            continue
        excess = level.reserved - level.on_hand
        for reservation_id, quantity in await tx.reservations.active_lines_at(store_id, sku):
            if excess <= 0:
                break
            reservation = await tx.reservations.get(reservation_id, for_update=True)
            if reservation is None or not reservation.is_active:
                continue
            changed += await move_or_drop(
                tx,
                reservation,
                sku,
                quantity,
                now,
                reason=MovementReason.SHORTAGE,
                radius_km=radius_km,
            )
            excess -= quantity
        log.warning(
            "stock shortage resolved",
            extra={"store_id": store_id, "sku": sku, "on_hand": level.on_hand},
        )
    return changed


async def move_or_drop(
    tx: UnitOfWork,
    reservation: Reservation,
    sku: str,
    quantity: int,
    now: datetime,
    *,
    reason: MovementReason,
    radius_km: float,
) -> list[Reservation]:
    """Take `quantity` units of `sku` away from the reservation's store. They are locked at the
    nearest other store within `radius_km` that has them, as a new reservation of the same group
    with the same expiry; if none has them, they are let go. With reason SHORT_PICK the units
    also leave on hand (they are not on the shelf)."""
    store_id = reservation.store_id
    replacement = await _lock_elsewhere(tx, reservation, sku, quantity, now, radius_km)
    previous = reservation.version
    reservation.shorten(sku, quantity, now, reason=str(reason), moved_to=replacement)
    await tx.reservations.save(reservation, previous, now)
    if reservation.is_active:
        await tx.reservations.save_lines(reservation)
    ended = 0 if reservation.is_active else 1
    await tx.holds.remove(reservation.customer_id, ended, {sku: quantity})
    lost = 0
    if reason is MovementReason.SHORT_PICK:
        level = (await tx.levels.lock([(store_id, sku)]))[(store_id, sku)]
        lost = min(quantity, level.on_hand)
        if lost:
            await tx.stock.consume(store_id, sku, lost, now)
        if quantity > lost:
            await tx.stock.release(store_id, sku, quantity - lost, now)
    else:
        await tx.stock.release(store_id, sku, quantity, now)
    movements = [Movement(store_id, sku, -lost, -quantity, reason, reservation.id)]
    changed = [reservation]
    if replacement is not None:
        await tx.reservations.add([replacement], now)
        # Not the customer's doing: the new reservation counts, but no limit refuses it.
        await tx.holds.add_reservations(replacement.customer_id, 1, 1_000_000)
        await tx.holds.add_units(replacement.customer_id, {sku: quantity}, 1_000_000_000)
        movements.append(
            Movement(
                replacement.store_id, sku, 0, quantity, MovementReason.RESOURCE, replacement.id
            )
        )
        changed.append(replacement)
    await tx.ledger.record(movements, now)
    await tx.outbox.add([e for r in changed for e in r.events])
    log.info(
        "reservation short",
        extra={
            "reservation_id": reservation.id,
            "store_id": store_id,
            "sku": sku,
            "quantity": quantity,
            "moved_to": replacement.id if replacement else None,
        },
    )
    return changed


async def _lock_elsewhere(
    tx: UnitOfWork,
    reservation: Reservation,
    sku: str,
    quantity: int,
    now: datetime,
    radius_km: float,
) -> Reservation | None:
    if reservation.is_due(now) or radius_km <= 0:
        return None
    location = await tx.catalog.store_location(reservation.store_id)
    if location is None:
        return None
    candidates = await tx.stock.candidates(location, radius_km, [sku])
    for candidate in candidates:
        if candidate.store_id == reservation.store_id:
            continue
        if candidate.available.get(sku, 0) < quantity:
            continue
        if await tx.stock.lock(candidate.store_id, sku, quantity, now) is None:
            continue  # taken meanwhile: the next nearest
        return Reservation.hold(
            id=_new_id(),
            group_id=reservation.group_id,
            code=new_pickup_code(),
            customer_id=reservation.customer_id,
            store_id=candidate.store_id,
            channel=reservation.channel,
            lines=[Line(sku, quantity)],
            hold_seconds=reservation.hold_seconds,
            now=now,
            expires_at=reservation.expires_at,
            resourced_from=reservation.id,
            detail=Resourced(reservation.id, sku),
        )
    return None


async def report_short_pick(
    reservation_id: str,
    sku: str,
    quantity_found: int,
    actor: Actor,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> Reservation:
    """Staff picked the reservation and found only `quantity_found` units of `sku`. The missing
    units leave on hand and reserved at the store; they are locked at another nearby store or
    let go; the customer is told; the line counts as not found in full for stock accuracy."""
    if isinstance(quantity_found, bool) or quantity_found < 0:
        raise BadInput("quantityFound must be 0 or more.", field="quantityFound")
    for _attempt in range(MAX_ATTEMPTS):
        try:
            return await _short_pick_once(
                reservation_id, sku, quantity_found, actor, uow(), clock, radius_km
            )
        except RetryableConflict as conflict:
            if conflict.what != "deadlock" and conflict.what != "pickup_code":
                raise
    raise RetryableConflict("deadlock")


async def _short_pick_once(
    reservation_id: str,
    sku: str,
    quantity_found: int,
    actor: Actor,
    tx: UnitOfWork,
    clock: Clock,
    radius_km: float,
) -> Reservation:
    async with tx:
        now = clock.now()
        reservation = await tx.reservations.get(reservation_id, for_update=True)
        if reservation is None or not actor.acts_for_store(reservation.store_id):
            raise NotFound(f"No reservation {reservation_id}.")
        ensure_collectable(reservation, clock)  # nothing to pick once it is over
        line = next((x for x in reservation.lines if x.sku == sku), None)
        if line is None:
            raise BadInput(f"Reservation {reservation_id} has no line for {sku}.", field="sku")
        if quantity_found >= line.quantity:
            raise BadInput(
                f"quantityFound must be below the {line.quantity} units reserved of {sku}; "
                "a line found in full is no short pick.",
                field="quantityFound",
            )
        store_id = reservation.store_id
        await move_or_drop(
            tx,
            reservation,
            sku,
            line.quantity - quantity_found,
            now,
            reason=MovementReason.SHORT_PICK,
            radius_km=radius_km,
        )
        await tx.accuracy.add(
            [AccuracySample(store_id, sku, SampleSource.PICK, 1, 0, now, reservation_id)]
        )
        await resolve_shortages(tx, [(store_id, sku)], now, radius_km=radius_km)
        await tx.commit()
    return reservation
