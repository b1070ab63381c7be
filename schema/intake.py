"""The order intake as ops see it: channel accounts (never their secrets), intake messages and
the canonical orders they carry, and the validation rules of an account's profile."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from weakref import WeakKeyDictionary

import strawberry
from strawberry.dataloader import DataLoader

from domain import events, intake, intake_health
from domain.intake_rules import RULES, profile
from schema.context import Info, Loaders
from schema.types import GeoPointInput
from services.intake import sweep


@strawberry.enum(description="A sales channel, by the name it has in the intake's path.")
class SalesChannel(Enum):
    SHOPIFY = strawberry.enum_value("shopify", description="Shopify (/intake/shopify/...).")
    WOOCOMMERCE = strawberry.enum_value("woocommerce", description="WooCommerce.")
    BIGCOMMERCE = strawberry.enum_value("bigcommerce", description="BigCommerce.")
    ADOBE_COMMERCE = strawberry.enum_value(
        "adobe-commerce", description="Adobe Commerce (Magento); path /intake/adobe-commerce/..."
    )
    AMAZON = strawberry.enum_value("amazon", description="Amazon.")
    SQUARE = strawberry.enum_value("square", description="Square.")
    GENERIC = strawberry.enum_value(
        "generic", description="Any system sending ROPOS's own canonical order JSON."
    )

    @property
    def domain(self) -> intake.SalesChannel:
        return intake.SalesChannel[self.name]

    @classmethod
    def of(cls, channel: intake.SalesChannel) -> SalesChannel:
        return cls[channel.name]


@strawberry.enum(description="Where an intake message stands.")
class IntakeStatus(Enum):
    RECEIVED = strawberry.enum_value("RECEIVED", description="Stored; not read yet.")
    RETRYING = strawberry.enum_value(
        "RETRYING", description="A technical failure; it is tried again at nextAttemptAt."
    )
    ACCEPTED = strawberry.enum_value("ACCEPTED", description="Acted on: reserved, amended...")
    IGNORED = strawberry.enum_value(
        "IGNORED", description="Nothing for ROPOS in it (not an order, not a pickup order...)."
    )
    REJECTED = strawberry.enum_value(
        "REJECTED", description="Refused by a rule or the reservation (see lastError)."
    )
    DEAD = strawberry.enum_value("DEAD", description="Out of attempts; ops may replay it.")
    DISCARDED = strawberry.enum_value("DISCARDED", description="Ops gave up on it, with a reason.")

    @property
    def domain(self) -> intake.IntakeStatus:
        return intake.IntakeStatus[self.name]


@strawberry.enum(description="What the channel says happened to the order.")
class OrderEvent(Enum):
    CREATE = strawberry.enum_value("CREATE", description="The order was placed.")
    UPDATE = strawberry.enum_value("UPDATE", description="The order was changed.")
    CANCEL = strawberry.enum_value("CANCEL", description="The order was cancelled.")


@strawberry.enum(description="What a validation rule does when it finds something.")
class RuleAction(Enum):
    REJECT = strawberry.enum_value("REJECT", description="Refuse the order.")
    REPAIR = strawberry.enum_value("REPAIR", description="Fix it the documented way.")
    WARN = strawberry.enum_value("WARN", description="Let it through and record the finding.")
    SHADOW = strawberry.enum_value(
        "SHADOW", description="Act on nothing; record what the rule would have done."
    )

    @property
    def domain(self) -> intake.RuleAction:
        return intake.RuleAction[self.name]


@strawberry.enum(description="How intake messages are listed.")
class IntakeOrder(Enum):
    RECEIVED_AT_DESC = strawberry.enum_value("RECEIVED_AT_DESC", description="Newest first.")
    IMPACT_DESC = strawberry.enum_value(
        "IMPACT_DESC", description="Most impact first: order value weighted by time waited."
    )


@strawberry.enum(description="What ROPOS holds for a channel order.")
class ChannelOrderState(Enum):
    RESERVED = strawberry.enum_value("RESERVED", description="Its units are reserved.")
    CANCELLED = strawberry.enum_value(
        "CANCELLED", description="Cancelled: whatever it held was released."
    )
    NOT_PICKUP = strawberry.enum_value(
        "NOT_PICKUP", description="Not a pickup order: nothing is reserved for it."
    )


# --- the canonical order -----------------------------------------------------------------------


@strawberry.type(description="An exact amount of money.")
class Money:
    amount: Decimal = strawberry.field(description="The amount, exact, as a decimal string.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR.")

    @classmethod
    def from_domain(cls, money: intake.Money | None) -> Money | None:
        return None if money is None else cls(amount=money.amount, currency=money.currency)


@strawberry.type(description="A point on Earth.")
class GeoPoint:
    lat: float = strawberry.field(description="Latitude, WGS 84.")
    lon: float = strawberry.field(description="Longitude, WGS 84.")


@strawberry.type(description="The channel's customer of an order.")
class ChannelCustomer:
    id: str | None = strawberry.field(description="The channel's customer id; null for a guest.")
    email: str | None = strawberry.field(
        description="The customer's email, if the channel gave it."
    )
    guest: bool = strawberry.field(description="True for a guest checkout.")


@strawberry.type(description="One line of a channel order, as the channel sent it.")
class ChannelOrderLine:
    sku: str | None = strawberry.field(
        description="The SKU; null when the channel names only its product."
    )
    channel_product_id: str | None = strawberry.field(
        description="The channel's product (variation, catalog object) id."
    )
    line_id: str | None = strawberry.field(description="The channel's id of the line.")
    name: str | None = strawberry.field(description="The product's name.")
    quantity: int = strawberry.field(description="Units ordered.")
    unit_price: Money | None = strawberry.field(description="Price of one unit.")


@strawberry.type(description="Whether the shopper collects in store, and where.")
class ChannelPickup:
    requested: bool = strawberry.field(description="True for a reserve-and-collect order.")
    store_id: strawberry.ID | None = strawberry.field(description="The ROPOS store, when known.")
    channel_location_id: str | None = strawberry.field(
        description="The channel's id of the pickup location."
    )


@strawberry.type(description="A channel order in ROPOS's canonical shape, whatever its channel.")
class ChannelOrder:
    channel: SalesChannel = strawberry.field(description="The channel it came from.")
    account: str = strawberry.field(description="The channel account's code.")
    external_id: str = strawberry.field(description="The channel's id of the order.")
    external_number: str | None = strawberry.field(
        description="The order number the shopper sees, if it differs."
    )
    event: OrderEvent = strawberry.field(description="What happened to it.")
    placed_at: datetime | None = strawberry.field(description="When it was placed.")
    updated_at: datetime | None = strawberry.field(
        description="When the channel last changed it: orders its events."
    )
    status: str | None = strawberry.field(description="The channel's own status word.")
    cancelled: bool = strawberry.field(description="True when the channel says it is cancelled.")
    customer: ChannelCustomer = strawberry.field(description="Who ordered.")
    currency: str | None = strawberry.field(description="The shop's currency (ISO 4217).")
    presentment_currency: str | None = strawberry.field(
        description="The currency the shopper saw, when it differs."
    )
    total: Money | None = strawberry.field(description="The order's total, as the channel says.")
    lines: list[ChannelOrderLine] = strawberry.field(description="What was ordered.")
    pickup: ChannelPickup = strawberry.field(description="Where it is collected.")
    customer_location: GeoPoint | None = strawberry.field(
        description="Where the shopper is, for the nearest store."
    )
    state: ChannelOrderState | None = strawberry.field(
        default=None,
        description="What ROPOS holds for it (from the channelOrder query only).",
    )
    reservation_group_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The reservations made for it (from the channelOrder query only).",
    )
    last_message_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The intake message last applied to it (from the channelOrder query only).",
    )

    @classmethod
    def from_domain(cls, order: intake.ChannelOrder) -> ChannelOrder:
        location = order.customer_location
        return cls(
            channel=SalesChannel.of(order.channel),
            account=order.account,
            external_id=order.external_id,
            external_number=order.external_number,
            event=OrderEvent(order.event.value),
            placed_at=order.placed_at,
            updated_at=order.updated_at,
            status=order.status,
            cancelled=order.cancelled,
            customer=ChannelCustomer(
                id=order.customer.id, email=order.customer.email, guest=order.customer.guest
            ),
            currency=order.currency,
            presentment_currency=order.presentment_currency,
            total=Money.from_domain(order.total),
            lines=[
                ChannelOrderLine(
                    sku=line.sku,
                    channel_product_id=line.channel_product_id,
                    line_id=line.line_id,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price=Money.from_domain(line.unit_price),
                )
                for line in order.lines
            ],
            pickup=ChannelPickup(
                requested=order.pickup.requested,
                store_id=_id(order.pickup.store_id),
                channel_location_id=order.pickup.channel_location_id,
            ),
            customer_location=None
            if location is None
            else GeoPoint(lat=location.lat, lon=location.lon),
        )

    @classmethod
    def from_held(cls, held: intake.HeldOrder) -> ChannelOrder:
        """The order as ROPOS holds it, with its state, reservations and last message."""
        return dataclasses.replace(
            cls.from_domain(held.order),
            state=ChannelOrderState(held.state.value),
            reservation_group_id=_id(held.group_id),
            last_message_id=strawberry.ID(held.message_id),
        )


# --- intake messages ----------------------------------------------------------------------------


@strawberry.type(description="What a rule (or an adapter, or ops) decided about an order.")
class IntakeDecision:
    rule: str = strawberry.field(description="The rule's name, e.g. sku.missing.")
    action: RuleAction = strawberry.field(description="What was done.")
    field: str | None = strawberry.field(description="The order's field, e.g. lines[2].sku.")
    message: str = strawberry.field(description="What was found, and done.")
    code: str | None = strawberry.field(
        description="The code of a decision that refuses the order, or would (SHADOW)."
    )

    @classmethod
    def from_domain(cls, decision: intake.Decision) -> IntakeDecision:
        return cls(
            rule=decision.rule,
            action=RuleAction(decision.action.value),
            field=decision.field,
            message=decision.message,
            code=decision.code,
        )


@strawberry.type(description="Why an intake message was refused or failed.")
class IntakeError:
    code: str = strawberry.field(description="MALFORMED, UNKNOWN_SKU, OUT_OF_STOCK, ...")
    message: str | None = strawberry.field(description="What went wrong, for a person.")


# The statuses in which a message is still to be tried (and has a next attempt).
_WAITING = (intake.IntakeStatus.RECEIVED, intake.IntakeStatus.RETRYING)


# One children loader per operation: keyed by the operation's fresh Loaders, gone with them.
_CHILDREN: WeakKeyDictionary[Loaders, DataLoader[str, list[intake.IntakeMessage]]] = (
    WeakKeyDictionary()
)


def _children(info: Info) -> DataLoader[str, list[intake.IntakeMessage]]:
    loaders = info.context.loaders
    loader = _CHILDREN.get(loaders)
    if loader is None:
        uow = info.context.deps.uow

        async def load(parent_ids: list[str]) -> list[list[intake.IntakeMessage]]:
            async with uow() as tx:
                return [await tx.intake.children(parent_id) for parent_id in parent_ids]

        loader = DataLoader(load_fn=load)
        _CHILDREN[loaders] = loader
    return loader


async def _children_of(root: IntakeMessage, info: Info) -> list[IntakeMessage]:
    if root.parent_id is not None:
        return []  # a part of a delivery is never split again
    found = await _children(info).load(str(root.id))
    now = info.context.deps.clock.now()
    return [IntakeMessage.from_domain(m, now) for m in found]


@strawberry.type(description="One stored delivery (or one order of a delivery that held several).")
class IntakeMessage:
    id: strawberry.ID = strawberry.field(description="The message's id.")
    channel: SalesChannel = strawberry.field(description="The channel it came from.")
    account: str = strawberry.field(description="The channel account's code.")
    topic: str | None = strawberry.field(description="The channel's topic, e.g. orders/create.")
    event_id: str | None = strawberry.field(description="The channel's id of the delivery.")
    parent_id: strawberry.ID | None = strawberry.field(
        description="The delivery this order was split from, for one of several orders."
    )
    received_at: datetime = strawberry.field(description="When ROPOS stored it (UTC).")
    status: IntakeStatus = strawberry.field(description="Where it stands.")
    attempts: int = strawberry.field(description="Tries so far.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is tried next (RECEIVED and RETRYING only)."
    )
    finished_at: datetime | None = strawberry.field(description="When it reached its status.")
    last_error: IntakeError | None = strawberry.field(
        description="Why it was refused or failed, if it was."
    )
    decisions: list[IntakeDecision] = strawberry.field(
        description="What the rules, the adapter and ops decided, in order."
    )
    order: ChannelOrder | None = strawberry.field(
        description="The canonical order as read (and repaired), once read."
    )
    reservation_group_id: strawberry.ID | None = strawberry.field(
        description="The reservations made for it, if any."
    )
    impact: float = strawberry.field(
        description="How much it matters: order value weighted by hours waited (ranks dead "
        "letters)."
    )
    children: list[IntakeMessage] = strawberry.field(
        resolver=_children_of,
        description="The messages split from this one, one per order it held.",
    )

    @classmethod
    def from_domain(cls, m: intake.IntakeMessage, now: datetime) -> IntakeMessage:
        return cls(
            id=strawberry.ID(m.id),
            channel=SalesChannel.of(m.channel),
            account=m.account,
            topic=m.topic,
            event_id=m.event_id,
            parent_id=_id(m.parent_id),
            received_at=m.received_at,
            status=IntakeStatus(m.status.value),
            attempts=m.attempts,
            next_attempt_at=m.next_attempt_at if m.status in _WAITING else None,
            finished_at=m.finished_at,
            last_error=IntakeError(code=m.error_code, message=m.error) if m.error_code else None,
            decisions=[IntakeDecision.from_domain(d) for d in m.decisions],
            order=ChannelOrder.from_domain(m.order) if m.order is not None else None,
            reservation_group_id=_id(m.reservation_group_id),
            impact=float(m.impact(now)),
        )


# --- channel accounts ---------------------------------------------------------------------------


@strawberry.type(description="A channel location mapped to a ROPOS store.")
class ChannelLocation:
    channel_location_id: str = strawberry.field(description="The channel's location id.")
    store_id: strawberry.ID = strawberry.field(description="The ROPOS store it is.")


@strawberry.type(description="A channel product id mapped to a SKU.")
class ChannelProduct:
    channel_product_id: str = strawberry.field(
        description="The channel's product (variation, catalog object) id."
    )
    sku: str = strawberry.field(description="The SKU it is.")


@strawberry.type(description="A validation rule and the action a profile gives it.")
class ValidationRule:
    rule: str = strawberry.field(description="The rule's name, e.g. sku.missing.")
    description: str = strawberry.field(description="What it looks for and what REPAIR does.")
    action: RuleAction = strawberry.field(description="The action it takes in this profile.")
    default_action: RuleAction = strawberry.field(
        description="Its action for the channel when the account does not override it."
    )
    allowed_actions: list[RuleAction] = strawberry.field(
        description="The actions it can take (always WARN and SHADOW)."
    )
    overridden: bool = strawberry.field(description="True when the account sets its action.")


def validation_profile(
    channel: intake.SalesChannel, overrides: Mapping[str, intake.RuleAction]
) -> list[ValidationRule]:
    """Every rule, in the order they run, with the channel's default and the account's action.
    An override the rules no longer allow (a rule renamed or narrowed since) is shown as not
    set rather than failing the read."""
    kept = {
        name: action
        for name, action in overrides.items()
        if name in RULES and action in RULES[name].actions
    }
    defaults, actions = profile(channel), profile(channel, kept)
    order = list(intake.RuleAction)
    return [
        ValidationRule(
            rule=name,
            description=rule.description,
            action=RuleAction(actions[name].value),
            default_action=RuleAction(defaults[name].value),
            allowed_actions=[RuleAction(a.value) for a in sorted(rule.actions, key=order.index)],
            overridden=name in kept,
        )
        for name, rule in RULES.items()
    ]


@strawberry.type(
    description="One merchant account of one channel: how its deliveries are authenticated, "
    "mapped and validated. Its secret and API token are write-only: never shown."
)
class ChannelAccount:
    channel: SalesChannel = strawberry.field(description="The channel.")
    account: str = strawberry.field(description="The account's code, in the intake's path.")
    default_store_id: strawberry.ID | None = strawberry.field(
        description="The store a pickup order goes to when nothing names one."
    )
    locations: list[ChannelLocation] = strawberry.field(
        description="The channel's pickup locations and the stores they are."
    )
    products: list[ChannelProduct] = strawberry.field(
        description="The channel's product ids and the SKUs they are."
    )
    rules: list[ValidationRule] = strawberry.field(
        description="The account's effective validation profile, every rule in the order run."
    )
    api_base_url: str | None = strawberry.field(description="The channel's API, for read-backs.")
    has_api_token: bool = strawberry.field(description="True when an API token is set.")
    has_secret: bool = strawberry.field(description="True when a signing secret is set.")
    previous_secret_valid_until: datetime | None = strawberry.field(
        description="After a rotation: until when the previous secret still verifies."
    )
    assume_pickup: bool = strawberry.field(
        description="True when every order of the account is a pickup order."
    )
    notification_url: str | None = strawberry.field(
        description="The URL the channel signs with the body (Square)."
    )
    max_backlog: int = strawberry.field(
        description="Messages it may have waiting at most: past it the edge answers 429."
    )
    weight: int = strawberry.field(description="Its share of the intake worker, 1 to 100.")
    enabled: bool = strawberry.field(description="False: its deliveries are refused (404).")
    auth_failures: int = strawberry.field(description="Deliveries refused for their signature.")
    intake_url: str = strawberry.field(
        description="The path its deliveries are POSTed to: /intake/{channel}/{account}."
    )
    created_at: datetime | None = strawberry.field(description="When it was created.")
    updated_at: datetime | None = strawberry.field(description="When it was last changed.")

    @classmethod
    def from_domain(cls, a: intake.ChannelAccount) -> ChannelAccount:
        return cls(
            channel=SalesChannel.of(a.channel),
            account=a.account,
            default_store_id=_id(a.default_store_id),
            locations=[
                ChannelLocation(channel_location_id=location, store_id=strawberry.ID(store))
                for location, store in sorted(a.locations.items())
            ],
            products=[
                ChannelProduct(channel_product_id=product, sku=sku)
                for product, sku in sorted(a.products.items())
            ],
            rules=validation_profile(a.channel, a.rules),
            api_base_url=a.api_base_url,
            has_api_token=a.api_token is not None,
            has_secret=a.secret is not None,
            previous_secret_valid_until=a.previous_secret_until if a.previous_secret else None,
            assume_pickup=a.assume_pickup,
            notification_url=a.notification_url,
            max_backlog=a.max_backlog,
            weight=a.weight,
            enabled=a.enabled,
            auth_failures=a.auth_failures,
            intake_url=f"/intake/{a.channel.value}/{a.account}",
            created_at=a.created_at,
            updated_at=a.updated_at,
        )


def _id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)


# --- inputs -------------------------------------------------------------------------------------


@strawberry.input(description="A channel location and the store it is.")
class ChannelLocationInput:
    channel_location_id: str = strawberry.field(description="The channel's location id.")
    store_id: strawberry.ID = strawberry.field(description="An existing ROPOS store.")


@strawberry.input(description="A channel product id and the SKU it is.")
class ChannelProductInput:
    channel_product_id: str = strawberry.field(description="The channel's product id.")
    sku: str = strawberry.field(description="The SKU.")


@strawberry.input(description="The action an account gives one validation rule.")
class ValidationRuleInput:
    rule: str = strawberry.field(description="The rule's name (see validationProfile).")
    action: RuleAction = strawberry.field(description="One of the rule's allowedActions.")


@strawberry.input(description="A channel account to create, or the fields of one to change.")
class ChannelAccountInput:
    channel: SalesChannel = strawberry.field(description="The channel.")
    account: str = strawberry.field(
        description="The account's code: 1 to 40 letters, digits, '.', '_' or '-'."
    )
    secret: str | None = strawberry.field(
        default=None,
        description="A new signing secret (16 to 500 printable characters); write-only. The "
        "previous one keeps verifying for secretGraceSeconds. Omitted: kept.",
    )
    secret_grace_seconds: int | None = strawberry.field(
        default=None,
        description="With secret: how long the previous secret still verifies (default a day, "
        "0 to 30 days).",
    )
    default_store_id: strawberry.ID | None = strawberry.field(
        default=None, description="An existing store; empty clears it. Omitted: kept."
    )
    locations: list[ChannelLocationInput] | None = strawberry.field(
        default=None, description="Replaces the location map (at most 10000). Omitted: kept."
    )
    products: list[ChannelProductInput] | None = strawberry.field(
        default=None, description="Replaces the product map (at most 10000). Omitted: kept."
    )
    rules: list[ValidationRuleInput] | None = strawberry.field(
        default=None,
        description="Replaces the account's rule overrides ([] clears them). Omitted: kept.",
    )
    api_base_url: str | None = strawberry.field(
        default=None, description="http(s) URL of the channel's API. Omitted: kept."
    )
    api_token: str | None = strawberry.field(
        default=None, description="The channel API's token; write-only. Omitted: kept."
    )
    assume_pickup: bool | None = strawberry.field(
        default=None, description="Every order is a pickup order. Omitted: kept (new: false)."
    )
    notification_url: str | None = strawberry.field(
        default=None,
        description="The URL the channel signs with the body (required for Square). Omitted: kept.",
    )
    max_backlog: int | None = strawberry.field(
        default=None,
        description="Messages waiting before the edge answers 429, 1 to 1,000,000 (new: "
        "10,000). Omitted: kept.",
    )
    weight: int | None = strawberry.field(
        default=None, description="1 to 100 (new: 1). Omitted: kept."
    )
    enabled: bool | None = strawberry.field(
        default=None, description="False refuses its deliveries. Omitted: kept (new: true)."
    )


@strawberry.input(description="An exact amount of money.")
class MoneyInput:
    amount: Decimal = strawberry.field(description="The amount, exact, as a decimal string.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR.")


@strawberry.input(description="The channel's customer of an order.")
class ChannelCustomerInput:
    id: str | None = strawberry.field(default=None, description="The channel's customer id.")
    email: str | None = strawberry.field(default=None, description="The customer's email.")
    guest: bool | None = strawberry.field(
        default=None, description="A guest checkout (default: true when there is no id)."
    )


@strawberry.input(description="One line of a channel order.")
class ChannelOrderLineInput:
    sku: str | None = strawberry.field(default=None, description="The SKU.")
    channel_product_id: str | None = strawberry.field(
        default=None, description="The channel's product id."
    )
    line_id: str | None = strawberry.field(default=None, description="The channel's line id.")
    name: str | None = strawberry.field(default=None, description="The product's name.")
    quantity: int = strawberry.field(description="Units ordered.")
    unit_price: MoneyInput | None = strawberry.field(default=None, description="Price of one unit.")


@strawberry.input(description="Whether the shopper collects in store, and where.")
class ChannelPickupInput:
    requested: bool = strawberry.field(description="True for a reserve-and-collect order.")
    store_id: strawberry.ID | None = strawberry.field(default=None, description="The store.")
    channel_location_id: str | None = strawberry.field(
        default=None, description="The channel's location id."
    )


@strawberry.input(description="A channel order in the canonical shape, as ops correct it.")
class ChannelOrderInput:
    channel: SalesChannel = strawberry.field(description="The message's channel.")
    account: str = strawberry.field(description="The message's account.")
    external_id: str = strawberry.field(description="The channel's id of the order.")
    external_number: str | None = strawberry.field(
        default=None, description="The order number the shopper sees."
    )
    event: OrderEvent = strawberry.field(description="What happened to it.")
    placed_at: datetime | None = strawberry.field(
        default=None, description="When it was placed (with a time zone)."
    )
    updated_at: datetime | None = strawberry.field(
        default=None, description="When the channel last changed it (with a time zone)."
    )
    status: str | None = strawberry.field(default=None, description="The channel's status word.")
    cancelled: bool = strawberry.field(
        default=False, description="The channel says it is cancelled."
    )
    customer: ChannelCustomerInput | None = strawberry.field(
        default=None, description="Who ordered (default: a guest)."
    )
    currency: str | None = strawberry.field(default=None, description="The shop's currency.")
    presentment_currency: str | None = strawberry.field(
        default=None, description="The currency the shopper saw."
    )
    total: MoneyInput | None = strawberry.field(default=None, description="The order's total.")
    lines: list[ChannelOrderLineInput] = strawberry.field(description="At most 1000 lines.")
    pickup: ChannelPickupInput = strawberry.field(description="Where it is collected.")
    customer_location: GeoPointInput | None = strawberry.field(
        default=None, description="Where the shopper is."
    )


@strawberry.type(description="An intake message came to an outcome, or is to be tried again.")
class IntakeEvent:
    id: strawberry.ID = strawberry.field(description="The event's id (drop duplicates by it).")
    message_id: strawberry.ID = strawberry.field(description="The intake message.")
    channel: SalesChannel = strawberry.field(description="Its channel.")
    account: str = strawberry.field(description="Its channel account.")
    status: IntakeStatus = strawberry.field(description="Where it now stands.")
    error_code: str | None = strawberry.field(description="Why, when refused or failing.")
    external_id: str | None = strawberry.field(description="The channel's order id, when read.")
    reservation_group_id: strawberry.ID | None = strawberry.field(
        description="The reservation group the order holds, when it holds one."
    )
    occurred_at: datetime = strawberry.field(description="When.")

    @classmethod
    def from_domain(cls, e: events.IntakeOutcome) -> IntakeEvent:
        return cls(
            id=strawberry.ID(e.id),
            message_id=strawberry.ID(e.message_id),
            channel=SalesChannel.of(intake.SalesChannel(e.channel)),
            account=e.account,
            status=IntakeStatus(e.status),
            error_code=e.error_code,
            external_id=e.external_id,
            reservation_group_id=strawberry.ID(e.group_id) if e.group_id else None,
            occurred_at=e.occurred_at,
        )


# --- health -------------------------------------------------------------------------------------


@strawberry.type(description="How often a rule refused orders, or would have (SHADOW).")
class IntakeRuleRate:
    rule: str = strawberry.field(description="The rule's name.")
    rejected: int = strawberry.field(description="Orders it refused (REJECT).")
    would_reject: int = strawberry.field(
        description="Orders it would have refused (SHADOW): how a rule is tried before it acts."
    )
    rate: float = strawberry.field(
        description="(rejected + wouldReject) over the orders validated in the sample: a rule "
        "whose rate jumps is a rule to look at for false rejects."
    )

    @classmethod
    def from_domain(cls, r: intake_health.RuleRate) -> IntakeRuleRate:
        return cls(rule=r.rule, rejected=r.rejected, would_reject=r.would_reject, rate=r.rate)


@strawberry.type(description="Failed intake messages with one status and code.")
class IntakeFailure:
    status: IntakeStatus = strawberry.field(description="REJECTED, DEAD or DISCARDED.")
    code: str = strawberry.field(description="The error code, e.g. OUT_OF_STOCK, FETCH_REFUSED.")
    count: int = strawberry.field(description="Messages.")
    impact: float = strawberry.field(
        description="The orders' value (each at least 1): failures are listed by it."
    )

    @classmethod
    def from_domain(cls, f: intake_health.Failure) -> IntakeFailure:
        return cls(
            status=IntakeStatus(f.status.value), code=f.code, count=f.count, impact=float(f.impact)
        )


@strawberry.type(
    description="One channel account's intake over a window of receipt: what came in, what "
    "became of it, what was refused before it was kept, and how far behind it runs."
)
class IntakeHealth:
    channel: SalesChannel = strawberry.field(description="The channel.")
    account: str = strawberry.field(description="The account's code.")
    since: datetime = strawberry.field(description="The window's start (UTC).")
    until: datetime = strawberry.field(description="The window's end (UTC).")
    received: int = strawberry.field(
        description="Deliveries stored (a body holding several orders counts once)."
    )
    orders: int = strawberry.field(description="Messages standing for one order each.")
    accepted: int = strawberry.field(description="Orders acted on.")
    ignored: int = strawberry.field(description="Orders with nothing for ROPOS to do.")
    rejected: int = strawberry.field(description="Orders a rule or the business refused.")
    dead: int = strawberry.field(description="Orders out of tries: dead letters.")
    discarded: int = strawberry.field(description="Orders ops gave up on.")
    waiting: int = strawberry.field(description="Orders of the window not finished yet.")
    duplicates: int = strawberry.field(description="Deliveries seen before (not kept again).")
    signature_failures: int = strawberry.field(
        description="Deliveries refused for a bad, missing or stale signature or token."
    )
    oversized: int = strawberry.field(description="Deliveries refused as too large.")
    backlog_refusals: int = strawberry.field(
        description="Deliveries refused with 429 because the account's backlog was full."
    )
    fetch_errors: int = strawberry.field(
        description="Calls to the channel's API (fetching a thin webhook's order) that failed "
        "or were refused."
    )
    backlog: int = strawberry.field(description="Messages waiting now, whenever received.")
    oldest_waiting_seconds: float | None = strawberry.field(
        description="How long the oldest waiting message has waited."
    )
    p50_seconds: float | None = strawberry.field(
        description="Median time from receipt to final status."
    )
    p99_seconds: float | None = strawberry.field(
        description="99th percentile of the time from receipt to final status."
    )
    lag_p50_seconds: float | None = strawberry.field(
        description="Median lag of receipt behind the channel's own time of the order (its "
        "update, else its placing)."
    )
    lag_p99_seconds: float | None = strawberry.field(description="99th percentile of that lag.")
    sample: int = strawberry.field(
        description="Messages the percentiles and rule rates were read from (the window's "
        "newest, at most 20,000); the counts are exact."
    )
    reject_rates: list[IntakeRuleRate] = strawberry.field(
        description="Per rule, what it refused and would have refused, the most refusing first."
    )
    failures: list[IntakeFailure] = strawberry.field(
        description="Failed messages by status and code, the highest impact first."
    )

    @classmethod
    def from_domain(cls, h: intake_health.IntakeHealth) -> IntakeHealth:
        status, count = h.status, h.count
        return cls(
            channel=SalesChannel.of(h.channel),
            account=h.account,
            since=h.since,
            until=h.until,
            received=h.received,
            orders=h.orders,
            accepted=status(intake.IntakeStatus.ACCEPTED),
            ignored=status(intake.IntakeStatus.IGNORED),
            rejected=status(intake.IntakeStatus.REJECTED),
            dead=status(intake.IntakeStatus.DEAD),
            discarded=status(intake.IntakeStatus.DISCARDED),
            waiting=status(intake.IntakeStatus.RECEIVED) + status(intake.IntakeStatus.RETRYING),
            duplicates=count(intake.IntakeCount.DUPLICATE),
            signature_failures=count(intake.IntakeCount.SIGNATURE_FAILURE),
            oversized=count(intake.IntakeCount.OVERSIZED),
            backlog_refusals=count(intake.IntakeCount.BACKLOG_FULL),
            fetch_errors=count(intake.IntakeCount.FETCH_ERROR),
            backlog=h.backlog,
            oldest_waiting_seconds=h.oldest_waiting_seconds,
            p50_seconds=h.p50_seconds,
            p99_seconds=h.p99_seconds,
            lag_p50_seconds=h.lag_p50_seconds,
            lag_p99_seconds=h.lag_p99_seconds,
            sample=h.sample,
            reject_rates=[IntakeRuleRate.from_domain(r) for r in h.rules],
            failures=[IntakeFailure.from_domain(f) for f in h.failures],
        )


# --- the gap sweep ------------------------------------------------------------------------------


@strawberry.type(description="What one sweep of a channel account's API for missed orders did.")
class IntakeSweep:
    channel: SalesChannel = strawberry.field(description="The channel.")
    account: str = strawberry.field(description="The account's code.")
    since: datetime = strawberry.field(description="The window's start (UTC).")
    until: datetime = strawberry.field(description="The window's end (UTC).")
    found: int = strawberry.field(description="Orders the channel listed as changed in it.")
    fed: int = strawberry.field(
        description="Of those, fed to the intake as messages: ROPOS had not seen that change."
    )
    applied: int = strawberry.field(
        description="Of those, held by ROPOS at that change already (a webhook brought them)."
    )
    fed_before: int = strawberry.field(description="Of those, fed by an earlier sweep.")
    error: str | None = strawberry.field(
        description="Why the sweep stopped early: the channel's API failed or refused (what was "
        "fed before stays; the sweep can be run again)."
    )

    @classmethod
    def from_domain(cls, r: sweep.SweepResult) -> IntakeSweep:
        return cls(
            channel=SalesChannel.of(r.channel),
            account=r.account,
            since=r.since,
            until=r.until,
            found=r.found,
            fed=r.fed,
            applied=r.applied,
            fed_before=r.fed_before,
            error=r.error,
        )
