"""Amazon SP-API: Orders API 2026-01-01 getOrder and the v0 getOrder + getOrderItems envelope to
canonical orders, from the published samples and from messier authored ones."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.amazon import ADAPTER
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "amazon"
V0_ORDER = "spapi_v0_getOrder_example.json"
V0_ITEMS = "spapi_v0_getOrderItems_example.json"
PICKUP_2026 = "spapi_2026_getOrder_in_store_pickup.json"
V0_ENVELOPE = "authored_spapi_v0_envelope_ispu_two_pages.json"
SEARCH_2026 = "authored_spapi_2026_searchOrders_pickup_and_cancelled.json"

RECEIVED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
DELIVERY = Delivery(SalesChannel.AMAZON, "acme", RECEIVED)
LOCATION_MISSING_2026 = ("pickup.location_missing", RuleAction.WARN, "recipient.deliveryAddress")


def fixture(name: str) -> Any:
    return loads((FIXTURES / name).read_bytes())


def parsed(payload: Any) -> Parsed:
    result = ADAPTER.parse(payload, DELIVERY)
    assert isinstance(result, Parsed), result
    return result


def refused(payload: Any) -> PayloadRefused:
    with pytest.raises(PayloadRefused) as caught:
        ADAPTER.parse(payload, DELIVERY)
    return caught.value


def decided(result: Parsed) -> list[tuple[str, RuleAction, str | None]]:
    return [(d.rule, d.action, d.field) for d in result.decisions]


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def jpy(amount: str) -> Money:
    return Money(Decimal(amount), "JPY")


def order_2026(**changes: Any) -> dict[str, Any]:
    """The published 2026-01-01 in-store pickup order, with `changes` applied to its order."""
    body: dict[str, Any] = fixture(PICKUP_2026)
    body["order"].update(changes)
    return body


def item_2026(body: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = body["order"]["orderItems"][0]
    return line


def v0_envelope(**changes: Any) -> dict[str, Any]:
    """The authored v0 envelope, with `changes` applied to its getOrder's order."""
    body: dict[str, Any] = fixture(V0_ENVELOPE)
    body["getOrder"]["payload"].update(changes)
    return body


