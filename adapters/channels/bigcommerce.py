"""BigCommerce (REST v2 orders) payloads to canonical orders.

BigCommerce's order webhooks carry only the order id, and its v2 order holds only links to its
products and consignments, so the connector that pushes BigCommerce orders fetches the three
resources and pushes them together in this envelope (one order):

    {
      "order": <GET /v2/orders/{id} response: the order object>,                       required
      "products": <GET /v2/orders/{id}/products response: the list of order products>,  see below
      "consignments": <GET /v2/orders/{id}/consignments response:
                       {"pickups": [...], "shipping": [...], "downloads": [...],
                        "email": {"gift_certificates": [...]}}>,                         optional
      "scope": "store/order/created" | "store/order/updated" | ...                       optional
    }

and several orders as `{"orders": [envelope, ...]}` (a JSON array of envelopes also splits).
`products` may be left out only when the order (`order.products`) or its consignments
(`include=consignments.line_items`) carry the full products; `consignments` may be left out when
the order embeds them (`include=consignments`, object or legacy array structure). `scope` is the
webhook scope that made the connector fetch the order; without it the delivery's topic is used.

BigCommerce's own order webhooks (`{"scope": "store/order/created", "store_id", "data": {"type":
"order", "id": 250}, "hash", "created_at", "producer"}`, signed as Standard Webhooks) carry only
the id: `store/order/created`, `store/order/updated` and `store/order/statusUpdated` are read as
`FetchBack` (the worker fetches the order, its products and its consignments into the envelope
above, with the webhook's scope); the other scopes (archived, messages, refunds, products...)
are not acted on.

A bare v2 order (no envelope) is read too, but it has no lines (its `products` is a link): it is
refused (`MISSING_ITEMS`, lines are stock) unless it is cancelled, when no lines are needed.
Products of another order (`order_id` differing from the order's `id`) refuse the envelope
(`ORDER_MISMATCH`): they would reserve another order's stock.

How the canonical order is read:

- `id` (an integer, kept exact) is the external id and number; `status` the status.
- Status: `status_id` (else the `status` text): 0 Incomplete (the shopper never finished paying)
  is not an order; 5 Cancelled, 6 Declined and 4 Refunded mean cancelled. `custom_status` is the
  merchant's label for the same and is not read.
- Currency: the order's amounts are in `default_currency_code` (the transactional currency the
  shopper pays in), which is the currency; `currency_code` (the display currency) is the
  presentment currency. The total is `total_inc_tax`; decimal strings are kept exact.
- Lines are the products: `id` is the line id, `sku` the SKU (cleaned; empty is none),
  `product_id` with `variant_id` the channel product id (`"77"` or `"77:93"`), `name`, `quantity`
  (a positive whole number, else `INVALID_QUANTITY`), `price_inc_tax` (else `base_price`) the unit
  price. Bundled products (`parent_order_product_id`, e.g. picked from a product pick list) are
  stock picked with their parent and stay lines. Digital products and gift certificates are not
  stock: left out with a decision; an order of only those is not an order.
- Pickup: a pickup consignment means the shopper collects in store, at its `location.id` (or
  `location_id`): the channel location id. Only shipping consignments: not a pickup. No
  consignments at all: read as not a pickup, with a warning.
- Customer: `customer_id` 0, null or absent is a guest; the email is `billing_address.email`.
- Times: `date_created` / `date_modified` are RFC 2822 (`Tue, 20 Nov 2012 00:00:00 +0000`);
  `date_created` is repaired to the receive time if unreadable.
- Event: cancelled is CANCEL; else the scope (or topic) `store/order/created` is CREATE and any
  other `store/order/...` UPDATE; without one, CREATE while `date_modified` is `date_created`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.channels.common import (
    Reader,
    as_dict,
    as_list,
    clean_sku,
    clean_text,
    customer_id,
    id_text,
    refuse_unless_dict,
)
from domain.intake import (
    ChannelOrder,
    Customer,
    Delivery,
    FetchBack,
    NotAnOrder,
    OrderEvent,
    OrderLine,
    Parsed,
    PayloadRefused,
    Pickup,
    RuleAction,
    SalesChannel,
)

INCOMPLETE = 0
CANCELLED_STATUS_IDS = frozenset({4, 5, 6})  # Refunded, Cancelled, Declined
_CANCELLED_NAMES = frozenset({"refunded", "cancelled", "canceled", "declined"})
_NOT_STOCK = frozenset({"digital", "giftcertificate", "gift_certificate"})
CREATED_SCOPE = "store/order/created"
# The webhook scopes whose order is fetched back and read.
FETCHED_SCOPES = frozenset({CREATED_SCOPE, "store/order/updated", "store/order/statusUpdated"})


class BigCommerceAdapter:
    """BigCommerce v2 orders, pushed in the envelope the module docstring describes."""

    channel: SalesChannel = SalesChannel.BIGCOMMERCE

    def split(self, payload: Any) -> list[Any]:
        if isinstance(payload, list):
            return list(payload)
        if (
            isinstance(payload, dict)
            and "order" not in payload
            and isinstance(payload.get("orders"), list)
        ):
            return list(payload["orders"])
        return [payload]

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder | FetchBack:
        body = refuse_unless_dict(payload, "a BigCommerce order envelope")
        if "order" in body:
            order = body["order"]
            if not isinstance(order, dict):
                raise PayloadRefused("MALFORMED", "order must be a v2 order object.", field="order")
            return read_envelope(body, order, delivery)
        if "scope" in body and isinstance(body.get("data"), dict):
            return _webhook(body)
        if "orders" in body:
            raise PayloadRefused(
                "MALFORMED", "A list of orders must be split first.", field="orders"
            )
        if "id" in body and ("status_id" in body or "date_created" in body):
            return read_envelope({}, body, delivery)
        raise PayloadRefused("MALFORMED", "The body is not a BigCommerce order envelope.")


def _webhook(body: dict[str, Any]) -> NotAnOrder | FetchBack:
    """A BigCommerce webhook: the order it names, to fetch back, or not an order."""
    scope = clean_text(body.get("scope"), limit=100) or ""
    data = body["data"]
    if scope not in FETCHED_SCOPES or data.get("type", "order") != "order":
        return NotAnOrder(f"BigCommerce webhook {scope[:60]!r} is not an order change.")
    order_id = id_text(data.get("id"))
    if order_id is None:
        raise PayloadRefused("MISSING_ID", f"The {scope} webhook names no order.", field="data.id")
    return FetchBack(external_id=order_id, topic=scope)


def read_envelope(
    envelope: dict[str, Any], order: dict[str, Any], delivery: Delivery
) -> Parsed | NotAnOrder:
    """One envelope (or a bare order, with `envelope` empty) to the canonical order."""
    reader = Reader(delivery)
    external_id = reader.exact_id("id", order.get("id"))
    status_id = _status_id(order.get("status_id"))
    status = clean_text(order.get("status"))
    name = (status or "").lower()
    if status_id == INCOMPLETE or (status_id is None and name == "incomplete"):
        return NotAnOrder(f"BigCommerce order {external_id} is Incomplete: checkout not finished.")
    cancelled = (
        status_id in CANCELLED_STATUS_IDS if status_id is not None else name in _CANCELLED_NAMES
    )
    groups = _consignments(envelope, order)
    currency = reader.currency("default_currency_code", order.get("default_currency_code"))
    presentment = reader.currency("currency_code", order.get("currency_code"))
    currency = currency or presentment
    lines, left_out = _lines(reader, _products(envelope, order, groups), external_id, currency)
    if not lines and not cancelled:
        if left_out:
            return NotAnOrder(f"BigCommerce order {external_id} has no physical products.")
        raise PayloadRefused(
            "MISSING_ITEMS",
            f"BigCommerce order {external_id} has no products: a bare v2 order only links to "
            "them; push the envelope {order, products, consignments}.",
            field="products",
        )
    placed_at = reader.timestamp("date_created", order.get("date_created"), required=True)
    updated_at = reader.timestamp("date_modified", order.get("date_modified"))
    scope = envelope.get("scope")
    topic = scope.strip() if isinstance(scope, str) and scope.strip() else delivery.topic
    return Parsed(
        ChannelOrder(
            channel=SalesChannel.BIGCOMMERCE,
            account=delivery.account,
            external_id=external_id,
            external_number=external_id,
            event=_event(cancelled, topic, placed_at, updated_at),
            lines=lines,
            pickup=_pickup(reader, groups),
            placed_at=placed_at,
            updated_at=updated_at,
            customer=_customer(reader, order),
            currency=currency,
            presentment_currency=presentment,
            total=reader.money("total_inc_tax", order.get("total_inc_tax"), currency),
            cancelled=cancelled,
            status=status,
        ),
        tuple(reader.decisions),
    )


def _status_id(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _consignments(envelope: dict[str, Any], order: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The consignment objects (`{"pickups", "shipping", ...}`), None when the payload has none."""
    raw = envelope.get("consignments", order.get("consignments"))
    if raw is None:
        return None
    if not isinstance(raw, dict | list):
        raise PayloadRefused(
            "MALFORMED", "consignments must be an object or a list.", field="consignments"
        )
    return [as_dict(group) for group in as_list(raw)]


