"""The generic channel: the canonical order as JSON, checked against generic.schema.json, read
with the same tolerant readers as every channel."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.common import loads
from adapters.channels.generic import ADAPTER, SCHEMA_PATH, check_shape
from domain.geo import GeoPoint
from domain.intake import (
    ChannelAdapter,
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
    to_json,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "generic"
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DELIVERY = Delivery(SalesChannel.GENERIC, "acme", RECEIVED)

FULL_ORDER = ChannelOrder(
    channel=SalesChannel.GENERIC,
    account="acme",
    external_id="9007199254740993",
    external_number="#1001",
    event=OrderEvent.UPDATE,
    lines=(
        OrderLine(
            sku="SKU-1",
            quantity=2,
            channel_product_id="P-1",
            name="Mug",
            unit_price=Money(Decimal("9.95"), "EUR"),
            line_id="L-1",
        ),
        OrderLine(sku=None, quantity=1, channel_product_id="P-2"),
    ),
    pickup=Pickup(requested=True, channel_location_id="LOC-1", store_id="store-1"),
    placed_at=datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
    updated_at=datetime(2026, 3, 1, 9, 45, 12, 500000, tzinfo=UTC),
    customer=Customer(
        id="C-1", email="ana@example.com", guest=False, other_emails=("ana@work.example.com",)
    ),
    currency="EUR",
    presentment_currency="USD",
    total=Money(Decimal("19.90"), "EUR"),
    customer_location=GeoPoint(40.4168, -3.7038),
    cancelled=False,
    status="paid",
)


def fixture(name: str) -> Any:
    return loads((FIXTURES / name).read_bytes())


def as_received(data: object) -> Any:
    """`data` as ROPOS would decode it from the wire."""
    return loads(json.dumps(data, default=float).encode())


def parsed(payload: Any, delivery: Delivery = DELIVERY) -> Parsed:
    result = ADAPTER.parse(payload, delivery)
    assert isinstance(result, Parsed), result
    return result


def refused(payload: Any, delivery: Delivery = DELIVERY) -> PayloadRefused:
    with pytest.raises(PayloadRefused) as caught:
        ADAPTER.parse(payload, delivery)
    return caught.value


def decided(result: Parsed) -> list[tuple[str, RuleAction, str | None]]:
    return [(d.rule, d.action, d.field) for d in result.decisions]


def body(**changes: Any) -> dict[str, Any]:
    """The complete authored order, with `changes` applied."""
    data: dict[str, Any] = fixture("generic_order_pickup_authored.json")
    data.update(changes)
    return data


def with_line(**changes: Any) -> dict[str, Any]:
    data = body()
    data["lines"][0].update(changes)
    return data


# --- the adapter ------------------------------------------------------------------------------


def test_the_adapter_is_a_channel_adapter_for_generic() -> None:
    adapter: ChannelAdapter = ADAPTER
    assert adapter.channel is SalesChannel.GENERIC


def test_split_gives_one_payload_per_order_of_a_list() -> None:
    orders = fixture("generic_orders_list_messy_authored.json")
    parts = ADAPTER.split(orders)
    assert [part["externalId"] for part in parts] == ["12345678901234567890", "ERP-2026-000399"]
    assert ADAPTER.split(body()) == [body()]
    assert ADAPTER.split({"orders": []}) == []


# --- the authored samples ---------------------------------------------------------------------


def test_a_complete_order_is_read_field_by_field() -> None:
    result = parsed(fixture("generic_order_pickup_authored.json"))
    eur = "EUR"
    assert result.order == ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="acme",
        external_id="ERP-2026-000417",
        external_number="417",
        event=OrderEvent.CREATE,
        lines=(
            OrderLine(
                sku="SKU-RED-42",
                quantity=1,
                channel_product_id="P-42",
                name="Trail shoe, red, 42",
                unit_price=Money(Decimal("59.99"), eur),
                line_id="1",
            ),
            OrderLine(
                sku="SOCK-3P",
                quantity=2,
                channel_product_id=None,
                name="Socks (3 pairs)",
                unit_price=Money(Decimal("7.49"), eur),
                line_id="2",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="WH-MADRID-1", store_id=None),
        placed_at=datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        updated_at=datetime(2026, 3, 1, 8, 31, 15, 250000, tzinfo=UTC),
        customer=Customer(id="C-1009", email="maria@example.com", guest=False),
        currency=eur,
        presentment_currency=eur,
        total=Money(Decimal("74.97"), eur),
        customer_location=GeoPoint(40.4168, -3.7038),
        cancelled=False,
        status="confirmed",
    )
    assert result.decisions == ()


def test_a_messy_guest_order_is_read_the_way_a_person_would() -> None:
    messy = ADAPTER.split(fixture("generic_orders_list_messy_authored.json"))[0]
    result = parsed(messy)
    assert result.order == ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="acme",
        external_id="12345678901234567890",
        event=OrderEvent.CREATE,
        lines=(
            OrderLine(
                sku="SKU-1",
                quantity=3,
                channel_product_id=None,
                name="Mug & Lid",
                unit_price=Money(Decimal("19.99"), "USD"),
            ),
            OrderLine(sku=None, quantity=1, channel_product_id="8812"),
        ),
        pickup=Pickup(requested=True, channel_location_id=None, store_id="store-7"),
        placed_at=datetime(2026, 3, 1, 7, 0, tzinfo=UTC),
        updated_at=None,
        customer=Customer(
            id=None,
            email="pat@example.com",
            guest=True,
            other_emails=("pat.work@example.com",),
        ),
        currency="USD",  # from the total
        total=Money(Decimal("59.97"), "USD"),
        customer_location=None,  # 0, 0 is a placeholder
    )
    assert decided(result) == [
        ("timestamp.unreadable", RuleAction.WARN, "updatedAt"),
        ("customer.guest", RuleAction.REPAIR, "customer.guest"),
        ("customer.email_invalid", RuleAction.WARN, "customer.otherEmails[1]"),
    ]


def test_a_cancelled_order_needs_no_lines() -> None:
    cancelled = ADAPTER.split(fixture("generic_orders_list_messy_authored.json"))[1]
    result = parsed(cancelled)
    assert result.order == ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="acme",
        external_id="ERP-2026-000399",
        event=OrderEvent.CANCEL,
        lines=(),
        pickup=Pickup(requested=True, channel_location_id="WH-MADRID-1"),
        placed_at=datetime(2026, 2, 27, 10, 0, tzinfo=UTC),
        updated_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        cancelled=True,
    )
    assert result.decisions == ()


def test_a_quantity_of_the_wrong_type_is_malformed_with_its_path() -> None:
    error = refused(fixture("generic_order_wrong_types_authored.json"))
    assert (error.code, error.field) == ("MALFORMED", "lines[0].quantity")
    assert error.message == "lines[0].quantity must be number or string, not boolean."


# --- the canonical shape round trip -----------------------------------------------------------


def test_an_order_written_by_to_json_reads_back_the_same() -> None:
    result = parsed(as_received(to_json(FULL_ORDER)))
    assert result.order == FULL_ORDER
    assert result.decisions == ()


def test_a_minimal_guest_order_written_by_to_json_reads_back_the_same() -> None:
    order = ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="acme",
        external_id="1",
        event=OrderEvent.CREATE,
        lines=(OrderLine(sku="A", quantity=1),),
        pickup=Pickup(requested=False),
        placed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert parsed(as_received(to_json(order))).order == order


def test_an_order_of_another_channel_is_refused() -> None:
    from_shopify = to_json(FULL_ORDER)
    from_shopify["channel"] = "shopify"
    error = refused(as_received(from_shopify))
    assert (error.code, error.field) == ("CHANNEL_MISMATCH", "channel")


def test_an_order_for_another_account_is_refused() -> None:
    error = refused(body(account="globex"))
    assert (error.code, error.field) == ("ACCOUNT_MISMATCH", "account")


def test_channel_and_account_are_optional() -> None:
    data = body()
    del data["channel"], data["account"]
    assert parsed(data).order.account == "acme"


# --- the shape, field by field ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([body()], None),
        ({"lines": [], "pickup": {"requested": True}}, "externalId"),
        (body(externalId=417), "externalId"),
        (body(externalId=""), "externalId"),
        (body(externalId="x" * 129), "externalId"),
        (body(event="DELETE"), "event"),
        (body(event=None), "event"),
        (body(cancelled="false"), "cancelled"),
        (body(notes="leave at the door"), "notes"),
        (body(lines={"sku": "A"}), "lines"),
        (body(lines=["A"]), "lines[0]"),
        (body(customer={"id": 5}), "customer.id"),
        (body(customer={"otherEmails": ["a@example.com", 5]}), "customer.otherEmails[1]"),
        (body(customer={"name": "Maria"}), "customer.name"),
        (body(total={"amount": "1.00"}), "total.currency"),
        (body(total={"amount": True, "currency": "EUR"}), "total.amount"),
        (body(total="74.97"), "total"),
        (body(pickup={}), "pickup.requested"),
        (body(pickup={"requested": "yes"}), "pickup.requested"),
        (body(pickup=None), "pickup"),
        (body(customerLocation={"lat": 1}), "customerLocation.lon"),
        (body(customerLocation={"lat": [1], "lon": 2}), "customerLocation.lat"),
        (with_line(quantity=None), "lines[0].quantity"),
        (with_line(sku=42), "lines[0].sku"),
        (
            with_line(unitPrice={"amount": "1", "currency": "EUR", "tax": "0"}),
            "lines[0].unitPrice.tax",
        ),
    ],
)
def test_a_body_of_the_wrong_shape_is_malformed(data: object, field: str | None) -> None:
    error = refused(data)
    assert (error.code, error.field) == ("MALFORMED", field)


# --- the readers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected"), [(2, 2), ("2", 2), ("3.000000", 3), (Decimal("4.0"), 4)]
)
def test_whole_quantities_in_any_form_are_units(quantity: object, expected: int) -> None:
    assert parsed(with_line(quantity=quantity)).order.lines[0].quantity == expected


@pytest.mark.parametrize("quantity", ["2.5", Decimal("0.5"), 0, -1, "many"])
def test_a_quantity_that_is_not_a_positive_whole_number_is_refused(quantity: object) -> None:
    error = refused(with_line(quantity=quantity))
    assert (error.code, error.field) == ("INVALID_QUANTITY", "lines[0].quantity")


def test_an_amount_that_is_not_a_number_is_refused() -> None:
    error = refused(with_line(unitPrice={"amount": "59,99 EUR", "currency": "EUR"}))
    assert (error.code, error.field) == ("INVALID_AMOUNT", "lines[0].unitPrice.amount")


def test_a_currency_that_is_not_iso_4217_is_refused() -> None:
    error = refused(body(total={"amount": "1", "currency": "EURO"}))
    assert (error.code, error.field) == ("INVALID_CURRENCY", "total.currency")


def test_an_amount_is_kept_exact() -> None:
    data = as_received(with_line(unitPrice={"amount": 0.1, "currency": "EUR"}))
    assert parsed(data).order.lines[0].unit_price == Money(Decimal("0.1"), "EUR")


def test_an_open_order_without_lines_is_refused() -> None:
    error = refused(body(lines=[]))
    assert (error.code, error.field) == ("MISSING_ITEMS", "lines")


def test_a_blank_external_id_is_no_id() -> None:
    error = refused(body(externalId="   "))
    assert (error.code, error.field) == ("MISSING_ID", "externalId")


def test_a_cancel_event_marks_the_order_cancelled() -> None:
    result = parsed(body(event="CANCEL", cancelled=False))
    assert (result.order.event, result.order.cancelled) == (OrderEvent.CANCEL, True)
    assert decided(result) == [("order.cancel_event", RuleAction.REPAIR, "cancelled")]


def test_without_an_event_a_cancelled_order_is_a_cancel_and_another_a_create() -> None:
    data = body(cancelled=True)
    del data["event"]
    assert parsed(data).order.event is OrderEvent.CANCEL
    data["cancelled"] = False
    assert parsed(data).order.event is OrderEvent.CREATE


def test_an_absent_placed_time_is_the_receive_time() -> None:
    data = body()
    del data["placedAt"]
    result = parsed(data)
    assert result.order.placed_at == RECEIVED
    assert decided(result) == [("timestamp.unreadable", RuleAction.REPAIR, "placedAt")]


def test_coordinates_as_strings_are_read_and_out_of_range_ones_left_out() -> None:
    assert parsed(
        body(customerLocation={"lat": " 51.5 ", "lon": "-0.12"})
    ).order.customer_location == (GeoPoint(51.5, -0.12))
    result = parsed(body(customerLocation={"lat": 95, "lon": 10}))
    assert result.order.customer_location is None
    assert decided(result) == [("location.out_of_range", RuleAction.WARN, "customerLocation")]


def test_a_line_with_neither_sku_nor_product_id_is_kept_with_a_warning() -> None:
    result = parsed(with_line(sku="  ", channelProductId=None))
    assert result.order.lines[0].sku is None
    assert decided(result) == [("line.unidentified", RuleAction.WARN, "lines[0]")]


def test_without_a_usable_email_the_first_other_one_is_the_email() -> None:
    customer = {"email": "n/a", "otherEmails": ["Second@Example.com", "third@example.com"]}
    result = parsed(body(customer=customer))
    assert result.order.customer == Customer(
        email="second@example.com", guest=True, other_emails=("third@example.com",)
    )
    assert decided(result) == [("customer.email", RuleAction.REPAIR, "customer.email")]


def test_a_customer_with_an_id_is_not_a_guest_unless_it_says_so() -> None:
    assert parsed(body(customer={"id": "C-1"})).order.customer == Customer(id="C-1", guest=False)
    assert parsed(body(customer={"id": "C-1", "guest": True})).order.customer == Customer(
        id="C-1", guest=True
    )
    assert parsed(body(customer=None)).order.customer == Customer(guest=True)


def test_the_result_is_never_not_an_order() -> None:
    assert not isinstance(ADAPTER.parse(body(), DELIVERY), NotAnOrder)


# --- the schema file and the hand validation agree --------------------------------------------
# No JSON Schema library is installed: this reads the keywords generic.schema.json uses.

KNOWN_KEYWORDS = {
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "minLength",
    "maxLength",
}
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())


def kind(value: object) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if isinstance(value, int | Decimal | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "unknown"


def schema_valid(schema: dict[str, Any], value: object) -> bool:
    """`value` against `schema`, for the keywords in KNOWN_KEYWORDS."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        if not schema_valid(SCHEMA["$defs"][name], value):
            return False
    if "anyOf" in schema and not any(schema_valid(s, value) for s in schema["anyOf"]):
        return False
    types = schema.get("type")
    if types is not None and kind(value) not in (types if isinstance(types, list) else [types]):
        return False
    if "enum" in schema and not any(kind(value) == kind(e) and value == e for e in schema["enum"]):
        return False
    if isinstance(value, str) and not (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
    ):
        return False
    if isinstance(value, list) and "items" in schema:
        return all(schema_valid(schema["items"], item) for item in value)
    if isinstance(value, dict):
        return object_valid(schema, value)
    return True


