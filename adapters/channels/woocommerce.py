"""WooCommerce order payloads (REST API v3 `/wp-json/wc/v3`, its webhooks, and the legacy
`/wc-api/v3`) to canonical orders.

Shapes read:

- a REST v3 order (`/wp-json/wc/v3/orders/<id>`): the order object; webhooks deliver the same
  object. The topic is the delivery's (header `X-WC-Webhook-Topic`, else `X-WC-Webhook-Resource`
  and `X-WC-Webhook-Event`): `order.created` is CREATE; `order.updated` and `order.restored`
  (back from the trash) are UPDATE, or CANCEL when the status is `cancelled`, `refunded`,
  `failed` or `trash`; `order.deleted` is CANCEL (its body may hold only `{"id"}`: a CANCEL
  without lines). Other topics (`product.*`, `customer.*`, `action.*`) are not orders. Without a
  topic (a REST body) the order is CREATE, or CANCEL when its status is one of those.
- the ping WooCommerce sends when a webhook is saved, `{"webhook_id": N}`: not an order.
- a list body, a JSON array of orders (`GET /orders`): `split` gives one per element.
- the legacy `/wc-api/v3` shape: `{"order": {...}}` (and `{"orders": [...]}`, split into one
  `{"order": ...}` each) with `order_number`, `created_at`/`updated_at` (UTC), `billing_address`,
  `shipping_address`, `customer_id` and `customer`, `line_items[].meta`, `shipping_lines[]`.
- A `checkout-draft` order (the checkout block's draft, not placed yet) is not an order.

How the canonical order is read:

- `id` is the external id (exact, whatever its size), `number` (legacy `order_number`) the
  external number, `status` the status (a `wc-` prefix dropped).
- Times: `date_created_gmt` (UTC without zone) is when it was placed; without it `date_created`
  (the site's local time, no zone: read as UTC with a warning), else legacy `created_at`;
  repaired to the receive time if unreadable. `date_modified_gmt` (else `date_modified`, else
  `updated_at`) orders the events.
- Currency is the order's `currency`; the total is `total`. WooCommerce sends amounts as decimal
  strings or numbers; both are read exactly.
- Lines: `quantity` as a number or a string ("2", "3.000000"); a fractional or non-positive one
  refuses the order. `price` is the unit price; without it the line's `total` (else `subtotal`)
  over the quantity, kept exact, or rounded to the currency's minor unit with a decision when it
  does not divide. `sku` through `clean_sku` (empty is None); `channel_product_id` is
  `variation_id`, else `product_id` (0 is none). Names are cleaned of HTML entities and tags. An
  order without line items is refused (`MISSING_ITEMS`) unless it is cancelled.
- Customer: `customer_id` (legacy also `customer.id`); 0, null or absent is a guest. Emails are
  `billing.email` (legacy `billing_address.email`) and the legacy `customer.email`.
- Customer location: WooCommerce sends no coordinates; a `latitude`/`longitude` pair that a plugin
  adds to the shipping or billing address is read.
- Pickup: a shipping line whose `method_id` (an old `local_pickup:3` form read as `local_pickup`)
  is `local_pickup` (core, legacy), `pickup_location` (the checkout block's Local Pickup) or
  `local_pickup_plus` (SkyVerge Local Pickup Plus). The location is the line's meta:
  `_pickup_location_id` (Local Pickup Plus), else the location's name (`pickup_location` for the
  block's pickup, `_pickup_location_name`); the core method names none (a warning says so). A
  shipping line of another method whose title says pickup is read as one, with a warning. A pickup
  beside other shipping lines is kept with a warning. No shipping line means no pickup: virtual
  orders have none, and WooCommerce names no store for them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from adapters.channels.common import (
    NOT_A_STORE,
    PICKUP_WORDS,
    Reader,
    as_dict,
    as_list,
    clean_sku,
    clean_text,
    customer_id,
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

ORDER_TOPICS: dict[str, OrderEvent] = {
    "order.created": OrderEvent.CREATE,
    "order.updated": OrderEvent.UPDATE,
    "order.restored": OrderEvent.UPDATE,
    "order.deleted": OrderEvent.CANCEL,
}
CREATE_TOPIC = "order.created"
DELETE_TOPIC = "order.deleted"
CANCELLED_STATUSES = frozenset({"cancelled", "refunded", "failed", "trash"})
DRAFT_STATUS = "checkout-draft"
PICKUP_METHODS = frozenset(
    {"local_pickup", "legacy_local_pickup", "pickup_location", "local_pickup_plus"}
)
_LOCATION_ID_KEYS = ("_pickup_location_id", "pickup_location_id")
_LOCATION_NAME_KEYS = ("pickup_location", "_pickup_location_name", "pickup_location_name")
_ZONE = re.compile(r"(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


class WooCommerceAdapter:
    """WooCommerce REST v3 and legacy order bodies and order webhooks."""

    channel: SalesChannel = SalesChannel.WOOCOMMERCE

    def split(self, payload: Any) -> list[Any]:
        if isinstance(payload, list):
            return list(payload)
        if (
            isinstance(payload, dict)
            and "order" not in payload
            and isinstance(payload.get("orders"), list)
        ):
            return [{"order": order} for order in payload["orders"]]
        return [payload]

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder:
        if isinstance(payload, list):
            raise PayloadRefused("MALFORMED", "A list of orders must be split first.")
        body = refuse_unless_dict(payload, "a WooCommerce order or order webhook")
        if "webhook_id" in body and not ({"id", "order", "line_items"} & body.keys()):
            return NotAnOrder(
                f"WooCommerce webhook ping (webhook_id {id_text(body.get('webhook_id'))}): "
                "sent when a webhook is saved, it holds no order."
            )
        topic = _topic(delivery)
        if topic is not None and topic not in ORDER_TOPICS:
            return NotAnOrder(f"WooCommerce topic {topic[:60]!r} is not an order topic.")
        order = _unwrap(body)
        if topic == DELETE_TOPIC and "line_items" not in order:
            return _deleted(order, delivery)
        if topic is None and "line_items" not in order:
            raise PayloadRefused("MALFORMED", "The body is not a WooCommerce order.")
        return read_order(order, delivery, topic)


def _topic(delivery: Delivery) -> str | None:
    raw = delivery.topic or header(delivery, "X-WC-Webhook-Topic")
    if not raw:
        resource = header(delivery, "X-WC-Webhook-Resource")
        event = header(delivery, "X-WC-Webhook-Event")
        raw = f"{resource}.{event}" if resource and event else None
    topic = (raw or "").strip().lower()
    return topic or None


def _unwrap(body: dict[str, Any]) -> dict[str, Any]:
    if "order" in body:
        order = body["order"]
        if not isinstance(order, dict):
            raise PayloadRefused("MALFORMED", "order must be an order object.", field="order")
        return order
    if "orders" in body:
        raise PayloadRefused("MALFORMED", "A list of orders must be split first.", field="orders")
    return body


def read_order(order: dict[str, Any], delivery: Delivery, topic: str | None) -> Parsed | NotAnOrder:
    """One WooCommerce order object (REST v3 or legacy) to the canonical order."""
    reader = Reader(delivery)
    external_id = reader.exact_id("id", order.get("id"))
    status = _status(order.get("status"))
    if status == DRAFT_STATUS:
        return NotAnOrder(f"WooCommerce order {external_id} is a checkout draft: not placed yet.")
    cancelled = status in CANCELLED_STATUSES or topic == DELETE_TOPIC
    currency = reader.currency("currency", order.get("currency"))
    return Parsed(
        ChannelOrder(
            channel=SalesChannel.WOOCOMMERCE,
            account=delivery.account,
            external_id=external_id,
            external_number=id_text(order.get("number")) or id_text(order.get("order_number")),
            event=_event(topic, cancelled),
            lines=_lines(reader, order.get("line_items"), currency, cancelled),
            pickup=_pickup(reader, order.get("shipping_lines")),
            placed_at=_time(reader, order, "date_created", "created_at", required=True),
            updated_at=_time(reader, order, "date_modified", "updated_at", required=False),
            customer=_customer(reader, order),
            currency=currency,
            total=reader.money("total", order.get("total"), currency),
            customer_location=_location(reader, order),
            cancelled=cancelled,
            status=status,
        ),
        tuple(reader.decisions),
    )


def _deleted(order: dict[str, Any], delivery: Delivery) -> Parsed:
    """`order.deleted` for an order deleted for good holds only `{"id"}`: whatever ROPOS holds
    for it is released."""
    reader = Reader(delivery)
    return Parsed(
        ChannelOrder(
            channel=SalesChannel.WOOCOMMERCE,
            account=delivery.account,
            external_id=reader.exact_id("id", order.get("id")),
            event=OrderEvent.CANCEL,
            lines=(),
            pickup=Pickup(requested=False),
            updated_at=reader.timestamp("date_modified_gmt", None, required=True),
            cancelled=True,
            status="deleted",
        ),
        tuple(reader.decisions),
    )


def _status(value: object) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    return text.lower().removeprefix("wc-")


def _event(topic: str | None, cancelled: bool) -> OrderEvent:
    if topic == CREATE_TOPIC:
        return OrderEvent.CREATE
    if topic is None:
        return OrderEvent.CANCEL if cancelled else OrderEvent.CREATE
    return OrderEvent.CANCEL if cancelled else ORDER_TOPICS[topic]


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


# --- times ----------------------------------------------------------------------------------


def _time(
    reader: Reader, order: dict[str, Any], key: str, legacy: str, *, required: bool
) -> datetime | None:
    """`<key>_gmt`, else the site-local `<key>`, else the legacy field. A time that is there but
    unreadable is repaired to the receive time even when not required, so that an update is not
    taken for an old one."""
    gmt = order.get(f"{key}_gmt")
    if _present(gmt):
        return reader.timestamp(f"{key}_gmt", gmt, required=True)
    local = order.get(key)
    if _present(local):
        if isinstance(local, str) and not _ZONE.search(local.strip()):
            reader.decide(
                "timestamp.site_local",
                f"{key} is the site's local time without a zone and there is no {key}_gmt; "
                "read as UTC.",
                field=key,
                action=RuleAction.WARN,
            )
        return reader.timestamp(key, local, required=True)
    if _present(order.get(legacy)):
        return reader.timestamp(legacy, order.get(legacy), required=True)
    return reader.timestamp(f"{key}_gmt", None, required=True) if required else None


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
        lines.append(_line(reader, field, item, currency))
    return tuple(lines)


def _line(reader: Reader, field: str, item: dict[str, Any], currency: str | None) -> OrderLine:
    quantity = reader.quantity(f"{field}.quantity", item.get("quantity"))
    sku = clean_sku(item.get("sku"))
    product = id_text(item.get("variation_id")) or id_text(item.get("product_id"))
    if sku is None and product is None:
        reader.decide(
            "line.unidentified",
            f"{field} has no SKU, variation_id or product_id: nothing names its product.",
            field=field,
            action=RuleAction.WARN,
        )
    return OrderLine(
        sku=sku,
        quantity=quantity,
        channel_product_id=product,
        name=clean_text(item.get("name")),
        unit_price=_unit_price(reader, field, item, quantity, currency),
        line_id=id_text(item.get("id")),
    )


def _unit_price(
    reader: Reader, field: str, item: dict[str, Any], quantity: int, currency: str | None
) -> Money | None:
    price = reader.money(f"{field}.price", item.get("price"), currency)
    if price is not None:
        return price
    for key in ("total", "subtotal"):
        line_total = reader.money(f"{field}.{key}", item.get(key), currency)
        if line_total is not None:
            return reader.unit_price(f"{field}.{key}", line_total, quantity)
    return None


# --- people and places ----------------------------------------------------------------------


def _customer(reader: Reader, order: dict[str, Any]) -> Customer:
    billing = as_dict(order.get("billing")) or as_dict(order.get("billing_address"))
    person = as_dict(order.get("customer"))
    cid = customer_id(order.get("customer_id")) or customer_id(person.get("id"))
    email, others = reader.emails("billing.email", (billing.get("email"), person.get("email")))
    return Customer(id=cid, email=email, guest=cid is None, other_emails=others)


def _location(reader: Reader, order: dict[str, Any]) -> GeoPoint | None:
    for keys in (("shipping", "shipping_address"), ("billing", "billing_address")):
        address = as_dict(order.get(keys[0])) or as_dict(order.get(keys[1]))
        point = reader.point(keys[0], address.get("latitude"), address.get("longitude"))
        if point is not None:
            return point
    return None


# --- pickup ---------------------------------------------------------------------------------


def _method(line: dict[str, Any]) -> str:
    return str(line.get("method_id") or "").strip().lower().split(":", 1)[0]


def _says_pickup(line: dict[str, Any]) -> bool:
    title = str(line.get("method_title") or "")
    return bool(PICKUP_WORDS.search(title)) and not NOT_A_STORE.search(title)


def _pickup(reader: Reader, value: object) -> Pickup:
    shipping = [as_dict(s) for s in as_list(value)]
    pickups = [s for s in shipping if _method(s) in PICKUP_METHODS]
    if not pickups:
        pickups = [s for s in shipping if _says_pickup(s)]
        if pickups:
            reader.decide(
                "pickup.inferred",
                f"The shipping method {clean_text(pickups[0].get('method_title'))!r} "
                f"({_method(pickups[0]) or 'no method_id'}) reads as a pickup; collection in "
                "store is inferred from its title.",
                field="shipping_lines",
                action=RuleAction.WARN,
            )
    if not pickups:
        return Pickup(requested=False)
    if len(pickups) < len(shipping):
        reader.decide(
            "pickup.mixed",
            "The order is collected in store but also has other shipping lines; all its lines "
            "are read as collected.",
            field="shipping_lines",
            action=RuleAction.WARN,
        )
    return Pickup(requested=True, channel_location_id=_pickup_location(reader, pickups[0]))


def _meta(line: dict[str, Any]) -> dict[str, Any]:
    """A line's meta as key to value: REST v3 `meta_data` [{id, key, value}], legacy `meta`."""
    found: dict[str, Any] = {}
    for entry in as_list(line.get("meta_data")) + as_list(line.get("meta")):
        key = as_dict(entry).get("key")
        if isinstance(key, str):
            found.setdefault(key.strip().lower(), as_dict(entry).get("value"))
    return found


def _pickup_location(reader: Reader, line: dict[str, Any]) -> str | None:
    meta = _meta(line)
    for key in _LOCATION_ID_KEYS:
        found = id_text(meta.get(key))
        if found is not None:
            return found
    for key in _LOCATION_NAME_KEYS:
        name = clean_text(meta.get(key)) if isinstance(meta.get(key), str | int) else None
        if name is not None:
            return name
    reader.decide(
        "pickup.no_location",
        f"The order is collected in store ({_method(line) or 'no method_id'}) but its shipping "
        "line names no pickup location.",
        field="shipping_lines.meta_data",
        action=RuleAction.WARN,
    )
    return None


ADAPTER = WooCommerceAdapter()