def _products(
    envelope: dict[str, Any], order: dict[str, Any], groups: list[dict[str, Any]] | None
) -> list[Any]:
    if "products" in envelope:
        products = envelope["products"]
        if not isinstance(products, list):
            raise PayloadRefused(
                "MALFORMED", "products must be the list of order products.", field="products"
            )
        return products
    if isinstance(order.get("products"), list):
        return list(order["products"])
    return _consignment_products(groups or [])


def _consignment_products(groups: list[dict[str, Any]]) -> list[Any]:
    """The full products consignments carry (`include=consignments.line_items`), once each."""
    found: dict[str, Any] = {}
    for group in groups:
        for kind in ("pickups", "shipping", "downloads"):
            for consignment in as_list(group.get(kind)):
                for item in as_list(as_dict(consignment).get("line_items")):
                    if isinstance(item, dict) and "quantity" in item:  # not a mere link
                        found.setdefault(id_text(item.get("id")) or f"#{len(found)}", item)
    return list(found.values())


def _lines(
    reader: Reader, products: list[Any], order_id: str, currency: str | None
) -> tuple[tuple[OrderLine, ...], bool]:
    """The stock lines, and whether any product was left out as not stock."""
    lines: list[OrderLine] = []
    left_out = False
    for index, raw in enumerate(products):
        field = f"products[{index}]"
        if not isinstance(raw, dict):
            raise PayloadRefused("MALFORMED", f"{field} must be an object.", field=field)
        other = id_text(raw.get("order_id"))
        if other is not None and other != order_id:
            raise PayloadRefused(
                "ORDER_MISMATCH",
                f"{field} belongs to order {other}, not to order {order_id}.",
                field=f"{field}.order_id",
            )
        kind = str(raw.get("type") or "physical").strip().lower()
        if kind in _NOT_STOCK or raw.get("gift_certificate_id"):
            reader.decide(
                "line.not_stock",
                f"{field} is a {kind} product, not stock; left out.",
                field=field,
                action=RuleAction.WARN,
            )
            left_out = True
            continue
        lines.append(_line(reader, field, raw, currency))
    return tuple(lines), left_out


