"""Every payload in tests/fixtures/payloads through the HTTP edge, signed as its channel signs,
then the gateway's worker: each valid order ends ACCEPTED, IGNORED or refused for a business
reason a merchant would agree with. Zero false-positive rejects, said file by file.

The account is set up as its merchant would have: the channel's pickup locations mapped to a
store, the product ids of lines that carry no SKU mapped to SKUs, stock of every SKU. The
canonical order each message ends with is the one the channel's adapter and the rules make of the
payload (their unit tests pin it field by field): the edge and the worker keep it exactly."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.channels import ADAPTERS
from adapters.channels.common import loads
from domain.intake import (
    ChannelOrder,
    Delivery,
    IntakeMessage,
    IntakeStatus,
    Parsed,
    PayloadRefused,
    SalesChannel,
    to_json,
)
from domain.intake_auth import sign_shopify, sign_square, sign_woocommerce, standard_headers
from services.intake import ops
from tests.api.conftest import Gateway, gql
from tests.api.given import KINGS_CROSS, OXFORD_CIRCUS, given_stock, given_stores
from tests.api.test_intake_flow import finished, given_account

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
SECRET = "payload-test-secret-0123456789"
NOTIFICATION_URL = "https://ropos.example.com/intake/square/acme"
# Topics a channel sends in a header, by the fixture file's name (REST bodies carry none).
TOPICS = {
    "webhook_orders_create": "orders/create",
    "authored_webhook_orders_create": "orders/create",
    "webhook_orders_cancelled": "orders/cancelled",
    "webhook_inventory_levels_update": "inventory_levels/update",
    "authored_webhook_order_local_pickup": "order.created",
    "authored_webhook_ping": "action.woocommerce_webhook_ping",
}
A = ("ACCEPTED", None)
NOTHING_HELD = ("IGNORED", "NOTHING_HELD")
NOT_PICKUP = ("IGNORED", "NOT_PICKUP")
NOT_AN_ORDER = ("IGNORED", "NOT_AN_ORDER")
# A thin webhook names an order to fetch back, and this account has no API to fetch it from
# (test_intake_fetch_back.py fetches them from the channel emulator).
NO_API = ("DEAD", "FETCH_REFUSED")

# What becomes of each file's orders: one (status, code) per order, in the body's order. A
# REJECTED is allowed only for what a merchant would refuse too, and says why beside it.
EXPECTED: dict[str, list[tuple[str, str | None]]] = {
    # Adobe Commerce
    "adobe-commerce/adobe_io_event_observer_sales_order_invoice_save_after_docs_qty_string.json": [
        NOT_AN_ORDER  # an invoice, not its order
    ],
    "adobe-commerce/authored_cloudevent_sales_order_save_after_pickup.json": [A],
    "adobe-commerce/authored_rest_V1_order_instore_pickup_configurable_bundle.json": [A],
    "adobe-commerce/authored_rest_V1_orders_search_response.json": [A, NOTHING_HELD],
    "adobe-commerce/magento_rest_V1_carts_mine_shipping_information_instore_pickup_request_docs"
    ".json": [NOT_AN_ORDER],  # a checkout request: nothing is placed yet
    # Amazon
    "amazon/authored_spapi_2026_searchOrders_pickup_and_cancelled.json": [A, NOTHING_HELD],
    "amazon/authored_spapi_v0_envelope_ispu_two_pages.json": [A],
    "amazon/spapi_2026_getOrder_in_store_pickup.json": [A],
    # v0 getOrder and getOrderItems are two halves of one order: pushed alone, each is refused
    # (lines are stock); the v0 envelope above joins them.
    "amazon/spapi_v0_getOrderItems_example.json": [("REJECTED", "MISSING_ORDER")],
    "amazon/spapi_v0_getOrder_example.json": [("REJECTED", "MISSING_ITEMS")],
    # BigCommerce: the published order, products and consignments are three resources of three
    # different orders; pushed alone, none is an order (the envelope joins them).
    "bigcommerce/bc_envelope_cancelled_shipping_authored.json": [NOTHING_HELD],
    "bigcommerce/bc_envelope_pickup_guest_messy_authored.json": [A],
    "bigcommerce/bc_orders_list_authored.json": [A, NOT_AN_ORDER],
    "bigcommerce/bc_v2_get_order_218_docs.json": [("REJECTED", "MISSING_ITEMS")],
    "bigcommerce/bc_v2_get_order_consignments_pickup_docs.json": [("REJECTED", "MALFORMED")],
    "bigcommerce/bc_v2_get_order_products_docs.json": [
        ("REJECTED", "MALFORMED"),
        ("REJECTED", "MALFORMED"),
    ],
    # generic
    "generic/generic_order_pickup_authored.json": [A],
    "generic/generic_order_wrong_types_authored.json": [("REJECTED", "MALFORMED")],
    "generic/generic_orders_list_messy_authored.json": [A, NOTHING_HELD],
    # Shopify
    "shopify/authored_rest_orders_list_pos_and_local_pickup_2025-07.json": [A, NOTHING_HELD],
    "shopify/authored_webhook_orders_create_2026-01_pickup_guest_messy.json": [A],
    "shopify/webhook_inventory_levels_update_docs_sample_2024-04.json": [NOT_AN_ORDER],
    "shopify/webhook_orders_cancelled_docs_sample_2026-04.json": [NOTHING_HELD],
    "shopify/webhook_orders_create_docs_sample_2023-07.json": [NOTHING_HELD],  # cancelled already
    # Square
    "square/square_order_pickup_guest_messy_authored.json": [A],
    # weighed (1.5 lb): not whole units of stock
    "square/square_order_weighed_fractional_authored.json": [("REJECTED", "INVALID_QUANTITY")],
    "square/square_retrieve_order_response_docs.json": [NOT_PICKUP],
    "square/square_search_orders_response_authored.json": [NOT_PICKUP, NOTHING_HELD],
    "square/square_webhook_order_created_thin_authored.json": [NO_API],
    "square/square_webhook_order_fulfillment_updated_docs.json": [NO_API],
    "square/square_webhook_order_updated_full_order_authored.json": [A],
    # WooCommerce
    "woocommerce/authored_legacy_wc_api_v3_order_local_pickup.json": [A],
    "woocommerce/authored_rest_orders_list_pickup_plus_and_cancelled.json": [A, NOTHING_HELD],
    "woocommerce/authored_webhook_order_local_pickup_block_guest.json": [A],
    "woocommerce/authored_webhook_ping.json": [NOT_AN_ORDER],
    "woocommerce/wc_rest_v3_retrieve_order_727_docs.json": [NOT_PICKUP],
}
RECEIVED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def fixture_files() -> list[str]:
    return sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.glob("*/*.json"))


async def test_every_fixture_file_has_its_expected_outcome() -> None:
    assert fixture_files() == sorted(EXPECTED)


def topic_of(name: str) -> str | None:
    return next((t for prefix, t in TOPICS.items() if Path(name).name.startswith(prefix)), None)


def orders_in(channel: SalesChannel, body: bytes, topic: str | None) -> list[ChannelOrder]:
    """What the channel's adapter reads in the body (to set the account up as its merchant
    would: locations, product ids, stock)."""
    adapter = ADAPTERS[channel]
    delivery = Delivery(channel, "acme", RECEIVED_AT, topic=topic)
    found = []
    for part in adapter.split(loads(body)):
        try:
            parsed = adapter.parse(part, delivery)
        except PayloadRefused:
            continue
        if isinstance(parsed, Parsed):
            found.append(parsed.order)
    return found


def sku_for(product_id: str) -> str:
    return "P-" + re.sub(r"[^A-Za-z0-9._-]", "-", product_id)[:60]


def signed(channel: SalesChannel, body: bytes, topic: str | None, now: int) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if channel is SalesChannel.SHOPIFY:
        headers |= {
            "X-Shopify-Hmac-Sha256": sign_shopify(SECRET, body),
            "X-Shopify-Event-Id": uuid.uuid4().hex,
        }
        if topic:
            headers["X-Shopify-Topic"] = topic
    elif channel is SalesChannel.WOOCOMMERCE:
        headers["X-WC-Webhook-Signature"] = sign_woocommerce(SECRET, body)
        if topic:
            headers["X-WC-Webhook-Topic"] = topic
    elif channel is SalesChannel.SQUARE:
        headers["x-square-hmacsha256-signature"] = sign_square(SECRET, NOTIFICATION_URL, body)
    else:
        headers |= standard_headers(SECRET, f"msg_{uuid.uuid4().hex}", now, body)
    return headers


async def given_merchant(
    http: httpx.AsyncClient, api: Gateway, channel: SalesChannel, orders: list[ChannelOrder]
) -> None:
    locations = {
        o.pickup.channel_location_id: "S001" for o in orders if o.pickup.channel_location_id
    }
    products = {
        line.channel_product_id: sku_for(line.channel_product_id)
        for o in orders
        for line in o.lines
        if line.channel_product_id and not line.sku
    }
    skus = {line.sku.strip() for o in orders for line in o.lines if line.sku} | set(
        products.values()
    )
    named = sorted({o.pickup.store_id for o in orders if o.pickup.store_id} - {"S001", "S002"})
    await given_stores(
        http,
        api,
        OXFORD_CIRCUS,
        KINGS_CROSS,
        *({**KINGS_CROSS, "id": store, "name": f"Store {store}"} for store in named),
    )
    if skus:
        await given_stock(
            http, api, {(store, sku): 1000 for store in ("S001", *named) for sku in skus}
        )
    await given_account(
        api,
        channel,
        secret=SECRET,
        locations=locations,
        products=products,
        notification_url=NOTIFICATION_URL if channel is SalesChannel.SQUARE else None,
    )


async def outcomes(api: Gateway, message: IntakeMessage) -> list[IntakeMessage]:
    """The messages that carry the body's orders: the message itself, or its children."""
    async with api.app.state.runtime.deps.uow() as tx:
        children = await tx.intake.children(message.id)
    if not children:
        return [message]
    assert message.status is IntakeStatus.ACCEPTED
    return [await finished(api, child.id) for child in children]


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_a_published_or_authored_payload_through_the_edge(
    http: httpx.AsyncClient, api: Gateway, name: str
) -> None:
    channel = SalesChannel(name.split("/", 1)[0])
    body = (FIXTURES / name).read_bytes()
    topic = topic_of(name)
    orders = orders_in(channel, body, topic)
    await given_merchant(http, api, channel, orders)
    headers = signed(channel, body, topic, int(api.clock.now().timestamp()))
    response = await http.post(
        f"{api.url}/intake/{channel.value}/acme", content=body, headers=headers
    )
    assert response.status_code == 202, response.text
    first = await finished(api, response.json()["messageId"])
    done = await outcomes(api, first)
    assert [(m.status.value, m.error_code) for m in done] == EXPECTED[name], [
        (m.status, m.error_code, m.error) for m in done
    ]
    for message in done:
        if (
            message.status is IntakeStatus.ACCEPTED
            and message.order
            and not message.order.cancelled
        ):
            await held_as_ordered(http, api, message)


async def held_as_ordered(http: httpx.AsyncClient, api: Gateway, message: IntakeMessage) -> None:
    """An accepted order's reservation holds exactly its lines' units, at its store."""
    assert message.order is not None
    assert message.reservation_group_id is not None
    held = await ops.channel_order(
        message.channel,
        message.account,
        message.order.external_id,
        uow=api.app.state.runtime.deps.uow,
    )
    assert held is not None
    assert to_json(held.order) == to_json(message.order.without_contact())
    assert held.order.customer.email is None
    wanted: dict[str, int] = {}
    for line in message.order.lines:
        assert line.sku is not None
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    store = message.order.pickup.store_id or "S001"
    for sku, quantity in wanted.items():
        result = await gql(
            http,
            api,
            "query($st: ID!, $s: String!) { stockLevel(storeId: $st, sku: $s) { reserved } }",
            {"st": store, "s": sku},
            api.token("ops"),
        )
        assert result.ok()["stockLevel"] == {"reserved": quantity}, (store, sku)
