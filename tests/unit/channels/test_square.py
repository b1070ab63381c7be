"""Square: Orders API bodies and order webhooks to canonical orders, from the published samples
and from messier authored ones."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.common import loads
from adapters.channels.square import ADAPTER
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "square"
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DELIVERY = Delivery(SalesChannel.SQUARE, "acme", RECEIVED)


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


def order(**changes: Any) -> dict[str, Any]:
    """A small valid Square order, collected in store, with `changes` applied."""
    body: dict[str, Any] = {
        "id": "ORDER-1",
        "location_id": "LOC-1",
        "created_at": "2024-06-01T10:00:00Z",
        "updated_at": "2024-06-01T10:05:00Z",
        "state": "OPEN",
        "version": 2,
        "line_items": [
            {
                "uid": "L1",
                "catalog_object_id": "VAR-1",
                "name": "Thing",
                "quantity": "1",
                "base_price_money": {"amount": 1000, "currency": "USD"},
            }
        ],
        "fulfillments": [{"uid": "F1", "type": "PICKUP", "state": "PROPOSED"}],
        "total_money": {"amount": 1000, "currency": "USD"},
    }
    body.update(changes)
    return body


def with_line(**changes: Any) -> dict[str, Any]:
    body = order()
    body["line_items"][0].update(changes)
    return body


# --- the adapter ------------------------------------------------------------------------------


def test_the_adapter_is_a_channel_adapter_for_square() -> None:
    adapter: ChannelAdapter = ADAPTER
    assert adapter.channel is SalesChannel.SQUARE


def test_split_gives_one_payload_per_order_of_a_search_response() -> None:
    body = fixture("square_search_orders_response_authored.json")
    parts = ADAPTER.split(body)
    assert [part["id"] for part in parts] == [
        "JpY1500OrderAAAAAAAAAAAAAAA",
        "CanceledPickupBBBBBBBBBBBBB",
    ]


def test_split_keeps_a_retrieve_response_and_a_webhook_whole() -> None:
    retrieve = fixture("square_retrieve_order_response_docs.json")
    webhook = fixture("square_webhook_order_fulfillment_updated_docs.json")
    assert ADAPTER.split(retrieve) == [retrieve]
    assert ADAPTER.split(webhook) == [webhook]
    assert ADAPTER.split({"orders": []}) == []


# --- the published samples --------------------------------------------------------------------


def test_the_published_retrieve_order_response_is_read_field_by_field() -> None:
    result = parsed(fixture("square_retrieve_order_response_docs.json"))
    placed = datetime(2020, 5, 18, 16, 30, 49, 614000, tzinfo=UTC)
    assert result.order == ChannelOrder(
        channel=SalesChannel.SQUARE,
        account="acme",
        external_id="CAISENgvlJ6jLWAzERDzjyHVybY",
        event=OrderEvent.CREATE,  # version 1
        lines=(
            OrderLine(
                sku=None,
                quantity=1,
                channel_product_id=None,
                name="Item 1",
                unit_price=usd("5.00"),
                line_id="ULkg0tQTRK2bkU9fNv3IJD",
            ),
            OrderLine(
                sku=None,
                quantity=2,
                channel_product_id=None,
                name="Item 2",
                unit_price=usd("3.00"),
                line_id="mumY8Nun4BC5aKe2yyx5a",
            ),
        ),
        pickup=Pickup(requested=False),
        external_number=None,
        placed_at=placed,
        updated_at=placed,
        customer=Customer(id=None, email=None, guest=True),
        currency="USD",
        presentment_currency=None,
        total=usd("5.50"),
        customer_location=None,
        cancelled=False,
        status="OPEN",
    )
    # The sample's lines are ad hoc: no catalog object names their product.
    assert decided(result) == [
        ("line.unidentified", RuleAction.WARN, "line_items[0]"),
        ("line.unidentified", RuleAction.WARN, "line_items[1]"),
    ]


def test_the_published_fulfillment_webhook_is_thin_and_must_be_fetched_back() -> None:
    result = ADAPTER.parse(fixture("square_webhook_order_fulfillment_updated_docs.json"), DELIVERY)
    assert result == FetchBack(
        external_id="eA3vssLHKJrv9H0IdJCM3gNqfdcZY",
        topic="order.fulfillment.updated",
        version=6,
        changed_at=datetime(2020, 4, 16, 23, 16, 30, 789000, tzinfo=UTC),
    )


# --- authored samples -------------------------------------------------------------------------


def test_a_messy_guest_pickup_order_is_read_the_way_a_person_would() -> None:
    result = parsed(fixture("square_order_pickup_guest_messy_authored.json"))
    assert result.order == ChannelOrder(
        channel=SalesChannel.SQUARE,
        account="acme",
        external_id="7nK2xQvR9ZpLmT4bWcYdEfGhJ0aSb",
        event=OrderEvent.UPDATE,  # version 3
        lines=(
            OrderLine(
                sku=None,
                quantity=2,
                channel_product_id="W62UWFY35CWMYGVWK6TWJDNI",
                name="Café Mug & Saucer",
                unit_price=usd("12.50"),
                line_id="li-1",
            ),
            OrderLine(
                sku=None,
                quantity=1,
                channel_product_id="AII3GXZBH6ISQHZ4DNLSXAWX",
                name="Tea Towel",
                unit_price=usd("8.99"),
                line_id="li-2",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="L8XQ2Z5RB9A1K"),
        external_number="WEB-100234",
        placed_at=datetime(2024, 3, 1, 10, 15, 0, 123456, tzinfo=UTC),
        updated_at=None,
        customer=Customer(id=None, email="jaime.doe@example.com", guest=True),
        currency="USD",
        total=usd("36.99"),
        cancelled=False,
        status="OPEN",
    )
    assert decided(result) == [
        ("line.not_stock", RuleAction.WARN, "line_items[2]"),
        ("timestamp.unreadable", RuleAction.WARN, "updated_at"),
    ]


def test_a_fractional_quantity_sold_by_weight_is_refused() -> None:
    error = refused(fixture("square_order_weighed_fractional_authored.json"))
    assert error.code == "INVALID_QUANTITY"
    assert error.field == "line_items[0].quantity"


def test_a_jpy_order_shipped_to_a_customer_is_not_a_pickup() -> None:
    first = ADAPTER.split(fixture("square_search_orders_response_authored.json"))[0]
    result = parsed(first)
    at = datetime(2024, 4, 1, 1, 2, 3, tzinfo=UTC)
    assert result.order == ChannelOrder(
        channel=SalesChannel.SQUARE,
        account="acme",
        external_id="JpY1500OrderAAAAAAAAAAAAAAA",
        event=OrderEvent.CREATE,
        lines=(
            OrderLine(
                sku=None,
                quantity=3,
                channel_product_id="MATCHATIN0000000000000001",
                name="Matcha tin",
                unit_price=Money(Decimal("500"), "JPY"),
                line_id="a-1",
            ),
        ),
        pickup=Pickup(requested=False),
        placed_at=at,
        updated_at=at,
        customer=Customer(id="JDKYHBWT1D4F8MFH63DBMEN8Y4", email="aiko@example.jp", guest=False),
        currency="JPY",
        total=Money(Decimal("1500"), "JPY"),
        status="OPEN",
    )
    assert result.decisions == ()


def test_a_canceled_pickup_order_is_a_cancel_that_keeps_its_store() -> None:
    second = ADAPTER.split(fixture("square_search_orders_response_authored.json"))[1]
    result = parsed(second)
    assert result.order == ChannelOrder(
        channel=SalesChannel.SQUARE,
        account="acme",
        external_id="CanceledPickupBBBBBBBBBBBBB",
        event=OrderEvent.CANCEL,
        lines=(
            OrderLine(
                sku=None,
                quantity=1,
                channel_product_id="UMBRELLA00000000000000001",
                name="Umbrella",
                unit_price=usd("20.00"),
                line_id="b-1",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="D7AVYMEAPJ3A3"),
        placed_at=datetime(2024, 4, 2, 10, 0, tzinfo=UTC),
        updated_at=datetime(2024, 4, 2, 12, 30, tzinfo=UTC),
        customer=Customer(id="RECIPIENTCUSTOMER000000001", email="lee@example.com", guest=False),
        currency="USD",
        total=usd("20.00"),
        cancelled=True,
        status="CANCELED",
    )


def test_a_webhook_carrying_the_full_order_is_read_as_its_topic_says() -> None:
    result = parsed(fixture("square_webhook_order_updated_full_order_authored.json"))
    kwd = Money(Decimal("12.500"), "KWD")
    assert result.order == ChannelOrder(
        channel=SalesChannel.SQUARE,
        account="acme",
        external_id="FullOrderInWebhookCCCCCCCCC",
        event=OrderEvent.UPDATE,  # the topic wins over version 1
        lines=(
            OrderLine(
                sku=None,
                quantity=1,
                channel_product_id="KWDLAMP000000000000000001",
                name="Desk lamp",
                unit_price=kwd,
                line_id="c-1",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="D7AVYMEAPJ3A3"),
        placed_at=datetime(2024, 5, 1, 7, 59, tzinfo=UTC),
        updated_at=datetime(2024, 5, 1, 8, 0, 5, tzinfo=UTC),
        customer=Customer(
            id="CUSTOMERWITHPICKUP00000001",
            email="noor@example.com",
            guest=False,
            other_emails=("noor.ali@work.example.com",),
        ),
        currency="KWD",
        total=kwd,
        status="OPEN",
    )
    assert decided(result) == [
        ("pickup.mixed", RuleAction.WARN, "fulfillments"),
        ("customer.emails_differ", RuleAction.WARN, "fulfillments.recipient.email_address"),
    ]


def test_a_thin_order_created_webhook_names_the_order_to_fetch() -> None:
    result = ADAPTER.parse(fixture("square_webhook_order_created_thin_authored.json"), DELIVERY)
    assert isinstance(result, FetchBack)
    assert (result.external_id, result.topic) == ("eA3vssLHKJrv9H0IdJCM3gNqfdcZY", "order.created")


def test_a_thin_webhook_that_names_no_order_is_refused() -> None:
    body = fixture("square_webhook_order_created_thin_authored.json")
    body["data"] = {"type": "order_created", "object": {"order_created": {"state": "OPEN"}}}
    with pytest.raises(PayloadRefused) as refused:
        ADAPTER.parse(body, DELIVERY)
    assert refused.value.code == "MISSING_ID"


# --- quantities and money ---------------------------------------------------------------------


@pytest.mark.parametrize(("quantity", "expected"), [("1", 1), ("3.000000", 3), (2, 2), (" 4 ", 4)])
def test_whole_quantities_in_any_form_are_units(quantity: object, expected: int) -> None:
    assert parsed(with_line(quantity=quantity)).order.lines[0].quantity == expected


@pytest.mark.parametrize("quantity", ["1.5", "0", "-1", "0.000", "two", None, ""])
def test_a_quantity_that_is_not_a_positive_whole_number_is_refused(quantity: object) -> None:
    error = refused(with_line(quantity=quantity))
    assert error.code == "INVALID_QUANTITY"
    assert error.field == "line_items[0].quantity"


def test_a_whole_quantity_measured_in_a_weight_unit_is_still_refused() -> None:
    unit = {"measurement_unit": {"weight_unit": "METRIC_KILOGRAM"}, "precision": 3}
    error = refused(with_line(quantity="2.000", quantity_unit=unit))
    assert error.code == "INVALID_QUANTITY"
    assert "METRIC_KILOGRAM" in error.message


def test_a_custom_or_generic_unit_counts_units() -> None:
    custom = {"measurement_unit": {"custom_unit": {"name": "box"}}, "precision": 0}
    generic = {"measurement_unit": {"generic_unit": "UNIT"}, "precision": 2}
    assert parsed(with_line(quantity="2", quantity_unit=custom)).order.lines[0].quantity == 2
    assert parsed(with_line(quantity="2.00", quantity_unit=generic)).order.lines[0].quantity == 2


def test_amounts_are_minor_units_of_the_currency() -> None:
    body = with_line(base_price_money={"amount": 1999, "currency": "BHD"})
    body["total_money"] = {"amount": 1999, "currency": "BHD"}
    result = parsed(body)
    assert result.order.total == Money(Decimal("1.999"), "BHD")
    assert result.order.lines[0].unit_price == Money(Decimal("1.999"), "BHD")


def test_a_fraction_of_a_minor_unit_is_refused() -> None:
    error = refused(order(total_money={"amount": Decimal("1000.5"), "currency": "USD"}))
    assert (error.code, error.field) == ("INVALID_AMOUNT", "total_money.amount")


def test_an_amount_that_is_not_a_money_object_is_refused() -> None:
    error = refused(order(total_money=1000))
    assert (error.code, error.field) == ("INVALID_AMOUNT", "total_money")


def test_an_amount_without_a_currency_is_refused() -> None:
    error = refused(with_line(base_price_money={"amount": 1000}))
    assert (error.code, error.field) == (
        "MISSING_CURRENCY",
        "line_items[0].base_price_money.amount",
    )


def test_a_line_priced_in_another_currency_than_the_order_is_refused() -> None:
    error = refused(with_line(base_price_money={"amount": 1000, "currency": "EUR"}))
    assert error.code == "CURRENCY_MISMATCH"


def test_without_a_total_the_currency_is_the_lines() -> None:
    result = parsed(order(total_money=None))
    assert (result.order.total, result.order.currency) == (None, "USD")


# --- what is and is not an order --------------------------------------------------------------


def test_a_draft_order_is_not_an_order() -> None:
    assert "DRAFT" in ignored(order(state="DRAFT")).reason


def test_an_open_order_without_line_items_is_refused() -> None:
    error = refused(order(line_items=[]))
    assert (error.code, error.field) == ("MISSING_ITEMS", "line_items")


def test_a_canceled_order_needs_no_lines() -> None:
    result = parsed(order(state="CANCELED", line_items=[]))
    assert (result.order.event, result.order.cancelled, result.order.lines) == (
        OrderEvent.CANCEL,
        True,
        (),
    )


def test_an_order_of_only_custom_amounts_is_not_an_order() -> None:
    result = ignored(with_line(item_type="CUSTOM_AMOUNT", catalog_object_id=None))
    assert "no stock lines" in result.reason


@pytest.mark.parametrize(
    "body", [order(id=None), {"order": order(id="  ")}, {"order": order(id=0)}]
)
def test_an_order_without_an_id_is_refused(body: dict[str, Any]) -> None:
    error = refused(body)
    assert (error.code, error.field) == ("MISSING_ID", "id")


def test_an_event_that_is_not_about_orders_is_not_an_order() -> None:
    body = {
        "merchant_id": "M",
        "type": "inventory.count.updated",
        "event_id": "e",
        "data": {"type": "inventory", "id": "x", "object": {}},
    }
    assert ignored(body).reason == "Square event 'inventory.count.updated' is not an order event."


@pytest.mark.parametrize(
    "body",
    [
        ["not", "an", "object"],
        {"orders": [order()]},
        {"order": "ORDER-1"},
        {"hello": "world"},
        {"line_items": order()["line_items"]},
    ],
)
def test_a_body_that_is_not_a_square_order_is_malformed(body: object) -> None:
    assert refused(body).code == "MALFORMED"


# --- times and events -------------------------------------------------------------------------


def test_an_unreadable_creation_time_is_repaired_to_the_receive_time() -> None:
    result = parsed(order(created_at="31/02/2024 25:00"))
    assert result.order.placed_at == RECEIVED
    assert decided(result) == [("timestamp.unreadable", RuleAction.REPAIR, "created_at")]


def test_the_delivery_topic_names_the_event_of_a_bare_order() -> None:
    delivery = Delivery(SalesChannel.SQUARE, "acme", RECEIVED, topic="order.created")
    assert parsed(order(version=4), delivery).order.event is OrderEvent.CREATE


def test_without_a_version_an_order_never_updated_is_a_create() -> None:
    same = order(version=None, updated_at="2024-06-01T10:00:00Z")
    later = order(version=None)
    assert parsed(same).order.event is OrderEvent.CREATE
    assert parsed(later).order.event is OrderEvent.UPDATE


# --- pickup and customer ----------------------------------------------------------------------


def test_a_cancelled_pickup_fulfillment_on_an_open_order_is_not_a_pickup() -> None:
    fulfillments = [
        {"uid": "F1", "type": "PICKUP", "state": "CANCELED"},
        {"uid": "F2", "type": "SHIPMENT", "state": "PROPOSED"},
    ]
    result = parsed(order(fulfillments=fulfillments))
    assert result.order.pickup == Pickup(requested=False)
    assert result.decisions == ()


def test_a_pickup_without_a_location_is_kept_with_a_warning() -> None:
    result = parsed(order(location_id=""))
    assert result.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert decided(result) == [("pickup.no_location", RuleAction.WARN, "location_id")]


def test_an_order_without_fulfillments_is_not_a_pickup() -> None:
    assert parsed(order(fulfillments=None)).order.pickup == Pickup(requested=False)


@pytest.mark.parametrize("customer", [None, "", "  ", "0"])
def test_a_missing_customer_id_is_a_guest(customer: object) -> None:
    assert parsed(order(customer_id=customer)).order.customer == Customer(guest=True)


def test_a_customer_id_is_kept_exact() -> None:
    customer = parsed(order(customer_id=" JDKYHBWT1D4F8MFH63DBMEN8Y4 ")).order.customer
    assert customer == Customer(id="JDKYHBWT1D4F8MFH63DBMEN8Y4", guest=False)


def test_an_invalid_recipient_email_is_left_out_with_a_warning() -> None:
    fulfillments = [
        {"type": "PICKUP", "pickup_details": {"recipient": {"email_address": "nobody at home"}}}
    ]
    result = parsed(order(fulfillments=fulfillments))
    assert result.order.customer.email is None
    assert decided(result) == [
        ("customer.email_invalid", RuleAction.WARN, "fulfillments.recipient.email_address")
    ]


def test_parsing_does_not_change_the_payload() -> None:
    body = fixture("square_order_pickup_guest_messy_authored.json")
    before = copy.deepcopy(body)
    parsed(body)
    assert body == before