def _line(reader: Reader, field: str, raw: dict[str, Any], currency: str | None) -> OrderLine:
    sku = clean_sku(raw.get("sku"))
    product = id_text(raw.get("product_id"))
    variant = id_text(raw.get("variant_id"))
    if product is not None and variant is not None:
        product = f"{product}:{variant}"
    if sku is None and product is None:
        reader.decide(
            "line.unidentified",
            f"{field} has neither a SKU nor a product id.",
            field=field,
            action=RuleAction.WARN,
        )
    price_field, price = f"{field}.price_inc_tax", raw.get("price_inc_tax")
    if price is None or (isinstance(price, str) and not price.strip()):
        price_field, price = f"{field}.base_price", raw.get("base_price")
    return OrderLine(
        sku=sku,
        quantity=reader.quantity(f"{field}.quantity", raw.get("quantity")),
        channel_product_id=product,
        name=clean_text(raw.get("name") or raw.get("name_customer")),
        unit_price=reader.money(price_field, price, currency),
        line_id=id_text(raw.get("id")),
    )


def _pickup(reader: Reader, groups: list[dict[str, Any]] | None) -> Pickup:
    if groups is None:
        reader.decide(
            "pickup.unknown",
            "The order carries no consignments; read as not collected in store.",
            field="consignments",
            action=RuleAction.WARN,
        )
        return Pickup(requested=False)
    pickups = [as_dict(p) for g in groups for p in as_list(g.get("pickups"))]
    if not pickups:
        return Pickup(requested=False)
    locations = [
        id_text(as_dict(p.get("location")).get("id")) or id_text(p.get("location_id"))
        for p in pickups
    ]
    location = locations[0]
    if location is None:
        reader.decide(
            "pickup.no_location",
            "The pickup consignment names no location.",
            field="consignments.pickups[0].location",
            action=RuleAction.WARN,
        )
    if len(set(locations)) > 1:
        reader.decide(
            "pickup.several_locations",
            f"The order has pickup consignments at {len(set(locations))} locations; kept the "
            "first.",
            field="consignments.pickups",
            action=RuleAction.WARN,
        )
    if any(as_list(g.get("shipping")) for g in groups):
        reader.decide(
            "pickup.mixed",
            "The order has pickup and shipping consignments; all its lines are read as collected.",
            field="consignments",
            action=RuleAction.WARN,
        )
    return Pickup(requested=True, channel_location_id=location)


def _customer(reader: Reader, order: dict[str, Any]) -> Customer:
    cid = customer_id(order.get("customer_id"))
    email, others = reader.emails(
        "billing_address.email", [as_dict(order.get("billing_address")).get("email")]
    )
    return Customer(id=cid, email=email, guest=cid is None, other_emails=others)


def _event(
    cancelled: bool, topic: str | None, placed_at: datetime | None, updated_at: datetime | None
) -> OrderEvent:
    if cancelled:
        return OrderEvent.CANCEL
    if topic == CREATED_SCOPE:
        return OrderEvent.CREATE
    if topic is not None and topic.startswith("store/order/"):
        return OrderEvent.UPDATE
    if updated_at is None or updated_at == placed_at:
        return OrderEvent.CREATE
    return OrderEvent.UPDATE


ADAPTER = BigCommerceAdapter()
