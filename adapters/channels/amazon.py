"""Amazon Selling Partner API orders (Orders API 2026-01-01 and v0) to canonical orders.

Shapes read
- Orders API 2026-01-01 `getOrder`: `{"order": Order}`, the sandbox's `{"request": ...,
  "response": {"order": Order}}`, or a bare Order. `searchOrders` (`{"orders": [...],
  "pagination": ...}`, bare or under `response`) splits into one `{"order": Order}` each.
- Orders API v0, whose order and items come from two calls, in this envelope (ROPOS's, for the
  connector that makes both calls and pushes the result):

      {
        "getOrder": <the v0 getOrder response as Amazon returns it: {"payload": Order}>,
        "getOrderItems": <the v0 getOrderItems response, {"payload": {"AmazonOrderId": ...,
                          "OrderItems": [...], "NextToken": ...}}, or a list of its pages in
                          the order they were fetched>
      }

  A page (and `getOrder`) may also be given without its `payload` wrapper. Every page's
  `AmazonOrderId` must be the order's (else ITEMS_ORDER_MISMATCH), and the last page must have no
  `NextToken` (else INCOMPLETE_ITEMS: the connector stopped before the last page). An item that
  two pages both hold (same `OrderItemId`) is read once, with a decision.
- A bare v0 getOrder (`{"payload": Order}`, an Order, or an envelope without `getOrderItems`) is
  refused with MISSING_ITEMS, and a v0 getOrders list likewise: v0 orders carry no lines, and
  lines are stock. The one exception is a Canceled order: a cancellation only releases what the
  order holds, so it is read (a CANCEL without lines). A bare getOrderItems is refused with
  MISSING_ORDER; an SP-API error body (`{"errors": [...]}`) with CHANNEL_ERROR.
- A Notifications API `ORDER_CHANGE` notification (`{"NotificationType": "ORDER_CHANGE", "Payload":
  {"OrderChangeNotification": {"AmazonOrderId", ...}}, ...}`, as a connector takes it from its
  SQS queue, or inside an EventBridge event's `detail`) carries no lines: it is read as
  `FetchBack` (the worker fetches the order with the 2026-01-01 getOrder). Other notification
  types are not orders.

How the canonical order is read
- Ids: `orderId` / `AmazonOrderId` (exact text, "114-9876543-1234567") is both the external id
  and the external number (the number the shopper quotes at the counter). Times are UTC ISO:
  `createdTime` / `PurchaseDate` is when it was placed, `lastUpdatedTime` / `LastUpdateDate`
  orders the versions.
- Events: a body is the whole order as it stands, so CREATE; CANCEL when the order is cancelled
  (2026: `fulfillment.fulfillmentStatus` CANCELLED; v0: `OrderStatus` Canceled), with status
  "cancelled". Other statuses are kept in snake case ("unshipped", "partially_shipped").
- Lines: 2026 `orderItems[]` with `quantityOrdered`, `product.sellerSku`, `product.asin`,
  `product.title` and the unit price `product.price.unitPrice`; v0 `OrderItems[]` with
  `QuantityOrdered`, `SellerSKU`, `ASIN`, `Title` and `ItemPrice`, which is the LINE total (the
  unit price times the quantity): the unit price is it over the quantity, exact when it divides,
  else rounded to the currency's minor unit with a decision. The ASIN is `channel_product_id`
  (a rule maps it when the SKU is empty); `orderItemId` the line id. A quantity must be a
  positive whole number (INVALID_QUANTITY), except that a cancelled order's 0-unit lines are left
  out with a decision (Amazon zeroes the quantity of cancelled items; refusing would keep the
  stock held).
- Money: the total is `proceeds.grandTotal` (2026) or `OrderTotal` (v0; absent while Pending).
  An order has one currency, the marketplace's, which is both the canonical and the presentment
  currency: the total's, else the first priced line's (a warning when lines differ from it).
- Customer: Amazon masks the buyer's email (`buyer.buyerEmail`, v0 `BuyerInfo.BuyerEmail` or an
  older top-level `BuyerEmail`) and gives no buyer id, so the customer is a guest (id None) known
  by that email when present. Amazon gives no coordinates: there is no customer location.
- Pickup: v0 `IsISPU` (true, or "true") asks for in-store pickup; the location is
  `FulfillmentInstruction.FulfillmentSupplySourceId` (the supply source, a location id the
  merchant maps to a store), kept whether or not the order is a pickup. 2026 asks for it with
  `IN_STORE_PICK_UP` in `programs`, and its model names no location id: the recipient's
  `deliveryAddress` is the store's address, so the location is left to the account's rules with a
  warning quoting that address (as it is for a v0 pickup with no supply source, quoting
  `DefaultShipFromLocationAddress`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from adapters.channels.common import (
    Reader,
    as_dict,
    as_list,
    clean_sku,
    clean_text,
    flag,
    id_text,
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

PICKUP_PROGRAM = "IN_STORE_PICK_UP"
_CANCELLED = frozenset({"canceled", "cancelled"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_LETTERS = re.compile(r"[^A-Z]")

LineReader = Callable[[Reader, dict[str, Any], str], OrderLine]


class AmazonAdapter:
    """Amazon SP-API orders (2026-01-01 getOrder, v0 getOrder with getOrderItems)."""

    channel: SalesChannel = SalesChannel.AMAZON

    def split(self, payload: Any) -> list[Any]:
        if isinstance(payload, list):
            return list(payload)
        if isinstance(payload, dict):
            orders = _unwrap_response(payload).get("orders")
            if isinstance(orders, list) and orders:
                return [{"order": o} if isinstance(o, dict) else o for o in orders]
        return [payload]

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder | FetchBack:
        body = _unwrap_response(refuse_unless_dict(payload, "an Amazon order"))
        notification = _notification(body)
        if notification is not None:
            return notification
        reader = Reader(delivery)
        if "getOrder" in body or "getOrderItems" in body:
            order = _read_v0(reader, body)
        elif isinstance(body.get("order"), dict):
            order = _read_2026(reader, body["order"])
        elif "orderId" in body:
            order = _read_2026(reader, body)
        else:
            other = _not_an_order(reader, body)
            if isinstance(other, NotAnOrder):
                return other
            order = other
        return Parsed(order, tuple(reader.decisions))


ADAPTER = AmazonAdapter()


def _unwrap_response(body: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's `{"request": ..., "response": ...}` to its response."""
    response = body.get("response")
    if isinstance(response, dict) and "orderId" not in body:
        return response
    return body


