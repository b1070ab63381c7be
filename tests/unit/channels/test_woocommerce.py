"""The WooCommerce adapter: the published REST v3 sample field by field, and the messier payloads
WooCommerce, its plugins and its legacy API really send, each with its defined outcome."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.common import loads
from adapters.channels.woocommerce import ADAPTER
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "woocommerce"
ORDER_727 = "wc_rest_v3_retrieve_order_727_docs.json"
BLOCK_PICKUP = "authored_webhook_order_local_pickup_block_guest.json"
LEGACY = "authored_legacy_wc_api_v3_order_local_pickup.json"
REST_LIST = "authored_rest_orders_list_pickup_plus_and_cancelled.json"
PING = "authored_webhook_ping.json"
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EN_DASH = "\u2013"  # what &ndash; and &#8211; decode to


def load(name: str) -> Any:
    return loads((FIXTURES / name).read_bytes())


def delivery(topic: str | None = None, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery(
        SalesChannel.WOOCOMMERCE, "shop-fr", RECEIVED, topic=topic, headers=headers or {}
    )


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
    """The published order 727, to modify one field at a time."""
    body = load(ORDER_727)
    assert isinstance(body, dict)
    return copy.deepcopy(body)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# --- the adapter and its bodies -----------------------------------------------------------------


def test_the_adapter_is_a_channel_adapter_for_woocommerce() -> None:
    adapter: ChannelAdapter = ADAPTER

    assert adapter.channel is SalesChannel.WOOCOMMERCE


def test_split_gives_one_payload_per_order_of_a_list_body() -> None:
    one = sample()
    listed = load(REST_LIST)
    legacy = load(LEGACY)

    assert ADAPTER.split(one) == [one]
    assert ADAPTER.split(listed) == listed
    assert len(ADAPTER.split(listed)) == 2
    assert ADAPTER.split(legacy) == [legacy]
    assert ADAPTER.split({"orders": [legacy["order"]]}) == [legacy]
    assert ADAPTER.split([]) == []


# --- the published sample, field by field -------------------------------------------------------


def test_the_rest_v3_order_727_sample_reads_field_by_field() -> None:
    result = parse(load(ORDER_727))
    order = result.order

    assert order.channel is SalesChannel.WOOCOMMERCE
    assert order.account == "shop-fr"
    assert order.external_id == "727"
    assert order.external_number == "727"
    assert order.event is OrderEvent.CREATE
    assert order.cancelled is False
    assert order.status == "processing"
    assert order.placed_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)  # the _gmt time
    assert order.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert order.customer == Customer(id=None, email="john.doe@example.com", guest=True)
    assert order.currency == "USD"
    assert order.presentment_currency is None
    assert order.total == usd("29.35")
    assert order.total is not None
    assert str(order.total.amount) == "29.35"
    assert order.lines == (
        OrderLine(
            sku=None,
            quantity=2,
            channel_product_id="93",
            name="Woo Single #1",
            unit_price=usd("3"),
            line_id="315",
        ),
        OrderLine(
            sku="Bar3",
            quantity=1,
            channel_product_id="23",  # the variation, not the parent product 22
            name=f"Ship Your Idea {EN_DASH} Color: Black, Size: M Test",
            unit_price=usd("12"),
            line_id="316",
        ),
    )
    assert order.pickup == Pickup(requested=False)  # flat_rate
    assert order.customer_location is None
    assert rules(result) == []


# --- authored payloads, field by field ----------------------------------------------------------


def test_a_block_local_pickup_guest_webhook_reads_field_by_field() -> None:
    result = parse(load(BLOCK_PICKUP), "order.created")
    order = result.order

    assert order.external_id == "9007199254740993"  # above 2**53, exact
    assert order.external_number == "10452"
    assert order.event is OrderEvent.CREATE
    assert order.cancelled is False
    assert order.status == "processing"
    assert order.placed_at == datetime(2026, 2, 10, 13, 5, 9, tzinfo=UTC)
    assert order.updated_at == datetime(2026, 2, 10, 13, 6, tzinfo=UTC)
    assert order.customer == Customer(id=None, email="guest.buyer@example.org", guest=True)
    assert order.currency == "EUR"
    assert order.total == Money(Decimal("47.30"), "EUR")
    assert order.lines == (
        OrderLine(
            sku="4006381333931",
            quantity=2,
            channel_product_id="301",
            name="Café Crème Deluxe",
            unit_price=Money(Decimal("7.90"), "EUR"),  # total 15.80 over 2
            line_id="8801",
        ),
        OrderLine(
            sku=None,
            quantity=3,
            channel_product_id="418",
            name=f"Gift Box {EN_DASH} Large",
            unit_price=Money(Decimal("10.5"), "EUR"),
            line_id="8802",
        ),
    )
    assert order.pickup == Pickup(requested=True, channel_location_id="Centre Ville")
    assert order.customer_location is None
    assert rules(result) == []


def test_a_legacy_wc_api_v3_order_reads_field_by_field() -> None:
    result = parse(load(LEGACY))
    order = result.order

    assert order.external_id == "645"
    assert order.external_number == "645"
    assert order.event is OrderEvent.CREATE
    assert order.cancelled is False
    assert order.status == "processing"
    assert order.placed_at == datetime(2015, 1, 26, 20, 0, 21, tzinfo=UTC)
    assert order.updated_at == datetime(2015, 1, 26, 20, 5, tzinfo=UTC)
    # billing_address and customer carry the same email in another case: one email, no decision
    assert order.customer == Customer(id="2", email="john.doe@example.com", guest=False)
    assert order.currency == "USD"
    assert order.total == usd("43.98")
    assert order.lines == (
        OrderLine(
            sku=None,
            quantity=2,
            channel_product_id="546",
            name="Premium Quality",
            unit_price=usd("21.99"),
            line_id="504",
        ),
    )
    assert order.pickup == Pickup(requested=True, channel_location_id=None)
    assert order.customer_location is None
    assert rules(result) == [("pickup.no_location", "shipping_lines.meta_data")]
    assert result.decisions[0].action is RuleAction.WARN


def test_a_list_reads_a_pickup_plus_order_and_a_cancelled_one() -> None:
    first_body, second_body = ADAPTER.split(load(REST_LIST))
    first, second = parse(first_body), parse(second_body)

    assert first.order.external_id == "1201"
    assert first.order.event is OrderEvent.CREATE
    assert first.order.status == "on-hold"
    assert first.order.placed_at == datetime(2025, 11, 3, 9, 0, tzinfo=UTC)  # local, read as UTC
    assert first.order.updated_at == datetime(2025, 11, 3, 9, 10, tzinfo=UTC)
    assert first.order.customer == Customer(id="57", email="member@example.co.uk", guest=False)
    assert first.order.currency == "GBP"
    assert first.order.total == Money(Decimal("10.00"), "GBP")
    assert first.order.lines == (
        OrderLine(
            sku="A-1",
            quantity=2,
            channel_product_id="77",
            name="Notebook A5",
            unit_price=Money(Decimal("5"), "GBP"),
            line_id="9001",
        ),
    )
    assert first.order.pickup == Pickup(requested=True, channel_location_id="37")
    assert first.order.customer_location == GeoPoint(51.5072, -0.1276)
    assert rules(first) == [
        ("timestamp.site_local", "date_created"),
        ("timestamp.site_local", "date_modified"),
    ]

    assert second.order.external_id == "1202"
    assert second.order.event is OrderEvent.CANCEL
    assert second.order.cancelled is True
    assert second.order.status == "cancelled"
    assert second.order.placed_at == datetime(2025, 11, 3, 10, 0, tzinfo=UTC)
    assert second.order.updated_at == datetime(2025, 11, 4, 8, 30, tzinfo=UTC)
    assert second.order.customer == Customer(id=None, email=None, guest=True)
    assert second.order.total == Money(Decimal("23.00"), "GBP")
    assert second.order.lines == (
        OrderLine(
            sku="P-3",
            quantity=3,
            channel_product_id="78",
            name="Pencil set",
            unit_price=Money(Decimal("6.67"), "GBP"),  # 20.00 over 3, rounded
            line_id="9003",
        ),
    )
    assert second.order.pickup == Pickup(requested=False)  # flat_rate:2
    assert rules(second) == [("line.unit_price_rounded", "line_items[0].total")]


def test_the_webhook_ping_is_not_an_order() -> None:
    reason = ignored(load(PING)).reason

    assert "ping" in reason
    assert "17" in reason


# --- events -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "event"),
    [
        ("order.created", OrderEvent.CREATE),
        ("order.updated", OrderEvent.UPDATE),
        ("order.restored", OrderEvent.UPDATE),
        ("order.deleted", OrderEvent.CANCEL),
        (" Order.Updated ", OrderEvent.UPDATE),
    ],
)
def test_the_topic_names_the_event(topic: str, event: OrderEvent) -> None:
    order = parse(sample(), topic).order

    assert order.event is event
    assert order.cancelled is (event is OrderEvent.CANCEL)


@pytest.mark.parametrize("status", ["cancelled", "refunded", "failed", "trash", "wc-cancelled"])
def test_an_update_to_a_cancelled_status_is_a_cancel(status: str) -> None:
    body = sample()
    body["status"] = status

    order = parse(body, "order.updated").order

    assert order.event is OrderEvent.CANCEL
    assert order.cancelled is True
    assert order.status == status.removeprefix("wc-")


def test_a_create_in_a_cancelled_status_stays_a_create_marked_cancelled() -> None:
    body = sample()
    body["status"] = "failed"

    order = parse(body, "order.created").order

    assert order.event is OrderEvent.CREATE
    assert order.cancelled is True


def test_a_rest_body_in_a_cancelled_status_is_a_cancel() -> None:
    body = sample()
    body["status"] = "refunded"

    assert parse(body).order.event is OrderEvent.CANCEL


def test_the_topic_is_read_from_the_headers_when_the_delivery_has_none() -> None:
    by_topic = ADAPTER.parse(sample(), delivery(headers={"X-WC-Webhook-Topic": "order.updated"}))
    by_parts = ADAPTER.parse(
        sample(),
        delivery(headers={"x-wc-webhook-resource": "order", "x-wc-webhook-event": "updated"}),
    )

    assert isinstance(by_topic, Parsed)
    assert isinstance(by_parts, Parsed)
    assert by_topic.order.event is OrderEvent.UPDATE
    assert by_parts.order.event is OrderEvent.UPDATE


@pytest.mark.parametrize(
    "topic", ["product.updated", "customer.created", "coupon.deleted", "action.woocommerce_x"]
)
def test_other_topics_are_not_orders(topic: str) -> None:
    assert topic in ignored(sample(), topic).reason


def test_a_deleted_order_with_only_its_id_is_released_without_lines() -> None:
    result = parse({"id": 727}, "order.deleted")
    order = result.order

    assert order.external_id == "727"
    assert order.event is OrderEvent.CANCEL
    assert order.cancelled is True
    assert order.status == "deleted"
    assert order.lines == ()
    assert order.pickup == Pickup(requested=False)
    assert order.updated_at == RECEIVED
    assert rules(result) == [("timestamp.unreadable", "date_modified_gmt")]


def test_a_checkout_draft_is_not_an_order() -> None:
    body = sample()
    body["status"] = "checkout-draft"

    assert "draft" in ignored(body, "order.created").reason


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "topic"),
    [
        ([{"id": 1}], "order.created"),
        ("an order", "order.created"),
        ({"order": 5}, None),
        ({"orders": []}, None),
        ({"hello": "world"}, None),
    ],
)
def test_a_body_that_is_not_an_order_object_is_refused(payload: Any, topic: str | None) -> None:
    assert refused(payload, topic).code == "MALFORMED"


def test_an_order_without_id_is_refused() -> None:
    body = sample()
    del body["id"]

    error = refused(body, "order.created")

    assert (error.code, error.field) == ("MISSING_ID", "id")


def test_an_order_without_line_items_is_refused_unless_cancelled() -> None:
    body = sample()
    body["line_items"] = []
    cancelled = sample()
    cancelled["line_items"] = []
    cancelled["status"] = "cancelled"

    assert refused(body, "order.created").code == "MISSING_ITEMS"
    assert parse(cancelled, "order.updated").order.lines == ()


def test_a_huge_id_is_kept_exact() -> None:
    body = sample()
    body["id"] = 123456789012345678901234567

    assert parse(body).order.external_id == "123456789012345678901234567"


# --- lines --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected"), [(2, 2), ("2", 2), ("3.000000", 3), (Decimal("1.0"), 1)]
)
def test_whole_quantities_in_any_form_are_read(quantity: object, expected: int) -> None:
    body = sample()
    body["line_items"][0]["quantity"] = quantity

    assert parse(body).order.lines[0].quantity == expected


@pytest.mark.parametrize("quantity", ["1.5", Decimal("2.25"), 0, "0", -1, "lots", None])
def test_a_quantity_that_is_not_a_positive_whole_number_refuses_the_order(
    quantity: object,
) -> None:
    body = sample()
    body["line_items"][1]["quantity"] = quantity

    error = refused(body)

    assert (error.code, error.field) == ("INVALID_QUANTITY", "line_items[1].quantity")


@pytest.mark.parametrize(
    ("price", "total", "subtotal", "expected"),
    [
        ("3.50", "7.00", "7.00", "3.50"),  # a unit price as a string
        (Decimal("3.5"), "7.00", "7.00", "3.5"),  # as a JSON number
        (None, "7.00", "8.00", "3.50"),  # the line total over the quantity
        ("", "7.00", "8.00", "3.50"),
        (None, None, "8.00", "4.00"),  # else the subtotal
    ],
)
def test_the_unit_price_is_price_else_the_line_total_over_the_quantity(
    price: object, total: object, subtotal: object, expected: str
) -> None:
    body = sample()
    line = body["line_items"][0]  # quantity 2
    line["price"], line["total"], line["subtotal"] = price, total, subtotal

    result = parse(body)
    unit_price = result.order.lines[0].unit_price

    assert unit_price == usd(expected)
    assert unit_price is not None
    assert str(unit_price.amount) == expected
    assert rules(result) == []


def test_a_line_without_any_amount_has_no_unit_price() -> None:
    body = sample()
    line = body["line_items"][0]
    line["price"], line["total"], line["subtotal"] = None, None, None

    assert parse(body).order.lines[0].unit_price is None


def test_a_line_total_that_does_not_divide_is_rounded_to_the_minor_unit() -> None:
    body = sample()
    body["currency"] = "JPY"
    body["total"] = "1000"
    line = body["line_items"][0]
    line["quantity"], line["price"], line["total"] = 3, None, "1000"

    result = parse(body)

    assert result.order.lines[0].unit_price == Money(Decimal("333"), "JPY")
    assert rules(result) == [("line.unit_price_rounded", "line_items[0].total")]


def test_a_price_that_is_not_a_number_refuses_the_order() -> None:
    body = sample()
    body["line_items"][1]["price"] = "12 EUR"

    error = refused(body)

    assert (error.code, error.field) == ("INVALID_AMOUNT", "line_items[1].price")


def test_amounts_without_a_currency_refuse_the_order() -> None:
    body = sample()
    body["currency"] = ""

    assert refused(body).code == "MISSING_CURRENCY"


def test_an_invalid_currency_refuses_the_order() -> None:
    body = sample()
    body["currency"] = "US Dollar"

    assert refused(body).code == "INVALID_CURRENCY"


@pytest.mark.parametrize(
    ("sku", "expected"), [("", None), (" ", None), (None, None), (" Bar3 ", "Bar3"), (4711, "4711")]
)
def test_skus_are_cleaned_and_the_variation_id_is_kept(sku: object, expected: str | None) -> None:
    body = sample()
    body["line_items"][1]["sku"] = sku

    line = parse(body).order.lines[1]

    assert line.sku == expected
    assert line.channel_product_id == "23"


@pytest.mark.parametrize("variation_id", [0, "0", None])
def test_without_variation_the_product_id_names_the_line(variation_id: object) -> None:
    body = sample()
    body["line_items"][1]["variation_id"] = variation_id

    assert parse(body).order.lines[1].channel_product_id == "22"


def test_a_line_naming_no_product_at_all_is_kept_with_a_warning() -> None:
    body = sample()
    body["line_items"][0]["product_id"] = 0

    result = parse(body)

    assert result.order.lines[0].sku is None
    assert result.order.lines[0].channel_product_id is None
    assert rules(result) == [("line.unidentified", "line_items[0]")]


def test_names_lose_html_entities_tags_and_scripts() -> None:
    body = sample()
    body["line_items"][0]["name"] = (
        "<script>alert('x')</script>Tee &amp;amp; <em>Cap</em> &#8211; L"
    )

    assert parse(body).order.lines[0].name == f"Tee & Cap {EN_DASH} L"


# --- customers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("customer_id", [0, "0", None, "", "absent"])
def test_customer_id_zero_null_or_absent_is_a_guest(customer_id: object) -> None:
    body = sample()
    if customer_id == "absent":
        del body["customer_id"]
    else:
        body["customer_id"] = customer_id

    customer = parse(body).order.customer

    assert customer == Customer(id=None, email="john.doe@example.com", guest=True)


def test_a_registered_customer_keeps_its_id() -> None:
    body = sample()
    body["customer_id"] = 12

    assert parse(body).order.customer == Customer(
        id="12", email="john.doe@example.com", guest=False
    )


def test_two_different_emails_keep_the_billing_one_and_note_the_other() -> None:
    body = load(LEGACY)
    body["order"]["customer"]["email"] = "j.doe@work.example.com"

    result = parse(body)

    assert result.order.customer.email == "john.doe@example.com"
    assert result.order.customer.other_emails == ("j.doe@work.example.com",)
    assert ("customer.emails_differ", "billing.email") in rules(result)


# --- times --------------------------------------------------------------------------------------


def test_the_gmt_time_wins_over_the_site_local_one() -> None:
    body = sample()
    body["date_created"] = "2017-03-22T01:00:00"  # would be wrong if read

    assert parse(body).order.placed_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)


def test_a_site_local_time_with_an_offset_is_read_without_a_warning() -> None:
    body = sample()
    del body["date_created_gmt"]
    body["date_created"] = "2017-03-22T16:28:02-03:00"

    result = parse(body)

    assert result.order.placed_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert rules(result) == []


def test_an_unreadable_created_time_is_repaired_to_the_receive_time() -> None:
    body = sample()
    body["date_created_gmt"] = "0000-00-00 00:00:00"

    result = parse(body)

    assert result.order.placed_at == RECEIVED
    assert rules(result) == [("timestamp.unreadable", "date_created_gmt")]
    assert result.decisions[0].action is RuleAction.REPAIR


def test_no_created_time_at_all_is_the_receive_time() -> None:
    body = sample()
    del body["date_created_gmt"], body["date_created"]

    result = parse(body)

    assert result.order.placed_at == RECEIVED
    assert rules(result) == [("timestamp.unreadable", "date_created_gmt")]


def test_an_unreadable_modified_time_is_the_receive_time_and_a_missing_one_is_none() -> None:
    broken = sample()
    broken["date_modified_gmt"] = "soon"
    missing = sample()
    del missing["date_modified_gmt"], missing["date_modified"]

    broken_result = parse(broken, "order.updated")
    missing_order = parse(missing, "order.updated").order

    assert broken_result.order.updated_at == RECEIVED
    assert ("timestamp.unreadable", "date_modified_gmt") in rules(broken_result)
    assert missing_order.updated_at is None
    assert missing_order.version_time == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)


# --- customer location --------------------------------------------------------------------------


def test_coordinates_a_plugin_adds_to_the_shipping_address_are_read() -> None:
    body = sample()
    body["shipping"]["latitude"] = "37.7793"
    body["shipping"]["longitude"] = "-122.4193"

    assert parse(body).order.customer_location == GeoPoint(37.7793, -122.4193)


def test_out_of_range_coordinates_are_left_out_with_a_warning() -> None:
    body = sample()
    body["billing"]["latitude"] = "-122.4193"
    body["billing"]["longitude"] = "37.7793"  # swapped: latitude out of range

    result = parse(body)

    assert result.order.customer_location is None
    assert rules(result) == [("location.out_of_range", "billing")]


# --- pickup -------------------------------------------------------------------------------------


def with_shipping(*lines: dict[str, Any]) -> dict[str, Any]:
    body = sample()
    body["shipping_lines"] = list(lines)
    return body


@pytest.mark.parametrize(
    "method_id", ["local_pickup", "local_pickup:3", "legacy_local_pickup", "Local_Pickup "]
)
def test_the_core_local_pickup_method_is_a_pickup_without_location(method_id: str) -> None:
    result = parse(with_shipping({"method_id": method_id, "method_title": "Local pickup"}))

    assert result.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert rules(result) == [("pickup.no_location", "shipping_lines.meta_data")]


def test_local_pickup_plus_names_its_location_by_id_else_by_name() -> None:
    by_id = with_shipping(
        {
            "method_id": "local_pickup_plus",
            "meta_data": [
                {"key": "_pickup_location_name", "value": "Uptown"},
                {"key": "_pickup_location_id", "value": 37},
            ],
        }
    )
    by_name = with_shipping(
        {
            "method_id": "local_pickup_plus",
            "meta_data": [
                {"key": "_pickup_location_id", "value": ""},
                {"key": "_pickup_location_name", "value": " Uptown &amp; Co "},
            ],
        }
    )

    assert parse(by_id).order.pickup == Pickup(requested=True, channel_location_id="37")
    assert parse(by_name).order.pickup == Pickup(requested=True, channel_location_id="Uptown & Co")


def test_a_shipping_method_titled_as_a_pickup_is_one_with_a_warning() -> None:
    result = parse(with_shipping({"method_id": "flat_rate", "method_title": "Click & Collect"}))

    assert result.order.pickup.requested is True
    assert rules(result) == [
        ("pickup.inferred", "shipping_lines"),
        ("pickup.no_location", "shipping_lines.meta_data"),
    ]


@pytest.mark.parametrize("title", ["Flat rate", "DPD Pickup Point", "Parcel locker pick-up"])
def test_other_shipping_methods_are_not_a_pickup(title: str) -> None:
    result = parse(with_shipping({"method_id": "flat_rate", "method_title": title}))

    assert result.order.pickup == Pickup(requested=False)
    assert rules(result) == []


def test_a_pickup_beside_another_shipping_line_is_kept_with_a_warning() -> None:
    body = with_shipping(
        {"method_id": "flat_rate", "method_title": "Flat rate"},
        {
            "method_id": "pickup_location",
            "meta_data": [{"key": "pickup_location", "value": "Centre Ville"}],
        },
    )

    result = parse(body)

    assert result.order.pickup == Pickup(requested=True, channel_location_id="Centre Ville")
    assert rules(result) == [("pickup.mixed", "shipping_lines")]


def test_no_shipping_line_is_not_a_pickup() -> None:
    result = parse(with_shipping())

    assert result.order.pickup == Pickup(requested=False)
    assert rules(result) == []