def v0_single_page(*items: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = v0_envelope(**changes)
    body["getOrderItems"] = {
        "payload": {"AmazonOrderId": "903-1671087-0812628", "OrderItems": list(items)}
    }
    return body


def v0_item(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "ASIN": "B000000001",
        "OrderItemId": "10000000000001",
        "SellerSKU": "SKU-1",
        "Title": "Thing",
        "QuantityOrdered": 1,
        "ItemPrice": {"CurrencyCode": "USD", "Amount": "10.00"},
    }
    line.update(changes)
    return line


# --- the adapter ---------------------------------------------------------------------------


def test_the_adapter_is_a_channel_adapter_for_amazon() -> None:
    adapter: ChannelAdapter = ADAPTER

    assert adapter.channel is SalesChannel.AMAZON


# --- the published samples -----------------------------------------------------------------


def test_the_published_2026_pickup_order_reads_field_by_field() -> None:
    payload = fixture(PICKUP_2026)

    assert ADAPTER.split(payload) == [payload]
    result = parsed(payload)

    assert result.order == ChannelOrder(
        channel=SalesChannel.AMAZON,
        account="acme",
        external_id="114-9876543-1234567",
        external_number="114-9876543-1234567",
        event=OrderEvent.CREATE,
        placed_at=datetime(2025, 3, 10, 14, 0, tzinfo=UTC),
        updated_at=datetime(2025, 3, 10, 14, 30, tzinfo=UTC),
        customer=Customer(id=None, email=None, guest=True),
        currency="USD",
        presentment_currency="USD",
        total=usd("49.99"),
        lines=(
            OrderLine(
                sku="ECHO-POP-US-BLK",
                quantity=1,
                channel_product_id="B0BSHF7WHW",
                name="All-new Echo Pop | Full sound compact smart speaker with Alexa",
                unit_price=usd("39.99"),
                line_id="11498765431234",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id=None),
        customer_location=None,
        cancelled=False,
        status="unshipped",
    )
    assert decided(result) == [LOCATION_MISSING_2026]
    assert "Test Store #1234, 100 Main Street, Seattle" in result.decisions[0].message


def test_the_published_2026_order_in_the_sandbox_form_reads_the_same() -> None:
    sandbox = {"request": {"parameters": {"orderId": {"value": "114-9876543-1234567"}}}}
    sandbox["response"] = fixture(PICKUP_2026)

    assert parsed(sandbox) == parsed(fixture(PICKUP_2026))


def test_a_bare_2026_order_reads_the_same() -> None:
    assert parsed(fixture(PICKUP_2026)["order"]) == parsed(fixture(PICKUP_2026))


def test_the_published_v0_getorder_alone_is_refused_for_its_missing_items() -> None:
    payload = fixture(V0_ORDER)

    assert ADAPTER.split(payload) == [payload]
    error = refused(payload)

    assert error.code == "MISSING_ITEMS"
    assert error.field == "getOrderItems"


def test_the_published_v0_getorderitems_alone_is_refused_for_its_missing_order() -> None:
    assert refused(fixture(V0_ITEMS)).code == "MISSING_ORDER"


def test_the_two_published_v0_samples_are_of_different_orders() -> None:
    error = refused({"getOrder": fixture(V0_ORDER), "getOrderItems": fixture(V0_ITEMS)})

    assert error.code == "ITEMS_ORDER_MISMATCH"
    assert "903-1671087-0812628" in error.message
    assert "902-3159896-1390916" in error.message


# --- the v0 envelope -----------------------------------------------------------------------


def test_the_v0_envelope_reads_field_by_field() -> None:
    payload = fixture(V0_ENVELOPE)

    assert ADAPTER.split(payload) == [payload]
    result = parsed(payload)

    assert result.order == ChannelOrder(
        channel=SalesChannel.AMAZON,
        account="acme",
        external_id="903-1671087-0812628",
        external_number="903-1671087-0812628",
        event=OrderEvent.CREATE,
        placed_at=datetime(2017, 1, 20, 19, 49, 35, tzinfo=UTC),
        updated_at=datetime(2017, 1, 21, 8, 0, tzinfo=UTC),
        customer=Customer(id=None, email="user@example.com", guest=True),
        currency="JPY",
        presentment_currency="JPY",
        total=jpy("73.94"),
        lines=(
            OrderLine(
                "CBA_OTF_1", 1, "BT0093TELA", "Example item name", jpy("25.99"), "68828574383266"
            ),
            # ItemPrice is the line total: 17.95 for 2 units is 8.975 each, exactly.
            OrderLine(
                "CBA_OTF_5", 2, "BCTU1104UEFB", "Example item name", jpy("8.975"), "79039765272157"
            ),
            OrderLine(
                "CBA_OTF_9",
                3,
                "B000000003",
                "Example item name & more",
                jpy("10"),
                "90039765272158",
            ),
        ),
        pickup=Pickup(requested=True, channel_location_id="brooklyn-store-7"),
        customer_location=None,
        cancelled=False,
        status="unshipped",
    )
    assert result.decisions == ()


def test_the_v0_line_totals_add_up_to_the_order_total() -> None:
    result = parsed(fixture(V0_ENVELOPE))

    assert result.order.value() == Decimal("73.94")
    lines_total = sum(
        (line.unit_price.amount * line.quantity for line in result.order.lines if line.unit_price),
        Decimal(0),
    )
    assert lines_total == Decimal("73.94")


def test_the_v0_envelope_accepts_one_page_and_bodies_without_their_payload() -> None:
    body = fixture(V0_ENVELOPE)
    body["getOrder"] = body["getOrder"]["payload"]
    body["getOrderItems"] = {
        "AmazonOrderId": "903-1671087-0812628",
        "OrderItems": [v0_item()],
    }

    result = parsed(body)

    assert result.order.external_id == "903-1671087-0812628"
    assert result.order.lines == (
        OrderLine("SKU-1", 1, "B000000001", "Thing", usd("10"), "10000000000001"),
    )


def test_a_v0_envelope_whose_last_page_has_a_next_token_is_refused() -> None:
    body = fixture(V0_ENVELOPE)
    body["getOrderItems"] = body["getOrderItems"][:1]

    error = refused(body)

    assert error.code == "INCOMPLETE_ITEMS"
    assert error.field == "getOrderItems.NextToken"


def test_an_item_on_two_pages_is_read_once() -> None:
    body = fixture(V0_ENVELOPE)
    repeated = copy.deepcopy(body["getOrderItems"][0]["payload"]["OrderItems"][1])
    body["getOrderItems"][1]["payload"]["OrderItems"].append(repeated)

    result = parsed(body)

    assert [line.line_id for line in result.order.lines] == [
        "68828574383266",
        "79039765272157",
        "90039765272158",
    ]
    assert decided(result) == [("line.duplicate", RuleAction.REPAIR, "getOrderItems.OrderItems")]


def test_a_v0_envelope_without_items_is_refused() -> None:
    body = fixture(V0_ENVELOPE)
    del body["getOrderItems"]

    assert refused(body).code == "MISSING_ITEMS"


def test_a_v0_envelope_without_its_getorder_is_refused() -> None:
    assert refused({"getOrderItems": fixture(V0_ITEMS)}).code == "MISSING_ORDER"


def test_a_canceled_v0_order_is_a_cancel_even_without_its_items() -> None:
    body = {"payload": dict(fixture(V0_ORDER)["payload"], OrderStatus="Canceled")}

    result = parsed(body)

    assert result.order.event is OrderEvent.CANCEL
    assert result.order.cancelled is True
    assert result.order.status == "cancelled"
    assert result.order.lines == ()
    assert result.order.external_id == "902-3159896-1390916"
    assert result.order.pickup == Pickup(
        requested=False, channel_location_id="sampleSupplySourceId"
    )


def test_a_canceled_v0_orders_zero_unit_lines_are_left_out() -> None:
    body = v0_single_page(
        v0_item(QuantityOrdered=0, ItemPrice=None),
        v0_item(OrderItemId="10000000000002", QuantityOrdered=1),
        OrderStatus="Canceled",
        OrderTotal=None,
    )

    result = parsed(body)

    assert result.order.event is OrderEvent.CANCEL
    assert [line.line_id for line in result.order.lines] == ["10000000000002"]
    assert decided(result) == [
        ("line.cancelled_zero", RuleAction.REPAIR, "OrderItems[0].QuantityOrdered")
    ]


def test_a_canceled_v0_order_with_pages_missing_is_read_with_a_warning() -> None:
    body = v0_envelope(OrderStatus="Canceled")
    body["getOrderItems"] = body["getOrderItems"][:1]

    result = parsed(body)

    assert result.order.event is OrderEvent.CANCEL
    assert decided(result) == [("lines.incomplete", RuleAction.WARN, "getOrderItems.NextToken")]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Pending", "pending"),
        ("Unshipped", "unshipped"),
        ("PartiallyShipped", "partially_shipped"),
        ("InvoiceUnconfirmed", "invoice_unconfirmed"),
        ("PendingAvailability", "pending_availability"),
    ],
)
def test_v0_statuses_are_kept_in_snake_case(status: str, expected: str) -> None:
    result = parsed(v0_envelope(OrderStatus=status))

    assert result.order.status == expected
    assert result.order.event is OrderEvent.CREATE
    assert result.order.cancelled is False