ORDER_CHANGE = "ORDER_CHANGE"


def _notification(body: dict[str, Any]) -> NotAnOrder | FetchBack | None:
    """A Notifications API notification (bare, or an EventBridge event's `detail`): the order an
    ORDER_CHANGE names, to fetch back; None when the body is not a notification."""
    if "NotificationType" not in body and isinstance(body.get("detail"), dict):
        body = body["detail"]
    kind = body.get("NotificationType")
    if kind is None:
        return None
    if kind != ORDER_CHANGE:
        return NotAnOrder(f"Amazon notification {str(kind)[:60]!r} is not an order change.")
    change = as_dict(as_dict(body.get("Payload")).get("OrderChangeNotification"))
    order_id = id_text(change.get("AmazonOrderId"))
    if order_id is None:
        raise PayloadRefused(
            "MISSING_ID",
            "The ORDER_CHANGE notification names no order.",
            field="Payload.OrderChangeNotification.AmazonOrderId",
        )
    return FetchBack(external_id=order_id, topic=ORDER_CHANGE)


def _not_an_order(reader: Reader, body: dict[str, Any]) -> ChannelOrder | NotAnOrder:
    """Bodies that are not a whole order: a bare v0 call, a list, an error."""
    if isinstance(body.get("orders"), list):
        if body["orders"]:
            raise PayloadRefused("MALFORMED", "A searchOrders response: split it first.")
        return NotAnOrder("An Amazon searchOrders response with no orders.")
    if isinstance(body.get("errors"), list):
        first = as_dict(body["errors"][0]) if body["errors"] else {}
        raise PayloadRefused(
            "CHANNEL_ERROR",
            f"The body is an SP-API error response ({first.get('code')}: {first.get('message')}).",
        )
    v0 = as_dict(body.get("payload")) or body
    if "OrderItems" in v0:
        raise PayloadRefused(
            "MISSING_ORDER",
            "A v0 getOrderItems response without its getOrder: send both in the v0 envelope.",
        )
    if "Orders" in v0:
        raise PayloadRefused(
            "MISSING_ITEMS",
            "A v0 getOrders response lists orders without their items: send each order with "
            "its getOrderItems in the v0 envelope.",
        )
    if "AmazonOrderId" in v0:
        return _read_v0(reader, {"getOrder": v0})
    raise PayloadRefused("MALFORMED", "The body is not an Amazon SP-API order.")


