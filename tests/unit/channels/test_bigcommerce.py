"""BigCommerce: v2 orders with their products and consignments, in the envelope the adapter
documents, to canonical orders; from the published samples and messier authored ones."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.bigcommerce import ADAPTER
from adapters.channels.common import loads
from domain.intake import (
    ChannelAdapter,
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "bigcommerce"
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DELIVERY = Delivery(SalesChannel.BIGCOMMERCE, "acme", RECEIVED)
ORDER_218 = "bc_v2_get_order_218_docs.json"
PRODUCTS_149 = "bc_v2_get_order_products_docs.json"
PICKUP_CONSIGNMENTS = "bc_v2_get_order_consignments_pickup_docs.json"


def fixture(name: str) -> Any:
    return loads((FIXTURES / name).read_bytes())


def parsed(payload: Any, delivery: Delivery = DELIVERY) -> Parsed:
    result = ADAPTER.parse(payload, delivery)
    assert isinstance(result, Parsed), result
    return result


def ignored(payload: Any) -> NotAnOrder:
    result = ADAPTER.parse(payload, DELIVERY)
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


def published_envelope() -> dict[str, Any]:
    """The three published samples in one envelope. They are examples of three different orders
    (218, 149, 129): the products are moved to order 218 so that they belong to it."""
    products = fixture(PRODUCTS_149)
    for product in products:
        product["order_id"] = 218
    return {
        "order": fixture(ORDER_218),
        "products": products,
        "consignments": fixture(PICKUP_CONSIGNMENTS),
    }


def envelope(order: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A small valid envelope: an order of one product collected at location 1."""
    body: dict[str, Any] = {
        "order": {
            "id": 500,
            "customer_id": 7,
            "date_created": "Tue, 20 Nov 2012 00:00:00 +0000",
            "date_modified": "Tue, 20 Nov 2012 00:00:00 +0000",
            "status_id": 11,
            "status": "Awaiting Fulfillment",
            "total_inc_tax": "10.0000",
            "currency_code": "USD",
            "default_currency_code": "USD",
            "billing_address": {"email": "jane@example.com"},
            **(order or {}),
        },
        "products": [
            {
                "id": 1,
                "order_id": 500,
                "product_id": 10,
                "name": "Thing",
                "sku": "THING",
                "type": "physical",
                "price_inc_tax": "10.0000",
                "quantity": 1,
            }
        ],
        "consignments": {"pickups": [{"id": 1, "location": {"id": 1}}], "shipping": []},
    }
    body.update(changes)
    return body


def with_product(**changes: Any) -> dict[str, Any]:
    body = envelope()
    body["products"][0].update(changes)
    return body


# --- the adapter ------------------------------------------------------------------------------


def test_the_adapter_is_a_channel_adapter_for_bigcommerce() -> None:
    adapter: ChannelAdapter = ADAPTER
    assert adapter.channel is SalesChannel.BIGCOMMERCE


def test_split_gives_one_envelope_per_order() -> None:
    body = fixture("bc_orders_list_authored.json")
    assert [part["order"]["id"] for part in ADAPTER.split(body)] == [163, 164]
    assert ADAPTER.split(envelope()) == [envelope()]
    assert ADAPTER.split([envelope(), envelope()]) == [envelope(), envelope()]
    assert ADAPTER.split({"orders": []}) == []


# --- the published samples --------------------------------------------------------------------