@pytest.mark.parametrize(
    ("flag", "requested"),
    [(True, True), ("true", True), (False, False), ("false", False), (None, False)],
)
def test_v0_is_ispu_asks_for_pickup(flag: object, requested: bool) -> None:
    pickup = parsed(v0_envelope(IsISPU=flag)).order.pickup

    assert pickup == Pickup(requested=requested, channel_location_id="brooklyn-store-7")


def test_a_v0_pickup_without_a_supply_source_is_kept_with_a_warning() -> None:
    result = parsed(v0_envelope(FulfillmentInstruction={}))

    assert result.order.pickup == Pickup(requested=True, channel_location_id=None)
    assert decided(result) == [
        (
            "pickup.location_missing",
            RuleAction.WARN,
            "FulfillmentInstruction.FulfillmentSupplySourceId",
        )
    ]
    assert "MFNIntegrationTestMerchant, 2201 WESTLAKE AVE, SEATTLE" in result.decisions[0].message


def test_a_pending_v0_order_without_a_total_takes_its_lines_currency() -> None:
    result = parsed(v0_envelope(OrderTotal=None, OrderStatus="Pending"))

    assert result.order.total is None
    assert result.order.currency == "JPY"
    assert result.order.presentment_currency == "JPY"


def test_lines_in_another_currency_than_the_order_are_warned_about() -> None:
    body = v0_single_page(v0_item(), OrderTotal={"CurrencyCode": "EUR", "Amount": "10.00"})

    result = parsed(body)

    assert result.order.currency == "EUR"
    assert decided(result) == [("currency.lines_differ", RuleAction.WARN, "currency")]


