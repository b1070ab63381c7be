"""Thin webhooks fetched back, over real HTTP: `ropos channel-emulator` serves BigCommerce's,
Square's and Amazon's order APIs and sends their signed thin webhooks to a running gateway, whose
intake worker fetches each order through the account's API client, reads it with the channel's
adapter and reserves it; and when the API is down, slow, rate-limiting or refusing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from adapters.db.engine import Database
from domain.intake import IntakeMessage, IntakeStatus, SalesChannel
from services.intake import ops
from tests.api.conftest import ChannelEmulator, Gateway, intake_stopped, running_gateway
from tests.api.given import given_stores_with_stock
from tests.api.test_intake_flow import SECRET, given_account, stock

pytestmark = pytest.mark.asyncio(loop_scope="session")

API_TOKEN = "channel-api-token-0123456789"
NOTIFICATION_URL = "https://ropos.example.com/intake/square/acme"
FETCH_TIMEOUT = 1.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    """A gateway whose channel API calls time out quickly."""
    async with running_gateway(
        database_url, db, intake_fetch_timeout_seconds=FETCH_TIMEOUT
    ) as running:
        yield running


@pytest.fixture
async def channel(api: Gateway, emulator: ChannelEmulator) -> ChannelEmulator:
    """The emulator with no faults and no orders; the gateway's clock at the real time (the
    emulator signs with it)."""
    api.clock.set(datetime.now(UTC).replace(microsecond=0))
    channels = api.app.state.runtime.channels
    assert channels is not None
    channels.gate.clear()  # a 429 an earlier test had answered pauses nobody here
    await emulator.admin("POST", "/admin/faults", {"mode": "none"})
    await emulator.admin("DELETE", "/admin/requests")
    for name in ("bigcommerce", "square", "amazon"):
        await emulator.admin("PUT", f"/admin/accounts/{name}/acme", {"token": API_TOKEN})
        for order_id in (await emulator.admin("GET", f"/admin/orders/{name}/acme"))["orderIds"]:
            await emulator.admin("DELETE", f"/admin/orders/{name}/acme/{order_id}")
    return emulator


async def given_channel(
    http: httpx.AsyncClient,
    api: Gateway,
    emulator: ChannelEmulator,
    channel: SalesChannel,
    **change: Any,
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 10})
    fields: dict[str, Any] = {
        "api_base_url": f"{emulator.url}/{channel.value}/acme",
        "api_token": API_TOKEN,
        "products": {"CAT-1": "SKU-1"},
    }
    if channel is SalesChannel.SQUARE:
        fields["notification_url"] = NOTIFICATION_URL
    fields.update(change)
    await given_account(api, channel, **fields)


def square_order(
    order_id: str = "SQ-ORDER-1", *, version: int = 1, quantity: str = "2.000", minute: int = 0
) -> dict[str, Any]:
    return {
        "id": order_id,
        "location_id": "LOC-1",
        "reference_id": "WEB-1",
        "customer_id": "CUST-1",
        "created_at": "2026-12-01T10:00:00Z",
        "updated_at": f"2026-12-01T10:{minute:02d}:00Z",
        "state": "OPEN",
        "version": version,
        "line_items": [
            {
                "uid": "li-1",
                "catalog_object_id": "CAT-1",
                "name": "Mug",
                "quantity": quantity,
                "base_price_money": {"amount": 1250, "currency": "EUR"},
            }
        ],
        "fulfillments": [{"uid": "f-1", "type": "PICKUP", "state": "PROPOSED"}],
        "total_money": {"amount": 2500, "currency": "EUR"},
    }


def bigcommerce_order(order_id: int = 9007199254740993) -> dict[str, Any]:
    order = {
        "id": order_id,
        "customer_id": 0,
        "date_created": "Tue, 01 Dec 2026 10:00:00 +0000",
        "date_modified": "Tue, 01 Dec 2026 10:00:00 +0000",
        "status_id": 8,
        "status": "Awaiting Pickup",
        "total_inc_tax": "25.0000",
        "default_currency_code": "EUR",
        "currency_code": "EUR",
        "billing_address": {"email": "guest@example.com"},
    }
    products = [
        {
            "id": 1,
            "order_id": order_id,
            "product_id": 77,
            "sku": "SKU-1",
            "name": "Mug",
            "quantity": 3,
            "price_inc_tax": "12.5000",
            "type": "physical",
        }
    ]
    consignments = {"pickups": [{"id": 1, "location": {"id": "LOC-2"}, "line_items": []}]}
    return {"order": order, "products": products, "consignments": consignments}


def amazon_order(order_id: str = "114-9876543-1234567") -> dict[str, Any]:
    return {
        "orderId": order_id,
        "createdTime": "2026-12-01T10:00:00Z",
        "lastUpdatedTime": "2026-12-01T10:30:00Z",
        "programs": ["IN_STORE_PICK_UP"],
        "proceeds": {"grandTotal": {"amount": "39.99", "currencyCode": "EUR"}},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "orderItems": [
            {
                "orderItemId": "11498765431234",
                "quantityOrdered": 1,
                "product": {
                    "asin": "B0BSHF7WHW",
                    "title": "Speaker",
                    "sellerSku": "SKU-1",
                    "price": {"unitPrice": {"amount": "39.99", "currencyCode": "EUR"}},
                },
            }
        ],
    }


async def send(
    emulator: ChannelEmulator,
    api: Gateway,
    channel: SalesChannel,
    order_id: str,
    topic: str,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "channel": channel.value,
        "account": "acme",
        "orderId": order_id,
        "topic": topic,
        "url": f"{api.url}/intake/{channel.value}/acme",
        "secret": SECRET,
        "notificationUrl": NOTIFICATION_URL,
        **extra,
    }
    sent: dict[str, Any] = await emulator.admin("POST", "/admin/send", body)
    assert sent["status"] == 202, sent
    return sent


async def settled(api: Gateway, message_id: str, *statuses: IntakeStatus) -> IntakeMessage:
    """The message once the worker has brought it to one of `statuses` (default: final)."""
    deps = api.app.state.runtime.deps
    found: IntakeMessage | None = None
    for _ in range(200):
        found = await ops.message(message_id, uow=deps.uow)
        if found is not None and (found.status in statuses if statuses else found.status.final):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} did not settle: {found}")


async def fetches(emulator: ChannelEmulator, channel: SalesChannel) -> list[dict[str, Any]]:
    found = await emulator.admin("GET", f"/admin/requests?channel={channel.value}&account=acme")
    return list(found)


# --- each thin webhook fetched back -----------------------------------------------------------


async def test_a_square_order_webhook_is_fetched_back_and_reserved(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.SQUARE)
    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", square_order())

    sent = await send(channel, api, SalesChannel.SQUARE, "SQ-ORDER-1", "order.created")
    assert "line_items" not in str(sent["sent"])  # the webhook carries no lines
    message = await settled(api, sent["body"]["messageId"])

    assert message.status is IntakeStatus.ACCEPTED, message
    assert message.order is not None
    assert (message.order.external_id, message.order.event.value) == ("SQ-ORDER-1", "CREATE")
    assert [(line.sku, line.quantity) for line in message.order.lines] == [("SKU-1", 2)]
    assert message.decisions[0].rule == "fetch.back"
    assert message.reservation_group_id is not None
    assert (await stock(http, api, "S001", "SKU-1")) == {"onHand": 10, "reserved": 2}
    (request,) = await fetches(channel, SalesChannel.SQUARE)
    assert (request["method"], request["path"]) == ("GET", "/v2/orders/SQ-ORDER-1")


async def test_a_bigcommerce_webhook_fetches_the_order_its_products_and_consignments(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.BIGCOMMERCE)
    order_id = "9007199254740993"  # above 2**53: exact all the way
    await channel.admin(
        "PUT", f"/admin/orders/bigcommerce/acme/{order_id}", bigcommerce_order(int(order_id))
    )

    sent = await send(channel, api, SalesChannel.BIGCOMMERCE, order_id, "store/order/created")
    message = await settled(api, sent["body"]["messageId"])

    assert message.status is IntakeStatus.ACCEPTED, message
    assert message.order is not None
    assert message.order.external_id == order_id
    assert message.order.pickup.channel_location_id == "LOC-2"
    assert (await stock(http, api, "S002", "SKU-1")) == {"onHand": 10, "reserved": 3}
    assert (await stock(http, api, "S001", "SKU-1")) == {"onHand": 10, "reserved": 0}
    paths = [r["path"] for r in await fetches(channel, SalesChannel.BIGCOMMERCE)]
    assert paths == [
        f"/v2/orders/{order_id}",
        f"/v2/orders/{order_id}/products",
        f"/v2/orders/{order_id}/consignments",
    ]


async def test_an_amazon_order_change_notification_is_fetched_back(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.AMAZON)
    await channel.admin("PUT", "/admin/orders/amazon/acme/114-9876543-1234567", amazon_order())

    sent = await send(channel, api, SalesChannel.AMAZON, "114-9876543-1234567", "ORDER_CHANGE")
    message = await settled(api, sent["body"]["messageId"])

    assert message.status is IntakeStatus.ACCEPTED, message
    assert message.order is not None
    assert message.order.pickup.requested
    assert (await stock(http, api, "S001", "SKU-1")) == {"onHand": 10, "reserved": 1}
    (request,) = await fetches(channel, SalesChannel.AMAZON)
    assert request["path"] == "/orders/2026-01-01/orders/114-9876543-1234567"


# --- the channel's API down, slow, rate-limiting, refusing --------------------------------------


async def test_an_api_that_is_down_is_asked_again_later_and_the_order_then_goes_through(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.SQUARE)
    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", square_order())
    await channel.admin("POST", "/admin/faults", {"mode": "down", "status": 503})

    sent = await send(channel, api, SalesChannel.SQUARE, "SQ-ORDER-1", "order.created")
    waiting = await settled(api, sent["body"]["messageId"], IntakeStatus.RETRYING)
    assert waiting.error_code == "FETCH_UNAVAILABLE"
    assert waiting.error is not None
    assert "503" in waiting.error
    assert waiting.next_attempt_at > api.clock.now()
    assert (await stock(http, api, "S001", "SKU-1"))["reserved"] == 0

    await channel.admin("POST", "/admin/faults", {"mode": "none"})
    api.clock.advance(3600)  # past the backoff
    api.app.state.runtime.intake.wake()
    done = await settled(api, sent["body"]["messageId"])
    assert (done.status, done.attempts) == (IntakeStatus.ACCEPTED, 2)
    assert (await stock(http, api, "S001", "SKU-1"))["reserved"] == 2


async def test_a_slow_api_is_a_timeout_and_tried_again(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.SQUARE)
    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", square_order())
    slow = {"mode": "slow", "delaySeconds": FETCH_TIMEOUT * 3, "times": 1}
    await channel.admin("POST", "/admin/faults", slow)

    sent = await send(channel, api, SalesChannel.SQUARE, "SQ-ORDER-1", "order.created")
    waiting = await settled(api, sent["body"]["messageId"], IntakeStatus.RETRYING)
    assert waiting.error_code == "FETCH_UNAVAILABLE"
    assert waiting.error is not None
    assert "in time" in waiting.error

    api.clock.advance(3600)
    api.app.state.runtime.intake.wake()
    assert (await settled(api, sent["body"]["messageId"])).status is IntakeStatus.ACCEPTED


async def test_a_429_is_honoured_its_retry_after_before_the_next_try(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.AMAZON)
    await channel.admin("PUT", "/admin/orders/amazon/acme/114-9876543-1234567", amazon_order())
    limited = {"mode": "rate-limit", "retryAfter": 900, "times": 1}
    await channel.admin("POST", "/admin/faults", limited)

    sent = await send(channel, api, SalesChannel.AMAZON, "114-9876543-1234567", "ORDER_CHANGE")
    waiting = await settled(api, sent["body"]["messageId"], IntakeStatus.RETRYING)
    assert waiting.error_code == "FETCH_RATE_LIMITED"
    # Not before the channel said: far past the first backoff of a few seconds
    assert waiting.next_attempt_at >= api.clock.now() + timedelta(seconds=900)


async def test_an_order_the_api_refuses_is_dead_with_the_channels_answer(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.BIGCOMMERCE)

    # No such order at the channel: 404, asking again changes nothing
    sent = await send(channel, api, SalesChannel.BIGCOMMERCE, "404404", "store/order/updated")
    message = await settled(api, sent["body"]["messageId"])
    assert (message.status, message.error_code) == (IntakeStatus.DEAD, "FETCH_REFUSED")
    assert message.error is not None
    assert "404" in message.error
    assert API_TOKEN not in (message.error or "")
    assert len(await fetches(channel, SalesChannel.BIGCOMMERCE)) == 1

    # Ops fix what was wrong at the channel and replay: fetched again, and reserved
    await channel.admin("PUT", "/admin/orders/bigcommerce/acme/404404", bigcommerce_order(404404))
    deps = api.app.state.runtime.deps
    await ops.replay(message.id, "ops-1", uow=deps.uow, clock=deps.clock)
    api.app.state.runtime.intake.wake()
    assert (await settled(api, message.id)).status is IntakeStatus.ACCEPTED


async def test_a_forbidden_answer_is_dead_at_once(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.SQUARE, api_token="not-the-token")
    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", square_order())

    sent = await send(channel, api, SalesChannel.SQUARE, "SQ-ORDER-1", "order.updated")
    message = await settled(api, sent["body"]["messageId"])
    assert (message.status, message.error_code, message.attempts) == (
        IntakeStatus.DEAD,
        "FETCH_REFUSED",
        1,
    )
    assert message.error is not None
    assert "401" in message.error
    assert "not-the-token" not in message.error


async def test_an_account_without_api_credentials_dead_letters_its_thin_webhooks(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.AMAZON, api_base_url=None, api_token=None)
    sent = await send(channel, api, SalesChannel.AMAZON, "114-9876543-1234567", "ORDER_CHANGE")
    message = await settled(api, sent["body"]["messageId"])
    assert (message.status, message.error_code) == (IntakeStatus.DEAD, "FETCH_REFUSED")
    assert message.error is not None
    assert "no API credentials" in message.error
    assert await fetches(channel, SalesChannel.AMAZON) == []


# --- versions -------------------------------------------------------------------------------


async def test_a_fetched_order_older_than_the_one_applied_changes_nothing(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.SQUARE)
    newer = square_order(version=3, quantity="3", minute=30)
    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", newer)
    first = await send(channel, api, SalesChannel.SQUARE, "SQ-ORDER-1", "order.updated")
    assert (await settled(api, first["body"]["messageId"])).status is IntakeStatus.ACCEPTED
    assert (await stock(http, api, "S001", "SKU-1"))["reserved"] == 3

    # The channel's API serves an older copy (a replica behind): applied over nothing
    older = square_order(version=2, quantity="1", minute=10)
    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", older)
    second = await send(channel, api, SalesChannel.SQUARE, "SQ-ORDER-1", "order.updated")
    message = await settled(api, second["body"]["messageId"])
    assert (message.status, message.error_code) == (IntakeStatus.IGNORED, "STALE")
    assert (await stock(http, api, "S001", "SKU-1"))["reserved"] == 3


async def test_a_square_read_behind_the_webhooks_version_is_tried_again(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_channel(http, api, channel, SalesChannel.SQUARE)
    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", square_order(version=6))
    async with intake_stopped(api):
        sent = await send(channel, api, SalesChannel.SQUARE, "SQ-ORDER-1", "order.updated")
        assert sent["sent"]["data"]["object"]["order_updated"]["version"] == 6
        # By the time the worker asks, the API still answers version 5
        behind = square_order(version=5)
        await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", behind)
    waiting = await settled(api, sent["body"]["messageId"], IntakeStatus.RETRYING)
    assert waiting.error is not None
    assert "not caught up" in waiting.error

    await channel.admin("PUT", "/admin/orders/square/acme/SQ-ORDER-1", square_order(version=6))
    api.clock.advance(3600)
    api.app.state.runtime.intake.wake()
    assert (await settled(api, sent["body"]["messageId"])).status is IntakeStatus.ACCEPTED