def object_valid(schema: dict[str, Any], value: dict[str, Any]) -> bool:
    properties: dict[str, Any] = schema.get("properties", {})
    if any(name not in value for name in schema.get("required", [])):
        return False
    if schema.get("additionalProperties") is False and any(k not in properties for k in value):
        return False
    return all(schema_valid(properties[k], v) for k, v in value.items() if k in properties)


def hand_valid(value: object) -> bool:
    """Whether `check_shape` accepts `value`; any refusal but MALFORMED is a bug there."""
    try:
        check_shape(value)
    except PayloadRefused as error:
        if error.code != "MALFORMED":
            raise
        return False
    return True


def keywords(schema: object) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield key
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from keywords(sub)
            elif key in ("items", "anyOf"):
                for sub in value if isinstance(value, list) else [value]:
                    yield from keywords(sub)


def paths(value: object, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(value: Any, path: tuple[str | int, ...], new: object) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return copied


def variants(value: Any) -> Iterator[Any]:
    """Bodies around `value`: every field (and the body) replaced by values of every JSON type,
    every object field removed, an unknown field added to every object."""
    others: list[object] = [
        None,
        True,
        0,
        7,
        Decimal("1.5"),
        "",
        "x",
        "CANCEL",
        "y" * 129,
        [],
        ["x"],
        [{"quantity": 1}],
        {},
        {"amount": "1", "currency": "EUR"},
        {"requested": False},
        {"lat": 1, "lon": 2},
    ]
    for path in paths(value):
        for other in others:
            yield replaced(value, path, other)
        target = value
        for step in path:
            target = target[step]
        if isinstance(target, dict):
            yield replaced(value, path, {**target, "unexpected": 1})
        if path and isinstance(path[-1], str):
            parent = copy.deepcopy(value)
            holder = parent
            for step in path[:-1]:
                holder = holder[step]
            del holder[path[-1]]
            yield parent


def test_the_schema_declares_draft_2020_12_and_uses_only_known_keywords() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(keywords(SCHEMA)) <= KNOWN_KEYWORDS | set(_property_names(SCHEMA))


def _property_names(schema: object) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                yield from value
            yield from _property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _property_names(item)


def test_the_schema_names_every_field_to_json_writes() -> None:
    written = to_json(FULL_ORDER)
    properties = SCHEMA["properties"]
    assert set(written) == set(properties)
    assert set(written["customer"]) == set(properties["customer"]["properties"])
    assert set(written["lines"][0]) == set(SCHEMA["$defs"]["line"]["properties"])
    assert set(written["pickup"]) == set(properties["pickup"]["properties"])


@pytest.mark.parametrize(
    "base",
    [
        pytest.param(lambda: fixture("generic_order_pickup_authored.json"), id="authored"),
        pytest.param(
            lambda: fixture("generic_orders_list_messy_authored.json")["orders"][0], id="messy"
        ),
        pytest.param(lambda: as_received(to_json(FULL_ORDER)), id="to_json"),
    ],
)
def test_the_schema_and_the_hand_validation_agree(base: Any) -> None:
    valid = invalid = 0
    disagreements: list[tuple[bool, str]] = []
    for candidate in variants(base()):
        by_schema = schema_valid(SCHEMA, candidate)
        if by_schema != hand_valid(candidate):
            disagreements.append((by_schema, json.dumps(candidate, default=str)[:300]))
        valid += by_schema
        invalid += not by_schema
    assert disagreements == []
    assert valid > 20
    assert invalid > 100


def test_the_schema_accepts_the_valid_samples_and_refuses_the_wrong_ones() -> None:
    assert schema_valid(SCHEMA, fixture("generic_order_pickup_authored.json"))
    for order in fixture("generic_orders_list_messy_authored.json")["orders"]:
        assert schema_valid(SCHEMA, order)
    assert not schema_valid(SCHEMA, fixture("generic_order_wrong_types_authored.json"))