def test_the_published_samples_in_an_envelope_are_read_field_by_field() -> None:
    result = parsed(published_envelope())
    assert result.order == ChannelOrder(
        channel=SalesChannel.BIGCOMMERCE,
        account="acme",
        external_id="218",
        event=OrderEvent.UPDATE,  # modified after it was created, no scope
        lines=(
            OrderLine(
                sku="S-ORAN",
                quantity=1,
                channel_product_id="77",
                name="Fog Linen Chambray Towel - Beige Stripe",
                unit_price=usd("65.2300"),
                line_id="65",
            ),
            # Picked from the first one's product pick list: stock too.
            OrderLine(
                sku="ABS",
                quantity=1,
                channel_product_id="86",
                name="Able Brewing System",
                unit_price=usd("0.0000"),
                line_id="66",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="1"),
        external_number="218",
        placed_at=datetime(2019, 3, 5, 21, 40, 11, tzinfo=UTC),
        updated_at=datetime(2019, 3, 11, 15, 17, 25, tzinfo=UTC),
        customer=Customer(id="11", email="janedoe@example.com", guest=False),
        currency="USD",
        presentment_currency="USD",
        total=usd("69.8400"),
        customer_location=None,
        cancelled=False,
        status="Awaiting Payment",
    )
    assert result.decisions == ()


def test_the_published_samples_as_published_belong_to_different_orders_and_are_refused() -> None:
    body = {
        "order": fixture(ORDER_218),
        "products": fixture(PRODUCTS_149),
        "consignments": fixture(PICKUP_CONSIGNMENTS),
    }
    error = refused(body)
    assert (error.code, error.field) == ("ORDER_MISMATCH", "products[0].order_id")
    assert "149" in error.message


def test_the_published_bare_order_has_no_lines_and_is_refused() -> None:
    error = refused(fixture(ORDER_218))
    assert (error.code, error.field) == ("MISSING_ITEMS", "products")


def test_the_published_products_and_consignments_alone_are_not_orders() -> None:
    assert refused(fixture(PICKUP_CONSIGNMENTS)).code == "MALFORMED"
    products = ADAPTER.split(fixture(PRODUCTS_149))
    assert len(products) == 2
    assert [refused(product).code for product in products] == ["MALFORMED", "MALFORMED"]


# --- authored samples -------------------------------------------------------------------------


def test_a_messy_guest_pickup_envelope_is_read_the_way_a_person_would() -> None:
    result = parsed(fixture("bc_envelope_pickup_guest_messy_authored.json"))
    eur = "EUR"
    assert result.order == ChannelOrder(
        channel=SalesChannel.BIGCOMMERCE,
        account="acme",
        external_id="9007199254740993",  # above 2**53, exact
        event=OrderEvent.CREATE,  # the scope
        lines=(
            OrderLine(
                sku="FP-900",
                quantity=2,
                channel_product_id="112:245",
                name="Café Press & Filter New",
                unit_price=Money(Decimal("23.9900"), eur),
                line_id="301",
            ),
            OrderLine(
                sku="40012345",
                quantity=1,
                channel_product_id="113",
                name="Paper filters",
                unit_price=Money(Decimal("13.9900"), eur),  # price_inc_tax empty: base_price
                line_id="302",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="3"),
        external_number="9007199254740993",
        placed_at=datetime(2012, 11, 20, tzinfo=UTC),
        updated_at=None,
        customer=Customer(id=None, email="shopper@example.co.uk", guest=True),
        currency="EUR",
        presentment_currency="GBP",
        total=Money(Decimal("61.9700"), eur),
        cancelled=False,
        status="Awaiting Pickup",
    )
    assert decided(result) == [
        ("line.not_stock", RuleAction.WARN, "products[2]"),
        ("timestamp.unreadable", RuleAction.WARN, "date_modified"),
    ]


def test_a_cancelled_shipped_order_is_a_cancel_and_not_a_pickup() -> None:
    result = parsed(fixture("bc_envelope_cancelled_shipping_authored.json"))
    assert result.order == ChannelOrder(
        channel=SalesChannel.BIGCOMMERCE,
        account="acme",
        external_id="4512",
        event=OrderEvent.CANCEL,
        lines=(
            OrderLine(
                sku="Jour-BLK",
                quantity=2,
                channel_product_id="184:93",
                name="Journal",
                unit_price=usd("15.0000"),
                line_id="88",
            ),
        ),
        pickup=Pickup(requested=False),
        external_number="4512",
        placed_at=datetime(2018, 1, 10, 21, 5, 30, tzinfo=UTC),
        updated_at=datetime(2018, 1, 11, 8, 0, tzinfo=UTC),
        customer=Customer(id="42", email="buyer@example.com", guest=False),
        currency="USD",
        presentment_currency="USD",
        total=usd("30.0000"),
        cancelled=True,
        status="Cancelled",
    )
    assert result.decisions == ()


def test_products_carried_only_by_the_pickup_consignment_are_the_lines() -> None:
    first = ADAPTER.split(fixture("bc_orders_list_authored.json"))[0]
    result = parsed(first)
    at = datetime(2022, 6, 24, 1, 45, 27, tzinfo=UTC)
    assert result.order == ChannelOrder(
        channel=SalesChannel.BIGCOMMERCE,
        account="acme",
        external_id="163",
        event=OrderEvent.CREATE,  # never modified
        lines=(
            OrderLine(
                sku="MUG-GRY",
                quantity=1,  # "1.000000"
                channel_product_id="123",
                name="BigCommerce Coffee Mug",
                unit_price=usd("12.4500"),
                line_id="501",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="5"),
        external_number="163",
        placed_at=at,
        updated_at=at,
        customer=Customer(id=None, email="guest@example.com", guest=True),
        currency="USD",
        presentment_currency="USD",
        total=usd("12.4500"),
        status="Awaiting Fulfillment",
    )
    assert result.decisions == ()


def test_an_incomplete_order_is_not_an_order() -> None:
    second = ADAPTER.split(fixture("bc_orders_list_authored.json"))[1]
    assert ignored(second).reason == "BigCommerce order 164 is Incomplete: checkout not finished."


# --- quantities and money ---------------------------------------------------------------------


@pytest.mark.parametrize(("quantity", "expected"), [(3, 3), ("3", 3), ("3.000000", 3)])
def test_whole_quantities_in_any_form_are_units(quantity: object, expected: int) -> None:
    assert parsed(with_product(quantity=quantity)).order.lines[0].quantity == expected


@pytest.mark.parametrize("quantity", ["1.5", 0, "-2", "two", None, Decimal("2.5")])
def test_a_quantity_that_is_not_a_positive_whole_number_is_refused(quantity: object) -> None:
    error = refused(with_product(quantity=quantity))
    assert (error.code, error.field) == ("INVALID_QUANTITY", "products[0].quantity")


def test_a_price_that_is_not_a_number_is_refused() -> None:
    error = refused(with_product(price_inc_tax="ten"))
    assert (error.code, error.field) == ("INVALID_AMOUNT", "products[0].price_inc_tax")


def test_amounts_without_a_currency_are_refused() -> None:
    body = envelope({"currency_code": "", "default_currency_code": None})
    error = refused(body)
    assert error.code == "MISSING_CURRENCY"


def test_a_currency_that_is_not_iso_4217_is_refused() -> None:
    error = refused(envelope({"default_currency_code": "EURO"}))
    assert (error.code, error.field) == ("INVALID_CURRENCY", "default_currency_code")


def test_without_a_transactional_currency_the_display_one_is_used() -> None:
    result = parsed(envelope({"default_currency_code": None, "currency_code": "cad"}))
    assert (result.order.currency, result.order.presentment_currency) == ("CAD", "CAD")
    assert result.order.total == Money(Decimal("10.0000"), "CAD")


# --- status and events ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_id", "status", "cancelled"),
    [
        (5, "Cancelled", True),
        (6, "Declined", True),
        (4, "Refunded", True),
        ("5", "Cancelled", True),
        (None, "Cancelled", True),
        (None, "declined", True),
        (14, "Partially Refunded", False),
        (2, "Shipped", False),
        (None, None, False),
        (11, "Cancelled", False),  # the id wins over a text that disagrees
    ],
)
def test_cancelled_statuses(status_id: object, status: object, cancelled: bool) -> None:
    result = parsed(envelope({"status_id": status_id, "status": status}))
    assert result.order.cancelled is cancelled
    assert (result.order.event is OrderEvent.CANCEL) is cancelled


def test_an_incomplete_order_by_its_status_text_is_not_an_order() -> None:
    assert "Incomplete" in ignored(envelope({"status_id": None, "status": "Incomplete"})).reason


def test_a_bare_cancelled_order_needs_no_lines() -> None:
    order = fixture(ORDER_218)
    order.update(status_id=5, status="Cancelled")
    result = parsed(order)
    assert (result.order.event, result.order.lines, result.order.external_id) == (
        OrderEvent.CANCEL,
        (),
        "218",
    )
    assert decided(result) == [("pickup.unknown", RuleAction.WARN, "consignments")]


def test_the_delivery_topic_names_the_event_when_the_envelope_has_no_scope() -> None:
    updated = Delivery(SalesChannel.BIGCOMMERCE, "acme", RECEIVED, topic="store/order/updated")
    created = Delivery(SalesChannel.BIGCOMMERCE, "acme", RECEIVED, topic="store/order/created")
    assert parsed(envelope(), updated).order.event is OrderEvent.UPDATE
    assert parsed(envelope(), created).order.event is OrderEvent.CREATE
    assert parsed(envelope(scope="store/order/created"), updated).order.event is OrderEvent.CREATE


def test_without_scope_or_topic_a_modified_order_is_an_update() -> None:
    body = envelope({"date_modified": "Wed, 21 Nov 2012 10:00:00 +0000"})
    assert parsed(body).order.event is OrderEvent.UPDATE
    assert parsed(envelope()).order.event is OrderEvent.CREATE


def test_an_unreadable_creation_date_is_repaired_to_the_receive_time() -> None:
    result = parsed(envelope({"date_created": "sometime last week"}))
    assert result.order.placed_at == RECEIVED
    assert decided(result) == [("timestamp.unreadable", RuleAction.REPAIR, "date_created")]


def test_an_iso_date_is_read_too() -> None:
    body = envelope({"date_created": "2017-04-20T11:32:00.000-04:00", "date_modified": None})
    assert parsed(body).order.placed_at == datetime(2017, 4, 20, 15, 32, tzinfo=UTC)


# --- lines, pickup and customer ---------------------------------------------------------------


def test_an_open_envelope_with_no_products_is_refused() -> None:
    error = refused(envelope(products=[]))
    assert (error.code, error.field) == ("MISSING_ITEMS", "products")


def test_an_order_of_only_digital_products_and_gift_certificates_is_not_an_order() -> None:
    body = envelope()
    body["products"] = [
        {"id": 1, "type": "digital", "sku": "EBOOK", "quantity": 1},
        {"id": 2, "type": "giftcertificate", "quantity": 1, "gift_certificate_id": 9},
    ]
    assert ignored(body).reason == "BigCommerce order 500 has no physical products."


def test_products_embedded_in_the_order_are_read() -> None:
    body = envelope()
    body["order"]["products"] = body.pop("products")
    assert parsed(body).order.lines[0].sku == "THING"


@pytest.mark.parametrize(("sku", "expected"), [("  A-1 ", "A-1"), (12345, "12345"), ("", None)])
def test_skus_are_cleaned(sku: object, expected: str | None) -> None:
    assert parsed(with_product(sku=sku)).order.lines[0].sku == expected


def test_a_custom_product_with_neither_sku_nor_product_id_is_kept_with_a_warning() -> None:
    result = parsed(with_product(sku="", product_id=0))
    line = result.order.lines[0]
    assert (line.sku, line.channel_product_id) == (None, None)
    assert decided(result) == [("line.unidentified", RuleAction.WARN, "products[0]")]


def test_a_name_with_entities_and_script_is_cleaned() -> None:
    name = "Tea &amp; Biscuits <script>alert('x')</script>&lt;3"
    assert parsed(with_product(name=name)).order.lines[0].name == "Tea & Biscuits <3"


def test_no_consignments_is_not_a_pickup_with_a_warning() -> None:
    body = envelope()
    del body["consignments"]
    result = parsed(body)
    assert result.order.pickup == Pickup(requested=False)
    assert decided(result) == [("pickup.unknown", RuleAction.WARN, "consignments")]


def test_only_shipping_consignments_are_not_a_pickup() -> None:
    result = parsed(envelope(consignments={"pickups": [], "shipping": [{"id": 1}]}))
    assert result.order.pickup == Pickup(requested=False)
    assert result.decisions == ()


def test_pickup_and_shipping_together_are_a_pickup_with_a_warning() -> None:
    consignments = {"pickups": [{"location": {"id": 4}}], "shipping": [{"id": 1}]}
    result = parsed(envelope(consignments=consignments))
    assert result.order.pickup == Pickup(requested=True, channel_location_id="4")
    assert decided(result) == [("pickup.mixed", RuleAction.WARN, "consignments")]


def test_pickups_at_several_locations_keep_the_first_with_a_warning() -> None:
    consignments = {"pickups": [{"location": {"id": 4}}, {"location_id": 9}]}
    result = parsed(envelope(consignments=consignments))
    assert result.order.pickup == Pickup(requested=True, channel_location_id="4")
    assert decided(result) == [
        ("pickup.several_locations", RuleAction.WARN, "consignments.pickups")
    ]


def test_a_pickup_without_a_location_is_kept_with_a_warning() -> None:
    result = parsed(envelope(consignments={"pickups": [{"id": 1, "pickup_method_id": 1}]}))
    assert result.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert decided(result) == [
        ("pickup.no_location", RuleAction.WARN, "consignments.pickups[0].location")
    ]


@pytest.mark.parametrize("customer", [0, None, "0", ""])
def test_customer_zero_or_none_is_a_guest(customer: object) -> None:
    result = parsed(envelope({"customer_id": customer}))
    assert result.order.customer == Customer(id=None, email="jane@example.com", guest=True)


def test_a_guest_without_a_billing_address_has_no_email() -> None:
    body = envelope()
    del body["order"]["customer_id"], body["order"]["billing_address"]
    assert parsed(body).order.customer == Customer(guest=True)


# --- refusals ---------------------------------------------------------------------------------


def test_an_order_without_an_id_is_refused() -> None:
    error = refused(envelope({"id": None}))
    assert (error.code, error.field) == ("MISSING_ID", "id")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not an object", None),
        ({"order": [1, 2]}, "order"),
        ({"orders": [envelope()]}, "orders"),
        ({"customer_id": 1}, None),
        (envelope(products={"url": "x"}), "products"),
        (envelope(consignments="pickup"), "consignments"),
        (envelope(products=["not a product"]), "products[0]"),
    ],
)
def test_a_body_that_is_not_an_envelope_is_malformed(body: object, field: str | None) -> None:
    error = refused(body)
    assert (error.code, error.field) == ("MALFORMED", field)


