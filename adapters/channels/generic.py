"""The `generic` channel: any system sends orders in ROPOS's own canonical shape.

The body is one order exactly as `domain.intake.to_json` writes it (camelCase: `externalId`,
`externalNumber`, `event`, `placedAt`, `updatedAt`, `status`, `cancelled`, `customer{id, email,
guest, otherEmails}`, `currency`, `presentmentCurrency`, `total{amount, currency}`,
`lines[{sku, channelProductId, lineId, name, quantity, unitPrice}]`, `pickup{requested,
channelLocationId, storeId}`, `customerLocation{lat, lon}`, and optionally `channel`, `account`),
or several as `{"orders": [order, ...]}`, which `split` gives one by one. `generic.schema.json`
(JSON Schema, draft 2020-12, next to this module) describes it; `check_shape` checks a body
against the same rules by hand (no schema library is installed), and a unit test keeps the two in
agreement.

Strict on shape: a field of the wrong type, a missing required field or a field the schema does not
name refuses the body (`MALFORMED`, with the field's path, e.g. `lines[0].quantity`). Then the same
readers as every channel: ids exact, timestamps in odd forms repaired (an unreadable `placedAt` to
the receive time), quantities "3.000000" read as 3 but fractional or non-positive ones refused
(`INVALID_QUANTITY`), amounts exact decimals, SKUs and names cleaned, emails checked,
coordinates with placeholders left out.

Beyond the schema: `channel` and `account`, when present, must be the delivery's
(`CHANNEL_MISMATCH`, `ACCOUNT_MISMATCH`); `lines` may be empty only for a cancelled order
(`MISSING_ITEMS`). Pickup is what `pickup` says; the currency is `currency`, else the total's.
Event: `event` when given (CANCEL also marks the order cancelled, with a decision), else CANCEL
for a cancelled order and CREATE otherwise. A customer without an id is a guest (a decision
records it when the body said otherwise). `email` and `otherEmails` are kept as the sender told
them apart (invalid ones left out with a warning; without a usable `email`, the first other one
is used).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from adapters.channels.common import (
    Reader,
    clean_sku,
    clean_text,
    customer_id,
    id_text,
    parse_currency,
)
from domain.intake import (
    ChannelOrder,
    Customer,
    Decision,
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

SCHEMA_PATH = Path(__file__).with_name("generic.schema.json")
MAX_EXTERNAL_ID = 128

# The schema's rules, field by field: the JSON types each field may have.
_TEXT = ("string", "null")
_ORDER: dict[str, tuple[str, ...]] = {
    "channel": ("string",),
    "account": ("string",),
    "externalId": ("string",),
    "externalNumber": _TEXT,
    "event": ("string",),
    "placedAt": _TEXT,
    "updatedAt": _TEXT,
    "status": _TEXT,
    "cancelled": ("boolean",),
    "customer": ("object", "null"),
    "currency": _TEXT,
    "presentmentCurrency": _TEXT,
    "total": ("object", "null"),
    "lines": ("array",),
    "pickup": ("object",),
    "customerLocation": ("object", "null"),
}
_ORDER_REQUIRED = ("externalId", "lines", "pickup")
_CUSTOMER: dict[str, tuple[str, ...]] = {
    "id": _TEXT,
    "email": _TEXT,
    "guest": ("boolean",),
    "otherEmails": ("array",),
}
_MONEY: dict[str, tuple[str, ...]] = {"amount": ("string", "number"), "currency": ("string",)}
_LINE: dict[str, tuple[str, ...]] = {
    "sku": _TEXT,
    "channelProductId": _TEXT,
    "lineId": _TEXT,
    "name": _TEXT,
    "quantity": ("number", "string"),
    "unitPrice": ("object", "null"),
}
_PICKUP: dict[str, tuple[str, ...]] = {
    "requested": ("boolean",),
    "channelLocationId": _TEXT,
    "storeId": _TEXT,
}
_POINT: dict[str, tuple[str, ...]] = {
    "lat": ("number", "string", "null"),
    "lon": ("number", "string", "null"),
}
EVENTS = tuple(event.value for event in OrderEvent)


class GenericAdapter:
    """Orders in the canonical JSON shape (`generic.schema.json`)."""

    channel: SalesChannel = SalesChannel.GENERIC

    def split(self, payload: Any) -> list[Any]:
        if (
            isinstance(payload, dict)
            and "externalId" not in payload
            and isinstance(payload.get("orders"), list)
        ):
            return list(payload["orders"])
        return [payload]

    def parse(self, payload: Any, delivery: Delivery) -> Parsed | NotAnOrder:
        body = check_shape(payload)
        _same("channel", body.get("channel"), delivery.channel.value)
        _same("account", body.get("account"), delivery.account)
        return _read(body, delivery)


# --- the shape --------------------------------------------------------------------------------


def check_shape(body: object) -> dict[str, Any]:
    """The body, when it has the shape `generic.schema.json` describes; else PayloadRefused
    (`MALFORMED`) naming the first field that is wrong."""
    order = _object(body, "", _ORDER, _ORDER_REQUIRED)
    external_id = order["externalId"]
    if not 1 <= len(external_id) <= MAX_EXTERNAL_ID:
        _malformed("externalId", f"must have 1 to {MAX_EXTERNAL_ID} characters")
    if "event" in order and order["event"] not in EVENTS:
        _malformed("event", f"must be one of {', '.join(EVENTS)}")
    if isinstance(order.get("customer"), dict):
        customer = _object(order["customer"], "customer", _CUSTOMER, ())
        for index, email in enumerate(customer.get("otherEmails", ())):
            _expect(email, f"customer.otherEmails[{index}]", ("string",))
    if isinstance(order.get("total"), dict):
        _object(order["total"], "total", _MONEY, tuple(_MONEY))
    for index, line in enumerate(order["lines"]):
        path = f"lines[{index}]"
        checked = _object(line, path, _LINE, ("quantity",))
        if isinstance(checked.get("unitPrice"), dict):
            _object(checked["unitPrice"], f"{path}.unitPrice", _MONEY, tuple(_MONEY))
    _object(order["pickup"], "pickup", _PICKUP, ("requested",))
    if isinstance(order.get("customerLocation"), dict):
        _object(order["customerLocation"], "customerLocation", _POINT, tuple(_POINT))
    return order


def json_type(value: object) -> str:
    """The JSON type of a decoded value (a bool is not a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _object(
    value: object,
    path: str,
    fields: Mapping[str, tuple[str, ...]],
    required: tuple[str, ...],
) -> dict[str, Any]:
    if not isinstance(value, dict):
        _malformed(path, f"must be object, not {json_type(value)}")
    for name in required:
        if name not in value:
            _malformed(_join(path, name), "is required")
    for name, item in value.items():
        if name not in fields:
            _malformed(_join(path, str(name)[:60]), "is not a field of a generic order")
        _expect(item, _join(path, name), fields[name])
    return value


def _expect(value: object, path: str, kinds: tuple[str, ...]) -> None:
    kind = json_type(value)
    if kind not in kinds:
        _malformed(path, f"must be {' or '.join(kinds)}, not {kind}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _malformed(path: str, problem: str) -> NoReturn:
    raise PayloadRefused("MALFORMED", f"{path or 'The body'} {problem}.", field=path or None)


def _same(field: str, value: object, expected: str) -> None:
    if value is not None and str(value).strip() != expected:
        raise PayloadRefused(
            f"{field.upper()}_MISMATCH",
            f"The body is for {field} {str(value)[:60]!r}, delivered to {expected!r}.",
            field=field,
        )


# --- the order --------------------------------------------------------------------------------


def _read(body: dict[str, Any], delivery: Delivery) -> Parsed:
    reader = Reader(delivery)
    external_id = reader.exact_id("externalId", body["externalId"])
    cancelled = bool(body.get("cancelled", False))
    event = OrderEvent(body["event"]) if "event" in body else None
    if event is OrderEvent.CANCEL and not cancelled:
        reader.decide(
            "order.cancel_event", "event is CANCEL: read as cancelled.", field="cancelled"
        )
        cancelled = True
    if event is None:
        event = OrderEvent.CANCEL if cancelled else OrderEvent.CREATE
    lines = tuple(_line(reader, f"lines[{i}]", line) for i, line in enumerate(body["lines"]))
    if not lines and not cancelled:
        raise PayloadRefused("MISSING_ITEMS", f"Order {external_id} has no lines.", field="lines")
    total = _money(reader, "total", body.get("total"))
    currency = reader.currency("currency", body.get("currency"))
    location = body.get("customerLocation") or {}
    order = ChannelOrder(
        channel=SalesChannel.GENERIC,
        account=delivery.account,
        external_id=external_id,
        external_number=id_text(body.get("externalNumber")),
        event=event,
        lines=lines,
        pickup=_pickup(body["pickup"]),
        placed_at=reader.timestamp("placedAt", body.get("placedAt"), required=True),
        updated_at=reader.timestamp("updatedAt", body.get("updatedAt")),
        customer=_customer(reader, body.get("customer") or {}),
        currency=currency or (total.currency if total else None),
        presentment_currency=reader.currency(
            "presentmentCurrency", body.get("presentmentCurrency")
        ),
        total=total,
        customer_location=reader.point(
            "customerLocation", location.get("lat"), location.get("lon")
        ),
        cancelled=cancelled,
        status=clean_text(body.get("status")),
    )
    decisions: tuple[Decision, ...] = tuple(reader.decisions)
    return Parsed(order, decisions)


def _line(reader: Reader, path: str, line: dict[str, Any]) -> OrderLine:
    sku = clean_sku(line.get("sku"))
    product = id_text(line.get("channelProductId"))
    if sku is None and product is None:
        reader.decide(
            "line.unidentified",
            f"{path} has neither a sku nor a channelProductId.",
            field=path,
            action=RuleAction.WARN,
        )
    return OrderLine(
        sku=sku,
        quantity=reader.quantity(f"{path}.quantity", line["quantity"]),
        channel_product_id=product,
        name=clean_text(line.get("name")),
        unit_price=_money(reader, f"{path}.unitPrice", line.get("unitPrice")),
        line_id=id_text(line.get("lineId")),
    )


def _money(reader: Reader, path: str, value: dict[str, Any] | None) -> Money | None:
    if value is None:
        return None
    currency = parse_currency(f"{path}.currency", value["currency"])
    return reader.money(f"{path}.amount", value["amount"], currency)


def _pickup(pickup: dict[str, Any]) -> Pickup:
    return Pickup(
        requested=pickup["requested"],
        channel_location_id=id_text(pickup.get("channelLocationId")),
        store_id=id_text(pickup.get("storeId")),
    )


def _customer(reader: Reader, customer: dict[str, Any]) -> Customer:
    cid = customer_id(customer.get("id"))
    guest = bool(customer.get("guest", cid is None))
    if cid is None and not guest:
        reader.decide(
            "customer.guest", "The customer has no id: read as a guest.", field="customer.guest"
        )
        guest = True
    # The sender already told the order's email from its others: no warning that they differ.
    email = reader.email("customer.email", customer.get("email"))
    others: list[str] = []
    for index, value in enumerate(customer.get("otherEmails", ())):
        other = reader.email(f"customer.otherEmails[{index}]", value)
        if other is not None and other != email and other not in others:
            others.append(other)
    if email is None and others:
        reader.decide(
            "customer.email",
            "No usable email: used the first of otherEmails.",
            field="customer.email",
        )
        email = others.pop(0)
    return Customer(id=cid, email=email, guest=guest, other_emails=tuple(others))


ADAPTER = GenericAdapter()
