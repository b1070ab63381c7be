"""Who may do what: the actor behind a request and the scoping rules for stores and reservations."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from domain.errors import BadInput, Forbidden

if TYPE_CHECKING:
    from domain.reservations import Reservation, ReservationState


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    POS = "pos"
    OPS = "ops"
    WMS = "wms"
    CHANNEL = "channel"


STORE_ROLES = frozenset({Role.STAFF, Role.POS})
# What stands for a customer's id where the caller may not see it (`Actor.sees_customer`).
MASKED_CUSTOMER_ID = "***"


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated caller, from the claims of a verified token."""

    role: Role
    subject: str
    store_id: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.role in STORE_ROLES and not self.store_id:
            raise BadInput(f"a {self.role} token must name its store")
        if self.role is Role.CHANNEL and not self.channel:
            raise BadInput("a channel token must name its channel")

    def acts_for_store(self, store_id: str) -> bool:
        """Ops act for every store; staff and POS only for their own."""
        if self.role is Role.OPS:
            return True
        return self.role in STORE_ROLES and self.store_id == store_id

    def can_view(self, reservation: Reservation) -> bool:
        match self.role:
            case Role.CUSTOMER:
                return reservation.customer_id == self.subject
            case Role.STAFF | Role.POS:
                return reservation.store_id == self.store_id
            case Role.OPS:
                return True
            case Role.CHANNEL:
                return reservation.channel == self.channel
            case _:
                return False

    def hands_over(self, reservation: Reservation | ReservationState) -> bool:
        """Staff and POS of the reservation's store run its handoff: ready, scan, payment."""
        return self.role in STORE_ROLES and reservation.store_id == self.store_id

    def is_shopper_of(self, reservation: Reservation | ReservationState) -> bool:
        """The customer the reservation is for: only they say they have arrived to collect it."""
        return self.role is Role.CUSTOMER and reservation.customer_id == self.subject

    def sees_pickup_code(self, reservation: Reservation | ReservationState) -> bool:
        """The signed QR payload: the shopper who shows it and the store that scans it."""
        return self.hands_over(reservation) or self.is_shopper_of(reservation)

    def sees_customer(self, reservation: Reservation | ReservationState) -> bool:
        """Who the reservation is for: the customer themselves, the channel it came through
        (its customer), ops. Not the store's staff and POS: the handoff needs the reservation,
        its lines, its code and the shopper's arrival, not who they are (they get
        MASKED_CUSTOMER_ID); nor anyone else."""
        match self.role:
            case Role.CUSTOMER:
                return reservation.customer_id == self.subject
            case Role.OPS:
                return True
            case Role.CHANNEL:
                return reservation.channel == self.channel
            case _:
                return False

    def can_cancel(self, reservation: Reservation) -> bool:
        # Everyone who can see a reservation may cancel it, except the WMS (it has no customer).
        return self.role is not Role.WMS and self.can_view(reservation)

    def reserving_customer(self, customer_id: str | None, store_id: str | None) -> str:
        """The customer a `reserve` by this actor is for, or why the actor may not reserve."""
        match self.role:
            case Role.CUSTOMER:
                if customer_id is not None and customer_id != self.subject:
                    raise Forbidden("A customer can only reserve for themselves.")
                return self.subject
            case Role.CHANNEL | Role.OPS | Role.STAFF:
                if not customer_id:
                    raise BadInput(
                        "customerId is required when reserving on a customer's behalf.",
                        field="customerId",
                    )
                if self.role is Role.STAFF and store_id != self.store_id:
                    raise Forbidden("Store staff can only reserve at their own store (storeId).")
                return customer_id
            case _:
                raise Forbidden(f"The {self.role} role cannot reserve stock.")

    def reserving_channel(self, channel: str | None) -> str | None:
        if self.role is Role.CHANNEL:
            if channel is not None and channel != self.channel:
                raise Forbidden("A channel token can only reserve for its own channel.")
            return self.channel
        return channel