# --- Orders API 2026-01-01 -------------------------------------------------------------------


def _read_2026(reader: Reader, order: dict[str, Any]) -> ChannelOrder:
    external_id = reader.exact_id("orderId", order.get("orderId"))
    fulfillment = as_dict(order.get("fulfillment"))
    status, cancelled = _status(fulfillment.get("fulfillmentStatus"))
    items = [as_dict(item) for item in as_list(order.get("orderItems"))]
    lines = _lines(reader, items, cancelled, _line_2026, "orderItems", "quantityOrdered")
    grand_total = as_dict(as_dict(order.get("proceeds")).get("grandTotal"))
    currency = reader.currency("proceeds.grandTotal.currencyCode", grand_total.get("currencyCode"))
    total = reader.money("proceeds.grandTotal.amount", grand_total.get("amount"), currency)
    buyer = as_dict(order.get("buyer"))
    return _order(
        reader,
        external_id=external_id,
        cancelled=cancelled,
        status=status,
        lines=lines,
        pickup=_pickup_2026(reader, order),
        placed=("createdTime", order.get("createdTime")),
        updated=("lastUpdatedTime", order.get("lastUpdatedTime")),
        emails=("buyer.buyerEmail", [buyer.get("buyerEmail")]),
        currency=currency,
        total=total,
    )


def _line_2026(reader: Reader, item: dict[str, Any], field: str) -> OrderLine:
    product = as_dict(item.get("product"))
    unit = as_dict(as_dict(product.get("price")).get("unitPrice"))
    price_field = f"{field}.product.price.unitPrice"
    currency = reader.currency(f"{price_field}.currencyCode", unit.get("currencyCode"))
    return OrderLine(
        sku=clean_sku(product.get("sellerSku")),
        quantity=reader.quantity(f"{field}.quantityOrdered", item.get("quantityOrdered")),
        channel_product_id=id_text(product.get("asin")),
        name=clean_text(product.get("title")),
        unit_price=reader.money(f"{price_field}.amount", unit.get("amount"), currency),
        line_id=id_text(item.get("orderItemId")),
    )


def _pickup_2026(reader: Reader, order: dict[str, Any]) -> Pickup:
    programs = {_LETTERS.sub("", str(p).upper()) for p in as_list(order.get("programs"))}
    requested = _LETTERS.sub("", PICKUP_PROGRAM) in programs
    if requested:
        address = as_dict(as_dict(order.get("recipient")).get("deliveryAddress"))
        _location_missing(
            reader,
            "recipient.deliveryAddress",
            "The 2026-01-01 order names no pickup location id",
            (address.get("name"), address.get("addressLine1"), address.get("city")),
        )
    return Pickup(requested=requested)


# --- Orders API v0 ---------------------------------------------------------------------------


