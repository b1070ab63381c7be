"""The Shopify adapter: the published webhook samples field by field, and the messier payloads
Shopify and connectors really send, each with its defined outcome."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.common import loads
from adapters.channels.shopify import ADAPTER
from domain.geo import GeoPoint
from domain.intake import (
    ChannelAdapter,
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "shopify"
CREATE_2023 = "webhook_orders_create_docs_sample_2023-07.json"
CANCELLED_2026 = "webhook_orders_cancelled_docs_sample_2026-04.json"
INVENTORY_2024 = "webhook_inventory_levels_update_docs_sample_2024-04.json"
MESSY_2026 = "authored_webhook_orders_create_2026-01_pickup_guest_messy.json"
REST_LIST = "authored_rest_orders_list_pos_and_local_pickup_2025-07.json"
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SAMPLE_TIME = datetime(2022, 1, 1, 0, 0, tzinfo=UTC)  # 2021-12-31T19:00:00-05:00


def load(name: str) -> Any:
    return loads((FIXTURES / name).read_bytes())


def delivery(topic: str | None = None, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery(SalesChannel.SHOPIFY, "acme", RECEIVED, topic=topic, headers=headers or {})


def parse(payload: Any, topic: str | None = None) -> Parsed:
    result = ADAPTER.parse(payload, delivery(topic))
    assert isinstance(result, Parsed), result
    return result


def ignored(payload: Any, topic: str | None = None) -> NotAnOrder:
    result = ADAPTER.parse(payload, delivery(topic))
    assert isinstance(result, NotAnOrder), result
    return result


def refused(payload: Any, topic: str | None = None) -> PayloadRefused:
    with pytest.raises(PayloadRefused) as caught:
        ADAPTER.parse(payload, delivery(topic))
    return caught.value


def rules(result: Parsed) -> list[tuple[str, str | None]]:
    return [(d.rule, d.field) for d in result.decisions]


def sample() -> dict[str, Any]:
    """The 2023-07 create sample, to modify one field at a time."""
    body = load(CREATE_2023)
    assert isinstance(body, dict)
    return copy.deepcopy(body)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# --- the adapter and its bodies -----------------------------------------------------------------


def test_the_adapter_is_a_channel_adapter_for_shopify() -> None:
    adapter: ChannelAdapter = ADAPTER

    assert adapter.channel is SalesChannel.SHOPIFY


def test_split_keeps_one_order_and_gives_one_order_body_per_listed_order() -> None:
    one = sample()
    listed = load(REST_LIST)

    assert ADAPTER.split(one) == [one]
    assert ADAPTER.split({"order": one}) == [{"order": one}]
    assert ADAPTER.split(listed) == [{"order": o} for o in listed["orders"]]
    assert len(ADAPTER.split(listed)) == 2
    assert ADAPTER.split([one, one]) == [{"order": one}, {"order": one}]
    assert ADAPTER.split({"orders": []}) == []


# --- the published samples, field by field ------------------------------------------------------


def test_the_2023_07_orders_create_sample_reads_field_by_field() -> None:
    result = parse(load(CREATE_2023), "orders/create")
    order = result.order

    assert order.channel is SalesChannel.SHOPIFY
    assert order.account == "acme"
    assert order.external_id == "820982911946154508"  # the gid, not the rounded 8209...4500
    assert order.external_number == "#9999"
    assert order.event is OrderEvent.CREATE
    assert order.cancelled is True  # cancelled_at is set on this create
    assert order.status == "cancelled:customer"
    assert order.placed_at == SAMPLE_TIME
    assert order.updated_at == SAMPLE_TIME
    assert order.customer == Customer(
        id="115310627314723954",
        email="jon@example.com",
        guest=False,
        other_emails=("john@example.com",),
    )
    assert order.currency == "USD"
    assert order.presentment_currency == "USD"
    assert order.total == usd("398.00")  # current_total_price_set, not total_price_set (388)
    assert order.total is not None
    assert str(order.total.amount) == "398.00"
    assert order.lines == (
        OrderLine(
            sku="IPOD2008PINK",
            quantity=1,
            channel_product_id="808950810",
            name="IPod Nano - 8GB",
            unit_price=usd("199.00"),
            line_id="866550311766439020",
        ),
        OrderLine(
            sku="IPOD2008PINK",
            quantity=1,
            channel_product_id="808950810",
            name="IPod Nano - 8GB",
            unit_price=usd("199.00"),
            line_id="141249953214522974",
        ),
    )
    assert order.pickup == Pickup(requested=False)  # "Generic Shipping"
    assert order.customer_location is None  # null latitude/longitude
    assert rules(result) == [
        ("id.disagree", "id"),
        ("id.disagree", "customer.id"),
        ("customer.emails_differ", "email"),
        ("id.disagree", "line_items[0].id"),
        ("id.disagree", "line_items[1].id"),
    ]
    assert all(d.action is RuleAction.REPAIR for d in result.decisions[:2])
    assert "820982911946154500" in result.decisions[0].message


def test_the_2026_04_orders_cancelled_sample_reads_field_by_field() -> None:
    result = parse(load(CANCELLED_2026), "orders/cancelled")
    order = result.order

    assert order.external_id == "820982911946154508"
    assert order.external_number == "#9999"
    assert order.event is OrderEvent.CANCEL
    assert order.cancelled is True
    assert order.status == "cancelled:customer"
    assert order.placed_at == SAMPLE_TIME
    assert order.updated_at == SAMPLE_TIME
    assert order.customer == Customer(
        id="115310627314723954",
        email="jon@example.com",
        guest=False,
        other_emails=("john@example.com",),
    )
    assert order.currency == "USD"
    assert order.presentment_currency == "USD"
    assert order.total == usd("414.95")
    # product_id 788032119674292900 went through a double, but each of those lines has a SKU.
    assert order.lines == (
        OrderLine(
            sku="SKU2006-001",
            quantity=1,
            channel_product_id="788032119674292900",
            name="Aviator sunglasses",
            unit_price=usd("89.99"),
            line_id="487817672276298554",
        ),
        OrderLine(
            sku="LENS-PROTECT-2YR",
            quantity=1,
            channel_product_id=None,
            name="Lens Protection Plan (2 Year)",
            unit_price=usd("19.99"),
            line_id="789012345678901234",
        ),
        OrderLine(
            sku="CASE-LEATHER-PREM",
            quantity=1,
            channel_product_id=None,
            name="Premium Leather Case",
            unit_price=usd("24.99"),
            line_id="890123456789012345",
        ),
        OrderLine(
            sku="SKU2006-020",
            quantity=1,
            channel_product_id="788032119674292900",
            name="Mid-century lounger",
            unit_price=usd("159.99"),
            line_id="976318377106520349",
        ),
        OrderLine(
            sku="SKU2006-035",
            quantity=1,
            channel_product_id="788032119674292900",
            name="Coffee table",
            unit_price=usd("119.99"),
            line_id="315789986012684393",
        ),
    )
    assert order.pickup == Pickup(requested=False)
    assert order.customer_location is None
    assert rules(result) == [
        ("id.disagree", "id"),
        ("id.disagree", "customer.id"),
        ("customer.emails_differ", "email"),
        *[("id.disagree", f"line_items[{i}].id") for i in range(5)],
    ]


def test_the_2024_04_inventory_levels_sample_is_not_an_order() -> None:
    with_topic = ignored(load(INVENTORY_2024), "inventory_levels/update")
    without_topic = ignored(load(INVENTORY_2024))

    assert "inventory_levels/update" in with_topic.reason
    assert "InventoryLevel" in without_topic.reason


# --- authored payloads, field by field ----------------------------------------------------------


def test_a_2026_guest_order_collected_through_fulfillment_orders_reads_field_by_field() -> None:
    result = parse(load(MESSY_2026), "orders/create")
    order = result.order

    assert order.external_id == "5678901234567890123"
    assert order.external_number == "#R1042"
    assert order.event is OrderEvent.CREATE
    assert order.cancelled is False
    assert order.status == "paid"
    assert order.placed_at == datetime(2026, 1, 15, 9, 30, 0, 123456, tzinfo=UTC)
    assert order.updated_at == datetime(2026, 1, 15, 9, 31, 7, tzinfo=UTC)
    assert order.customer == Customer(id=None, email="shopper@example.com", guest=True)
    assert order.currency == "USD"
    assert order.presentment_currency == "EUR"
    assert order.total == usd("98.49")  # shop money after the edit, not the EUR one
    assert order.lines == (
        OrderLine(
            sku="TSHIRT-RED-M",
            quantity=3,
            channel_product_id="44012345678901",
            name="T-Shirt & Co Red - M",
            unit_price=usd("19.50"),
            line_id="5678901234567890456",
        ),
        OrderLine(
            sku=None,
            quantity=1,
            channel_product_id="8123456789099",
            name="Stoneware Mug",
            unit_price=usd("39.99"),
            line_id="13600000000001",
        ),
    )
    assert order.pickup == Pickup(requested=True, channel_location_id="76543210987")
    assert order.customer_location == GeoPoint(45.5019, -73.5674)
    assert rules(result) == [
        ("id.disagree", "id"),
        ("id.disagree", "line_items[0].id"),
        ("line.removed", "line_items[2].current_quantity"),
        ("line.not_stock", "line_items[3]"),
    ]


def test_a_rest_list_reads_a_pos_order_and_a_cancelled_local_pickup_order() -> None:
    pos_body, web_body = ADAPTER.split(load(REST_LIST))
    pos, web = parse(pos_body), parse(web_body)

    assert pos.order.external_id == "6012345678901"
    assert pos.order.external_number == "#2001"
    assert pos.order.event is OrderEvent.CREATE
    assert pos.order.cancelled is False
    assert pos.order.status == "paid"
    assert pos.order.placed_at == datetime(2025, 6, 1, 16, 0, tzinfo=UTC)
    assert pos.order.updated_at == datetime(2025, 6, 1, 16, 0, 5, tzinfo=UTC)
    assert pos.order.customer == Customer(id="207119551", email="regular@example.ca", guest=False)
    assert pos.order.currency == "CAD"
    assert pos.order.total == Money(Decimal("25.00"), "CAD")
    assert pos.order.lines == (
        OrderLine(
            sku="POS-TOTE",
            quantity=1,
            channel_product_id="45000000000001",
            name="Canvas Tote",
            unit_price=Money(Decimal("25.00"), "CAD"),
            line_id="14000000000001",
        ),
    )
    assert pos.order.pickup == Pickup(requested=True, channel_location_id="61234567")
    assert pos.order.customer_location is None  # 0, 0 is a placeholder
    assert rules(pos) == []

    assert web.order.external_id == "6012345678902"
    assert web.order.event is OrderEvent.CANCEL  # no topic, cancelled_at set
    assert web.order.cancelled is True
    assert web.order.status == "cancelled:inventory"
    assert web.order.currency == "CAD"
    assert web.order.presentment_currency == "USD"
    assert web.order.total == Money(Decimal("0.00"), "CAD")  # current total after the refund
    assert web.order.lines[0].sku == "SCARF-GREY"
    assert web.order.lines[0].quantity == 2
    assert web.order.lines[0].unit_price == Money(Decimal("27.00"), "CAD")
    assert web.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert web.order.customer_location == GeoPoint(43.6532, -79.3832)
    assert rules(web) == [
        ("pickup.inferred", "shipping_lines"),
        ("pickup.no_location", "location_id"),
    ]
    assert all(d.action is RuleAction.WARN for d in web.decisions)


# --- events -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "event"),
    [
        ("orders/create", OrderEvent.CREATE),
        ("orders/updated", OrderEvent.UPDATE),
        ("orders/edited", OrderEvent.UPDATE),
        ("orders/paid", OrderEvent.UPDATE),
        ("orders/fulfilled", OrderEvent.UPDATE),
        ("orders/partially_fulfilled", OrderEvent.UPDATE),
        ("orders/cancelled", OrderEvent.CANCEL),
        (" Orders/Updated ", OrderEvent.UPDATE),
        ("ORDERS_PARTIALLY_FULFILLED", OrderEvent.UPDATE),
    ],
)
def test_the_topic_names_the_event(topic: str, event: OrderEvent) -> None:
    body = sample()
    body["cancelled_at"] = None

    order = parse(body, topic).order

    assert order.event is event
    assert order.cancelled is (event is OrderEvent.CANCEL)


def test_the_topic_is_read_from_the_header_when_the_delivery_has_none() -> None:
    result = ADAPTER.parse(sample(), delivery(headers={"x-shopify-topic": "orders/updated"}))

    assert isinstance(result, Parsed)
    assert result.order.event is OrderEvent.UPDATE


def test_an_update_of_a_cancelled_order_stays_an_update_marked_cancelled() -> None:
    order = parse(sample(), "orders/updated").order

    assert order.event is OrderEvent.UPDATE
    assert order.cancelled is True


def test_a_rest_body_without_topic_is_a_create_or_a_cancel_by_cancelled_at() -> None:
    cancelled = parse({"order": sample()}).order
    live_body = sample()
    live_body["cancelled_at"] = None
    live = parse({"order": live_body}).order

    assert cancelled.event is OrderEvent.CANCEL
    assert cancelled.cancelled is True
    assert live.event is OrderEvent.CREATE
    assert live.cancelled is False
    assert live.status == "voided"  # the financial status


@pytest.mark.parametrize(
    "topic", ["orders/risk_assessment_changed", "products/update", "fulfillments/create"]
)
def test_other_topics_are_not_orders(topic: str) -> None:
    assert topic in ignored(sample(), topic).reason


def test_the_real_orders_edited_body_is_not_an_order() -> None:
    body = {"order_edit": {"id": 78912328793123780, "order_id": 820982911946154500}}

    assert "orders/updated" in ignored(body, "orders/edited").reason
    assert "orders/updated" in ignored(body).reason


def test_orders_delete_releases_the_order_without_lines() -> None:
    result = parse({"id": 450789469}, "orders/delete")
    order = result.order

    assert order.external_id == "450789469"
    assert order.event is OrderEvent.CANCEL
    assert order.cancelled is True
    assert order.status == "deleted"
    assert order.lines == ()
    assert order.pickup == Pickup(requested=False)
    assert order.updated_at == RECEIVED
    assert rules(result) == [("timestamp.unreadable", "updated_at")]


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "topic"),
    [
        ([], "orders/create"),
        ("an order", "orders/create"),
        ({"order": "not an object"}, None),
        ({"orders": [{"id": 1}]}, None),
        ({"note": "hello"}, None),
    ],
)
def test_a_body_that_is_not_an_order_object_is_refused(payload: Any, topic: str | None) -> None:
    assert refused(payload, topic).code == "MALFORMED"


def test_an_order_without_line_items_is_refused_unless_cancelled() -> None:
    body = sample()
    body["line_items"] = []
    body["cancelled_at"] = None
    cancelled = sample()
    cancelled["line_items"] = []

    assert refused(body, "orders/create").code == "MISSING_ITEMS"
    assert parse(cancelled, "orders/cancelled").order.lines == ()


def test_a_line_item_that_is_not_an_object_is_refused() -> None:
    body = sample()
    body["line_items"][1] = "IPOD2008PINK"

    error = refused(body, "orders/create")

    assert (error.code, error.field) == ("MALFORMED", "line_items[1]")


# --- ids ----------------------------------------------------------------------------------------


def test_an_order_without_any_id_is_refused() -> None:
    body = sample()
    del body["id"], body["admin_graphql_api_id"]

    error = refused(body, "orders/create")

    assert (error.code, error.field) == ("MISSING_ID", "id")


def test_a_big_id_without_gid_is_kept_exact_when_it_does_not_read_like_a_double() -> None:
    body = sample()
    del body["admin_graphql_api_id"]
    body["id"] = 9007199254740993  # 2**53 + 1: no double has these digits

    result = parse(body, "orders/create")

    assert result.order.external_id == "9007199254740993"
    assert ("id.inexact", "id") not in rules(result)


def test_a_big_id_without_gid_that_reads_like_a_double_is_kept_with_a_warning() -> None:
    body = sample()
    del body["admin_graphql_api_id"]

    result = parse(body, "orders/create")

    assert result.order.external_id == "820982911946154500"
    assert rules(result)[0] == ("id.inexact", "id")
    assert result.decisions[0].action is RuleAction.WARN


def test_a_string_id_beside_the_gid_agrees_without_a_decision() -> None:
    body = sample()
    body["id"] = "820982911946154508"

    result = parse(body, "orders/create")

    assert result.order.external_id == "820982911946154508"
    assert ("id.disagree", "id") not in rules(result)


# --- lines --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(2, 2), ("2", 2), ("3.000000", 3), (Decimal("4.0"), 4), (" 5 ", 5)],
)
def test_whole_quantities_in_any_form_are_read(quantity: object, expected: int) -> None:
    body = sample()
    body["line_items"][0]["quantity"] = quantity

    assert parse(body, "orders/create").order.lines[0].quantity == expected


@pytest.mark.parametrize("quantity", ["1.5", Decimal("0.5"), 0, "-1", "two", None, ""])
def test_a_quantity_that_is_not_a_positive_whole_number_refuses_the_order(
    quantity: object,
) -> None:
    body = sample()
    body["line_items"][0]["quantity"] = quantity

    error = refused(body, "orders/create")

    assert (error.code, error.field) == ("INVALID_QUANTITY", "line_items[0].quantity")


def test_current_quantity_after_an_edit_wins_over_the_ordered_quantity() -> None:
    body = sample()
    body["line_items"][0]["quantity"] = 3
    body["line_items"][0]["current_quantity"] = "2"

    assert parse(body, "orders/create").order.lines[0].quantity == 2


def test_a_fractional_current_quantity_refuses_the_order() -> None:
    body = sample()
    body["line_items"][0]["current_quantity"] = "0.5"

    error = refused(body, "orders/create")

    assert (error.code, error.field) == ("INVALID_QUANTITY", "line_items[0].current_quantity")


@pytest.mark.parametrize(
    ("price_set", "price", "expected"),
    [
        (None, "12.50", "12.50"),
        (None, 12.5, "12.5"),  # a JSON number, kept exact by loads
        ({"shop_money": {"amount": "10.00", "currency_code": "USD"}}, "99.00", "10.00"),
        ({"shop_money": {"amount": None}}, "7.25", "7.25"),
    ],
)
def test_the_unit_price_is_the_shop_money_else_the_price(
    price_set: object, price: object, expected: str
) -> None:
    body = sample()
    body["line_items"][0]["price_set"] = price_set
    body["line_items"][0]["price"] = Decimal(str(price)) if isinstance(price, float) else price

    unit_price = parse(body, "orders/create").order.lines[0].unit_price

    assert unit_price == usd(expected)
    assert unit_price is not None
    assert str(unit_price.amount) == expected


def test_a_price_that_is_not_a_number_refuses_the_order() -> None:
    body = sample()
    body["line_items"][0]["price_set"] = {"shop_money": {"amount": "12,5O", "currency_code": "USD"}}

    error = refused(body, "orders/create")

    assert (error.code, error.field) == (
        "INVALID_AMOUNT",
        "line_items[0].price_set.shop_money.amount",
    )


def test_amounts_without_any_currency_refuse_the_order() -> None:
    body = sample()
    body["currency"] = None
    for key in ("current_total_price_set", "total_price_set", "current_total_price"):
        del body[key]
    body["line_items"][0]["price_set"] = None

    assert refused(body, "orders/create").code == "MISSING_CURRENCY"


def test_the_total_falls_back_to_total_price_set_then_the_plain_total() -> None:
    without_current = sample()
    del without_current["current_total_price_set"]
    plain = sample()
    del plain["current_total_price_set"], plain["total_price_set"], plain["current_total_price"]

    assert parse(without_current, "orders/create").order.total == usd("388.00")
    assert parse(plain, "orders/create").order.total == usd("388.00")


@pytest.mark.parametrize(
    ("sku", "expected"),
    [("", None), ("   ", None), (None, None), (" AB-1 ", "AB-1"), (4711, "4711")],
)
def test_skus_are_cleaned_and_an_empty_one_is_none(sku: object, expected: str | None) -> None:
    body = sample()
    body["line_items"][0]["sku"] = sku

    line = parse(body, "orders/create").order.lines[0]

    assert line.sku == expected
    assert line.channel_product_id == "808950810"  # kept for a rule to map


def test_without_variant_the_product_id_names_the_line() -> None:
    body = sample()
    body["line_items"][0]["variant_id"] = None

    assert parse(body, "orders/create").order.lines[0].channel_product_id == "632910392"


def test_a_line_without_sku_whose_product_id_went_through_a_double_is_warned() -> None:
    body = load(CANCELLED_2026)
    body["line_items"][0]["sku"] = ""

    result = parse(body, "orders/cancelled")

    assert result.order.lines[0].channel_product_id == "788032119674292900"
    assert ("id.inexact", "line_items[0].product_id") in rules(result)


def test_a_line_naming_no_product_at_all_is_kept_with_a_warning() -> None:
    body = sample()
    line = body["line_items"][0]
    line["sku"], line["variant_id"], line["product_id"] = "", None, None

    result = parse(body, "orders/create")

    assert result.order.lines[0].sku is None
    assert result.order.lines[0].channel_product_id is None
    assert ("line.unidentified", "line_items[0]") in rules(result)


def test_names_lose_html_entities_tags_and_scripts() -> None:
    body = sample()
    body["line_items"][0]["name"] = "Caf&eacute; &amp;amp; <b>Bar</b><script>steal()</script>"
    body["line_items"][1]["name"] = None  # falls back to the title

    lines = parse(body, "orders/create").order.lines

    assert lines[0].name == "Café & Bar"
    assert lines[1].name == "IPod Nano - 8GB"


# --- customers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("customer", [None, {}, {"id": None}, {"id": 0, "email": None}])
def test_an_order_without_customer_id_is_a_guest(customer: object) -> None:
    body = sample()
    if customer is None:
        del body["customer"]
    else:
        body["customer"] = customer

    result = parse(body, "orders/create")

    assert result.order.customer == Customer(id=None, email="jon@example.com", guest=True)
    assert ("customer.emails_differ", "email") not in rules(result)


def test_an_invalid_email_is_left_out_with_a_warning() -> None:
    body = sample()
    body["email"] = "not-an-email"
    body["contact_email"] = None

    result = parse(body, "orders/create")

    assert result.order.customer.email == "john@example.com"
    assert ("customer.email_invalid", "email") in rules(result)


# --- times --------------------------------------------------------------------------------------


def test_an_unreadable_created_at_is_repaired_to_the_receive_time() -> None:
    body = sample()
    body["created_at"] = "31/12/2021 7pm"

    result = parse(body, "orders/create")

    assert result.order.placed_at == RECEIVED
    assert ("timestamp.unreadable", "created_at") in rules(result)


def test_processed_at_stands_in_for_a_missing_created_at() -> None:
    body = load(CANCELLED_2026)
    del body["created_at"]
    body["processed_at"] = "2021-12-31 19:00:00 -05:00"

    result = parse(body, "orders/cancelled")

    assert result.order.placed_at == SAMPLE_TIME
    assert ("timestamp.unreadable", "created_at") not in rules(result)


def test_an_unreadable_updated_at_is_the_receive_time_and_a_missing_one_is_none() -> None:
    broken = sample()
    broken["updated_at"] = "yesterday"
    missing = sample()
    del missing["updated_at"]

    broken_result = parse(broken, "orders/updated")
    missing_order = parse(missing, "orders/updated").order

    assert broken_result.order.updated_at == RECEIVED
    assert ("timestamp.unreadable", "updated_at") in rules(broken_result)
    assert missing_order.updated_at is None
    assert missing_order.version_time == SAMPLE_TIME


# --- customer location --------------------------------------------------------------------------


def test_the_customer_location_is_the_shipping_address_else_the_billing_one() -> None:
    body = sample()
    body["shipping_address"]["latitude"] = " 38.2527 "
    body["shipping_address"]["longitude"] = "-85.7585"
    billing_only = sample()
    billing_only["billing_address"]["latitude"] = 51.5
    billing_only["billing_address"]["longitude"] = Decimal("-0.12")

    assert parse(body, "orders/create").order.customer_location == GeoPoint(38.2527, -85.7585)
    assert parse(billing_only, "orders/create").order.customer_location == GeoPoint(51.5, -0.12)


def test_an_out_of_range_shipping_point_is_left_out_and_the_billing_point_used() -> None:
    body = sample()
    body["shipping_address"]["latitude"] = "123.4"
    body["shipping_address"]["longitude"] = "45.6"
    body["billing_address"]["latitude"] = "38.2527"
    body["billing_address"]["longitude"] = "-85.7585"

    result = parse(body, "orders/create")

    assert result.order.customer_location == GeoPoint(38.2527, -85.7585)
    assert ("location.out_of_range", "shipping_address") in rules(result)


@pytest.mark.parametrize(("lat", "lon"), [("", ""), ("n/a", "n/a"), ("0", "0"), (None, None)])
def test_placeholder_coordinates_are_no_location(lat: object, lon: object) -> None:
    body = sample()
    body["shipping_address"]["latitude"] = lat
    body["shipping_address"]["longitude"] = lon

    result = parse(body, "orders/create")

    assert result.order.customer_location is None
    assert not [r for r, _ in rules(result) if r.startswith("location.")]


def test_unreadable_coordinates_are_left_out_with_a_warning() -> None:
    body = sample()
    body["shipping_address"]["latitude"] = "north"
    body["shipping_address"]["longitude"] = "west"

    result = parse(body, "orders/create")

    assert result.order.customer_location is None
    assert ("location.unreadable", "shipping_address") in rules(result)


# --- pickup -------------------------------------------------------------------------------------


def without_shipping(location_id: object, requires_shipping: bool) -> dict[str, Any]:
    body = sample()
    body["shipping_lines"] = []
    body["location_id"] = location_id
    for line in body["line_items"]:
        line["requires_shipping"] = requires_shipping
    return body


def test_no_shipping_line_and_a_location_is_a_pickup_there() -> None:
    result = parse(without_shipping(24826418, True), "orders/create")

    assert result.order.pickup == Pickup(requested=True, channel_location_id="24826418")
    assert not [r for r, _ in rules(result) if r.startswith("pickup.")]


def test_a_till_sale_already_handed_over_holds_nothing() -> None:
    body = without_shipping(24826418, True)
    body.update(source_name="pos", fulfillment_status="fulfilled")

    result = parse(body, "orders/create")

    assert result.order.pickup == Pickup(requested=False)
    assert ("pickup.handed_over", "fulfillment_status") in rules(result)


@pytest.mark.parametrize(
    ("source_name", "fulfillment_status"), [("pos", None), ("pos", "partial"), ("web", "fulfilled")]
)
def test_a_till_order_not_yet_handed_over_and_a_web_order_are_read_as_before(
    source_name: str, fulfillment_status: str | None
) -> None:
    body = without_shipping(24826418, True)
    body.update(source_name=source_name, fulfillment_status=fulfillment_status)

    result = parse(body, "orders/create")

    assert result.order.pickup == Pickup(requested=True, channel_location_id="24826418")
    assert ("pickup.handed_over", "fulfillment_status") not in rules(result)


def test_no_shipping_line_for_items_to_ship_is_a_pickup_without_location() -> None:
    result = parse(without_shipping(None, True), "orders/create")

    assert result.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert ("pickup.no_location", "location_id") in rules(result)


def test_no_shipping_line_for_items_that_need_no_shipping_is_not_a_pickup() -> None:
    result = parse(without_shipping(None, False), "orders/create")

    assert result.order.pickup == Pickup(requested=False)


def test_removed_shipping_lines_count_as_none() -> None:
    body = without_shipping(24826418, True)
    body["shipping_lines"] = [{"title": "Generic Shipping", "code": None, "is_removed": True}]

    assert parse(body, "orders/create").order.pickup == Pickup(True, "24826418")


@pytest.mark.parametrize(
    ("code", "title", "requested"),
    [
        ("Pickup", "Main Street", True),
        (None, "In-store pick-up", True),
        ("click_and_collect", "Click & Collect", True),
        (None, "Collect in store", True),
        ("Standard", "Standard Shipping", False),
        ("dhl_pickup_point", "DHL Pickup Point", False),
        (None, "Parcel locker pick up", False),
    ],
)
def test_a_shipping_line_titled_as_a_pickup_is_one(
    code: str | None, title: str, requested: bool
) -> None:
    body = sample()
    body["location_id"] = 24826418
    body["shipping_lines"][0]["code"] = code
    body["shipping_lines"][0]["title"] = title

    result = parse(body, "orders/create")

    expected = Pickup(True, "24826418") if requested else Pickup(False)
    assert result.order.pickup == expected
    assert (("pickup.inferred", "shipping_lines") in rules(result)) is requested


def test_a_pick_up_fulfillment_order_is_a_pickup_at_its_assigned_location() -> None:
    body = sample()  # its shipping line says "Generic Shipping": the fulfillment orders win
    body["fulfillment_orders"] = [
        {
            "status": "open",
            "assigned_location_id": 905684977,
            "delivery_method": {"method_type": "pick_up"},
        }
    ]

    result = parse(body, "orders/create")

    assert result.order.pickup == Pickup(requested=True, channel_location_id="905684977")
    assert not [r for r, _ in rules(result) if r.startswith("pickup.")]


def test_a_pickup_beside_shipping_fulfillment_orders_is_kept_with_a_warning() -> None:
    body = sample()
    body["fulfillment_orders"] = [
        {"status": "open", "delivery_method": {"method_type": "SHIPPING"}},
        {
            "status": "open",
            "assigned_location": {"location_id": "gid://shopify/Location/905684977"},
            "delivery_method": {"method_type": "PICK_UP"},
        },
    ]

    result = parse(body, "orders/create")

    assert result.order.pickup == Pickup(requested=True, channel_location_id="905684977")
    assert ("pickup.mixed", "fulfillment_orders") in rules(result)


@pytest.mark.parametrize("method_type", ["SHIPPING", "LOCAL", "RETAIL", "PICKUP_POINT", "none"])
def test_fulfillment_orders_of_other_methods_are_not_a_pickup(method_type: str) -> None:
    body = sample()
    body["shipping_lines"][0]["title"] = "Store Pickup"  # the fulfillment orders win
    body["fulfillment_orders"] = [
        {"status": "open", "delivery_method": {"method_type": method_type}}
    ]

    assert parse(body, "orders/create").order.pickup == Pickup(requested=False)


def test_fulfillment_orders_without_delivery_method_leave_it_to_the_shipping_lines() -> None:
    body = sample()
    body["location_id"] = 24826418
    body["shipping_lines"][0]["title"] = "Store Pickup"
    body["fulfillment_orders"] = [{"status": "open", "assigned_location_id": 1}]

    assert parse(body, "orders/create").order.pickup == Pickup(True, "24826418")


def test_a_pick_up_fulfillment_order_without_location_is_warned() -> None:
    body = sample()
    body["fulfillment_orders"] = [{"delivery_method": {"method_type": "PICK_UP"}}]

    result = parse(body, "orders/create")

    assert result.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert ("pickup.no_location", "fulfillment_orders.assigned_location_id") in rules(result)