def test_a_v0_line_total_that_does_not_divide_is_rounded_with_a_decision() -> None:
    body = v0_single_page(
        v0_item(QuantityOrdered=3), OrderTotal={"CurrencyCode": "USD", "Amount": "10.00"}
    )

    result = parsed(body)

    assert result.order.lines[0].unit_price == usd("3.33")
    assert decided(result) == [
        ("line.unit_price_rounded", RuleAction.REPAIR, "OrderItems[0].ItemPrice")
    ]


def test_a_v0_line_without_a_price_has_no_unit_price() -> None:
    body = v0_single_page(v0_item(ItemPrice=None), OrderTotal=None)

    assert parsed(body).order.lines[0].unit_price is None


@pytest.mark.parametrize(("quantity", "units"), [("1", 1), ("3.000000", 3), ("2.0", 2), (4, 4)])
def test_v0_whole_quantities_in_any_form_are_read(quantity: object, units: int) -> None:
    body = v0_single_page(v0_item(QuantityOrdered=quantity, ItemPrice=None))

    assert parsed(body).order.lines[0].quantity == units


@pytest.mark.parametrize("quantity", ["1.5", 0, -2, "", None, "lots"])
def test_a_v0_quantity_that_is_not_a_positive_whole_number_is_refused(quantity: object) -> None:
    error = refused(v0_single_page(v0_item(QuantityOrdered=quantity)))

    assert error.code == "INVALID_QUANTITY"
    assert error.field == "OrderItems[0].QuantityOrdered"


def test_two_different_v0_buyer_emails_are_both_kept() -> None:
    result = parsed(v0_envelope(BuyerEmail="Other@Example.com"))

    assert result.order.customer == Customer(
        id=None, email="user@example.com", guest=True, other_emails=("other@example.com",)
    )
    assert decided(result) == [("customer.emails_differ", RuleAction.WARN, "BuyerInfo.BuyerEmail")]


def test_a_v0_buyer_without_an_email_is_a_guest_without_one() -> None:
    result = parsed(v0_envelope(BuyerInfo={"BuyerEmail": ""}))

    assert result.order.customer == Customer(id=None, email=None, guest=True)


# --- 2026-01-01 orders ---------------------------------------------------------------------


def test_a_2026_search_response_splits_into_its_orders() -> None:
    parts = ADAPTER.split(fixture(SEARCH_2026))

    assert [part["order"]["orderId"] for part in parts] == [
        "114-1111111-2222222",
        "114-3333333-4444444",
    ]