def _read_v0(reader: Reader, envelope: dict[str, Any]) -> ChannelOrder:
    order = _unwrap_payload(envelope.get("getOrder"))
    if not order:
        raise PayloadRefused(
            "MISSING_ORDER", "The v0 envelope has no getOrder: the order's header is needed."
        )
    external_id = reader.exact_id("AmazonOrderId", order.get("AmazonOrderId"))
    status, cancelled = _status(order.get("OrderStatus"))
    items = _v0_items(reader, external_id, envelope.get("getOrderItems"), cancelled)
    lines = _lines(reader, items, cancelled, _line_v0, "OrderItems", "QuantityOrdered")
    order_total = as_dict(order.get("OrderTotal"))
    currency = reader.currency("OrderTotal.CurrencyCode", order_total.get("CurrencyCode"))
    buyer = as_dict(order.get("BuyerInfo"))
    return _order(
        reader,
        external_id=external_id,
        cancelled=cancelled,
        status=status,
        lines=lines,
        pickup=_pickup_v0(reader, order),
        placed=("PurchaseDate", order.get("PurchaseDate")),
        updated=("LastUpdateDate", order.get("LastUpdateDate")),
        emails=("BuyerInfo.BuyerEmail", [buyer.get("BuyerEmail"), order.get("BuyerEmail")]),
        currency=currency,
        total=reader.money("OrderTotal.Amount", order_total.get("Amount"), currency),
    )


def _unwrap_payload(value: object) -> dict[str, Any]:
    body = as_dict(value)
    payload = body.get("payload")
    return payload if isinstance(payload, dict) else body


def _v0_items(
    reader: Reader, external_id: str, value: object, cancelled: bool
) -> list[dict[str, Any]]:
    """The items of every getOrderItems page, checked to be this order's and complete."""
    pages = [_unwrap_payload(page) for page in as_list(value) if isinstance(page, dict)]
    for page in pages:
        page_id = id_text(page.get("AmazonOrderId"))
        if page_id is not None and page_id != external_id:
            raise PayloadRefused(
                "ITEMS_ORDER_MISMATCH",
                f"getOrderItems is for order {page_id!r}, getOrder for {external_id!r}.",
                field="getOrderItems.AmazonOrderId",
            )
    if not pages:
        if cancelled:
            return []
        raise PayloadRefused(
            "MISSING_ITEMS",
            "A v0 getOrder without its getOrderItems: v0 orders carry no lines, and lines are "
            "stock. Send both in the v0 envelope.",
            field="getOrderItems",
        )
    if id_text(pages[-1].get("NextToken")) is not None:
        _incomplete(reader, cancelled)
    return _unique_items(reader, pages)


def _incomplete(reader: Reader, cancelled: bool) -> None:
    message = "The last getOrderItems page has a NextToken: pages after it were not fetched."
    if not cancelled:
        raise PayloadRefused("INCOMPLETE_ITEMS", message, field="getOrderItems.NextToken")
    reader.decide(
        "lines.incomplete",
        f"{message} The order is cancelled; read with the lines it has.",
        field="getOrderItems.NextToken",
        action=RuleAction.WARN,
    )


