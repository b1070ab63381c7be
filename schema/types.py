"""Output types: thin views of domain objects, built with `from_domain`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Self

import strawberry

from domain import (
    catalog,
    events,
    pickup,
    policy,
    reconciliation,
    reservations,
    stock,
    webhooks,
    wms,
)
from domain import kpis as kpis_rules
from domain.access import MASKED_CUSTOMER_ID
from schema.context import Info
from schema.qr import qr_svg
from services import kpis, queries


@strawberry.enum(description="Where a reservation is in its lifecycle.")
class ReservationStatus(Enum):
    HELD = strawberry.enum_value("HELD", description="Stock is locked; the shopper can come.")
    READY_FOR_PICKUP = strawberry.enum_value(
        "READY_FOR_PICKUP", description="Picked and waiting at the store."
    )
    COLLECTED = strawberry.enum_value("COLLECTED", description="Paid and handed over.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="Cancelled; the stock was released.")
    EXPIRED = strawberry.enum_value(
        "EXPIRED", description="Not collected in time; the stock was released."
    )


@strawberry.type(description="A pickup location.")
class Store:
    id: strawberry.ID = strawberry.field(description="The store's code, e.g. S001.")
    name: str = strawberry.field(description="The store's name.")
    lat: float = strawberry.field(description="Latitude, WGS 84.")
    lon: float = strawberry.field(description="Longitude, WGS 84.")
    timezone: str = strawberry.field(description="IANA time zone, e.g. Europe/London.")
    address: str | None = strawberry.field(
        default=None,
        description="One line of postal address, e.g. 1 Oxford Street, London W1D 1AN; null when "
        "not given.",
    )
    distance_km: float | None = strawberry.field(
        default=None, description="Distance from the point searched for, when there was one."
    )

    @classmethod
    def from_domain(cls, store: catalog.Store, distance_km: float | None = None) -> Store:
        return cls(
            id=strawberry.ID(store.id),
            name=store.name,
            lat=store.lat,
            lon=store.lon,
            timezone=store.timezone,
            address=store.address,
            distance_km=None if distance_km is None else round(distance_km, 3),
        )


@strawberry.type(description="What a store can give of one SKU.")
class AvailabilityLine:
    sku: str = strawberry.field(description="The SKU code.")
    available: int = strawberry.field(description="Units that can be reserved now.")
    requested: int = strawberry.field(description="Units asked for (1 when not given).")


@strawberry.type(description="A store near the searched point and what it has of the SKUs.")
class StoreAvailability:
    store: Store = strawberry.field(description="The store.")
    distance_km: float = strawberry.field(description="Distance from the searched point, km.")
    can_serve_all: bool = strawberry.field(
        description="True when the store has every requested quantity."
    )
    lines: list[AvailabilityLine] = strawberry.field(description="One entry per SKU asked for.")

    @classmethod
    def from_domain(cls, found: queries.StoreAvailability) -> StoreAvailability:
        return cls(
            store=Store.from_domain(found.store, found.distance_km),
            distance_km=round(found.distance_km, 3),
            can_serve_all=found.can_serve_all,
            lines=[
                AvailabilityLine(sku=x.sku, available=x.available, requested=x.requested)
                for x in found.lines
            ],
        )


@strawberry.type(description="Stock of one SKU at one store.")
class StockLevel:
    store_id: strawberry.ID = strawberry.field(description="The store's code.")
    sku: str = strawberry.field(description="The SKU code.")
    on_hand: int = strawberry.field(description="Units physically there, as the WMS counts them.")
    reserved: int = strawberry.field(description="Units locked by active reservations.")
    safety_stock: int = strawberry.field(description="Units kept back from reservations.")
    available: int = strawberry.field(
        description="onHand - reserved - safetyStock, never below 0: what can be reserved."
    )

    @classmethod
    def from_domain(cls, level: stock.StockLevel) -> StockLevel:
        return cls(
            store_id=strawberry.ID(level.store_id),
            sku=level.sku,
            on_hand=level.on_hand,
            reserved=level.reserved,
            safety_stock=level.safety_stock,
            available=level.available,
        )


@strawberry.type(description="Units of one SKU in a reservation.")
class ReservationLine:
    sku: str = strawberry.field(description="The SKU code.")
    quantity: int = strawberry.field(description="Units locked.")


@strawberry.type(description="Units locked at one store for one customer until expiresAt.")
class Reservation:
    id: strawberry.ID = strawberry.field(description="The reservation's id.")
    code: str = strawberry.field(description="Short pickup code for the receipt and the till.")
    group_id: strawberry.ID = strawberry.field(description="The reserve call that created it.")
    store_id: strawberry.ID = strawberry.field(description="Where it is held and collected.")
    channel: str | None = strawberry.field(description="The sales channel it came through.")
    status: ReservationStatus = strawberry.field(description="Where it is in its lifecycle.")
    lines: list[ReservationLine] = strawberry.field(description="What is locked.")
    hold_seconds: int = strawberry.field(description="The hold granted, in seconds.")
    created_at: datetime = strawberry.field(description="When it was made (UTC).")
    expires_at: datetime = strawberry.field(
        description="When the hold ends and the stock is released if not collected (UTC)."
    )
    ready_at: datetime | None = strawberry.field(description="When the store marked it ready.")
    collected_at: datetime | None = strawberry.field(description="When it was collected.")
    cancelled_at: datetime | None = strawberry.field(description="When it was cancelled.")
    expired_at: datetime | None = strawberry.field(description="When it expired.")
    cancel_reason: str | None = strawberry.field(description="Why it was cancelled, if given.")
    resourced_from: strawberry.ID | None = strawberry.field(
        default=None,
        description="The reservation whose units this one took over when that store ran short.",
    )
    arrived_at: datetime | None = strawberry.field(
        default=None, description="When the shopper checked in at the store (checkIn)."
    )
    arrival_note: str | None = strawberry.field(
        default=None, description="What the shopper told the store as they checked in."
    )
    # What it was made from: who may see what of it is decided on this (domain.access).
    source: strawberry.Private[reservations.Reservation | reservations.ReservationState]

    @strawberry.field(
        description="Whose reservation it is: for the customer, the channel it came through and "
        'ops; "***" for the store\'s staff and POS (the handoff does not need it).'
    )
    def customer_id(self, info: Info) -> strawberry.ID:
        actor = info.context.actor
        if actor is not None and actor.sees_customer(self.source):
            return strawberry.ID(self.source.customer_id)
        return strawberry.ID(MASKED_CUSTOMER_ID)

    @strawberry.field(description="Whole seconds until expiresAt; 0 once it is over or final.")
    def seconds_remaining(self, info: Info) -> int:
        status = reservations.Status[self.status.name]
        return reservations.seconds_left(status, self.expires_at, info.context.deps.clock.now())

    @strawberry.field(
        description="Whole seconds the shopper has waited at the store since checking in (until "
        "it was collected, cancelled or expired, once it was); null before they check in."
    )
    def waiting_seconds(self, info: Info) -> int | None:
        ended = self.collected_at or self.cancelled_at or self.expired_at
        return reservations.seconds_waiting(self.arrived_at, ended, info.context.deps.clock.now())

    @strawberry.field(
        description="The signed text the pickup QR code carries; for the reservation's customer "
        "and its store's staff and POS (null for anyone else)."
    )
    def pickup_qr_payload(self, info: Info) -> str | None:
        return self._qr_payload(info)

    @strawberry.field(
        description="The pickup QR code as an SVG document (same visibility as pickupQrPayload); "
        "as PNG at GET /reservations/{id}/qr.png."
    )
    def pickup_qr_svg(self, info: Info) -> str | None:
        payload = self._qr_payload(info)
        return qr_svg(payload) if payload is not None else None

    def _qr_payload(self, info: Info) -> str | None:
        actor = info.context.actor
        if actor is None or not actor.sees_pickup_code(self.source):
            return None
        return pickup.qr_payload(str(self.id), self.code, info.context.deps.qr_key)

    @strawberry.field(description="The store it is held at.")
    async def store(self, info: Info) -> Store | None:
        found = await info.context.loaders.store.load(str(self.store_id))
        return Store.from_domain(found) if found else None

    @classmethod
    def from_domain(
        cls, r: reservations.Reservation | reservations.ReservationState
    ) -> Reservation:
        return cls(
            id=strawberry.ID(r.id),
            code=r.code,
            group_id=strawberry.ID(r.group_id),
            store_id=strawberry.ID(r.store_id),
            channel=r.channel,
            status=ReservationStatus(r.status.value),
            lines=[ReservationLine(sku=line.sku, quantity=line.quantity) for line in r.lines],
            hold_seconds=r.hold_seconds,
            created_at=r.created_at,
            expires_at=r.expires_at,
            ready_at=r.ready_at,
            collected_at=r.collected_at,
            cancelled_at=r.cancelled_at,
            expired_at=r.expired_at,
            cancel_reason=r.cancel_reason,
            resourced_from=strawberry.ID(r.resourced_from) if r.resourced_from else None,
            arrived_at=r.arrived_at,
            arrival_note=r.arrival_note,
            source=r,
        )


@strawberry.enum(description="What happened to a reservation.")
class ReservationEventType(Enum):
    SNAPSHOT = strawberry.enum_value("SNAPSHOT", description="Its state when you subscribed.")
    CREATED = strawberry.enum_value("CREATED", description="It was made.")
    READY_FOR_PICKUP = strawberry.enum_value(
        "READY_FOR_PICKUP", description="It is picked and waiting at the store."
    )
    CUSTOMER_ARRIVED = strawberry.enum_value(
        "CUSTOMER_ARRIVED",
        description="Its shopper checked in at the store (see arrivedAt, arrivalNote); the "
        "status is unchanged.",
    )
    EXPIRING_SOON = strawberry.enum_value(
        "EXPIRING_SOON", description="Its hold ends within the policy's warning time."
    )
    COLLECTED = strawberry.enum_value("COLLECTED", description="It was paid and handed over.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="It was cancelled.")
    EXPIRED = strawberry.enum_value("EXPIRED", description="It was not collected in time.")
    STOCK_SHORTAGE = strawberry.enum_value(
        "STOCK_SHORTAGE",
        description="The store had fewer units than reserved: some moved to another store (see "
        "shortage) or were let go. With no line left the event is CANCELLED, with shortage.",
    )


@strawberry.type(description="Units a reservation lost because its store ran short.")
class Shortage:
    sku: str = strawberry.field(description="The SKU that ran short.")
    quantity: int = strawberry.field(description="Units taken off the reservation.")
    reason: str = strawberry.field(
        description="SHORTAGE (the WMS counted fewer) or SHORT_PICK (not found at pick time)."
    )
    moved_to_reservation_id: strawberry.ID | None = strawberry.field(
        description="The new reservation that holds them at another store; null if let go."
    )
    moved_to_store_id: strawberry.ID | None = strawberry.field(
        description="Where they are held now; null if let go."
    )

    @classmethod
    def from_domain(cls, detail: events.Shortage) -> Shortage:
        moved, store = detail.moved_to_reservation_id, detail.moved_to_store_id
        return cls(
            sku=detail.sku,
            quantity=detail.quantity,
            reason=detail.reason,
            moved_to_reservation_id=strawberry.ID(moved) if moved else None,
            moved_to_store_id=strawberry.ID(store) if store else None,
        )


@strawberry.type(description="Something that happened to a reservation of a store.")
class PickupEvent:
    id: strawberry.ID = strawberry.field(
        description="The event's id: the same id is the same event."
    )
    type: ReservationEventType = strawberry.field(description="What happened.")
    occurred_at: datetime = strawberry.field(description="When (UTC).")
    sequence: int = strawberry.field(
        description="The reservation's own change counter: higher is newer; use it to drop "
        "duplicates and late arrivals."
    )
    reservation: Reservation = strawberry.field(description="The reservation after it happened.")
    shortage: Shortage | None = strawberry.field(
        default=None, description="For STOCK_SHORTAGE (and a CANCELLED it caused): what ran short."
    )

    @classmethod
    def from_domain(cls, event: events.ReservationEvent) -> Self:
        detail = event.detail
        return cls(
            id=strawberry.ID(event.id),
            type=ReservationEventType(event.type),
            occurred_at=event.occurred_at,
            sequence=event.sequence,
            reservation=Reservation.from_domain(event.reservation),
            shortage=Shortage.from_domain(detail) if isinstance(detail, events.Shortage) else None,
        )


@strawberry.type(description="Something that happened to one reservation, for its app.")
class ReservationEvent(PickupEvent):
    pass


@strawberry.type(description="The available units of one SKU at one store changed.")
class StockEvent:
    store_id: strawberry.ID = strawberry.field(description="The store's code.")
    sku: str = strawberry.field(description="The SKU code.")
    available: int = strawberry.field(description="Units that can be reserved now.")
    occurred_at: datetime = strawberry.field(description="When (UTC).")
    type: str = strawberry.field(
        default="STOCK_CHANGED",
        description="STOCK_CHANGED, or LOW_STOCK when available fell below the row's threshold.",
    )
    threshold: int | None = strawberry.field(
        default=None, description="For LOW_STOCK: the threshold it fell below."
    )

    @classmethod
    def from_domain(cls, event: events.StockAvailable | events.LowStock) -> StockEvent:
        return cls(
            store_id=strawberry.ID(event.store_id),
            sku=event.sku,
            available=event.available,
            occurred_at=event.occurred_at,
            type=event.type,
            threshold=event.threshold if isinstance(event, events.LowStock) else None,
        )


@strawberry.enum(description="Where a webhook delivery stands.")
class WebhookDeliveryStatus(Enum):
    PENDING = strawberry.enum_value("PENDING", description="Not delivered yet; will be tried.")
    DELIVERED = strawberry.enum_value("DELIVERED", description="The POS answered 2xx.")
    DEAD = strawberry.enum_value(
        "DEAD", description="Given up after too many tries; ops may replay or discard it."
    )
    DISCARDED = strawberry.enum_value(
        "DISCARDED", description="Dead, and ops gave up on it: never sent again."
    )


@strawberry.enum(description="How a list of webhook deliveries is ordered.")
class WebhookDeliveryOrder(Enum):
    CREATED_AT_DESC = strawberry.enum_value("CREATED_AT_DESC", description="Newest first.")
    IMPACT_DESC = strawberry.enum_value(
        "IMPACT_DESC",
        description="Most impact first: the event's weight (a shopper waiting on "
        "CUSTOMER_ARRIVED or READY_FOR_PICKUP weighs most) by time waited.",
    )


@strawberry.type(description="One event on its way to a store's POS webhook.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    event_id: strawberry.ID = strawberry.field(description="The event sent (X-Ropos-Event-Id).")
    event_type: str = strawberry.field(description="READY_FOR_PICKUP, COLLECTED, ...")
    store_id: strawberry.ID = strawberry.field(description="The store whose webhook it is.")
    url: str = strawberry.field(description="Where it is POSTed.")
    status: WebhookDeliveryStatus = strawberry.field(description="Where it stands.")
    attempts: int = strawberry.field(description="Tries so far.")
    last_status_code: int | None = strawberry.field(description="HTTP status of the last try.")
    last_error: str | None = strawberry.field(description="Why the last try failed.")
    created_at: datetime = strawberry.field(description="When it was queued.")
    next_attempt_at: datetime = strawberry.field(description="When it is next tried, if pending.")
    delivered_at: datetime | None = strawberry.field(description="When the POS accepted it.")
    impact: float = strawberry.field(
        description="How much it matters: its event's weight (CUSTOMER_ARRIVED 100, "
        "READY_FOR_PICKUP 80, STOCK_SHORTAGE 40, CANCELLED and EXPIRED 10, COLLECTED 5) times one "
        "plus the hours since it was queued (ranks dead letters)."
    )
    discarded_at: datetime | None = strawberry.field(description="When ops gave up on it.")
    discarded_by: str | None = strawberry.field(description="Who gave up on it.")
    discard_reason: str | None = strawberry.field(description="Why they gave up on it.")

    @classmethod
    def from_domain(cls, d: webhooks.Delivery, now: datetime) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(d.id),
            event_id=strawberry.ID(d.event_id),
            event_type=d.event_type,
            store_id=strawberry.ID(d.store_id),
            url=d.url,
            status=WebhookDeliveryStatus(d.status.value),
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            impact=d.impact(now),
            discarded_at=d.discarded_at,
            discarded_by=d.discarded_by,
            discard_reason=d.discard_reason,
        )


@strawberry.type(description="A store's POS webhook.")
class StoreWebhook:
    store_id: strawberry.ID = strawberry.field(description="The store's code.")
    url: str | None = strawberry.field(description="Where its events are POSTed; null: none.")


@strawberry.type(description="What one reserve call created: one reservation per store.")
class ReservationGroup:
    id: strawberry.ID = strawberry.field(description="The group's id.")
    reservations: list[Reservation] = strawberry.field(
        description="One per store; more than one when the order was split."
    )
    replayed: bool = strawberry.field(
        description="True when this answers a repeated idempotencyKey: nothing new was locked."
    )
    customer: strawberry.Private[str]

    @strawberry.field(
        description='Whose reservations they are, as each of them shows it ("***" for the '
        "store's staff)."
    )
    def customer_id(self, info: Info) -> strawberry.ID:
        actor = info.context.actor
        if actor is not None and any(actor.sees_customer(r.source) for r in self.reservations):
            return strawberry.ID(self.customer)
        return strawberry.ID(MASKED_CUSTOMER_ID)


@strawberry.type(description="The rules for holds and per-customer limits.")
class ReservationPolicy:
    default_hold_seconds: int = strawberry.field(description="Hold used when none is asked for.")
    allowed_hold_seconds: list[int] = strawberry.field(description="Holds a reserve may ask for.")
    max_active_reservations_per_customer: int = strawberry.field(
        description="Active reservations one customer may have at once."
    )
    max_units_per_sku_per_customer: int = strawberry.field(
        description="Units of one SKU one customer may hold over all active reservations."
    )
    expiry_warning_seconds: int = strawberry.field(
        description="How long before expiry the EXPIRING_SOON warning goes out."
    )
    max_stores_per_group: int = strawberry.field(
        description="The most stores one reserve may be split over."
    )
    pickup_window_seconds: int | None = strawberry.field(
        description="When set, marking a reservation ready restarts its clock: the shopper gets "
        "this long from then."
    )
    allow_pickup_without_ready: bool = strawberry.field(
        description="Whether the till may collect a HELD reservation without the ready step."
    )
    ready_target_seconds: int = strawberry.field(
        description="How soon after reserving the goods should be ready (the time-to-ready "
        "KPI's target)."
    )

    @classmethod
    def from_domain(cls, p: policy.ReservationPolicy) -> ReservationPolicy:
        return cls(
            default_hold_seconds=p.default_hold_seconds,
            allowed_hold_seconds=list(p.allowed_hold_seconds),
            max_active_reservations_per_customer=p.max_active_reservations_per_customer,
            max_units_per_sku_per_customer=p.max_units_per_sku_per_customer,
            expiry_warning_seconds=p.expiry_warning_seconds,
            max_stores_per_group=p.max_stores_per_group,
            pickup_window_seconds=p.pickup_window_seconds,
            allow_pickup_without_ready=p.allow_pickup_without_ready,
            ready_target_seconds=p.ready_target_seconds,
        )


@strawberry.type(description="The result of a stock sync.")
class SyncStockResult:
    applied: int = strawberry.field(description="Levels written.")


@strawberry.type(description="A SKU in the catalogue.")
class Sku:
    code: str = strawberry.field(description="The SKU code.")
    name: str | None = strawberry.field(description="Display name.")
    unit_price: Decimal | None = strawberry.field(description="Price of one unit.")


# --- inputs ---------------------------------------------------------------------------------------


@strawberry.input(description="A point on Earth.")
class GeoPointInput:
    lat: float = strawberry.field(description="Latitude, -90 to 90.")
    lon: float = strawberry.field(description="Longitude, -180 to 180.")


@strawberry.input(description="Units of one SKU to reserve.")
class ReserveLineInput:
    sku: str = strawberry.field(description="The SKU code.")
    quantity: int = strawberry.field(description="Units, at least 1.")


@strawberry.input(description="What to reserve, for whom, and where: give storeId or near.")
class ReserveInput:
    lines: list[ReserveLineInput] = strawberry.field(description="1 to 100 lines.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Whose reservation: taken from the token for customers; required otherwise.",
    )
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Reserve every line at this store."
    )
    near: GeoPointInput | None = strawberry.field(
        default=None,
        description="Reserve at the nearest store that has every line, or split over the fewest.",
    )
    radius_km: float | None = strawberry.field(
        default=None, description="With near: how far to look, km (default 50)."
    )
    hold_seconds: int | None = strawberry.field(
        default=None, description="One of the policy's allowedHoldSeconds (default: its default)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="The same key again returns the same group and locks nothing more.",
    )
    channel: str | None = strawberry.field(
        default=None, description="The sales channel (from the token for channel callers)."
    )


@strawberry.input(description="A store to add or update.")
class StoreInput:
    id: strawberry.ID = strawberry.field(description="The store's code.")
    name: str = strawberry.field(description="The store's name.")
    lat: float = strawberry.field(description="Latitude.")
    lon: float = strawberry.field(description="Longitude.")
    timezone: str = strawberry.field(description="IANA time zone.")
    address: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="One line of postal address, at most 200 printable characters; null or "
        "empty clears it; when not given, the store keeps the one it has.",
    )


@strawberry.input(description="A SKU to add or update.")
class SkuInput:
    code: str = strawberry.field(description="The SKU code.")
    name: str | None = strawberry.field(default=None, description="Display name.")
    unit_price: Decimal | None = strawberry.field(default=None, description="Price of one unit.")


@strawberry.input(description="An absolute count of one SKU at one store, from the WMS.")
class StockLevelInput:
    store_id: strawberry.ID = strawberry.field(description="The store's code.")
    sku: str = strawberry.field(description="The SKU code; unknown SKUs are added.")
    on_hand: int = strawberry.field(description="Units physically there, 0 or more.")
    safety_stock: int | None = strawberry.field(
        default=None, description="Units to keep back from reservations; unchanged when not given."
    )


@strawberry.input(description="The whole reservation policy.")
class ReservationPolicyInput:
    default_hold_seconds: int = strawberry.field(description="Must be one of allowedHoldSeconds.")
    allowed_hold_seconds: list[int] = strawberry.field(description="1 to 20 durations, seconds.")
    max_active_reservations_per_customer: int = strawberry.field(description="At least 1.")
    max_units_per_sku_per_customer: int = strawberry.field(description="At least 1.")
    expiry_warning_seconds: int = strawberry.field(
        description="0 or more, shorter than the shortest hold."
    )
    max_stores_per_group: int = strawberry.field(
        default=3, description="The most stores a reserve may be split over (default 3)."
    )
    pickup_window_seconds: int | None = strawberry.field(
        default=None,
        description="Restart the clock when ready: the shopper gets this long from then "
        "(default: none, the hold's own expiry stands).",
    )
    allow_pickup_without_ready: bool = strawberry.field(
        default=False,
        description="Allow collecting a HELD reservation without the ready step (default false).",
    )
    ready_target_seconds: int = strawberry.field(
        default=7200,
        description="How soon after reserving the goods should be ready, 60 s to 30 days "
        "(default 7200: two hours); the time-to-ready KPI's target.",
    )


@strawberry.input(description="The money taken at the till.")
class PaymentInput:
    amount: Decimal = strawberry.field(description="The amount paid, 0 or more, two decimals.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR.")
    method: str = strawberry.field(description="How it was paid: card, cash, voucher...")
    reference: str = strawberry.field(
        description="The POS's own id of the payment; the same reference again is a retry."
    )


# --- the WMS and the figures ----------------------------------------------------------------------


@strawberry.type(description="Of the reserved lines checked, how many were right.")
class Accuracy:
    lines: int = strawberry.field(description="Reserved lines checked.")
    ok: int = strawberry.field(description="Of them, the ones that were right.")
    rate: float | None = strawberry.field(description="ok / lines; null when none was checked.")

    @classmethod
    def from_domain(cls, a: kpis.Accuracy) -> Accuracy:
        return cls(lines=a.lines, ok=a.ok, rate=a.rate)


@strawberry.type(description="Stock accuracy of reserved items at one store.")
class StoreAccuracy:
    store_id: strawberry.ID = strawberry.field(description="The store's code.")
    overall: Accuracy = strawberry.field(description="Pick and reconciliation together.")
    pick: Accuracy = strawberry.field(description="Reserved lines found in full at pick time.")
    reconciliation: Accuracy = strawberry.field(
        description="Reserved lines whose row matched the WMS at reconciliation."
    )


@strawberry.type(
    description="Stock accuracy of reserved items: the share of reserved lines found in full at "
    "pick time and matching the WMS at reconciliation."
)
class StockAccuracy:
    overall: Accuracy = strawberry.field(description="Pick and reconciliation together.")
    pick: Accuracy = strawberry.field(description="At pick time.")
    reconciliation: Accuracy = strawberry.field(description="At reconciliation.")
    per_store: list[StoreAccuracy] = strawberry.field(description="Per store, by store code.")

    @classmethod
    def from_domain(cls, a: kpis.StockAccuracy) -> StockAccuracy:
        return cls(
            overall=Accuracy.from_domain(a.overall),
            pick=Accuracy.from_domain(a.pick),
            reconciliation=Accuracy.from_domain(a.reconciliation),
            per_store=[
                StoreAccuracy(
                    store_id=strawberry.ID(s.store_id),
                    overall=Accuracy.from_domain(s.overall),
                    pick=Accuracy.from_domain(s.pick),
                    reconciliation=Accuracy.from_domain(s.reconciliation),
                )
                for s in a.per_store
            ],
        )


@strawberry.type(
    description="Reserve attempts (GraphQL and the order intake) and what they came to: "
    "reserved / asked, with each cause of failure apart and technical failures never among the "
    "business refusals."
)
class ReservationSuccess:
    asked: int = strawberry.field(description="Reserve attempts (a retried request counts once).")
    reserved: int = strawberry.field(description="Of them, reserved.")
    out_of_stock: int = strawberry.field(description="Refused: not enough stock.")
    limit_exceeded: int = strawberry.field(description="Refused: over a policy limit.")
    bad_input: int = strawberry.field(
        description="Refused: the request was wrong (unknown SKU or store, a rule of the channel "
        "account, a bad value)."
    )
    technical_failures: int = strawberry.field(
        description="Failed on our side (an error, a dead-lettered order): a fault, not a refusal."
    )
    business_refusals: int = strawberry.field(description="outOfStock + limitExceeded + badInput.")
    rate: float | None = strawberry.field(description="reserved / asked; null when none.")
    rate_where_stock_existed: float | None = strawberry.field(
        description="reserved / (asked - outOfStock): the seed's figure, judged against target."
    )
    technical_failure_rate: float | None = strawberry.field(
        description="technicalFailures / asked."
    )
    target: float = strawberry.field(description="The goal for rateWhereStockExisted (0.985).")
    met: bool | None = strawberry.field(
        description="rateWhereStockExisted >= target; null when nothing was asked."
    )

    @classmethod
    def from_domain(cls, s: kpis_rules.ReservationSuccess) -> ReservationSuccess:
        outcome = kpis_rules.ReserveOutcome
        judged = s.rate_where_stock_existed
        return cls(
            asked=s.asked,
            reserved=s.reserved,
            out_of_stock=s[outcome.OUT_OF_STOCK],
            limit_exceeded=s[outcome.LIMIT_EXCEEDED],
            bad_input=s[outcome.BAD_INPUT],
            technical_failures=s[outcome.TECHNICAL],
            business_refusals=s.business_refusals,
            rate=s.rate,
            rate_where_stock_existed=judged,
            technical_failure_rate=s.technical_failure_rate,
            target=kpis_rules.SUCCESS_RATE_TARGET,
            met=None if judged is None else judged >= kpis_rules.SUCCESS_RATE_TARGET,
        )


@strawberry.type(description="Durations between two moments of reservations, in seconds.")
class DurationStats:
    count: int = strawberry.field(description="Reservations measured.")
    mean_seconds: float | None = strawberry.field(description="Their mean; null when none.")
    p50_seconds: float | None = strawberry.field(description="Their median.")
    p90_seconds: float | None = strawberry.field(description="Their 90th percentile.")
    target_seconds: float | None = strawberry.field(description="The target, when there is one.")
    share_within_target: float | None = strawberry.field(
        description="The share at or under the target."
    )
    mean_within_target: bool | None = strawberry.field(
        description="Whether the mean is at or under the target."
    )

    @classmethod
    def from_domain(cls, d: kpis_rules.Durations) -> DurationStats:
        return cls(
            count=d.count,
            mean_seconds=d.mean_seconds,
            p50_seconds=d.p50_seconds,
            p90_seconds=d.p90_seconds,
            target_seconds=d.target_seconds,
            share_within_target=d.share_within_target,
            mean_within_target=d.mean_within_target,
        )


@strawberry.type(description="How the reservations that ended in the window ended.")
class ReservationEndings:
    ended: int = strawberry.field(description="Collected, cancelled or expired in the window.")
    collected: int = strawberry.field(description="Collected.")
    cancelled: int = strawberry.field(description="Cancelled (by the shopper, staff or channel).")
    expired: int = strawberry.field(description="Expired.")
    no_shows: int = strawberry.field(description="Made ready, then expired.")
    ended_after_ready: int = strawberry.field(description="Of the ended, those made ready first.")
    picked: int = strawberry.field(description="Reservations picked in the window.")
    short_picked: int = strawberry.field(description="Of them, with a line not found in full.")
    expiry_rate: float | None = strawberry.field(description="expired / ended.")
    cancel_rate: float | None = strawberry.field(description="cancelled / ended.")
    no_show_rate: float | None = strawberry.field(description="noShows / endedAfterReady.")
    short_pick_rate: float | None = strawberry.field(description="shortPicked / picked.")

    @classmethod
    def from_domain(cls, e: kpis_rules.Endings) -> ReservationEndings:
        return cls(
            ended=e.ended,
            collected=e.collected,
            cancelled=e.cancelled,
            expired=e.expired,
            no_shows=e.expired_after_ready,
            ended_after_ready=e.ended_after_ready,
            picked=e.picked,
            short_picked=e.short_picked,
            expiry_rate=e.expiry_rate,
            cancel_rate=e.cancel_rate,
            no_show_rate=e.no_show_rate,
            short_pick_rate=e.short_pick_rate,
        )


@strawberry.type(description="The figures of one scope (a store, a channel) over the window.")
class KpiFigures:
    reservation_success: ReservationSuccess = strawberry.field(description="Reserved / asked.")
    time_to_ready: DurationStats = strawberry.field(
        description="Reserved -> ready, of those made ready in the window."
    )
    pickup_wait: DurationStats = strawberry.field(
        description="The shopper's arrival (checkIn) -> collected, of those collected in it."
    )
    ready_to_collected: DurationStats = strawberry.field(
        description="Ready -> collected, of those collected in it."
    )
    endings: ReservationEndings = strawberry.field(description="No-shows, expiries, cancels...")

    @classmethod
    def from_domain(cls, f: kpis_rules.KpiFigures) -> KpiFigures:
        return cls(
            reservation_success=ReservationSuccess.from_domain(f.success),
            time_to_ready=DurationStats.from_domain(f.time_to_ready),
            pickup_wait=DurationStats.from_domain(f.pickup_wait),
            ready_to_collected=DurationStats.from_domain(f.ready_to_collected),
            endings=ReservationEndings.from_domain(f.endings),
        )


@strawberry.type(description="One store's figures.")
class StoreKpis:
    store_id: strawberry.ID = strawberry.field(description="The store's code.")
    figures: KpiFigures = strawberry.field(description="Its figures.")


@strawberry.type(description="One sales channel's figures.")
class ChannelKpis:
    channel: str | None = strawberry.field(
        description="The channel the reservations name (the intake's: channel:account); null "
        "for those that name none."
    )
    figures: KpiFigures = strawberry.field(description="Its figures.")


@strawberry.type(description="The goals the figures are judged against.")
class KpiTargets:
    reservation_success_rate: float = strawberry.field(description="0.985 (where stock existed).")
    pickup_wait_seconds: float = strawberry.field(description="Mean under 30 minutes (1800).")
    stock_accuracy: float = strawberry.field(description="0.992, of reserved items.")
    ready_seconds: float = strawberry.field(
        description="The policy's readyTargetSeconds: reserved -> ready."
    )


@strawberry.type(description="The operational figures over a window.")
class Kpis:
    store_id: strawberry.ID | None = strawberry.field(description="The store; null for all.")
    since: datetime = strawberry.field(description="Start of the window (UTC).")
    until: datetime = strawberry.field(description="End of the window: now (UTC).")
    stock_accuracy: StockAccuracy = strawberry.field(description="Of reserved items.")
    reservation_success: ReservationSuccess = strawberry.field(
        description="Reserved / asked, over every reserve attempt of the scope."
    )
    time_to_ready: DurationStats = strawberry.field(description="Reserved -> ready.")
    pickup_wait: DurationStats = strawberry.field(
        description="The shopper's arrival -> collected (the seed's goal: a mean under 30 min)."
    )
    ready_to_collected: DurationStats = strawberry.field(description="Ready -> collected.")
    endings: ReservationEndings = strawberry.field(
        description="No-show, expiry, cancel and short-pick rates."
    )
    per_store: list[StoreKpis] = strawberry.field(description="The same, per store.")
    per_channel: list[ChannelKpis] = strawberry.field(description="The same, per channel.")
    targets: KpiTargets = strawberry.field(description="The goals.")

    @classmethod
    def from_domain(cls, k: kpis.Kpis) -> Kpis:
        overall = KpiFigures.from_domain(k.overall)
        return cls(
            store_id=strawberry.ID(k.store_id) if k.store_id else None,
            since=k.since,
            until=k.until,
            stock_accuracy=StockAccuracy.from_domain(k.stock_accuracy),
            reservation_success=overall.reservation_success,
            time_to_ready=overall.time_to_ready,
            pickup_wait=overall.pickup_wait,
            ready_to_collected=overall.ready_to_collected,
            endings=overall.endings,
            per_store=[
                StoreKpis(store_id=strawberry.ID(store), figures=KpiFigures.from_domain(f))
                for store, f in k.per_store
            ],
            per_channel=[
                ChannelKpis(channel=channel, figures=KpiFigures.from_domain(f))
                for channel, f in k.per_channel
            ],
            targets=KpiTargets(
                reservation_success_rate=kpis_rules.SUCCESS_RATE_TARGET,
                pickup_wait_seconds=kpis_rules.PICKUP_WAIT_TARGET_SECONDS,
                stock_accuracy=kpis_rules.STOCK_ACCURACY_TARGET,
                ready_seconds=k.ready_target_seconds,
            ),
        )


@strawberry.enum(description="Where a stock discrepancy stands.")
class DiscrepancyStatus(Enum):
    REPAIRED = strawberry.enum_value("REPAIRED", description="Repaired by its owner's figure.")
    OPEN = strawberry.enum_value("OPEN", description="No clear owner: for ops to look at.")
    RESOLVED = strawberry.enum_value("RESOLVED", description="Ops looked at it and closed it.")


@strawberry.type(description="A difference reconciliation found between ROPOS and the WMS.")
class StockDiscrepancy:
    id: strawberry.ID = strawberry.field(description="Its id.")
    run_id: strawberry.ID = strawberry.field(description="The reconciliation run that found it.")
    store_id: strawberry.ID = strawberry.field(description="The store.")
    sku: str = strawberry.field(description="The SKU.")
    kind: str = strawberry.field(
        description="ON_HAND (the WMS's figure taken), RESERVED (ROPOS's figure sent), or "
        "MISSING_IN_WMS (no clear owner)."
    )
    ropos_value: int | None = strawberry.field(description="ROPOS's figure.")
    wms_value: int | None = strawberry.field(description="The WMS's figure.")
    status: DiscrepancyStatus = strawberry.field(description="Where it stands.")
    resolution: str | None = strawberry.field(description="What was done about it.")
    detected_at: datetime = strawberry.field(description="When it was found.")
    resolved_at: datetime | None = strawberry.field(description="When ops closed it.")
    resolved_by: str | None = strawberry.field(description="Who closed it.")

    @classmethod
    def from_domain(cls, d: reconciliation.Discrepancy) -> StockDiscrepancy:
        return cls(
            id=strawberry.ID(d.id),
            run_id=strawberry.ID(d.run_id),
            store_id=strawberry.ID(d.store_id),
            sku=d.sku,
            kind=d.kind.value,
            ropos_value=d.ropos_value,
            wms_value=d.wms_value,
            status=DiscrepancyStatus(d.status.value),
            resolution=d.resolution,
            detected_at=d.detected_at,
            resolved_at=d.resolved_at,
            resolved_by=d.resolved_by,
        )


@strawberry.type(description="A reconciliation of stock with the WMS.")
class ReconciliationRun:
    id: strawberry.ID = strawberry.field(description="Its id.")
    started_at: datetime = strawberry.field(description="When it started.")
    finished_at: datetime | None = strawberry.field(description="When it ended.")
    stores: int = strawberry.field(description="Stores compared.")
    compared: int = strawberry.field(description="(store, SKU) rows compared.")
    skipped: int = strawberry.field(
        description="Rows left for the next run: movements were still on their way."
    )
    repaired: int = strawberry.field(description="Differences repaired.")
    open: int = strawberry.field(description="Differences left open for ops.")
    error: str | None = strawberry.field(description="Why it stopped early, if it did.")

    @classmethod
    def from_domain(cls, run: reconciliation.ReconciliationRun) -> ReconciliationRun:
        return cls(
            id=strawberry.ID(run.id),
            started_at=run.started_at,
            finished_at=run.finished_at,
            stores=run.stores,
            compared=run.compared,
            skipped=run.skipped,
            repaired=run.repaired,
            open=run.open,
            error=run.error,
        )


@strawberry.enum(description="Where a movement on its way to the WMS stands.")
class WmsMovementStatus(Enum):
    PENDING = strawberry.enum_value("PENDING", description="Not delivered yet; will be tried.")
    DELIVERED = strawberry.enum_value("DELIVERED", description="The WMS took it.")
    DEAD = strawberry.enum_value(
        "DEAD",
        description="Refused by the WMS, or out of attempts: replay it to try again, or discard "
        "it.",
    )
    DISCARDED = strawberry.enum_value(
        "DISCARDED",
        description="Dead, and ops gave up on it: never sent; reconciliation compares its row.",
    )


@strawberry.enum(description="How a list of WMS movements is ordered.")
class WmsMovementOrder(Enum):
    CREATED_AT_DESC = strawberry.enum_value("CREATED_AT_DESC", description="Newest first.")
    IMPACT_DESC = strawberry.enum_value(
        "IMPACT_DESC",
        description="Most impact first: units by the kind's weight by time waited.",
    )


@strawberry.type(description="A lock, release or consumption of stock, for the WMS.")
class WmsMovement:
    id: strawberry.ID = strawberry.field(description="Its idempotency key at the WMS.")
    store_id: strawberry.ID = strawberry.field(description="The store.")
    sku: str = strawberry.field(description="The SKU.")
    sequence: int = strawberry.field(description="Its number among the row's movements, from 1.")
    type: str = strawberry.field(description="LOCK, RELEASE, CONSUME, SHORT_PICK or SET_RESERVED.")
    quantity: int = strawberry.field(description="Units.")
    reservation_id: strawberry.ID | None = strawberry.field(description="The reservation.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    status: WmsMovementStatus = strawberry.field(description="Where its delivery stands.")
    attempts: int = strawberry.field(description="Delivery attempts so far.")
    next_attempt_at: datetime = strawberry.field(description="When it is tried next.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    delivered_at: datetime | None = strawberry.field(description="When the WMS took it.")
    impact: float = strawberry.field(
        description="How much it matters: its units (at least 1) times its kind's weight (LOCK, "
        "CONSUME and SHORT_PICK 3, SET_RESERVED 2, RELEASE 1), times one plus the hours since it "
        "happened (ranks dead letters)."
    )
    discarded_at: datetime | None = strawberry.field(description="When ops gave up on it.")
    discarded_by: str | None = strawberry.field(description="Who gave up on it.")
    discard_reason: str | None = strawberry.field(description="Why they gave up on it.")

    @classmethod
    def from_domain(cls, q: wms.Queued, now: datetime) -> WmsMovement:
        m = q.movement
        return cls(
            id=strawberry.ID(m.id),
            store_id=strawberry.ID(m.store_id),
            sku=m.sku,
            sequence=m.sequence,
            type=m.kind.value,
            quantity=m.quantity,
            reservation_id=strawberry.ID(m.reservation_id) if m.reservation_id else None,
            occurred_at=m.occurred_at,
            status=WmsMovementStatus(q.status.value),
            attempts=q.attempts,
            next_attempt_at=q.next_attempt_at,
            last_error=q.last_error,
            delivered_at=q.delivered_at,
            impact=q.impact(now),
            discarded_at=q.discarded_at,
            discarded_by=q.discarded_by,
            discard_reason=q.discard_reason,
        )


@strawberry.input(description="The low-stock threshold of one (store, SKU).")
class LowStockThresholdInput:
    store_id: strawberry.ID = strawberry.field(description="The store's code.")
    sku: str = strawberry.field(description="The SKU code.")
    threshold: int | None = strawberry.field(
        description="LOW_STOCK goes out when available falls below this; null removes it."
    )