def test_the_2026_search_responses_messy_pickup_reads_field_by_field() -> None:
    result = parsed(ADAPTER.split(fixture(SEARCH_2026))[0])

    assert result.order == ChannelOrder(
        channel=SalesChannel.AMAZON,
        account="acme",
        external_id="114-1111111-2222222",
        external_number="114-1111111-2222222",
        event=OrderEvent.CREATE,
        placed_at=datetime(2026, 1, 5, 10, 20, 30, tzinfo=UTC),
        updated_at=datetime(2026, 1, 5, 10, 45, 0, 123456, tzinfo=UTC),
        customer=Customer(id=None, email="abc123xyz@marketplace.amazon.com", guest=True),
        currency="USD",
        presentment_currency="USD",
        total=usd("104.97"),
        lines=(
            OrderLine(
                "ECHO-DOT-CLOCK",
                2,
                "B08DFPV54V",
                "Echo Dot & Clock",
                usd("29.99"),
                "11411111112222",
            ),
            # An empty SKU is none: the ASIN stays for a rule to map.
            OrderLine(None, 1, "B0BSHF7WHW", "Echo Pop", usd("44.99"), "11411111113333"),
        ),
        pickup=Pickup(requested=True, channel_location_id=None),
        status="unshipped",
    )
    assert decided(result) == [LOCATION_MISSING_2026]


def test_the_2026_search_responses_cancelled_order_is_a_cancel_without_its_zero_unit_line() -> None:
    result = parsed(ADAPTER.split(fixture(SEARCH_2026))[1])

    assert result.order == ChannelOrder(
        channel=SalesChannel.AMAZON,
        account="acme",
        external_id="114-3333333-4444444",
        external_number="114-3333333-4444444",
        event=OrderEvent.CANCEL,
        placed_at=datetime(2026, 1, 4, 8, 0, tzinfo=UTC),
        updated_at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        customer=Customer(id=None, email=None, guest=True),
        currency="USD",
        presentment_currency="USD",
        total=usd("0"),
        lines=(),
        pickup=Pickup(requested=True, channel_location_id=None),
        cancelled=True,
        status="cancelled",
    )
    assert decided(result) == [
        ("line.cancelled_zero", RuleAction.REPAIR, "orderItems[0].quantityOrdered"),
        LOCATION_MISSING_2026,
    ]


def test_an_empty_2026_search_response_is_not_an_order() -> None:
    payload = {"orders": [], "createdBefore": "2026-01-05T00:00:00Z"}

    assert ADAPTER.split(payload) == [payload]
    result = ADAPTER.parse(payload, DELIVERY)
    assert isinstance(result, NotAnOrder)
    assert "no orders" in result.reason


def test_a_2026_search_response_is_split_before_it_is_parsed() -> None:
    assert refused(fixture(SEARCH_2026)).code == "MALFORMED"


def test_a_2026_order_without_pickup_programme_is_not_a_pickup() -> None:
    result = parsed(order_2026(programs=["PRIME"]))

    assert result.order.pickup == Pickup(requested=False)
    assert result.decisions == ()


@pytest.mark.parametrize("quantity", ["0.5", 0, "-1"])
def test_a_2026_quantity_that_is_not_a_positive_whole_number_is_refused(quantity: object) -> None:
    body = order_2026()
    item_2026(body)["quantityOrdered"] = quantity

    error = refused(body)

    assert error.code == "INVALID_QUANTITY"
    assert error.field == "orderItems[0].quantityOrdered"


def test_a_2026_order_without_items_is_refused() -> None:
    assert refused(order_2026(orderItems=[])).code == "MISSING_ITEMS"


def test_a_2026_price_that_is_not_a_number_is_refused() -> None:
    body = order_2026()
    item_2026(body)["product"]["price"]["unitPrice"]["amount"] = "39,99 $"

    error = refused(body)

    assert error.code == "INVALID_AMOUNT"
    assert error.field == "orderItems[0].product.price.unitPrice.amount"


def test_a_2026_amount_without_a_currency_is_refused() -> None:
    body = order_2026(proceeds={"grandTotal": {"amount": "49.99"}})

    assert refused(body).code == "MISSING_CURRENCY"


