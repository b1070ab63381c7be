"""Things that happened, as past-tense dataclasses. They go to the outbox in the same transaction
as the change, and from there to subscribers and integrations (services.event_codec gives them
their one shape on the wire)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from domain.stock import StockLevel

if TYPE_CHECKING:
    from domain.reservations import ReservationState


def new_event_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Shortage:
    """Units of one line a reservation lost because its store ran short: the WMS counted fewer
    (`reason` SHORTAGE) or staff did not find them at pick time (SHORT_PICK). They moved to
    another store's new reservation, or were let go (both ids None)."""

    sku: str
    quantity: int
    reason: str
    moved_to_reservation_id: str | None
    moved_to_store_id: str | None


@dataclass(frozen=True, slots=True)
class Resourced:
    """This reservation was made to take over units of `sku` that `resourced_from`'s store ran
    short of."""

    resourced_from: str
    sku: str


@dataclass(frozen=True, kw_only=True)
class ReservationEvent:
    """A reservation changed. `sequence` counts the reservation's own changes from 1, so a
    consumer can order them and drop duplicates; `reservation` is its state after the change."""

    type: ClassVar[str]
    reservation: ReservationState
    sequence: int
    occurred_at: datetime
    id: str = field(default_factory=new_event_id)
    # What else a consumer needs to know of this change.
    detail: Shortage | Resourced | None = None

    @property
    def reservation_id(self) -> str:
        return self.reservation.id

    @property
    def store_id(self) -> str:
        return self.reservation.store_id

    @property
    def customer_id(self) -> str:
        return self.reservation.customer_id


@dataclass(frozen=True, kw_only=True)
class ReservationCreated(ReservationEvent):
    type = "CREATED"


@dataclass(frozen=True, kw_only=True)
class ReservationReadyForPickup(ReservationEvent):
    type = "READY_FOR_PICKUP"


@dataclass(frozen=True, kw_only=True)
class ReservationCustomerArrived(ReservationEvent):
    """The shopper checked in at the store (`reservation.arrived_at`, `arrival_note`); the status
    is what it was."""

    type = "CUSTOMER_ARRIVED"


@dataclass(frozen=True, kw_only=True)
class ReservationExpiringSoon(ReservationEvent):
    type = "EXPIRING_SOON"


@dataclass(frozen=True, kw_only=True)
class ReservationCollected(ReservationEvent):
    type = "COLLECTED"


@dataclass(frozen=True, kw_only=True)
class ReservationCancelled(ReservationEvent):
    type = "CANCELLED"


@dataclass(frozen=True, kw_only=True)
class ReservationExpired(ReservationEvent):
    type = "EXPIRED"


@dataclass(frozen=True, kw_only=True)
class ReservationShortened(ReservationEvent):
    """Units of one line could not be kept at the store (`detail`, a Shortage, says which and
    where they went). When no line is left the reservation is CANCELLED instead, with the same
    detail."""

    type = "STOCK_SHORTAGE"


@dataclass(frozen=True, kw_only=True)
class StockChanged:
    """Counts (the WMS's, or an operator's) changed the stock of some (store, SKU) rows: one
    event for many rows, so a snapshot of thousands of rows is one outbox row. The relay
    publishes a STOCK_CHANGED message per row, with the availability it reads at that moment.
    Reserving, cancelling and expiring change availability too; their reservation events name the
    store and the lines, and the relay does the same for them."""

    type: ClassVar[str] = "STOCK_LEVELS_CHANGED"
    levels: tuple[StockLevel, ...]
    reason: str
    occurred_at: datetime
    id: str = field(default_factory=new_event_id)
    store_id: None = None


@dataclass(frozen=True, kw_only=True)
class LowStock:
    """Available units of one (store, SKU) fell below its low-stock threshold: the hook for
    replenishment. Sent once per fall; again only after it has recovered to the threshold."""

    type: ClassVar[str] = "LOW_STOCK"
    store_id: str
    sku: str
    available: int
    threshold: int
    occurred_at: datetime
    id: str = field(default_factory=new_event_id)


@dataclass(frozen=True, kw_only=True)
class StockAvailable:
    """What storefronts hear (`stockUpdates`): the available units of one (store, SKU) now, after
    `reason` moved them. The relay sends one per row an event moved, with the figure it reads at
    that moment; `id` names the event and the row, so a duplicate is known."""

    type: ClassVar[str] = "STOCK_CHANGED"
    id: str
    store_id: str
    sku: str
    available: int
    reason: str
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class IntakeOutcome:
    """An intake message came to an outcome (or is to be tried again): what ops watch on
    `intakeEvents`. The order's own effects reach the store's POS as reservation events."""

    type: ClassVar[str] = "INTAKE_OUTCOME"
    message_id: str
    channel: str
    account: str
    status: str
    occurred_at: datetime
    error_code: str | None = None
    external_id: str | None = None
    group_id: str | None = None
    id: str = field(default_factory=new_event_id)
    store_id: None = None


Event = ReservationEvent | StockChanged | LowStock | IntakeOutcome

# Reservation events after which a store's availability of the reservation's SKUs has changed.
MOVES_STOCK = frozenset({"CREATED", "CANCELLED", "EXPIRED", "COLLECTED", "STOCK_SHORTAGE"})
# What the store's POS terminals are told of.
FOR_THE_STORE = frozenset(
    {
        "READY_FOR_PICKUP",
        "CUSTOMER_ARRIVED",
        "EXPIRING_SOON",
        "COLLECTED",
        "CANCELLED",
        "EXPIRED",
        "STOCK_SHORTAGE",
    }
)
# Events about stock rather than a reservation, published on the stock channels as they are.
STOCK_EVENTS = frozenset({"LOW_STOCK"})
# Events about the order intake, published on the intake channels.
INTAKE_EVENTS = frozenset({"INTAKE_OUTCOME"})
# After these a reservation changes no more.
FINAL = frozenset({"COLLECTED", "CANCELLED", "EXPIRED"})


def store_channel(store_id: str) -> str:
    """Every reservation event of a store (its POS terminals listen here)."""
    return f"store:{store_id}"


def reservation_channel(reservation_id: str) -> str:
    """Every event of one reservation (its customer's app listens here)."""
    return f"reservation:{reservation_id}"


def stock_channel(store_id: str | None = None) -> str:
    """Availability changes of one store, or of every store."""
    return f"stock:{store_id}" if store_id else "stock"


def intake_channel(channel: str | None = None, account: str | None = None) -> str:
    """Intake outcomes of one channel account, or of all."""
    return f"intake:{channel}:{account}" if channel and account else "intake"


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An outbox row the relay has yet to publish; `payload` is the event as the codec wrote it
    (services.event_codec), published as it is."""

    position: int
    event_id: str
    type: str
    store_id: str | None
    reservation_id: str | None
    payload: dict[str, Any]

    def channels(self) -> list[str]:
        if self.reservation_id is not None and self.store_id is not None:
            return [reservation_channel(self.reservation_id), store_channel(self.store_id)]
        if self.type in STOCK_EVENTS and self.store_id is not None:
            return [stock_channel(self.store_id), stock_channel()]
        if self.type in INTAKE_EVENTS:
            return [
                intake_channel(),
                intake_channel(self.payload.get("channel"), self.payload.get("account")),
            ]
        return []
