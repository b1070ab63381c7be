"""The order intake's words: the canonical order every channel's payload becomes, the statuses of
an intake message, and the decisions recorded on it. Plain data, no parsing of any channel here:
each channel's adapter (`adapters/channels/`) turns its own payloads into a `ChannelOrder`."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, Protocol

from domain.geo import GeoPoint

# The exponent of each currency whose minor unit is not the cent (ISO 4217). Every other
# currency has two decimals.
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def currency_exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS.get(currency, 2)


class SalesChannel(StrEnum):
    """A sales channel, by the name it has in the edge's path (`/intake/{channel}/{account}`)."""

    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    BIGCOMMERCE = "bigcommerce"
    ADOBE_COMMERCE = "adobe-commerce"
    AMAZON = "amazon"
    SQUARE = "square"
    GENERIC = "generic"


class OrderEvent(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    CANCEL = "CANCEL"


class IntakeStatus(StrEnum):
    RECEIVED = "RECEIVED"
    RETRYING = "RETRYING"
    ACCEPTED = "ACCEPTED"
    IGNORED = "IGNORED"
    REJECTED = "REJECTED"
    DEAD = "DEAD"
    DISCARDED = "DISCARDED"

    @property
    def final(self) -> bool:
        return self not in (IntakeStatus.RECEIVED, IntakeStatus.RETRYING)


class RuleAction(StrEnum):
    """What a validation rule does when it finds something: refuse the order, fix it the
    documented way, let it through with a warning, or only record what it would have done."""

    REJECT = "REJECT"
    REPAIR = "REPAIR"
    WARN = "WARN"
    SHADOW = "SHADOW"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in a currency (ISO 4217)."""

    amount: Decimal
    currency: str

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)


@dataclass(frozen=True, slots=True)
class Customer:
    """The channel's customer. `id` is None for a guest; `email` is kept only to tell guests
    apart and to act on the order, never logged."""

    id: str | None = None
    email: str | None = None
    guest: bool = True
    other_emails: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line as the channel sent it. `sku` may be None when the channel identifies the line
    only by its product (or variation, or catalog object) id: a rule maps that to a SKU."""

    sku: str | None
    quantity: int
    channel_product_id: str | None = None
    name: str | None = None
    unit_price: Money | None = None
    line_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pickup:
    """Whether the shopper asked to collect in store, and where the channel says."""

    requested: bool
    channel_location_id: str | None = None
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What a rule (or an adapter, for what it had to repair while reading) decided about one
    order. `action` is what was done; for a SHADOW rule, `message` says what it would have done."""

    rule: str
    action: RuleAction
    message: str
    field: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    """The canonical order: the same shape whatever channel it came from.

    `updated_at` orders the events of one order: an event older than the one already applied
    changes nothing. Channels that give no update time use `placed_at`. `cancelled` is the
    channel saying the order is cancelled (an order delivered as created may already be)."""

    channel: SalesChannel
    account: str
    external_id: str
    event: OrderEvent
    lines: tuple[OrderLine, ...]
    pickup: Pickup
    external_number: str | None = None
    placed_at: datetime | None = None
    updated_at: datetime | None = None
    customer: Customer = Customer()
    currency: str | None = None
    presentment_currency: str | None = None
    total: Money | None = None
    customer_location: GeoPoint | None = None
    cancelled: bool = False
    status: str | None = None

    def with_lines(self, lines: tuple[OrderLine, ...]) -> ChannelOrder:
        return replace(self, lines=lines)

    def without_contact(self) -> ChannelOrder:
        """The order as ROPOS keeps it for good (what it holds per channel order): the customer's
        emails are needed only while the message is acted on."""
        customer = Customer(id=self.customer.id, guest=self.customer.guest)
        return replace(self, customer=customer)

    @property
    def version_time(self) -> datetime | None:
        return self.updated_at or self.placed_at

    @property
    def idempotency_key(self) -> str:
        """`channel:account:externalId`: a replayed or duplicated order never locks twice."""
        key = f"{self.channel.value}:{self.account}:{self.external_id}"
        if len(key) <= 128:
            return key
        return f"{self.channel.value}:{hashlib.sha256(key.encode()).hexdigest()}"

    def value(self) -> Decimal:
        """The order's value, for ranking dead letters by impact: its total, else its lines."""
        if self.total is not None:
            return self.total.amount
        return sum(
            (line.unit_price.amount * line.quantity for line in self.lines if line.unit_price),
            Decimal(0),
        )


@dataclass(frozen=True, slots=True)
class Parsed:
    """One order read from a payload, with what the adapter had to decide while reading it."""

    order: ChannelOrder
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class NotAnOrder:
    """A payload that is valid but holds nothing for ROPOS to act on (an inventory webhook, a
    topic ROPOS does not handle): the message ends IGNORED with this reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class FetchBack:
    """A thin webhook: it names an order without carrying it (BigCommerce's order webhooks,
    Square's order events, Amazon's ORDER_CHANGE notifications). The worker fetches the order
    through the channel's API and reads what it gets, with `topic` as the delivery's topic.
    `version` and `changed_at` are the order's own, when the webhook gives them (Square): a
    fetched order older than them is a read that has not caught up yet, tried again."""

    external_id: str
    topic: str
    version: int | None = None
    changed_at: datetime | None = None


class PayloadRefused(Exception):
    """A payload an adapter cannot turn into an order without guessing at money or stock (no
    order id, a fractional quantity, an amount that is not a number). The message ends REJECTED
    with `code`."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Delivery:
    """What an adapter knows about the delivery besides its body: the topic from the channel's
    header (or None when the body carries it), the event id, and when ROPOS received it (the
    time an unreadable timestamp is repaired to)."""

    channel: SalesChannel
    account: str
    received_at: datetime
    topic: str | None = None
    event_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def to_json(order: ChannelOrder) -> dict[str, Any]:
    """The canonical order as JSON (the API's names; amounts as decimal strings, ids as strings):
    the form it is stored in and the `generic` channel's body."""

    def money(m: Money | None) -> dict[str, str] | None:
        return None if m is None else {"amount": str(m.amount), "currency": m.currency}

    def when(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {
        "channel": order.channel.value,
        "account": order.account,
        "externalId": order.external_id,
        "externalNumber": order.external_number,
        "event": order.event.value,
        "placedAt": when(order.placed_at),
        "updatedAt": when(order.updated_at),
        "status": order.status,
        "cancelled": order.cancelled,
        "customer": {
            "id": order.customer.id,
            "email": order.customer.email,
            "guest": order.customer.guest,
            "otherEmails": list(order.customer.other_emails),
        },
        "currency": order.currency,
        "presentmentCurrency": order.presentment_currency,
        "total": money(order.total),
        "lines": [
            {
                "sku": line.sku,
                "channelProductId": line.channel_product_id,
                "lineId": line.line_id,
                "name": line.name,
                "quantity": line.quantity,
                "unitPrice": money(line.unit_price),
            }
            for line in order.lines
        ],
        "pickup": {
            "requested": order.pickup.requested,
            "channelLocationId": order.pickup.channel_location_id,
            "storeId": order.pickup.store_id,
        },
        "customerLocation": None
        if order.customer_location is None
        else {"lat": order.customer_location.lat, "lon": order.customer_location.lon},
    }


def from_json(data: dict[str, Any]) -> ChannelOrder:
    """The inverse of `to_json`, for orders ROPOS stored itself (trusted shape)."""

    def money(m: dict[str, str] | None) -> Money | None:
        return None if m is None else Money(Decimal(m["amount"]), m["currency"])

    def when(t: str | None) -> datetime | None:
        return None if t is None else datetime.fromisoformat(t)

    customer = data.get("customer") or {}
    pickup = data["pickup"]
    location = data.get("customerLocation")
    return ChannelOrder(
        channel=SalesChannel(data["channel"]),
        account=data["account"],
        external_id=data["externalId"],
        external_number=data.get("externalNumber"),
        event=OrderEvent(data["event"]),
        placed_at=when(data.get("placedAt")),
        updated_at=when(data.get("updatedAt")),
        status=data.get("status"),
        cancelled=bool(data.get("cancelled")),
        customer=Customer(
            id=customer.get("id"),
            email=customer.get("email"),
            guest=bool(customer.get("guest", True)),
            other_emails=tuple(customer.get("otherEmails") or ()),
        ),
        currency=data.get("currency"),
        presentment_currency=data.get("presentmentCurrency"),
        total=money(data.get("total")),
        lines=tuple(
            OrderLine(
                sku=line.get("sku"),
                channel_product_id=line.get("channelProductId"),
                line_id=line.get("lineId"),
                name=line.get("name"),
                quantity=int(line["quantity"]),
                unit_price=money(line.get("unitPrice")),
            )
            for line in data["lines"]
        ),
        pickup=Pickup(
            requested=bool(pickup["requested"]),
            channel_location_id=pickup.get("channelLocationId"),
            store_id=pickup.get("storeId"),
        ),
        customer_location=None
        if location is None
        else GeoPoint(float(location["lat"]), float(location["lon"])),
    )


class ChannelAdapter(Protocol):
    """One channel's payloads to canonical orders."""

    channel: SalesChannel

    def split(self, payload: Any) -> list[Any]:
        """The orders a body holds, one payload each: `[payload]` for a body of one order, one
        element per order for a REST list or search response a connector pushed."""
        ...

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder | FetchBack:
        """One order's payload (an element of `split`) to the canonical order, or the order a
        thin webhook names (to fetch back). Raises `PayloadRefused` when it cannot be read
        without guessing at money or stock."""
        ...


class ChannelApiError(Exception):
    """A channel's API did not give the order asked for."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ChannelApiUnavailable(ChannelApiError):
    """Worth asking again later: a timeout, a refused connection, a 5xx, a 429 (`retry_after`:
    how long the channel asked to wait, in seconds, when it said)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ChannelApiRefused(ChannelApiError):
    """A refusal that asking again will not change (401, 403, 404, a body that is not the
    order): the message is dead-lettered with the channel's answer, for ops."""


@dataclass(frozen=True, slots=True)
class Swept:
    """An order a channel's API lists as changed in a window, and the body to feed the intake
    with for it: the order in a shape the channel's adapter reads, or a thin webhook naming it
    (to fetch back), as JSON, with the topic it goes under."""

    external_id: str
    changed_at: datetime | None
    topic: str
    body: bytes = field(repr=False)


class ChannelApi(Protocol):
    """One channel's API, as the intake uses it: fetch back the order a thin webhook names, and
    list the orders changed in a window (the gap sweep)."""

    channel: SalesChannel

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        """The order as the channel's API gives it, in a shape the channel's adapter reads.
        Raises `ChannelApiUnavailable` or `ChannelApiRefused`."""
        ...

    async def changed(
        self, account: ChannelAccount, since: datetime, until: datetime
    ) -> list[Swept]:
        """Every order changed between `since` and `until`, oldest change first (all pages).
        Raises `ChannelApiUnavailable` or `ChannelApiRefused`."""
        ...


# --- channel accounts and intake messages ---------------------------------------------------------

MAX_ACCOUNT_CODE = 40
DEFAULT_MAX_BACKLOG = 10_000
MAX_GRACE_SECONDS = 30 * 86_400
# A full backlog is refused until it has drained to this share of its bound (not one message
# below it: the channel would be refused again at once).
BACKLOG_RESUME_SHARE = 0.9
MAX_RETRY_AFTER_SECONDS = 300
# When nothing of the account drained lately (its worker stopped, say): ask for a minute.
IDLE_RETRY_AFTER_SECONDS = 60


def backlog_retry_after(waiting: int, max_backlog: int, drained_per_second: float) -> int | None:
    """None while an account's backlog has room; else the seconds a channel should wait before
    sending again: until the backlog has drained to BACKLOG_RESUME_SHARE of its bound at the rate
    it has been draining, 1 to MAX_RETRY_AFTER_SECONDS."""
    if waiting < max_backlog:
        return None
    if drained_per_second <= 0:
        return IDLE_RETRY_AFTER_SECONDS
    excess = waiting - math.floor(max_backlog * BACKLOG_RESUME_SHARE)
    return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(excess / drained_per_second)))


