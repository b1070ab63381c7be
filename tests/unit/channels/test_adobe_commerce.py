"""Adobe Commerce (Magento 2): REST V1 orders, search responses and Adobe I/O order events to
canonical orders, from the published samples and from messier authored ones."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.adobe_commerce import ADAPTER
from adapters.channels.common import loads
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
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "adobe-commerce"
CHECKOUT_SAMPLE = "magento_rest_V1_carts_mine_shipping_information_instore_pickup_request_docs.json"
INVOICE_SAMPLE = "adobe_io_event_observer_sales_order_invoice_save_after_docs_qty_string.json"
PICKUP_ORDER = "authored_rest_V1_order_instore_pickup_configurable_bundle.json"
SEARCH_RESPONSE = "authored_rest_V1_orders_search_response.json"
CLOUD_EVENT = "authored_cloudevent_sales_order_save_after_pickup.json"

RECEIVED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
DELIVERY = Delivery(SalesChannel.ADOBE_COMMERCE, "acme", RECEIVED)


def fixture(name: str) -> Any:
    return loads((FIXTURES / name).read_bytes())


def parsed(payload: Any, delivery: Delivery = DELIVERY) -> Parsed:
    result = ADAPTER.parse(payload, delivery)
    assert isinstance(result, Parsed), result
    return result


def ignored(payload: Any, delivery: Delivery = DELIVERY) -> NotAnOrder:
    result = ADAPTER.parse(payload, delivery)
    assert isinstance(result, NotAnOrder), result
    return result


def refused(payload: Any) -> PayloadRefused:
    with pytest.raises(PayloadRefused) as caught:
        ADAPTER.parse(payload, DELIVERY)
    return caught.value


def decided(result: Parsed) -> list[tuple[str, RuleAction, str | None]]:
    return [(d.rule, d.action, d.field) for d in result.decisions]


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def order(**changes: Any) -> dict[str, Any]:
    """A small valid REST V1 order for in-store pickup, with `changes` applied."""
    body: dict[str, Any] = {
        "entity_id": 500,
        "increment_id": "000000500",
        "state": "new",
        "status": "pending",
        "created_at": "2026-01-05 10:20:30",
        "updated_at": "2026-01-05 10:20:31",
        "customer_is_guest": True,
        "customer_email": "shopper@example.com",
        "order_currency_code": "USD",
        "base_currency_code": "USD",
        "global_currency_code": "USD",
        "grand_total": "20.0000",
        "items": [
            {
                "item_id": 900,
                "product_id": 41,
                "product_type": "simple",
                "sku": "SKU-1",
                "name": "Thing",
                "qty_ordered": "1.0000",
                "price": "20.0000",
            }
        ],
        "extension_attributes": {
            "shipping_assignments": [{"shipping": {"method": "instore_pickup"}}],
            "pickup_location_code": "brooklyn",
        },
    }
    body.update(changes)
    return body


def item(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = copy.deepcopy(order()["items"][0])
    line.update(changes)
    return line


def cloud_event(event_type: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "type": event_type, "id": "evt-1", "data": {"value": value}}


# --- the adapter ---------------------------------------------------------------------------


def test_the_adapter_is_a_channel_adapter_for_adobe_commerce() -> None:
    adapter: ChannelAdapter = ADAPTER

    assert adapter.channel is SalesChannel.ADOBE_COMMERCE


# --- the published samples -----------------------------------------------------------------


def test_the_published_checkout_request_is_not_an_order() -> None:
    payload = fixture(CHECKOUT_SAMPLE)

    assert ADAPTER.split(payload) == [payload]
    result = ignored(payload)

    assert "checkout request" in result.reason
    assert "not an order" in result.reason


def test_the_published_invoice_event_is_not_an_order() -> None:
    payload = fixture(INVOICE_SAMPLE)

    assert ADAPTER.split(payload) == [payload]
    result = ignored(payload)

    assert result.reason.startswith("An Adobe Commerce invoice (000000013, of order 8)")


def test_the_published_invoice_is_not_an_order_under_its_topic_either() -> None:
    delivery = Delivery(
        SalesChannel.ADOBE_COMMERCE,
        "acme",
        RECEIVED,
        headers={
            "X-Adobe-Event-Code": "com.adobe.commerce.observer.sales_order_invoice_save_after"
        },
    )

    result = ignored(fixture(INVOICE_SAMPLE), delivery)

    assert "invoice" in result.reason


def test_an_invoice_that_carries_its_order_is_an_update_of_that_order() -> None:
    """The published invoice, given the order it belongs to (its quantities are strings like the
    invoice's own "3.000000")."""
    payload = fixture(INVOICE_SAMPLE)
    invoice = payload["event"]["data"]["value"]
    invoice["order"] = {
        "entity_id": "8",
        "increment_id": "000000008",
        "state": "processing",
        "status": "processing",
        "created_at": "2023-04-06 18:30:00",
        "updated_at": "2023-04-06 18:36:18",
        "customer_is_guest": "1",
        "customer_email": "guest@example.com",
        "order_currency_code": invoice["order_currency_code"],
        "base_currency_code": invoice["base_currency_code"],
        "grand_total": "1100.0000",
        "shipping_method": "instore_pickup",
        "extension_attributes": {"pickup_location_code": "brooklyn"},
        "items": [
            {
                "item_id": line["order_item_id"],
                "product_id": line["product_id"],
                "sku": line["sku"],
                "name": line["name"],
                "qty_ordered": line["qty"],
                "price": line["price"],
            }
            for line in invoice["items"]
        ],
    }

    result = parsed(payload)

    got = result.order
    assert got.external_id == "8"
    assert got.external_number == "000000008"
    assert got.event is OrderEvent.UPDATE
    assert got.lines == (
        OrderLine("simple-product-2", 3, "22", "Simple Product 2", usd("200"), "8"),
        OrderLine("simple-product-1", 5, "21", "Simple Product 1", usd("100"), "9"),
    )
    assert got.total == usd("1100")
    assert got.pickup == Pickup(requested=True, channel_location_id="brooklyn")
    assert got.customer == Customer(id=None, email="guest@example.com", guest=True)
    assert result.decisions == ()


# --- authored REST bodies ------------------------------------------------------------------


def test_a_rest_order_for_pickup_reads_field_by_field() -> None:
    payload = fixture(PICKUP_ORDER)

    assert ADAPTER.split(payload) == [payload]
    result = parsed(payload)

    assert result.order == ChannelOrder(
        channel=SalesChannel.ADOBE_COMMERCE,
        account="acme",
        external_id="1042",
        external_number="000001042",
        event=OrderEvent.CREATE,
        placed_at=datetime(2026, 1, 5, 10, 20, 30, tzinfo=UTC),
        updated_at=datetime(2026, 1, 5, 10, 25, 2, tzinfo=UTC),
        customer=Customer(id="77", email="jane.doe@example.com", guest=False),
        currency="EUR",
        presentment_currency="EUR",
        total=Money(Decimal("118.50"), "EUR"),
        lines=(
            # The configurable's parent carries SKU, quantity and price; its child's product id.
            OrderLine(
                sku="MS-TEE-M-BLUE",
                quantity=2,
                channel_product_id="402",
                name="Organic Tee & Co",
                unit_price=Money(Decimal("29.50"), "EUR"),
                line_id="2101",
            ),
            # The bundle's children are the lines; the bundle parent is left out.
            OrderLine("MUG-WHITE", 1, "511", "Mug, white", Money(Decimal("23.5"), "EUR"), "2104"),
            OrderLine("TEA-EARLGREY", 3, "512", "Earl Grey tea", Money(Decimal(12), "EUR"), "2105"),
        ),
        pickup=Pickup(requested=True, channel_location_id="brooklyn"),
        customer_location=None,
        cancelled=False,
        status="pending",
    )
    assert result.decisions == ()


def test_the_units_of_a_configurable_and_a_bundle_are_counted_once() -> None:
    result = parsed(fixture(PICKUP_ORDER))

    assert sum(line.quantity for line in result.order.lines) == 6
    assert result.order.value() == Decimal("118.5")


def test_a_search_response_splits_into_its_orders() -> None:
    payload = fixture(SEARCH_RESPONSE)

    parts = ADAPTER.split(payload)

    assert [part["entity_id"] for part in parts] == [1043, 1044]


def test_the_search_responses_guest_pickup_reads_field_by_field() -> None:
    result = parsed(ADAPTER.split(fixture(SEARCH_RESPONSE))[0])

    assert result.order == ChannelOrder(
        channel=SalesChannel.ADOBE_COMMERCE,
        account="acme",
        external_id="1043",
        external_number="000001043",
        event=OrderEvent.CREATE,
        placed_at=datetime(2026, 1, 6, 9, 0, tzinfo=UTC),
        updated_at=datetime(2026, 1, 6, 9, 30, 15, tzinfo=UTC),
        customer=Customer(id=None, email="guest@example.org", guest=True),
        currency="USD",
        presentment_currency="USD",
        total=usd("64"),
        lines=(OrderLine("24-WB01", 2, "14", "Voyage Yoga Bag", usd("32"), "2110"),),
        pickup=Pickup(requested=True, channel_location_id="manhattan"),
        status="processing",
    )
    assert result.decisions == ()


def test_the_search_responses_canceled_order_is_a_cancel() -> None:
    result = parsed(ADAPTER.split(fixture(SEARCH_RESPONSE))[1])

    assert result.order == ChannelOrder(
        channel=SalesChannel.ADOBE_COMMERCE,
        account="acme",
        external_id="1044",
        external_number="000001044",
        event=OrderEvent.CANCEL,
        placed_at=datetime(2026, 1, 6, 11, 0, tzinfo=UTC),
        updated_at=datetime(2026, 1, 7, 8, 12, tzinfo=UTC),
        customer=Customer(id="78", email="kim@example.com", guest=False),
        currency="USD",
        presentment_currency="USD",
        total=usd("10"),
        lines=(OrderLine("1234567", 1, "15", "Water bottle", usd("10"), "2111"),),
        pickup=Pickup(requested=False),
        customer_location=GeoPoint(40.7346, -73.99849),
        cancelled=True,
        status="cancelled",
    )
    assert result.decisions == ()


def test_an_empty_search_response_is_not_an_order() -> None:
    payload = {"items": [], "search_criteria": {"filter_groups": []}, "total_count": 0}

    assert ADAPTER.split(payload) == [payload]
    assert "no orders" in ignored(payload).reason


def test_a_search_response_is_split_before_it_is_parsed() -> None:
    assert refused(fixture(SEARCH_RESPONSE)).code == "MALFORMED"


def test_a_list_body_splits_into_its_orders() -> None:
    first, second = order(entity_id=1), order(entity_id=2)

    assert ADAPTER.split([first, second]) == [first, second]


# --- Adobe I/O events ----------------------------------------------------------------------


def test_a_cloud_event_reads_field_by_field() -> None:
    result = parsed(fixture(CLOUD_EVENT))

    assert result.order == ChannelOrder(
        channel=SalesChannel.ADOBE_COMMERCE,
        account="acme",
        external_id="21",
        external_number="000000021",
        event=OrderEvent.UPDATE,
        placed_at=datetime(2023, 4, 6, 18, 36, 18, tzinfo=UTC),
        updated_at=datetime(2023, 4, 7, 8, 0, tzinfo=UTC),
        customer=Customer(id="5", email="roni_cost@example.com", guest=False),
        currency="USD",
        presentment_currency="USD",
        total=usd("600"),
        lines=(OrderLine("simple-product-2", 3, "22", "Simple Product 2", usd("200"), "31"),),
        pickup=Pickup(requested=True, channel_location_id="brooklyn"),
        status="processing",
    )
    assert result.decisions == ()


@pytest.mark.parametrize(
    ("event_type", "event"),
    [
        ("com.adobe.commerce.observer.sales_order_place_after", OrderEvent.CREATE),
        ("observer.sales_order_place_after", OrderEvent.CREATE),
        ("plugin.magento.sales.api.order_management.place", OrderEvent.CREATE),
        ("com.adobe.commerce.observer.sales_order_save_after", OrderEvent.UPDATE),
        ("com.adobe.commerce.observer.sales_order_save_commit_after", OrderEvent.UPDATE),
        ("com.adobe.commerce.observer.order_cancel_after", OrderEvent.CANCEL),
        ("plugin.magento.sales.api.order_management.cancel", OrderEvent.CANCEL),
    ],
)
def test_the_event_type_says_create_update_or_cancel(event_type: str, event: OrderEvent) -> None:
    result = parsed(cloud_event(event_type, order()))

    assert result.order.event is event
    assert result.order.cancelled is (event is OrderEvent.CANCEL)


def test_a_canceled_order_is_a_cancel_whatever_the_event() -> None:
    body = order(state="canceled", status="canceled")

    result = parsed(cloud_event("com.adobe.commerce.observer.sales_order_save_after", body))

    assert result.order.event is OrderEvent.CANCEL
    assert result.order.cancelled is True
    assert result.order.status == "cancelled"


def test_a_cancel_event_may_carry_no_items() -> None:
    body = order(items=[])

    result = parsed(cloud_event("com.adobe.commerce.observer.order_cancel_after", body))

    assert result.order.event is OrderEvent.CANCEL
    assert result.order.lines == ()


def test_the_plain_envelope_takes_its_type_from_the_delivery() -> None:
    payload = {"event": {"data": {"value": order()}}}
    delivery = Delivery(
        SalesChannel.ADOBE_COMMERCE, "acme", RECEIVED, topic="observer.sales_order_save_after"
    )

    assert parsed(payload, delivery).order.event is OrderEvent.UPDATE
    assert parsed(payload).order.event is OrderEvent.CREATE


def test_the_plain_envelope_may_hold_a_cloud_event() -> None:
    """A Journaling page's element: `{"position": ..., "event": <the CloudEvent>}`."""
    event = cloud_event("com.adobe.commerce.observer.order_cancel_after", order())

    result = parsed({"position": "abc", "event": event})

    assert result.order.event is OrderEvent.CANCEL


def test_a_journaling_page_splits_into_its_events() -> None:
    first = {"position": "1", "event": cloud_event("observer.sales_order_save_after", order())}
    second = {"position": "2", "event": cloud_event("observer.order_cancel_after", order())}

    assert ADAPTER.split({"events": [first, second], "_page": {"count": 2}}) == [first, second]
    assert "no events" in ignored({"events": [], "_page": {"count": 0}}).reason


@pytest.mark.parametrize(
    "event_type",
    [
        "com.adobe.commerce.observer.catalog_product_save_after",
        "com.adobe.commerce.observer.sales_order_place_before",
    ],
)
def test_an_event_that_is_not_an_order_event_is_not_an_order(event_type: str) -> None:
    result = ignored(cloud_event(event_type, order()))

    assert event_type in result.reason


# --- lines, strict where stock is at stake -------------------------------------------------


@pytest.mark.parametrize("quantity", ["1.5000", "0.0000", "-1", 0, "two"])
def test_a_quantity_that_is_not_a_positive_whole_number_is_refused(quantity: object) -> None:
    error = refused(order(items=[item(qty_ordered=quantity)]))

    assert error.code == "INVALID_QUANTITY"
    assert error.field == "items[0].qty_ordered"


@pytest.mark.parametrize(("quantity", "units"), [("3.000000", 3), ("1.0000", 1), (2, 2)])
def test_whole_quantities_in_any_form_are_read(quantity: object, units: int) -> None:
    assert parsed(order(items=[item(qty_ordered=quantity)])).order.lines[0].quantity == units


def test_an_order_without_items_is_refused() -> None:
    error = refused(order(items=[]))

    assert error.code == "MISSING_ITEMS"


@pytest.mark.parametrize(
    ("sku", "expected"),
    [("  SKU-9 ", "SKU-9"), ("", None), ("   ", None), (None, None), (12345, "12345")],
)
def test_skus_are_cleaned_and_the_product_id_kept(sku: object, expected: str | None) -> None:
    line = parsed(order(items=[item(sku=sku)])).order.lines[0]

    assert line.sku == expected
    assert line.channel_product_id == "41"


def test_names_lose_entities_and_scripts() -> None:
    name = "Caf&eacute; <b>mug</b><script>alert('x')</script> &amp;amp; saucer"

    line = parsed(order(items=[item(name=name)])).order.lines[0]

    assert line.name == "Café mug & saucer"


def test_a_configurable_child_alone_is_a_line() -> None:
    """A child whose parent is not in `items` is the only record of what was ordered."""
    child = item(item_id=901, parent_item_id=899, product_id=42, sku="TEE-S")

    lines = parsed(order(items=[child])).order.lines

    assert lines == (OrderLine("TEE-S", 1, "42", "Thing", usd("20"), "901"),)


def test_a_bundle_child_names_its_parent_only_in_parent_item() -> None:
    child = item(item_id=901, parent_item={"item_id": 899, "product_type": "bundle"}, sku="MUG")

    lines = parsed(order(items=[child])).order.lines

    assert [line.sku for line in lines] == ["MUG"]


# --- money, strict where it is at stake ----------------------------------------------------


def test_prices_as_numbers_or_strings_are_exact() -> None:
    body = order(grand_total=0.1, items=[item(price="0.1000")])

    result = parsed(body)

    assert result.order.total == Money(Decimal("0.1"), "USD")
    assert result.order.lines[0].unit_price == Money(Decimal("0.1000"), "USD")


def test_a_base_amount_stands_in_only_in_the_same_currency() -> None:
    same = order(
        grand_total=None, base_grand_total="20.0000", items=[item(price=None, base_price="20")]
    )
    other = copy.deepcopy(same)
    other["base_currency_code"] = "GBP"

    assert parsed(same).order.total == usd("20")
    assert parsed(same).order.lines[0].unit_price == usd("20")
    assert parsed(other).order.total is None
    assert parsed(other).order.lines[0].unit_price is None


def test_an_amount_that_is_not_a_number_is_refused() -> None:
    error = refused(order(grand_total="twenty"))

    assert error.code == "INVALID_AMOUNT"
    assert error.field == "grand_total"


def test_an_amount_without_an_order_currency_is_refused() -> None:
    error = refused(order(order_currency_code=None))

    assert error.code == "MISSING_CURRENCY"


def test_an_order_currency_that_is_not_iso_4217_is_refused() -> None:
    assert refused(order(order_currency_code="dollars")).code == "INVALID_CURRENCY"


# --- ids and times -------------------------------------------------------------------------


def test_an_order_without_an_id_is_refused() -> None:
    body = order()
    del body["entity_id"]

    assert refused(body).code == "MISSING_ID"


def test_ids_are_exact_whatever_their_size() -> None:
    result = parsed(order(entity_id=2**63 + 1, increment_id="000000500"))

    assert result.order.external_id == str(2**63 + 1)
    assert result.order.external_number == "000000500"


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert refused(["not", "an", "order"]).code == "MALFORMED"


def test_times_in_odd_forms_are_read_in_utc() -> None:
    body = order(created_at=" 2026-01-05  10:20:30 ", updated_at="2026-01-05T11:20:30+01:00")

    result = parsed(body)

    assert result.order.placed_at == datetime(2026, 1, 5, 10, 20, 30, tzinfo=UTC)
    assert result.order.updated_at == datetime(2026, 1, 5, 10, 20, 30, tzinfo=UTC)
    assert result.decisions == ()


def test_an_unreadable_creation_time_is_repaired_to_the_receive_time() -> None:
    result = parsed(order(created_at="0000-00-00 00:00:00", updated_at="soon"))

    assert result.order.placed_at == RECEIVED
    assert result.order.updated_at is None
    assert decided(result) == [
        ("timestamp.unreadable", RuleAction.REPAIR, "created_at"),
        ("timestamp.unreadable", RuleAction.WARN, "updated_at"),
    ]


# --- customers -----------------------------------------------------------------------------


@pytest.mark.parametrize("guest", [True, 1, "1", "true"])
def test_a_guest_has_no_customer_id(guest: object) -> None:
    customer = parsed(order(customer_is_guest=guest, customer_id=12)).order.customer

    assert customer == Customer(id=None, email="shopper@example.com", guest=True)


@pytest.mark.parametrize("guest", [False, 0, "0", None])
def test_a_registered_customer_keeps_the_id(guest: object) -> None:
    customer = parsed(order(customer_is_guest=guest, customer_id=12)).order.customer

    assert customer == Customer(id="12", email="shopper@example.com", guest=False)


def test_two_different_emails_are_both_kept() -> None:
    body = order(customer_email="A@Example.com", billing_address={"email": "b@example.com"})

    result = parsed(body)

    assert result.order.customer.email == "a@example.com"
    assert result.order.customer.other_emails == ("b@example.com",)
    assert decided(result) == [("customer.emails_differ", RuleAction.WARN, "customer_email")]


def test_an_email_that_is_not_one_is_left_out_with_a_warning() -> None:
    result = parsed(order(customer_email="not an email"))

    assert result.order.customer.email is None
    assert decided(result) == [("customer.email_invalid", RuleAction.WARN, "customer_email")]


# --- pickup --------------------------------------------------------------------------------


def test_the_pickup_location_may_be_only_on_the_shipping_address() -> None:
    shipping = {
        "method": "instore_pickup",
        "address": {"extension_attributes": {"pickup_location_code": "queens"}},
    }
    body = order(extension_attributes={"shipping_assignments": [{"shipping": shipping}]})

    assert parsed(body).order.pickup == Pickup(requested=True, channel_location_id="queens")


def test_the_orders_pickup_location_wins_when_they_disagree() -> None:
    shipping = {
        "method": "instore_pickup",
        "address": {"extension_attributes": {"pickup_location_code": "queens"}},
    }
    extension = {"shipping_assignments": [{"shipping": shipping}], "pickup_location_code": "bronx"}

    result = parsed(order(extension_attributes=extension))

    assert result.order.pickup == Pickup(requested=True, channel_location_id="bronx")
    assert decided(result) == [
        ("pickup.location_disagree", RuleAction.REPAIR, "extension_attributes.pickup_location_code")
    ]


def test_a_pickup_without_a_location_code_is_kept_with_a_warning() -> None:
    body = order(extension_attributes={}, shipping_method="instore_pickup")

    result = parsed(body)

    assert result.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert decided(result) == [
        ("pickup.location_missing", RuleAction.WARN, "extension_attributes.pickup_location_code")
    ]


def test_a_location_code_alone_asks_for_pickup() -> None:
    body = order(extension_attributes={"pickup_location_code": "brooklyn"})

    assert parsed(body).order.pickup == Pickup(requested=True, channel_location_id="brooklyn")


def test_a_shipped_order_is_not_a_pickup() -> None:
    shipping = {"method": "flatrate_flatrate", "address": {"city": "Brooklyn"}}
    body = order(extension_attributes={"shipping_assignments": [{"shipping": shipping}]})

    assert parsed(body).order.pickup == Pickup(requested=False)


# --- customer location ---------------------------------------------------------------------


def test_billing_coordinates_as_strings_are_the_customer_location() -> None:
    body = order(
        billing_address={"extension_attributes": {"latitude": " 40.71 ", "longitude": "-73.95"}}
    )

    assert parsed(body).order.customer_location == GeoPoint(40.71, -73.95)


@pytest.mark.parametrize(("lat", "lon"), [("0", "0"), ("", ""), ("null", None)])
def test_placeholder_coordinates_are_no_location(lat: object, lon: object) -> None:
    result = parsed(order(billing_address={"latitude": lat, "longitude": lon}))

    assert result.order.customer_location is None
    assert result.decisions == ()


def test_coordinates_out_of_range_are_left_out_with_a_warning() -> None:
    result = parsed(order(billing_address={"latitude": "140.5", "longitude": "-73.95"}))

    assert result.order.customer_location is None
    assert decided(result) == [("location.out_of_range", RuleAction.WARN, "billing_address")]


def test_a_pickup_orders_shipping_address_is_the_stores_not_the_customers() -> None:
    address = {"latitude": "40.71", "longitude": "-73.95"}
    shipping = {"method": "instore_pickup", "address": address}
    pickup = order(extension_attributes={"shipping_assignments": [{"shipping": shipping}]})
    delivered = copy.deepcopy(pickup)
    delivered["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] = (
        "flatrate_flatrate"
    )

    assert parsed(pickup).order.customer_location is None
    assert parsed(delivered).order.customer_location == GeoPoint(40.71, -73.95)