def test_parsing_does_not_change_the_payload() -> None:
    body = fixture("bc_envelope_pickup_guest_messy_authored.json")
    before = copy.deepcopy(body)
    parsed(body)
    assert body == before


# --- the webhooks: thin, fetched back ---------------------------------------------------------


def webhook(scope: str, order_id: object = 250) -> dict[str, Any]:
    """A BigCommerce webhook body as its docs show it."""
    return {
        "scope": scope,
        "store_id": "1025646",
        "data": {"type": "order", "id": order_id},
        "hash": "dd70c0976e06b67aaf671e73f49dcb79230ebf9d",
        "created_at": 1561479335,
        "producer": "stores/abc123",
    }


@pytest.mark.parametrize(
    "scope", ["store/order/created", "store/order/updated", "store/order/statusUpdated"]
)
def test_an_order_webhook_names_the_order_to_fetch_back(scope: str) -> None:
    assert ADAPTER.parse(webhook(scope, 9007199254740993), DELIVERY) == FetchBack(
        external_id="9007199254740993", topic=scope
    )


@pytest.mark.parametrize(
    "scope", ["store/order/archived", "store/order/message/created", "store/product/updated"]
)
def test_other_webhooks_are_not_orders(scope: str) -> None:
    assert "not an order change" in ignored(webhook(scope)).reason


def test_an_order_webhook_without_an_id_is_refused() -> None:
    assert refused(webhook("store/order/created", None)).code == "MISSING_ID"