@pytest.mark.parametrize("order_id", [None, "", "   "])
def test_a_2026_order_without_an_id_is_refused(order_id: object) -> None:
    error = refused(order_2026(orderId=order_id))

    assert error.code == "MISSING_ID"
    assert error.field == "orderId"


def test_an_unreadable_2026_creation_time_is_repaired_to_the_receive_time() -> None:
    result = parsed(order_2026(createdTime="yesterday", lastUpdatedTime=None))

    assert result.order.placed_at == RECEIVED
    assert result.order.updated_at is None
    assert decided(result) == [
        LOCATION_MISSING_2026,
        ("timestamp.unreadable", RuleAction.REPAIR, "createdTime"),
    ]


def test_numeric_skus_are_text() -> None:
    body = order_2026()
    item_2026(body)["product"]["sellerSku"] = 4006381333931

    assert parsed(body).order.lines[0].sku == "4006381333931"


# --- what is not an order ------------------------------------------------------------------


def test_an_sp_api_error_body_is_refused() -> None:
    error = refused({"errors": [{"code": "InvalidInput", "message": "Invalid Input"}]})

    assert error.code == "CHANNEL_ERROR"
    assert "InvalidInput" in error.message


def test_a_v0_getorders_list_is_refused_for_its_missing_items() -> None:
    body = {"payload": {"Orders": [fixture(V0_ORDER)["payload"]], "NextToken": "x"}}

    assert refused(body).code == "MISSING_ITEMS"


@pytest.mark.parametrize("payload", [["not", "an", "order"], {"hello": "world"}])
def test_a_body_that_is_no_amazon_order_is_refused(payload: object) -> None:
    assert refused(payload).code == "MALFORMED"


def test_a_list_body_splits_into_its_elements() -> None:
    first, second = fixture(V0_ENVELOPE), fixture(PICKUP_2026)

    assert ADAPTER.split([first, second]) == [first, second]


# --- notifications: thin, fetched back --------------------------------------------------------


def order_change(order_id: object = "903-1671087-0812628") -> dict[str, Any]:
    """An ORDER_CHANGE notification as the Notifications API documents it."""
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": "2026-03-02T08:59:53.109Z",
        "Payload": {
            "OrderChangeNotification": {
                "NotificationLevel": "OrderLevel",
                "SellerId": "A3TH9S8BH6GOGM",
                "AmazonOrderId": order_id,
                "OrderChangeType": "OrderStatusChange",
                "OrderChangeTrigger": {
                    "TimeOfOrderChange": "2026-03-02T08:59:04.284Z",
                    "ChangeReason": "BuyerRequestedChange",
                },
                "Summary": {"MarketplaceId": "ATVPDKIKX0DER", "OrderStatus": "Unshipped"},
            }
        },
        "NotificationMetadata": {"NotificationId": "b3adf364-4937-436e-a833-49c72b4baee8"},
    }


def test_an_order_change_notification_names_the_order_to_fetch_back() -> None:
    assert ADAPTER.parse(order_change(), DELIVERY) == FetchBack(
        external_id="903-1671087-0812628", topic="ORDER_CHANGE"
    )


def test_a_notification_inside_an_eventbridge_event_is_read_the_same() -> None:
    event = {"version": "0", "detail-type": "ORDER_CHANGE", "detail": order_change()}
    result = ADAPTER.parse(event, DELIVERY)
    assert isinstance(result, FetchBack)
    assert result.external_id == "903-1671087-0812628"


def test_other_notifications_are_not_orders() -> None:
    body = order_change()
    body["NotificationType"] = "ANY_OFFER_CHANGED"
    result = ADAPTER.parse(body, DELIVERY)
    assert isinstance(result, NotAnOrder)
    assert "not an order change" in result.reason


def test_an_order_change_without_an_order_id_is_refused() -> None:
    assert refused(order_change(None)).code == "MISSING_ID"
