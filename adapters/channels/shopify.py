"""Shopify order payloads (Admin REST and webhooks, API versions 2023-01 to 2026-04) to canonical
orders.

Shapes read:

- an order webhook: the body is the Order object itself; the topic is the delivery's (header
  `X-Shopify-Topic`, also read from the headers when the delivery has none; `ORDERS_CREATE`-style
  names are accepted). `orders/create` is CREATE; `orders/updated`, `orders/edited`, `orders/paid`,
  `orders/fulfilled` and `orders/partially_fulfilled` are UPDATE; `orders/cancelled` is CANCEL;
  `orders/delete` (a body holding only the id) is a CANCEL without lines. Any other topic
  (`inventory_levels/update`, `orders/risk_assessment_changed`, ...) is not an order. The real
  `orders/edited` body is an `order_edit` (line deltas, no order): not an order, the
  `orders/updated` webhook Shopify sends beside it carries the edited order.
- a REST body `{"order": Order}` without a topic: CREATE, or CANCEL when `cancelled_at` is set.
- a REST list `{"orders": [Order, ...]}`: `split` gives one `{"order": Order}` per element.
- a body whose `admin_graphql_api_id` names another resource (an inventory level) is not an
  order, with or without a topic.

How the canonical order is read:

- Ids are exact: `admin_graphql_api_id` (`gid://shopify/Order/<n>`) wins over the numeric `id`,
  which producers writing JSON from JavaScript round to a double above 2**53 (a decision records
  the disagreement). The same goes for the customer's and each line's id. A number above 2**53
  with no gid beside it that reads like a double's digits is kept with a warning (for a line's
  `variant_id`/`product_id`, only when the line has no SKU, as the id then names the product).
- `name` (`#1001`, what the shopper and the counter see) is the external number, else
  `order_number`.
- Times: `created_at` (else `processed_at`) is when it was placed, repaired to the receive time if
  unreadable; `updated_at` orders the events (unreadable: the receive time, with a decision).
- Cancel: `cancelled_at` set (or the `orders/cancelled` topic) means `cancelled=True` whatever the
  topic's event; `status` is `cancelled:<cancel_reason>`, else the `financial_status`.
- Currency: `currency` is the shop's currency and the canonical one; `presentment_currency` (what
  the shopper paid in, else the total's `presentment_money` currency) is kept apart. The total is the shop money of `current_total_price_set`
  (after edits and refunds), else of `total_price_set`, else `current_total_price` /
  `total_price` in the shop currency. Line prices are `price_set.shop_money`, else `price`.
- Lines: `current_quantity` (2023-01 on: the quantity after edits) else `quantity`; "2" and
  "3.000000" are whole, a fractional or non-positive one refuses the order. A line whose
  `current_quantity` is 0 was removed and is left out with a decision; a gift card line is not
  stock and is left out with a warning. `sku` goes through `clean_sku` (empty is None);
  `channel_product_id` is `variant_id`, else `product_id`, so a rule can map a line without SKU.
  An order without line items is refused (`MISSING_ITEMS`) unless it is cancelled.
- Customer: `customer` may be null or absent (a guest); its id as above. Emails are the order's
  `email`, `contact_email` and the customer's `email`: the first is kept, different ones noted.
- Customer location: `shipping_address` latitude/longitude, else `billing_address`'s (numbers,
  strings, placeholders or out of range: see `Reader.point`).
- Pickup, first signal that speaks:
  0. a sale at the till already handed over (`source_name` "pos" and `fulfillment_status`
     "fulfilled"): the goods left with the shopper, so nothing is held (not a pickup, noted);
  1. `fulfillment_orders[]` (when a connector embeds them) with a `delivery_method.method_type`:
     `pick_up`/`PICK_UP` is a pickup at that fulfillment order's `assigned_location_id`; any
     other type (`shipping`, `local`, `retail`, `pickup_point`: a carrier's point, not a store)
     is not. Cancelled fulfillment orders are ignored; a pickup beside others is kept with a
     warning.
  2. shipping lines (removed ones ignored): one whose `code` or `title` says pickup ("Pickup",
     "Pick up", "Click & Collect", "Collect in store"; not a "pickup point", parcel locker or
     relay) is a pickup at the order's `location_id`, with a warning that it was read from the
     title. Shopify's own local pickup rate often carries only the location's name there, so a
     store whose pickup titles do not say so needs fulfillment orders (or the account's
     assume-pickup setting). Other shipping lines mean shipping.
  3. no shipping line at all: with `location_id` set it is a POS or pickup order collected at that
     location; without it, when an item `requires_shipping`, the order is not shipped so it is read
     as collected, with a warning that no location is named; an order of items that need no
     shipping (digital, services) is not a pickup.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.channels.common import (
    NOT_A_STORE,
    PICKUP_WORDS,
    Reader,
    as_dict,
    as_list,
    clean_sku,
    clean_text,
    header,
    id_text,
    parse_decimal,
    refuse_unless_dict,
)
from domain.geo import GeoPoint
from domain.intake import (
    ChannelOrder,
    Customer,
    Delivery,
    Money,
    NotAnOrder,
    OrderEvent,
    OrderLine,
    Parsed,
    PayloadRefused,
    Pickup,
    RuleAction,
    SalesChannel,
)

ORDER_TOPICS: dict[str, OrderEvent] = {
    "orders/create": OrderEvent.CREATE,
    "orders/updated": OrderEvent.UPDATE,
    "orders/edited": OrderEvent.UPDATE,
    "orders/paid": OrderEvent.UPDATE,
    "orders/fulfilled": OrderEvent.UPDATE,
    "orders/partially_fulfilled": OrderEvent.UPDATE,
    "orders/cancelled": OrderEvent.CANCEL,
    "orders/delete": OrderEvent.CANCEL,
}
DELETE_TOPIC = "orders/delete"
CANCEL_TOPIC = "orders/cancelled"
_FLOAT_EXACT = 2**53


class ShopifyAdapter:
    """Shopify order webhooks and Admin REST order bodies."""

    channel: SalesChannel = SalesChannel.SHOPIFY

    def split(self, payload: Any) -> list[Any]:
        if isinstance(payload, list):
            return [{"order": order} for order in payload]
        if (
            isinstance(payload, dict)
            and "order" not in payload
            and isinstance(payload.get("orders"), list)
        ):
            return [{"order": order} for order in payload["orders"]]
        return [payload]

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder:
        body = refuse_unless_dict(payload, "a Shopify order or order webhook")
        topic = _topic(delivery)
        order = _unwrap(body)
        ignored = _not_an_order(topic, body, order)
        if ignored is not None:
            return ignored
        if topic == DELETE_TOPIC:
            return _deleted(order, delivery)
        return read_order(order, delivery, topic)


def _topic(delivery: Delivery) -> str | None:
    raw = delivery.topic or header(delivery, "X-Shopify-Topic")
    topic = (raw or "").strip().lower()
    if not topic:
        return None
    if "/" not in topic and topic.startswith("orders_"):
        topic = "orders/" + topic.removeprefix("orders_")
    return topic


def _unwrap(body: dict[str, Any]) -> dict[str, Any]:
    if "order" in body:
        order = body["order"]
        if not isinstance(order, dict):
            raise PayloadRefused("MALFORMED", "order must be an Order object.", field="order")
        return order
    if "orders" in body:
        raise PayloadRefused("MALFORMED", "A list of orders must be split first.", field="orders")
    return body


def _not_an_order(
    topic: str | None, body: dict[str, Any], order: dict[str, Any]
) -> NotAnOrder | None:
    if "order_edit" in body:
        return NotAnOrder(
            "orders/edited carries only the edit's line deltas, not the order; the "
            "orders/updated webhook sent beside it carries the edited order."
        )
    if topic is not None and topic not in ORDER_TOPICS:
        return NotAnOrder(f"Shopify topic {topic[:60]!r} is not an order topic.")
    kind = _gid_kind(order.get("admin_graphql_api_id"))
    if kind is not None and kind != "Order":
        return NotAnOrder(f"The body is a Shopify {kind[:40]}, not an order.")
    if topic is None and kind is None and "line_items" not in order:
        raise PayloadRefused("MALFORMED", "The body is not a Shopify order.")
    return None


def _gid_kind(value: object) -> str | None:
    """The resource a GraphQL id names: `gid://shopify/Order/1` is "Order"."""
    if not isinstance(value, str) or not value.strip().startswith("gid://"):
        return None
    parts = value.strip().removeprefix("gid://").split("/")
    return parts[1] if len(parts) >= 3 else None


def read_order(order: dict[str, Any], delivery: Delivery, topic: str | None) -> Parsed:
    """One Shopify Order object to the canonical order."""
    reader = Reader(delivery)
    external_id = _order_id(reader, order)
    cancelled = topic == CANCEL_TOPIC or _present(order.get("cancelled_at"))
    currency = reader.currency("currency", order.get("currency"))
    total = _total(reader, order, currency)
    currency = currency or (total.currency if total else None)
    customer = _customer(reader, order)
    lines = _lines(reader, order.get("line_items"), currency, cancelled)
    return Parsed(
        ChannelOrder(
            channel=SalesChannel.SHOPIFY,
            account=delivery.account,
            external_id=external_id,
            external_number=id_text(order.get("name")) or id_text(order.get("order_number")),
            event=_event(topic, cancelled),
            lines=lines,
            pickup=_pickup(reader, order),
            placed_at=_placed_at(reader, order),
            updated_at=_updated_at(reader, order.get("updated_at")),
            customer=customer,
            currency=currency,
            presentment_currency=_presentment_currency(reader, order),
            total=total,
            customer_location=_location(reader, order),
            cancelled=cancelled,
            status=_status(order, cancelled),
        ),
        tuple(reader.decisions),
    )


def _deleted(order: dict[str, Any], delivery: Delivery) -> Parsed:
    """`orders/delete` holds only the id: the order is gone, so whatever ROPOS holds for it is
    released. Shopify lets only cancelled or archived orders be deleted."""
    reader = Reader(delivery)
    external_id = _order_id(reader, order)
    return Parsed(
        ChannelOrder(
            channel=SalesChannel.SHOPIFY,
            account=delivery.account,
            external_id=external_id,
            event=OrderEvent.CANCEL,
            lines=(),
            pickup=Pickup(requested=False),
            updated_at=reader.timestamp("updated_at", order.get("updated_at"), required=True),
            cancelled=True,
            status="deleted",
        ),
        tuple(reader.decisions),
    )


def _event(topic: str | None, cancelled: bool) -> OrderEvent:
    if topic is None:
        return OrderEvent.CANCEL if cancelled else OrderEvent.CREATE
    return ORDER_TOPICS[topic]


def _status(order: dict[str, Any], cancelled: bool) -> str | None:
    if cancelled:
        reason = clean_text(order.get("cancel_reason"))
        return f"cancelled:{reason}" if reason else "cancelled"
    return clean_text(order.get("financial_status"))


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


# --- ids ------------------------------------------------------------------------------------


def _through_float(value: object) -> bool:
    """A JSON integer at or above 2**53 whose digits are the shortest form of the nearest double:
    it most likely went through a float (a JavaScript producer) and lost its last digits."""
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) < _FLOAT_EXACT:
        return False
    return int(Decimal(repr(float(value)))) == value


def _exact(reader: Reader, field: str, gid: object, number: object) -> str | None:
    """An id from its gid and its number (None when neither names one)."""
    if id_text(gid) is None and id_text(number) is None:
        return None
    if id_text(gid) is None and _through_float(number):
        reader.decide(
            "id.inexact",
            f"{field} {number} is above 2**53 with no gid beside it and reads like a rounded "
            "double: its last digits may be lost.",
            field=field,
            action=RuleAction.WARN,
        )
    return reader.exact_id(field, gid, number)


def _order_id(reader: Reader, order: dict[str, Any]) -> str:
    gid, number = order.get("admin_graphql_api_id"), order.get("id")
    return _exact(reader, "id", gid, number) or reader.exact_id("id")


# --- money ----------------------------------------------------------------------------------


def _shop_money(
    reader: Reader, field: str, money_set: object, currency: str | None
) -> Money | None:
    """The shop money of a Shopify MoneyBag (`{"shop_money", "presentment_money"}`)."""
    shop = as_dict(as_dict(money_set).get("shop_money"))
    if not _present(shop.get("amount")):
        return None
    code = reader.currency(f"{field}.shop_money.currency_code", shop.get("currency_code"))
    return reader.money(f"{field}.shop_money.amount", shop["amount"], code or currency)


def _total(reader: Reader, order: dict[str, Any], currency: str | None) -> Money | None:
    for key in ("current_total_price_set", "total_price_set"):
        total = _shop_money(reader, key, order.get(key), currency)
        if total is not None:
            return total
    for key in ("current_total_price", "total_price"):
        if _present(order.get(key)):
            return reader.money(key, order[key], currency)
    return None


def _presentment_currency(reader: Reader, order: dict[str, Any]) -> str | None:
    stated = reader.currency("presentment_currency", order.get("presentment_currency"))
    if stated is not None:
        return stated
    for key in ("current_total_price_set", "total_price_set"):
        money = as_dict(as_dict(order.get(key)).get("presentment_money"))
        code = reader.currency(f"{key}.presentment_money.currency_code", money.get("currency_code"))
        if code is not None:
            return code
    return None


# --- lines ----------------------------------------------------------------------------------


def _lines(
    reader: Reader, items: object, currency: str | None, cancelled: bool
) -> tuple[OrderLine, ...]:
    raw = as_list(items)
    if not raw and not cancelled:
        raise PayloadRefused("MISSING_ITEMS", "The order has no line items.", field="line_items")
    lines: list[OrderLine] = []
    for index, item in enumerate(raw):
        field = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise PayloadRefused("MALFORMED", f"{field} must be an object.", field=field)
        line = _line(reader, field, item, currency)
        if line is not None:
            lines.append(line)
    return tuple(lines)


def _line(
    reader: Reader, field: str, item: dict[str, Any], currency: str | None
) -> OrderLine | None:
    if item.get("gift_card") is True:
        reader.decide(
            "line.not_stock",
            f"{field} is a gift card, not stock; left out.",
            field=field,
            action=RuleAction.WARN,
        )
        return None
    quantity = _quantity(reader, field, item)
    if quantity is None:
        return None
    sku = clean_sku(item.get("sku"))
    return OrderLine(
        sku=sku,
        quantity=quantity,
        channel_product_id=_product_id(reader, field, item, sku),
        name=clean_text(item.get("name")) or clean_text(item.get("title")),
        unit_price=_shop_money(reader, f"{field}.price_set", item.get("price_set"), currency)
        or reader.money(f"{field}.price", item.get("price"), currency),
        line_id=_exact(reader, f"{field}.id", item.get("admin_graphql_api_id"), item.get("id")),
    )


def _quantity(reader: Reader, field: str, item: dict[str, Any]) -> int | None:
    """The units to hold: `current_quantity` (after edits) when present, else `quantity`; None
    for a line an edit or a refund removed."""
    current = item.get("current_quantity")
    if not _present(current):
        return reader.quantity(f"{field}.quantity", item.get("quantity"))
    if _is_zero(current):
        reader.decide(
            "line.removed",
            f"{field} has current_quantity 0 (removed by an edit or a refund); left out.",
            field=f"{field}.current_quantity",
        )
        return None
    return reader.quantity(f"{field}.current_quantity", current)


def _is_zero(value: object) -> bool:
    try:
        return parse_decimal("quantity", value) == 0
    except PayloadRefused:
        return False


def _product_id(reader: Reader, field: str, item: dict[str, Any], sku: str | None) -> str | None:
    for key in ("variant_id", "product_id"):
        value = item.get(key)
        found = id_text(value)
        if found is None:
            continue
        if sku is None and _through_float(value):
            reader.decide(
                "id.inexact",
                f"{field}.{key} {found} names the line's product but is above 2**53 and reads "
                "like a rounded double: its last digits may be lost.",
                field=f"{field}.{key}",
                action=RuleAction.WARN,
            )
        return found
    if sku is None:
        reader.decide(
            "line.unidentified",
            f"{field} has no SKU, variant_id or product_id: nothing names its product.",
            field=field,
            action=RuleAction.WARN,
        )
    return None


# --- people, places, times ------------------------------------------------------------------


def _customer(reader: Reader, order: dict[str, Any]) -> Customer:
    person = as_dict(order.get("customer"))
    cid = _exact(reader, "customer.id", person.get("admin_graphql_api_id"), person.get("id"))
    email, others = reader.emails(
        "email", (order.get("email"), order.get("contact_email"), person.get("email"))
    )
    return Customer(id=cid, email=email, guest=cid is None, other_emails=others)


def _location(reader: Reader, order: dict[str, Any]) -> GeoPoint | None:
    for key in ("shipping_address", "billing_address"):
        address = as_dict(order.get(key))
        point = reader.point(key, address.get("latitude"), address.get("longitude"))
        if point is not None:
            return point
    return None


def _placed_at(reader: Reader, order: dict[str, Any]) -> datetime | None:
    if _present(order.get("created_at")) or not _present(order.get("processed_at")):
        return reader.timestamp("created_at", order.get("created_at"), required=True)
    return reader.timestamp("processed_at", order.get("processed_at"), required=True)


def _updated_at(reader: Reader, value: object) -> datetime | None:
    """Absent: None (the placed time orders the events); present but unreadable: the receive
    time, so the event is not taken for an old one."""
    if not _present(value):
        return None
    return reader.timestamp("updated_at", value, required=True)


# --- pickup ---------------------------------------------------------------------------------


def _pickup(reader: Reader, order: dict[str, Any]) -> Pickup:
    if _handed_over_at_the_till(order):
        reader.decide(
            "pickup.handed_over",
            "A sale at the till (source_name pos) already fulfilled: the goods left with the "
            "shopper, nothing to hold.",
            field="fulfillment_status",
            action=RuleAction.WARN,
        )
        return Pickup(requested=False)
    from_fulfillment = _from_fulfillment_orders(reader, order.get("fulfillment_orders"))
    if from_fulfillment is not None:
        return from_fulfillment
    location = id_text(order.get("location_id"))
    shipping = [as_dict(s) for s in as_list(order.get("shipping_lines"))]
    shipping = [s for s in shipping if s.get("is_removed") is not True]
    if shipping:
        return _from_shipping_lines(reader, shipping, location)
    if location is not None:
        return Pickup(requested=True, channel_location_id=location)
    items = [as_dict(i) for i in as_list(order.get("line_items"))]
    if not any(i.get("requires_shipping") is True for i in items):
        return Pickup(requested=False)
    reader.decide(
        "pickup.no_location",
        "No shipping line on an order with items to ship: read as collected in store, but the "
        "order names no location_id.",
        field="location_id",
        action=RuleAction.WARN,
    )
    return Pickup(requested=True)


def _handed_over_at_the_till(order: dict[str, Any]) -> bool:
    source = str(order.get("source_name") or "").strip().lower()
    fulfilled = str(order.get("fulfillment_status") or "").strip().lower()
    return source == "pos" and fulfilled == "fulfilled"


def _method_type(fulfillment_order: dict[str, Any]) -> str | None:
    method = as_dict(fulfillment_order.get("delivery_method")).get("method_type")
    text = str(method or "").strip().lower().replace("-", "_")
    return text or None


def _from_fulfillment_orders(reader: Reader, value: object) -> Pickup | None:
    """The pickup the fulfillment orders state; None when they state nothing."""
    orders = [as_dict(f) for f in as_list(value)]
    orders = [f for f in orders if str(f.get("status") or "").strip().lower() != "cancelled"]
    kinds = [_method_type(f) for f in orders]
    if not any(kinds):
        return None
    pickups = [f for f, kind in zip(orders, kinds, strict=True) if kind == "pick_up"]
    if not pickups:
        return Pickup(requested=False)
    if len(pickups) < len(orders):
        others = sorted({k for k in kinds if k and k != "pick_up"})
        reader.decide(
            "pickup.mixed",
            f"The order is collected in store but also has {', '.join(others) or 'other'} "
            "fulfillment orders; all its lines are read as collected.",
            field="fulfillment_orders",
            action=RuleAction.WARN,
        )
    chosen = pickups[0]
    location = id_text(chosen.get("assigned_location_id")) or id_text(
        as_dict(chosen.get("assigned_location")).get("location_id")
    )
    if location is None:
        reader.decide(
            "pickup.no_location",
            "The fulfillment order to collect names no assigned_location_id.",
            field="fulfillment_orders.assigned_location_id",
            action=RuleAction.WARN,
        )
    return Pickup(requested=True, channel_location_id=location)


def _says_pickup(line: dict[str, Any]) -> bool:
    words = " ".join(str(line.get(key) or "") for key in ("code", "title"))
    return bool(PICKUP_WORDS.search(words)) and not NOT_A_STORE.search(words)


def _from_shipping_lines(
    reader: Reader, shipping: list[dict[str, Any]], location: str | None
) -> Pickup:
    chosen = next((line for line in shipping if _says_pickup(line)), None)
    if chosen is None:
        return Pickup(requested=False)
    title = clean_text(chosen.get("title")) or clean_text(chosen.get("code"))
    reader.decide(
        "pickup.inferred",
        f"The shipping line {title!r} reads as a pickup; collection in store is inferred from "
        "its title.",
        field="shipping_lines",
        action=RuleAction.WARN,
    )
    if location is None:
        reader.decide(
            "pickup.no_location",
            "The order is collected in store but names no location_id.",
            field="location_id",
            action=RuleAction.WARN,
        )
    return Pickup(requested=True, channel_location_id=location)


ADAPTER = ShopifyAdapter()