def _unique_items(reader: Reader, pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for page in pages:
        for item in as_list(page.get("OrderItems")):
            item_id = id_text(as_dict(item).get("OrderItemId"))
            if item_id is not None and item_id in seen:
                reader.decide(
                    "line.duplicate",
                    f"Order item {item_id!r} is on two getOrderItems pages; read once.",
                    field="getOrderItems.OrderItems",
                )
                continue
            if item_id is not None:
                seen.add(item_id)
            items.append(as_dict(item))
    return items


def _line_v0(reader: Reader, item: dict[str, Any], field: str) -> OrderLine:
    quantity = reader.quantity(f"{field}.QuantityOrdered", item.get("QuantityOrdered"))
    price = as_dict(item.get("ItemPrice"))
    currency = reader.currency(f"{field}.ItemPrice.CurrencyCode", price.get("CurrencyCode"))
    line_total = reader.money(f"{field}.ItemPrice.Amount", price.get("Amount"), currency)
    return OrderLine(
        sku=clean_sku(item.get("SellerSKU")),
        quantity=quantity,
        channel_product_id=id_text(item.get("ASIN")),
        name=clean_text(item.get("Title")),
        unit_price=None
        if line_total is None
        else reader.unit_price(f"{field}.ItemPrice", line_total, quantity),
        line_id=id_text(item.get("OrderItemId")),
    )


def _pickup_v0(reader: Reader, order: dict[str, Any]) -> Pickup:
    requested = flag(order.get("IsISPU"))
    instruction = as_dict(order.get("FulfillmentInstruction"))
    location = id_text(instruction.get("FulfillmentSupplySourceId"))
    if requested and location is None:
        address = as_dict(order.get("DefaultShipFromLocationAddress"))
        _location_missing(
            reader,
            "FulfillmentInstruction.FulfillmentSupplySourceId",
            "The ISPU order names no FulfillmentSupplySourceId",
            (address.get("Name"), address.get("AddressLine1"), address.get("City")),
        )
    return Pickup(requested=requested, channel_location_id=location)


# --- shared ----------------------------------------------------------------------------------


def _lines(
    reader: Reader,
    items: list[dict[str, Any]],
    cancelled: bool,
    read: LineReader,
    prefix: str,
    key: str,
) -> tuple[OrderLine, ...]:
    """Each item through `read` (the version's line reader; `prefix` names the list, `key` the
    quantity). A cancelled order's 0-unit items are left out; any other order needs a line."""
    lines: list[OrderLine] = []
    for index, item in enumerate(items):
        field = f"{prefix}[{index}]"
        if cancelled and _is_zero(item.get(key)):
            reader.decide(
                "line.cancelled_zero",
                f"{field} has 0 units in a cancelled order; left out.",
                field=f"{field}.{key}",
            )
            continue
        lines.append(read(reader, item, field))
    if not lines and not cancelled:
        raise PayloadRefused("MISSING_ITEMS", "The order has no items.", field=prefix)
    return tuple(lines)


def _order(
    reader: Reader,
    *,
    external_id: str,
    cancelled: bool,
    status: str | None,
    lines: tuple[OrderLine, ...],
    pickup: Pickup,
    placed: tuple[str, object],
    updated: tuple[str, object],
    emails: tuple[str, list[object]],
    currency: str | None,
    total: Money | None,
) -> ChannelOrder:
    email, others = reader.emails(*emails)
    currency = _currency(reader, currency, lines)
    return ChannelOrder(
        channel=SalesChannel.AMAZON,
        account=reader.delivery.account,
        external_id=external_id,
        external_number=external_id,
        event=OrderEvent.CANCEL if cancelled else OrderEvent.CREATE,
        lines=lines,
        pickup=pickup,
        placed_at=reader.timestamp(*placed, required=True),
        updated_at=reader.timestamp(*updated),
        customer=Customer(id=None, email=email, guest=True, other_emails=others),
        currency=currency,
        presentment_currency=currency,
        total=total,
        cancelled=cancelled,
        status=status,
    )


def _currency(reader: Reader, currency: str | None, lines: tuple[OrderLine, ...]) -> str | None:
    """The order's currency: the total's, else the first priced line's."""
    priced = [line.unit_price.currency for line in lines if line.unit_price is not None]
    chosen = currency or (priced[0] if priced else None)
    others = sorted({c for c in priced if c != chosen})
    if others:
        reader.decide(
            "currency.lines_differ",
            f"The order is in {chosen} but lines are priced in {', '.join(others)}.",
            field="currency",
            action=RuleAction.WARN,
        )
    return chosen


def _status(value: object) -> tuple[str | None, bool]:
    """A status in snake case ("PartiallyShipped" and "PARTIALLY_SHIPPED" to
    "partially_shipped"), "cancelled" for Canceled, and whether it is that."""
    if not isinstance(value, str) or not value.strip():
        return None, False
    text = value.strip()
    if not text.isupper():
        text = _CAMEL.sub("_", text)
    status = text.lower()
    if status in _CANCELLED:
        return "cancelled", True
    return status, False


def _location_missing(reader: Reader, field: str, what: str, address: tuple[object, ...]) -> None:
    where = ", ".join(t for t in (clean_text(part) for part in address) if t)
    given = f" (Amazon gives its address: {where})" if where else ""
    reader.decide(
        "pickup.location_missing",
        f"{what}; the store is left to the account{given}.",
        field=field,
        action=RuleAction.WARN,
    )


def _is_zero(value: object) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and Decimal(str(value)) == 0
    except ArithmeticError:
        return False
