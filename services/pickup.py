"""The handoff at the store: mark ready, the shopper's arrival, scan the shopper's code, take
payment and hand over."""

from __future__ import annotations

import logging
from datetime import datetime

from domain.accuracy import AccuracySample, SampleSource
from domain.clock import Clock
from domain.errors import InvalidTransition, NotFound, ReservationExpired
from domain.pickup import Payment, read_scanned
from domain.reservations import MovementReason, Reservation, Status
from services.queries import ReadPort
from services.reservations import finish
from services.unit_of_work import UnitOfWork, UnitOfWorkFactory, retrying_deadlocks

log = logging.getLogger(__name__)


async def mark_ready(reservation_id: str, *, uow: UnitOfWorkFactory, clock: Clock) -> Reservation:
    """Picked and waiting: HELD -> READY_FOR_PICKUP; with the policy's pickup window the shopper
    gets that long from now."""
    async with uow() as tx:
        now = clock.now()
        policy = await tx.policy.get()
        reservation = await tx.reservations.get(reservation_id, for_update=True)
        if reservation is None:
            raise NotFound(f"No reservation {reservation_id}.")
        previous = reservation.version
        reservation.mark_ready(now, policy.pickup_window_seconds)
        await tx.reservations.save(reservation, previous, now)
        await record_picked(tx, reservation, now)
        await tx.outbox.add(reservation.events)
        await tx.commit()
    log.info("ready", extra={"reservation_id": reservation.id, "store_id": reservation.store_id})
    return reservation


async def check_in(
    reservation_id: str,
    customer_id: str,
    note: str | None,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> Reservation:
    """The shopper is at the store ("I'm here", with an optional note for the staff), once: the
    store's POS is told, and the arrival is kept for the pickup queue's wait and the KPIs. Another
    customer's reservation does not exist to them."""
    async with uow() as tx:
        now = clock.now()
        reservation = await tx.reservations.get(reservation_id, for_update=True)
        if reservation is None or reservation.customer_id != customer_id:
            raise NotFound(f"No reservation {reservation_id}.")
        previous = reservation.version
        reservation.check_in(now, note)
        await tx.reservations.save(reservation, previous, now)
        await tx.outbox.add(reservation.events)
        await tx.commit()
    log.info("arrived", extra={"reservation_id": reservation.id, "store_id": reservation.store_id})
    return reservation


async def scan(
    text: str, store_id: str | None, *, read: ReadPort, key: bytes, clock: Clock
) -> Reservation:
    """The reservation a till scanned (QR payload) or typed (receipt code), if it is one of this
    store's and can be handed over; to other stores (and to callers of none) it does not exist."""
    scanned = read_scanned(text, key)
    if store_id is None:
        raise NotFound("No reservation with this code at this store.")
    if scanned.reservation_id is not None:
        found = (await read.reservations_by_ids([scanned.reservation_id])).get(
            scanned.reservation_id
        )
    else:
        found = await read.reservation_by_code(scanned.code)
    if found is None or found.store_id != store_id or found.code != scanned.code:
        raise NotFound("No reservation with this code at this store.")
    ensure_collectable(found, clock)
    return found


def ensure_collectable(reservation: Reservation, clock: Clock) -> None:
    """Refuse, each with its own clear answer, a reservation that cannot be handed over."""
    if reservation.status is Status.EXPIRED or reservation.is_due(clock.now()):
        raise ReservationExpired(
            f"Reservation {reservation.code} expired at {reservation.expires_at.isoformat()}; "
            "its stock has been released.",
            reservationId=reservation.id,
            status=str(Status.EXPIRED),
        )
    if reservation.status is Status.CANCELLED:
        raise InvalidTransition(
            f"Reservation {reservation.code} was cancelled"
            + (f" ({reservation.cancel_reason})." if reservation.cancel_reason else "."),
            reservationId=reservation.id,
            status=str(reservation.status),
        )
    if reservation.status is Status.COLLECTED:
        raise InvalidTransition(
            f"Reservation {reservation.code} was already collected.",
            reservationId=reservation.id,
            status=str(reservation.status),
        )


async def complete_pickup(
    reservation_id: str,
    payment: Payment,
    received_by: str,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> Reservation:
    """Paid and handed over: the units leave the store (on hand and reserved both drop) and the
    lock ends, with the payment, in one transaction. The same payment reference again (a POS
    retrying after a timeout) returns the same result and changes nothing."""

    async def attempt() -> Reservation:
        async with uow() as tx:
            now = clock.now()
            policy = await tx.policy.get()
            reservation = await tx.reservations.get(reservation_id, for_update=True)
            if reservation is None:
                raise NotFound(f"No reservation {reservation_id}.")
            if reservation.status is Status.COLLECTED:
                taken = await tx.reservations.payment_of(reservation_id)
                if taken == payment:
                    return reservation
                raise InvalidTransition(
                    f"Reservation {reservation.code} was already collected"
                    + (f" with payment {taken.reference}." if taken else "."),
                    reservationId=reservation.id,
                    status=str(reservation.status),
                )
            previous = reservation.version
            picked = reservation.status is Status.READY_FOR_PICKUP
            reservation.collect(now, without_ready_step=policy.allow_pickup_without_ready)
            if not picked:  # handed over without the ready step: picked now
                await record_picked(tx, reservation, now)
            await tx.reservations.save(reservation, previous, now)
            await tx.reservations.add_payment(reservation.id, payment, received_by, now)
            await finish(tx, [reservation], MovementReason.COLLECT, now)
            await tx.commit()
        return reservation

    reservation = await retrying_deadlocks(attempt)
    log.info(
        "collected",
        extra={
            "reservation_id": reservation.id,
            "store_id": reservation.store_id,
            "payment_reference": payment.reference,
        },
    )
    return reservation


async def record_picked(tx: UnitOfWork, reservation: Reservation, now: datetime) -> None:
    """The reservation was picked (marked ready, or handed over without the ready step): every
    line not reported short was found in full."""
    already = await tx.accuracy.picked_skus(reservation.id)
    await tx.accuracy.add(
        AccuracySample(reservation.store_id, line.sku, SampleSource.PICK, 1, 1, now, reservation.id)
        for line in reservation.lines
        if line.sku not in already
    )
