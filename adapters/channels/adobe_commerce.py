"""Adobe Commerce (Magento 2.4) orders, as REST bodies and Adobe I/O events, to canonical orders.

Shapes read
- A REST V1 order (`GET /V1/orders/{id}`): `entity_id` (the order's id), `increment_id` (the
  number people see, kept as text: "000000013"), `items[]`, `state`/`status`, `created_at` and
  `updated_at` (UTC, with a space: "2026-01-05 10:20:30"), the currencies, `grand_total`, the
  customer fields and `extension_attributes`.
- A REST search response (`GET /V1/orders?searchCriteria...`): `{"items": [orders...],
  "search_criteria": ..., "total_count": N}`. `split` gives one payload per order; an empty one
  is NotAnOrder. A bare JSON list of orders splits the same way.
- An Adobe I/O Events delivery for Adobe Commerce: the plain envelope `{"event": {"data":
  {"value": <order>}}}` (the element of an I/O Journaling page; a page `{"events": [...]}` splits
  into its events), or a CloudEvent (`specversion`, `type` such as
  `com.adobe.commerce.observer.sales_order_save_after`, `data.value` the order, `data._metadata`
  ignored). The event's type is the envelope's `type` (or `event_code`), else the delivery's
  topic, else its `x-adobe-event-code` header.
- A checkout request (`addressInformation`, as sent to `POST /V1/carts/mine/shipping-information`,
  or a payment-information or cart-item request) is NotAnOrder: it sets up a cart, and nothing is
  placed until the cart is; the order's own event or REST body follows.

Events (the type without its `com.adobe.commerce.` and `observer.`/`plugin.` prefixes)
- `sales_order_place_after`, `checkout_submit_all_after`, the `order_management.place` plugin:
  CREATE. `sales_order_save_after`, `sales_order_save_commit_after`, the `order_repository.save`
  plugin: UPDATE. `order_cancel_after` (and `sales_order_cancel_after`), the
  `order_management.cancel` plugin: CANCEL. A REST body, or an envelope with no type: CREATE (the
  order as it stands; `updated_at` orders the versions).
- Whatever the event, an order whose `state` (else `status`) is `canceled` is a CANCEL, marked
  cancelled, with status "cancelled". A CANCEL may carry no items (it only releases stock); any
  other event without items is refused (MISSING_ITEMS): lines are stock.
- `sales_order_invoice_*` (or a body shaped like an invoice: an `order_id` and items without
  `qty_ordered`): an invoice is not the order. It holds the invoiced quantities, not the ordered
  ones, and neither the order's number, customer nor pickup location, so reading it as the order
  would rewrite the reservation with part of it. When the invoice carries its order (an `order`
  object holding `entity_id` and `items`), that order is read as an UPDATE; otherwise the invoice
  is NotAnOrder (the order's own save event carries the change).
- Any other type (`catalog_product_save_after`, `sales_order_place_before`, ...) is NotAnOrder.

Lines: configurable and bundle products come as a parent item and child items (`parent_item_id`).
A configurable's parent carries the ordered SKU (the chosen simple product's), the quantity and
the price, and its child repeats them at price 0: the parent is the line, with the child's
`product_id` (the simple product, what is on the shelf) as `channel_product_id`. A bundle's
children are the products picked, each with its own total `qty_ordered`: the children are the
lines and the bundle parent is left out. A child whose parent is missing from `items` is a line
on its own; a parent without `product_type` is read like a configurable. `qty_ordered` ("1.0000")
must be a positive whole number (else INVALID_QUANTITY); `qty_canceled` does not change it.

Currency: Magento keeps three. `order_currency_code` is what the shopper saw and paid in: it is
the canonical currency and the presentment currency, and `grand_total` and the items' `price` are
in it. `base_currency_code` (the website's) and `global_currency_code` (the installation's) are
never mixed in: a `base_*` amount is used only when `grand_total` or `price` is absent and the
base currency is the order currency.

Pickup: requested when a shipping assignment's `shipping.method` (or the order's
`shipping_method`) is `instore_pickup`, or when a pickup location code is present; the location
is `extension_attributes.pickup_location_code` on the order, else on a shipping address's
`extension_attributes`. The order's wins when they disagree (a decision says so); a pickup
without a code is kept with a warning. Magento's `store_id` is a store view, not a shop, and is
not read. Customer: `customer_id` unless `customer_is_guest`; `customer_email`, then the billing
address's `email`. Magento core puts no coordinates on an order; geolocation extensions put
`latitude`/`longitude` on an address (or its `extension_attributes`): the billing address's are
read, then the shipping address's unless the order is a pickup (there it is the store's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.channels.common import (
    Reader,
    as_dict,
    as_list,
    clean_sku,
    clean_text,
    customer_id,
    flag,
    header,
    id_text,
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

PICKUP_METHOD = "instore_pickup"
EVENT_CODE_HEADER = "x-adobe-event-code"

_TOPIC_EVENTS: dict[str, OrderEvent] = {
    **dict.fromkeys(
        (
            "sales_order_place_after",
            "checkout_submit_all_after",
            "magento.sales.api.order_management.place",
        ),
        OrderEvent.CREATE,
    ),
    **dict.fromkeys(
        (
            "sales_order_save_after",
            "sales_order_save_commit_after",
            "magento.sales.api.order_repository.save",
        ),
        OrderEvent.UPDATE,
    ),
    **dict.fromkeys(
        (
            "order_cancel_after",
            "sales_order_cancel_after",
            "magento.sales.api.order_management.cancel",
        ),
        OrderEvent.CANCEL,
    ),
}
_INVOICE_TOPIC = "sales_order_invoice_"
_TOPIC_PREFIXES = ("com.adobe.commerce.", "observer.", "plugin.")
_CHECKOUT_KEYS = ("addressInformation", "paymentMethod", "cartItem")
_CANCELED = frozenset({"canceled", "cancelled"})


@dataclass(frozen=True, slots=True)
class _Envelope:
    body: Any
    topic: str | None  # the event type without its prefixes, lowercased
    raw_topic: str | None


class AdobeCommerceAdapter:
    """Adobe Commerce REST orders and Adobe I/O order events to canonical orders."""

    channel: SalesChannel = SalesChannel.ADOBE_COMMERCE

    def split(self, payload: Any) -> list[Any]:
        if isinstance(payload, list):
            return list(payload)
        if isinstance(payload, dict):
            if _is_search_response(payload) and payload["items"]:
                return list(payload["items"])
            events = payload.get("events")
            if isinstance(events, list) and events and "entity_id" not in payload:
                return list(events)
        return [payload]

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder:
        body = refuse_unless_dict(payload, "an Adobe Commerce order or event")
        not_an_order = _not_an_order_body(body)
        if not_an_order is not None:
            return not_an_order
        envelope = _unwrap(body, delivery)
        if envelope.topic is not None and not _is_order_topic(envelope.topic):
            return NotAnOrder(
                f"Adobe Commerce event {envelope.raw_topic!r} is not an order event ROPOS acts on."
            )
        order = refuse_unless_dict(envelope.body, "the event's order (data.value)")
        event = _TOPIC_EVENTS.get(envelope.topic or "", OrderEvent.CREATE)
        if (envelope.topic or "").startswith(_INVOICE_TOPIC) or _looks_like_invoice(order):
            nested = order.get("order")
            if not (isinstance(nested, dict) and _looks_like_order(nested)):
                return NotAnOrder(_invoice_reason(order))
            order, event = nested, OrderEvent.UPDATE
        reader = Reader(delivery)
        parsed = _read_order(reader, order, event)
        return Parsed(parsed, tuple(reader.decisions))


ADAPTER = AdobeCommerceAdapter()


# --- what the body is ----------------------------------------------------------------------


def _is_search_response(payload: dict[str, Any]) -> bool:
    return (
        isinstance(payload.get("items"), list)
        and ("search_criteria" in payload or "total_count" in payload)
        and "entity_id" not in payload
    )


def _not_an_order_body(body: dict[str, Any]) -> NotAnOrder | None:
    if "entity_id" in body:
        return None
    if any(key in body for key in _CHECKOUT_KEYS):
        return NotAnOrder(
            "An Adobe Commerce checkout request (a cart's shipping, payment or item information), "
            "not an order: nothing is placed until the cart is; the order's own event follows."
        )
    if _is_search_response(body):
        if body["items"]:
            raise PayloadRefused(
                "MALFORMED", "A search response holds several orders: split it first."
            )
        return NotAnOrder("An Adobe Commerce search response with no orders.")
    if isinstance(body.get("events"), list):
        if body["events"]:
            raise PayloadRefused(
                "MALFORMED", "A Journaling page holds several events: split it first."
            )
        return NotAnOrder("An Adobe I/O Journaling page with no events.")
    return None


def _unwrap(body: dict[str, Any], delivery: Delivery) -> _Envelope:
    inner = body.get("event")
    envelope = inner if isinstance(inner, dict) else body
    is_event = envelope is not body or "specversion" in body or "data" in body
    if not is_event:
        return _Envelope(body, _topic_name(_delivery_topic(delivery)), _delivery_topic(delivery))
    raw = _text(envelope.get("type")) or _text(envelope.get("event_code"))
    raw = raw or _delivery_topic(delivery)
    data = envelope.get("data")
    value = data.get("value") if isinstance(data, dict) and "value" in data else data
    return _Envelope(value, _topic_name(raw), raw)


def _delivery_topic(delivery: Delivery) -> str | None:
    return _text(delivery.topic) or _text(header(delivery, EVENT_CODE_HEADER))


def _topic_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    topic = raw.strip().lower()
    for prefix in _TOPIC_PREFIXES:
        if topic.startswith(prefix):
            topic = topic[len(prefix) :]
    return topic


def _is_order_topic(topic: str) -> bool:
    return topic in _TOPIC_EVENTS or topic.startswith(_INVOICE_TOPIC)


def _looks_like_order(body: dict[str, Any]) -> bool:
    return "entity_id" in body and isinstance(body.get("items"), list)


def _looks_like_invoice(body: dict[str, Any]) -> bool:
    items = [item for item in as_list(body.get("items")) if isinstance(item, dict)]
    return "order_id" in body and not any("qty_ordered" in item for item in items)


def _invoice_reason(invoice: dict[str, Any]) -> str:
    order = id_text(invoice.get("order_id"))
    number = id_text(invoice.get("increment_id")) or id_text(invoice.get("entity_id"))
    return (
        f"An Adobe Commerce invoice ({number or 'no number'}, of order {order or 'unknown'}), not "
        "the order: it holds the invoiced quantities and no pickup location; the order's own "
        "save event carries the change."
    )


# --- the order -----------------------------------------------------------------------------


def _read_order(reader: Reader, order: dict[str, Any], event: OrderEvent) -> ChannelOrder:
    external_id = reader.exact_id("entity_id", order.get("entity_id"), order.get("id"))
    status, cancelled = _status(order)
    cancelled = cancelled or event is OrderEvent.CANCEL
    currency = reader.currency("order_currency_code", order.get("order_currency_code"))
    base_currency = reader.currency("base_currency_code", order.get("base_currency_code"))
    lines = _lines(reader, order, currency, base_currency)
    if not lines and not cancelled:
        raise PayloadRefused("MISSING_ITEMS", "The order has no items.", field="items")
    pickup = _pickup(reader, order)
    return ChannelOrder(
        channel=SalesChannel.ADOBE_COMMERCE,
        account=reader.delivery.account,
        external_id=external_id,
        external_number=id_text(order.get("increment_id")),
        event=OrderEvent.CANCEL if cancelled else event,
        lines=lines,
        pickup=pickup,
        placed_at=reader.timestamp("created_at", order.get("created_at"), required=True),
        updated_at=reader.timestamp("updated_at", order.get("updated_at")),
        customer=_customer(reader, order),
        currency=currency,
        presentment_currency=currency,
        total=_amount(reader, order, "grand_total", currency, base_currency),
        customer_location=_customer_location(reader, order, pickup.requested),
        cancelled=cancelled,
        status=status,
    )


def _status(order: dict[str, Any]) -> tuple[str | None, bool]:
    """The order's status (the merchant's label, else the state) and whether it is cancelled
    (the state says so, or the status when there is no state)."""
    state, status = _code(order.get("state")), _code(order.get("status"))
    cancelled = (state or status) in _CANCELED
    shown = status or state
    return ("cancelled" if shown in _CANCELED else shown), cancelled


def _amount(
    reader: Reader,
    holder: dict[str, Any],
    name: str,
    currency: str | None,
    base_currency: str | None,
    *,
    prefix: str = "",
) -> Money | None:
    """`name` in the order currency; its `base_` twin only when the base currency is the same."""
    money = reader.money(f"{prefix}{name}", holder.get(name), currency)
    if money is None and base_currency is not None and base_currency == currency:
        return reader.money(f"{prefix}base_{name}", holder.get(f"base_{name}"), base_currency)
    return money


# --- lines ---------------------------------------------------------------------------------


def _lines(
    reader: Reader, order: dict[str, Any], currency: str | None, base_currency: str | None
) -> tuple[OrderLine, ...]:
    items = [item for item in as_list(order.get("items")) if isinstance(item, dict)]
    by_id = {key: item for item in items if (key := id_text(item.get("item_id")))}
    children: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        parent = _parent_id(item)
        if parent is not None:
            children.setdefault(parent, []).append(item)
    lines: list[OrderLine] = []
    for index, item in enumerate(items):
        source = _line_source(item, by_id, children)
        if source is None:
            continue
        prefix = f"items[{index}]."
        lines.append(_line(reader, item, source, currency, base_currency, prefix))
    return tuple(lines)


def _parent_id(item: dict[str, Any]) -> str | None:
    return id_text(item.get("parent_item_id")) or id_text(
        as_dict(item.get("parent_item")).get("item_id")
    )


def _line_source(
    item: dict[str, Any],
    by_id: dict[str, dict[str, Any]],
    children: dict[str, list[dict[str, Any]]],
) -> dict[str, Any] | None:
    """Whether the item is a line (None when its parent or its children carry it), and the item
    whose product id names the product on the shelf (a configurable's child)."""
    parent_id = _parent_id(item)
    if parent_id is not None:
        parent = by_id.get(parent_id) or as_dict(item.get("parent_item"))
        if _code(parent.get("product_type")) == "bundle" or parent_id not in by_id:
            return item
        return None
    kids = children.get(id_text(item.get("item_id")) or "", [])
    if not kids:
        return item
    if _code(item.get("product_type")) == "bundle":
        return None
    return kids[0]


def _line(
    reader: Reader,
    item: dict[str, Any],
    source: dict[str, Any],
    currency: str | None,
    base_currency: str | None,
    prefix: str,
) -> OrderLine:
    quantity = reader.quantity(f"{prefix}qty_ordered", item.get("qty_ordered", item.get("qty")))
    return OrderLine(
        sku=clean_sku(item.get("sku")) or clean_sku(source.get("sku")),
        quantity=quantity,
        channel_product_id=id_text(source.get("product_id")) or id_text(item.get("product_id")),
        name=clean_text(item.get("name")),
        unit_price=_amount(reader, item, "price", currency, base_currency, prefix=prefix),
        line_id=id_text(item.get("item_id")),
    )


# --- customer, pickup, location ------------------------------------------------------------


def _customer(reader: Reader, order: dict[str, Any]) -> Customer:
    guest = flag(order.get("customer_is_guest"))
    cid = None if guest else customer_id(order.get("customer_id"))
    billing = as_dict(order.get("billing_address"))
    email, others = reader.emails(
        "customer_email", (order.get("customer_email"), billing.get("email"))
    )
    return Customer(id=cid, email=email, guest=cid is None, other_emails=others)


def _shippings(order: dict[str, Any]) -> list[dict[str, Any]]:
    assignments = as_list(as_dict(order.get("extension_attributes")).get("shipping_assignments"))
    return [as_dict(as_dict(a).get("shipping")) for a in assignments]


def _pickup(reader: Reader, order: dict[str, Any]) -> Pickup:
    shippings = _shippings(order)
    methods = [_code(s.get("method")) for s in shippings] + [_code(order.get("shipping_method"))]
    addresses = [as_dict(s.get("address")) for s in shippings]
    addresses.append(as_dict(order.get("shipping_address")))
    candidates = [as_dict(order.get("extension_attributes")).get("pickup_location_code")]
    candidates += [
        as_dict(a.get("extension_attributes")).get("pickup_location_code") for a in addresses
    ]
    codes = [code for code in (id_text(c) for c in candidates) if code is not None]
    location = codes[0] if codes else None
    if any(code != location for code in codes):
        reader.decide(
            "pickup.location_disagree",
            f"The order names pickup locations {sorted(set(codes))}; kept the order's {location!r}.",
            field="extension_attributes.pickup_location_code",
        )
    requested = PICKUP_METHOD in methods or location is not None
    if requested and location is None:
        reader.decide(
            "pickup.location_missing",
            "In-store pickup with no pickup_location_code; the store is left to the account.",
            field="extension_attributes.pickup_location_code",
            action=RuleAction.WARN,
        )
    return Pickup(requested=requested, channel_location_id=location)


def _customer_location(reader: Reader, order: dict[str, Any], pickup: bool) -> GeoPoint | None:
    addresses = [("billing_address", as_dict(order.get("billing_address")))]
    if not pickup:
        addresses += [("shipping.address", as_dict(s.get("address"))) for s in _shippings(order)]
    for name, address in addresses:
        extension = as_dict(address.get("extension_attributes"))
        lat = address.get("latitude", extension.get("latitude"))
        lon = address.get("longitude", extension.get("longitude"))
        if lat is not None or lon is not None:
            return reader.point(name, lat, lon)
    return None


# --- small readers -------------------------------------------------------------------------


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _code(value: object) -> str | None:
    text = _text(value)
    return text.lower() if text else None
