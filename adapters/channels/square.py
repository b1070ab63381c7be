"""Square (Orders API) payloads to canonical orders.

Shapes read:

- an Order object (`{"id", "location_id", "state", "version", "line_items", "fulfillments", ...}`);
- a RetrieveOrder response `{"order": Order}`;
- a BatchRetrieveOrders or SearchOrders response `{"orders": [Order, ...], "cursor"?, "errors"?}`:
  `split` gives one Order per element;
- a webhook event body `{"merchant_id", "type", "event_id", "created_at", "data": {"type", "id",
  "object"}}`. Square's order webhooks (`order.created`, `order.updated`,
  `order.fulfillment.updated`) are thin: `data.object` holds only `order_created`, `order_updated`
  or `order_fulfillment_updated` (order id, location, state, version), no lines: they are read as
  `FetchBack` (the worker fetches the order with RetrieveOrder), with the order's version and
  `updated_at` so that a read older than the webhook is tried again. A body whose `data.object`
  carries a full `order` is read like an Order. Any other event type is not an order.

How the canonical order is read:

- `id` is the external id, `reference_id` the external number, `state` the status.
- Money is Square's Money object, `{"amount": <integer minor units>, "currency": "USD"}`, scaled by
  the currency's exponent (JPY 0, KWD 3). The order's currency is `total_money`'s, else the first
  line's `base_price_money`'s; a line priced in another currency refuses the order
  (`CURRENCY_MISMATCH`).
- Lines are `line_items[]`: `uid` is the line id; Square names the product only by
  `catalog_object_id` (the item variation), so `sku` is None and `channel_product_id` is that id (a
  rule maps it to a SKU). `quantity` is a decimal string: "2.000" is 2; a fractional or non-positive
  quantity, or one measured in weight, volume, length, area or time units, refuses the order
  (`INVALID_QUANTITY`): units are stock. `base_price_money` is the unit price. `CUSTOM_AMOUNT` and
  `GIFT_CARD` lines are not stock: they are left out with a decision. A full order without line
  items is refused (`MISSING_ITEMS`) unless it is cancelled; one with only non-stock lines is not an
  order.
- Pickup: a fulfillment of type `PICKUP` that is not `CANCELED` or `FAILED` (any `PICKUP` one when
  the whole order is cancelled) means the shopper collects in store, at the order's `location_id`
  (the channel location id). Other fulfillment types beside it are kept with a warning: the
  canonical order has one pickup for all its lines. The pickup time (`pickup_at`) has no canonical
  field.
- Customer: `customer_id` (else a pickup recipient's); absent or empty means a guest. Emails are
  the fulfillment recipients' `email_address`es (the first is kept, others noted).
- Times: `created_at` is when it was placed (repaired to the receive time if unreadable),
  `updated_at` orders the events. `version` has no canonical field.
- Event: state `CANCELED` is CANCEL; else the webhook type (`order.created` CREATE, the other
  order topics UPDATE), else the delivery's topic, else `version` 1 is CREATE and a later one
  UPDATE (without a version: CREATE while `updated_at` is `created_at`). A `DRAFT` order (not placed
  yet) is not an order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.channels.common import (
    Reader,
    as_dict,
    as_list,
    clean_text,
    customer_id,
    id_text,
    parse_currency,
    parse_timestamp,
    refuse_unless_dict,
)
from domain.intake import (
    ChannelOrder,
    Customer,
    Delivery,
    FetchBack,
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
    "order.fulfillment.updated": OrderEvent.UPDATE,
}
# Square's MeasurementUnit fields that measure an amount rather than count units.
_MEASURES = ("weight_unit", "volume_unit", "length_unit", "area_unit", "time_unit")
_NOT_STOCK = frozenset({"CUSTOM_AMOUNT", "GIFT_CARD"})
_INACTIVE = frozenset({"CANCELED", "FAILED"})
_RECIPIENTS = ("pickup_details", "shipment_details", "delivery_details")


class SquareAdapter:
    """Square Orders API bodies and order webhooks."""

    channel: SalesChannel = SalesChannel.SQUARE

    def split(self, payload: Any) -> list[Any]:
        if (
            isinstance(payload, dict)
            and "order" not in payload
            and isinstance(payload.get("orders"), list)
        ):
            return list(payload["orders"])
        return [payload]

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder | FetchBack:
        body = refuse_unless_dict(payload, "a Square order, order response or webhook event")
        if "type" in body and "data" in body:
            return _event_body(body, delivery)
        if "order" in body:
            order = body["order"]
            if not isinstance(order, dict):
                raise PayloadRefused("MALFORMED", "order must be an Order object.", field="order")
            return read_order(order, delivery, delivery.topic)
        if "orders" in body:
            raise PayloadRefused(
                "MALFORMED", "A list of orders must be split first.", field="orders"
            )
        if "id" not in body or not ({"line_items", "location_id", "state"} & body.keys()):
            raise PayloadRefused("MALFORMED", "The body is not a Square order.")
        return read_order(body, delivery, delivery.topic)


def _event_body(body: dict[str, Any], delivery: Delivery) -> Parsed | NotAnOrder | FetchBack:
    topic = str(body.get("type") or "").strip()
    if topic not in ORDER_TOPICS:
        return NotAnOrder(f"Square event {topic[:60]!r} is not an order event.")
    data = as_dict(body.get("data"))
    holder = as_dict(data.get("object"))
    order = holder.get("order")
    if isinstance(order, dict):
        return read_order(order, delivery, topic)
    thin = next((v for v in holder.values() if isinstance(v, dict)), {})
    order_id = id_text(thin.get("order_id")) or id_text(data.get("id"))
    if order_id is None:
        raise PayloadRefused("MISSING_ID", f"The {topic} event names no order.", field="data.id")
    version = thin.get("version")
    return FetchBack(
        external_id=order_id,
        topic=topic,
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        changed_at=parse_timestamp(thin.get("updated_at")),
    )


def read_order(order: dict[str, Any], delivery: Delivery, topic: str | None) -> Parsed | NotAnOrder:
    """One Square Order object to the canonical order."""
    reader = Reader(delivery)
    external_id = reader.exact_id("id", order.get("id"))
    state = _word(order.get("state"))
    if state == "DRAFT":
        return NotAnOrder(f"Square order {external_id} is a DRAFT: not placed yet.")
    cancelled = state == "CANCELED"
    total = _money(reader, "total_money", order.get("total_money"))
    lines, skipped = _lines(reader, order.get("line_items"))
    currency = _currency(total, lines)
    if not lines and not cancelled:
        if skipped:
            return NotAnOrder(f"Square order {external_id} has no stock lines (only {skipped}).")
        raise PayloadRefused(
            "MISSING_ITEMS", f"Square order {external_id} has no line items.", field="line_items"
        )
    fulfillments = [as_dict(f) for f in as_list(order.get("fulfillments"))]
    placed_at = reader.timestamp("created_at", order.get("created_at"), required=True)
    updated_at = reader.timestamp("updated_at", order.get("updated_at"))
    return Parsed(
        ChannelOrder(
            channel=SalesChannel.SQUARE,
            account=delivery.account,
            external_id=external_id,
            external_number=id_text(order.get("reference_id")),
            event=_event(cancelled, topic, order.get("version"), placed_at, updated_at),
            lines=lines,
            pickup=_pickup(reader, fulfillments, order.get("location_id"), cancelled),
            placed_at=placed_at,
            updated_at=updated_at,
            customer=_customer(reader, order, fulfillments),
            currency=currency,
            total=total,
            cancelled=cancelled,
            status=clean_text(state) if state else None,
        ),
        tuple(reader.decisions),
    )


def _money(reader: Reader, field: str, value: object) -> Money | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadRefused(
            "INVALID_AMOUNT", f"{field} must be a Money object {{amount, currency}}.", field=field
        )
    currency = parse_currency(f"{field}.currency", value.get("currency"))
    return reader.money(f"{field}.amount", value.get("amount"), currency, minor_units=True)


def _lines(reader: Reader, items: object) -> tuple[tuple[OrderLine, ...], str]:
    """The stock lines, and the kinds of the lines left out ("" when none)."""
    lines: list[OrderLine] = []
    left_out: list[str] = []
    for index, raw in enumerate(as_list(items)):
        field = f"line_items[{index}]"
        if not isinstance(raw, dict):
            raise PayloadRefused("MALFORMED", f"{field} must be an object.", field=field)
        kind = _word(raw.get("item_type")) or "ITEM"
        if kind in _NOT_STOCK:
            reader.decide(
                "line.not_stock",
                f"{field} is a {kind} line, not stock; left out.",
                field=field,
                action=RuleAction.WARN,
            )
            left_out.append(kind)
            continue
        lines.append(_line(reader, field, raw))
    return tuple(lines), ", ".join(sorted(set(left_out)))


def _line(reader: Reader, field: str, raw: dict[str, Any]) -> OrderLine:
    _refuse_measured(field, raw)
    product = id_text(raw.get("catalog_object_id"))
    if product is None:
        reader.decide(
            "line.unidentified",
            f"{field} has no catalog_object_id: nothing names its product.",
            field=field,
            action=RuleAction.WARN,
        )
    return OrderLine(
        sku=None,
        quantity=reader.quantity(f"{field}.quantity", raw.get("quantity")),
        channel_product_id=product,
        name=clean_text(raw.get("name")),
        unit_price=_money(reader, f"{field}.base_price_money", raw.get("base_price_money")),
        line_id=id_text(raw.get("uid")),
    )


def _refuse_measured(field: str, raw: dict[str, Any]) -> None:
    unit = as_dict(as_dict(raw.get("quantity_unit")).get("measurement_unit"))
    measure = next((unit[k] for k in _MEASURES if unit.get(k)), None)
    if measure is not None:
        raise PayloadRefused(
            "INVALID_QUANTITY",
            f"{field}.quantity {raw.get('quantity')!r} is measured in {measure}, not in units.",
            field=f"{field}.quantity",
        )


def _currency(total: Money | None, lines: tuple[OrderLine, ...]) -> str | None:
    priced = [(line, line.unit_price) for line in lines if line.unit_price is not None]
    currency = total.currency if total else (priced[0][1].currency if priced else None)
    for line, price in priced:
        if price.currency != currency:
            raise PayloadRefused(
                "CURRENCY_MISMATCH",
                f"Line {line.line_id} is priced in {price.currency}, the order in {currency}.",
                field="line_items.base_price_money",
            )
    return currency


def _pickup(
    reader: Reader, fulfillments: list[dict[str, Any]], location: object, cancelled: bool
) -> Pickup:
    active = [f for f in fulfillments if _word(f.get("state")) not in _INACTIVE]
    pickups = [f for f in fulfillments if _word(f.get("type")) == "PICKUP"]
    if not (any(f in active for f in pickups) or (cancelled and pickups)):
        return Pickup(requested=False)
    others = sorted({_word(f.get("type")) for f in active} - {"PICKUP", ""})
    if others:
        reader.decide(
            "pickup.mixed",
            f"The order is collected in store but also has {', '.join(others)} fulfillments; "
            "all its lines are read as collected.",
            field="fulfillments",
            action=RuleAction.WARN,
        )
    location_id = id_text(location)
    if location_id is None:
        reader.decide(
            "pickup.no_location",
            "The order is collected in store but names no location_id.",
            field="location_id",
            action=RuleAction.WARN,
        )
    return Pickup(requested=True, channel_location_id=location_id)


def _word(value: object) -> str:
    return str(value or "").strip().upper()


def _customer(
    reader: Reader, order: dict[str, Any], fulfillments: list[dict[str, Any]]
) -> Customer:
    recipients = [
        as_dict(as_dict(f.get(k)).get("recipient")) for f in fulfillments for k in _RECIPIENTS
    ]
    recipients = [r for r in recipients if r]
    cid = customer_id(order.get("customer_id")) or next(
        (c for c in (customer_id(r.get("customer_id")) for r in recipients) if c), None
    )
    email, others = reader.emails(
        "fulfillments.recipient.email_address", (r.get("email_address") for r in recipients)
    )
    return Customer(id=cid, email=email, guest=cid is None, other_emails=others)


def _event(
    cancelled: bool,
    topic: str | None,
    version: object,
    placed_at: datetime | None,
    updated_at: datetime | None,
) -> OrderEvent:
    if cancelled:
        return OrderEvent.CANCEL
    if topic in ORDER_TOPICS:
        return ORDER_TOPICS[topic]
    number = id_text(version)
    if number is not None:
        return OrderEvent.CREATE if number == "1" else OrderEvent.UPDATE
    if updated_at is None or updated_at == placed_at:
        return OrderEvent.CREATE
    return OrderEvent.UPDATE


ADAPTER = SquareAdapter()