class OrderState(StrEnum):
    """What ROPOS holds for a channel order."""

    RESERVED = "RESERVED"
    CANCELLED = "CANCELLED"
    NOT_PICKUP = "NOT_PICKUP"


@dataclass(frozen=True, slots=True)
class ChannelAccount:
    """One merchant account of one channel: the unit of authentication, rules and health.
    `secret`, `previous_secret` and `api_token` are write-only: never returned, never logged
    (their repr is hidden)."""

    channel: SalesChannel
    account: str
    default_store_id: str | None = None
    locations: dict[str, str] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    rules: dict[str, RuleAction] = field(default_factory=dict)
    api_base_url: str | None = None
    assume_pickup: bool = False
    notification_url: str | None = None
    max_backlog: int = DEFAULT_MAX_BACKLOG
    weight: int = 1
    enabled: bool = True
    secret: str | None = field(default=None, repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_until: datetime | None = None
    api_token: str | None = field(default=None, repr=False)
    auth_failures: int = 0
    # How far the gap sweep has asked the channel's API for changed orders.
    swept_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def secrets(self, now: datetime) -> list[str]:
        """The secrets that verify now: the current one, then the previous one in its grace."""
        found = [self.secret] if self.secret else []
        if (
            self.previous_secret
            and self.previous_secret_until is not None
            and now < self.previous_secret_until
        ):
            found.append(self.previous_secret)
        return found


class IntakeCount(StrEnum):
    """What the intake counts per account without keeping a message for it."""

    SIGNATURE_FAILURE = "signature_failure"  # a bad, missing or stale signature or token
    OVERSIZED = "oversized"  # a body over the edge's limit
    DUPLICATE = "duplicate"  # a delivery seen before
    BACKLOG_FULL = "backlog_full"  # refused with 429: the account's backlog was full
    FETCH_ERROR = "fetch_error"  # a call to the channel's API that failed or was refused


class IntakeLane(IntEnum):
    """Which messages of an account go first when it has a backlog: cancels (they release
    stock), then new deliveries, then what runs again (retries, ops' replays), so a bulk replay
    or a failing batch never holds up new orders. Known before the body is read: from the topic
    at the edge, and set when a message is retried or replayed."""

    CANCEL = 0
    NEW = 1
    AGAIN = 2


_CANCEL_TOPIC = re.compile(r"cancel|delet", re.IGNORECASE)


def lane_of(topic: str | None) -> IntakeLane:
    """The lane of a new delivery: a topic that names a cancel or a deletion (Shopify's
    orders/cancelled and orders/delete, Adobe's ...order_cancel..., a connector's x-ropos-topic)
    goes first; every other one is NEW (a cancel a channel sends as an update is read later)."""
    return IntakeLane.CANCEL if topic and _CANCEL_TOPIC.search(topic) else IntakeLane.NEW


@dataclass(frozen=True, slots=True)
class IntakeMessage:
    """One stored delivery (or one order of a delivery that held several) and its fate."""

    id: str
    channel: SalesChannel
    account: str
    status: IntakeStatus
    received_at: datetime
    attempts: int
    next_attempt_at: datetime
    dedupe_key: str
    topic: str | None = None
    event_id: str | None = None
    parent_id: str | None = None
    finished_at: datetime | None = None
    error_code: str | None = None
    error: str | None = None
    decisions: tuple[Decision, ...] = ()
    order: ChannelOrder | None = None
    external_id: str | None = None
    order_value: Decimal | None = None
    reservation_group_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    lane: IntakeLane = IntakeLane.NEW

    def impact(self, now: datetime) -> Decimal:
        """How much a dead letter matters: the order's value weighted by how long it has waited
        (one more unit of value per hour waited, so old small orders do not starve)."""
        hours = Decimal(max(0.0, (now - self.received_at).total_seconds()) / 3600)
        return ((self.order_value or Decimal(0)) + Decimal(1)) * (Decimal(1) + hours)


@dataclass(slots=True)
class IntakeClaim:
    """What one claim of intake messages took: the messages (leased, in the order they became
    due), their raw bodies by id (when asked for), and for each account claimed from, how many
    of its messages were due then, these included (more than were taken: its backlog goes on)."""

    messages: list[IntakeMessage]
    bodies: dict[str, bytes | None] = field(default_factory=dict)
    due: dict[tuple[SalesChannel, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HeldOrder:
    """What ROPOS holds for one channel order (a row of `channel_orders`)."""

    channel: SalesChannel
    account: str
    external_id: str
    state: OrderState
    version_time: datetime | None
    group_id: str | None
    message_id: str
    order: ChannelOrder


def decision_to_json(d: Decision) -> dict[str, str | None]:
    return {
        "rule": d.rule,
        "action": d.action.value,
        "message": d.message,
        "field": d.field,
        "code": d.code,
    }


def decision_from_json(d: dict[str, Any]) -> Decision:
    return Decision(d["rule"], RuleAction(d["action"]), d["message"], d.get("field"), d.get("code"))


def intake_customer_id(order: ChannelOrder) -> str:
    """The customer a channel order's reservation is held for (the per-customer limits count on
    it): the channel's customer id, else the guest's email digest, else the order itself; scoped
    to the channel account, at most 64 characters."""
    scope = f"{order.channel.value}:{order.account}"
    if order.customer.id:
        candidate = f"{scope}:{order.customer.id}"
    elif order.customer.email:
        digest = hashlib.sha256(order.customer.email.encode()).hexdigest()[:24]
        candidate = f"{scope}:guest:{digest}"
    else:
        candidate = f"{scope}:order:{order.external_id}"
    if len(candidate) <= 64 and candidate.isprintable():
        return candidate
    return f"{order.channel.value}:{hashlib.sha256(candidate.encode()).hexdigest()[:40]}"
