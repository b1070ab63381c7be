"""The channel emulator (`ropos channel-emulator`): BigCommerce's, Square's, Amazon's, WooCommerce's
and Shopify's order APIs as ROPOS's clients call them, the faults it makes on demand, its request
log, and the signed webhooks it sends to ROPOS's intake."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.channels.emulator import create_channel_emulator
from domain.intake import SalesChannel
from domain.intake_auth import AuthFailure, AuthMethod, verify
from tests.helpers import free_port, serving

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
TOKEN = "channel-token-0123456789"
# A WooCommerce account's token is its REST API key pair, "consumer key:consumer secret".
WOO_KEY = "ck_4f1c2b0e9d8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"
WOO_SECRET = "cs_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b"
WOO_TOKEN = f"{WOO_KEY}:{WOO_SECRET}"
SECRET = "signing-secret-0123456789"
ROPOS = "http://ropos.test"
CHANNELS = ["bigcommerce", "square", "amazon", "woocommerce", "shopify"]
TOKENS = {channel: WOO_TOKEN if channel == "woocommerce" else TOKEN for channel in CHANNELS}
ORDER_PATH = {
    "bigcommerce": "/v2/orders/{}",
    "square": "/v2/orders/{}",
    "amazon": "/orders/2026-01-01/orders/{}",
    "woocommerce": "/wp-json/wc/v3/orders/{}",
    "shopify": "/admin/api/2025-07/orders/{}.json",
}
AMAZON_SEARCH = "/orders/2026-01-01/orders"
WOO_ORDERS = "/wp-json/wc/v3/orders"
SHOPIFY_ORDERS = "/admin/api/2025-07/orders.json"
SHOPIFY_UNAUTHORIZED = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
SHOPIFY_THROTTLED = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted "
    "service."
)


def auth(channel: str, token: str) -> dict[str, str]:
    """The headers with which a channel's API takes `token`."""
    basic = base64.b64encode(token.encode()).decode()
    return {
        "bigcommerce": {"X-Auth-Token": token},
        "square": {"Authorization": f"Bearer {token}"},
        "amazon": {"x-amz-access-token": token},
        "woocommerce": {"Authorization": f"Basic {basic}"},
        "shopify": {"X-Shopify-Access-Token": token},
    }[channel]


AUTH = {channel: auth(channel, TOKENS[channel]) for channel in CHANNELS}


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def bc_order(order_id: str, modified: str | None, **fields: Any) -> dict[str, Any]:
    order: dict[str, Any] = {"id": int(order_id), "status_id": 11, **fields}
    if modified is not None:
        order["date_modified"] = modified
    return {"order": order, "products": [], "consignments": {"pickups": [], "shipping": []}}


def square_order(order_id: str, location: str, updated: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "location_id": location,
        "created_at": "2026-03-01T08:00:00Z",
        "updated_at": updated,
        "state": "OPEN",
        "version": 2,
    }


def amazon_order(order_id: str, updated: str) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "createdTime": "2026-03-01T08:00:00Z",
        "lastUpdatedTime": updated,
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED"},
    }


def woo_order(
    order_id: int, modified_gmt: str | None, created_gmt: str = "2026-12-01T08:00:00", **fields: Any
) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": order_id,
        "status": "processing",
        "date_created_gmt": created_gmt,
        **fields,
    }
    if modified_gmt is not None:
        order["date_modified_gmt"] = modified_gmt
    return order


def shopify_order(order_id: int, updated: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": order_id,
        "created_at": "2026-12-01T08:00:00-05:00",
        "updated_at": updated,
        "closed_at": None,
        "cancelled_at": None,
        **fields,
    }


ANY_ORDER = {
    "bigcommerce": ("218", bc_order("218", "Mon, 02 Mar 2026 09:00:00 +0000")),
    "square": ("SQ1", square_order("SQ1", "L1", "2026-03-02T09:00:00Z")),
    "amazon": ("114-0000000-0000001", amazon_order("114-0000000-0000001", "2026-03-02T09:00:00Z")),
    "woocommerce": ("727", woo_order(727, "2026-03-02T09:00:00")),
    "shopify": ("450789469", shopify_order(450789469, "2026-03-02T09:00:00-05:00")),
}


class Ticks:
    """The emulator's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Receiver:
    """A stand-in for ROPOS's intake: it keeps what it was sent (path, headers, raw body) and
    answers 202 as the intake does."""

    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def intake(self, request: Request) -> Response:
        self.received.append((request.url.path, dict(request.headers), await request.body()))
        return JSONResponse({"messageId": "m-1", "status": "RECEIVED"}, status_code=202)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/intake/{channel}/{account}", self.intake, methods=["POST"])]
        )


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest_asyncio.fixture(loop_scope="session")
async def emulator(ticks: Ticks, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator in process, its webhooks delivered to the receiver in process."""
    app = create_channel_emulator(
        clock=ticks, webhook_transport=httpx.ASGITransport(app=receiver.app())
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        yield client


# --- helpers --------------------------------------------------------------------------------------


async def admin(
    emulator: httpx.AsyncClient, method: str, path: str, body: Any = None
) -> httpx.Response:
    return await emulator.request(method, path, json=body)


async def given_account(
    emulator: httpx.AsyncClient, channel: str, account: str = "acme", token: str | None = None
) -> None:
    body = {"token": TOKENS[channel] if token is None else token}
    response = await admin(emulator, "PUT", f"/admin/accounts/{channel}/{account}", body)
    assert response.status_code == 200, response.text


async def given_order(
    emulator: httpx.AsyncClient,
    channel: str,
    order_id: str,
    resource: dict[str, Any],
    account: str = "acme",
) -> None:
    path = f"/admin/orders/{channel}/{account}/{order_id}"
    response = await admin(emulator, "PUT", path, resource)
    assert response.status_code == 200, response.text


async def given_fault(emulator: httpx.AsyncClient, **fault: Any) -> None:
    response = await admin(emulator, "POST", "/admin/faults", fault)
    assert response.status_code == 200, response.text


async def api(
    emulator: httpx.AsyncClient,
    channel: str,
    path: str,
    *,
    account: str = "acme",
    method: str = "GET",
    params: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A call to an account's API as ROPOS's client makes it, with the right credential unless
    `headers` says otherwise."""
    return await emulator.request(
        method,
        f"/{channel}/{account}{path}",
        params=params,
        json=body,
        headers=AUTH[channel] if headers is None else headers,
    )


async def get_any_order(emulator: httpx.AsyncClient, channel: str) -> httpx.Response:
    return await api(emulator, channel, ORDER_PATH[channel].format(ANY_ORDER[channel][0]))


async def given_any_order(emulator: httpx.AsyncClient, channel: str, account: str = "acme") -> None:
    await given_account(emulator, channel, account)
    order_id, resource = ANY_ORDER[channel]
    await given_order(emulator, channel, order_id, resource, account)


def send_body(channel: str, order_id: str, topic: str, **extra: Any) -> dict[str, Any]:
    return {
        "channel": channel,
        "account": "acme",
        "orderId": order_id,
        "topic": topic,
        "url": f"{ROPOS}/intake/{channel}/acme",
        "secret": SECRET,
        **extra,
    }


def error_shape(channel: str, status: int, code: str) -> Any:
    """What the channel's error body looks like, with its message left out."""
    return {
        "bigcommerce": [{"status": status}],
        "square": {"errors": [{"code": code}]},
        "amazon": {"errors": [{"code": code}]},
        "woocommerce": {"code": code, "data": {"status": status}},
        "shopify": {"errors": code},  # Shopify's message is its error: `code` is that text
    }[channel]


def without_messages(channel: str, body: Any) -> Any:
    if channel == "bigcommerce":
        assert all(isinstance(e.pop("message"), str) for e in body)
        return body
    if channel == "woocommerce":
        assert isinstance(body.pop("message"), str)
        return body
    if channel == "shopify":
        assert set(body) == {"errors"}
        return body
    for error in body["errors"]:
        assert isinstance(error.pop("detail" if channel == "square" else "message"), str)
        error.pop("category", None)
    return body


# --- BigCommerce ----------------------------------------------------------------------------------


async def test_bigcommerce_serves_an_order_its_products_and_its_consignments(
    emulator: httpx.AsyncClient,
) -> None:
    order = payload("bigcommerce/bc_v2_get_order_218_docs.json")
    products = payload("bigcommerce/bc_v2_get_order_products_docs.json")
    consignments = payload("bigcommerce/bc_v2_get_order_consignments_pickup_docs.json")
    await given_account(emulator, "bigcommerce")
    resource = {"order": order, "products": products, "consignments": consignments}
    await given_order(emulator, "bigcommerce", "218", resource)

    got = await api(emulator, "bigcommerce", "/v2/orders/218")
    got_products = await api(emulator, "bigcommerce", "/v2/orders/218/products")
    got_consignments = await api(emulator, "bigcommerce", "/v2/orders/218/consignments")

    assert (got.status_code, got.json()) == (200, order)
    assert (got_products.status_code, got_products.json()) == (200, products)
    assert (got_consignments.status_code, got_consignments.json()) == (200, consignments)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_an_unknown_order_is_404_in_the_channels_error_shape(
    emulator: httpx.AsyncClient, channel: str
) -> None:
    await given_any_order(emulator, channel)
    paths = [ORDER_PATH[channel].format("nope"), "/v3/nothing-here"]
    if channel == "bigcommerce":
        paths += ["/v2/orders/999/products", "/v2/orders/999/consignments"]

    for path in paths:
        response = await api(emulator, channel, path)
        code = {
            "bigcommerce": "",
            "square": "NOT_FOUND",
            "amazon": "NotFound",
            "woocommerce": "rest_no_route",  # its route takes a numeric id only
            "shopify": "Not Found",
        }[channel]
        assert response.status_code == 404, path
        assert without_messages(channel, response.json()) == error_shape(channel, 404, code)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_call_without_the_accounts_credential_is_401_in_the_channels_shape(
    emulator: httpx.AsyncClient, channel: str
) -> None:
    order_id, resource = ANY_ORDER[channel]
    await given_order(emulator, channel, order_id, resource, account="no-token")
    await given_any_order(emulator, channel)
    path = ORDER_PATH[channel].format(order_id)
    wrong = auth(channel, "wrong-token")
    code = {
        "bigcommerce": "",
        "square": "UNAUTHORIZED",
        "amazon": "Unauthorized",
        "woocommerce": "woocommerce_rest_cannot_view",
        "shopify": SHOPIFY_UNAUTHORIZED,
    }[channel]

    answers = [
        await api(emulator, channel, path, account="no-token"),  # no token was ever set
        await api(emulator, channel, path, account="never-made"),
        await api(emulator, channel, path, headers={}),
        await api(emulator, channel, path, headers=wrong),
    ]

    for response in answers:
        assert response.status_code == 401
        assert without_messages(channel, response.json()) == error_shape(channel, 401, code)
    assert (await api(emulator, channel, path)).status_code == 200


async def test_bigcommerce_products_page_by_limit_and_answer_204_past_the_end(
    emulator: httpx.AsyncClient,
) -> None:
    products = [{"id": n, "order_id": 7, "sku": f"SKU{n}", "quantity": 1} for n in range(260)]
    await given_account(emulator, "bigcommerce")
    await given_order(emulator, "bigcommerce", "7", {**bc_order("7", None), "products": products})

    async def page(**params: str) -> httpx.Response:
        return await api(emulator, "bigcommerce", "/v2/orders/7/products", params=params)

    assert (await page()).json() == products[:50]
    assert (await page(page="6")).json() == products[250:]
    assert (await page(limit="1000")).json() == products[:250]
    assert (await page(limit="250", page="2")).json() == products[250:]
    past = await page(page="7")
    assert (past.status_code, past.content) == (204, b"")
    bad = await page(page="0")
    assert bad.status_code == 400
    assert without_messages("bigcommerce", bad.json()) == [{"status": 400}]


async def test_bigcommerce_lists_orders_modified_in_a_window_by_date_then_id(
    emulator: httpx.AsyncClient,
) -> None:
    await given_account(emulator, "bigcommerce")
    dates = {
        "10": "Tue, 03 Mar 2026 10:00:00 +0000",
        "9": "Tue, 03 Mar 2026 11:00:00 +0100",  # the same instant as order 10
        "3": "Mon, 02 Mar 2026 09:00:00 +0000",
        "4": "Wed, 04 Mar 2026 09:00:00 +0000",
        "9007199254740993": "Thu, 05 Mar 2026 09:00:00 +0000",
        "5": "0000-00-00 00:00:00",  # unreadable: only in an unbounded listing, first
    }
    for order_id, modified in dates.items():
        await given_order(emulator, "bigcommerce", order_id, bc_order(order_id, modified))

    async def ids(**params: str) -> list[int]:
        response = await api(emulator, "bigcommerce", "/v2/orders", params=params)
        assert response.status_code == 200, response.text
        return [order["id"] for order in response.json()]

    window = {
        "min_date_modified": "Mon, 02 Mar 2026 09:00:00 +0000",  # RFC 2822, inclusive
        "max_date_modified": "2026-03-04T09:00:00Z",  # ISO 8601, inclusive
        "sort": "date_modified:asc",
    }
    assert await ids(**window) == [3, 9, 10, 4]
    assert await ids(**window, limit="2", page="2") == [10, 4]
    assert await ids(**{**window, "sort": "date_modified:desc"}) == [4, 10, 9, 3]
    assert await ids() == [5, 3, 9, 10, 4, 9007199254740993]
    assert await ids(min_date_modified="2026-03-05T09:00:00+00:00") == [9007199254740993]
    unbounded = await api(emulator, "bigcommerce", "/v2/orders")
    assert '"id":9007199254740993' in unbounded.text.replace(" ", "")  # never through a float
    for params in ({"min_date_modified": "2027-01-01"}, {**window, "page": "3", "limit": "2"}):
        none = await api(emulator, "bigcommerce", "/v2/orders", params=params)
        assert (none.status_code, none.content) == (204, b"")


async def test_bigcommerce_refuses_a_date_or_sort_it_cannot_read(
    emulator: httpx.AsyncClient,
) -> None:
    await given_any_order(emulator, "bigcommerce")
    for params in ({"min_date_modified": "yesterday"}, {"sort": "total:asc"}):
        response = await api(emulator, "bigcommerce", "/v2/orders", params=params)
        assert response.status_code == 400
        assert without_messages("bigcommerce", response.json()) == [{"status": 400}]


# --- Square ---------------------------------------------------------------------------------------


async def test_square_retrieves_an_order(emulator: httpx.AsyncClient) -> None:
    order = payload("square/square_retrieve_order_response_docs.json")["order"]
    await given_account(emulator, "square")
    await given_order(emulator, "square", order["id"], order)

    response = await api(emulator, "square", f"/v2/orders/{order['id']}")

    assert (response.status_code, response.json()) == (200, {"order": order})


async def test_square_search_pages_a_locations_orders_updated_in_the_window(
    emulator: httpx.AsyncClient,
) -> None:
    await given_account(emulator, "square")
    orders = [
        square_order("E", "L1", "2026-03-02T10:00:00Z"),
        square_order("A", "L1", "2026-03-02T09:00:00.000Z"),  # at start_at: in
        square_order("B", "L1", "2026-03-02T11:00:00+01:00"),  # the same instant as E
        square_order("C", "L2", "2026-03-02T10:00:00Z"),  # another location
        square_order("D", "L1", "2026-03-02T12:00:00Z"),  # at end_at: out
        square_order("Z", "L1", "2026-03-02T08:59:59Z"),  # before start_at: out
    ]
    for order in orders:
        await given_order(emulator, "square", order["id"], order)
    query = {
        "filter": {
            "date_time_filter": {
                "updated_at": {"start_at": "2026-03-02T09:00:00Z", "end_at": "2026-03-02T12:00:00Z"}
            }
        },
        "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
    }

    async def search(**body: Any) -> dict[str, Any]:
        response = await api(emulator, "square", "/v2/orders/search", method="POST", body=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    first = await search(location_ids=["L1"], query=query, limit=2)
    second = await search(location_ids=["L1"], query=query, limit=2, cursor=first["cursor"])
    both = await search(location_ids=["L1", "L2"], query=query)

    assert [o["id"] for o in first["orders"]] == ["A", "B"]
    assert [o["id"] for o in second["orders"]] == ["E"]
    assert "cursor" not in second
    assert [o["id"] for o in both["orders"]] == ["A", "B", "C", "E"]
    assert await search(location_ids=["ELSEWHERE"], query=query) == {}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "INVALID_VALUE"),
        ({"location_ids": []}, "INVALID_VALUE"),
        ({"location_ids": [f"L{n}" for n in range(11)]}, "INVALID_VALUE"),
        ({"location_ids": ["L1"], "limit": 0}, "INVALID_VALUE"),
        ({"location_ids": ["L1"], "cursor": "not-a-cursor"}, "INVALID_CURSOR"),
        (
            {"location_ids": ["L1"], "query": {"filter": {"state_filter": {"states": ["OPEN"]}}}},
            "INVALID_VALUE",
        ),
    ],
)
async def test_square_search_refuses_what_it_cannot_answer(
    emulator: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    await given_any_order(emulator, "square")

    response = await api(emulator, "square", "/v2/orders/search", method="POST", body=body)

    assert response.status_code == 400
    assert without_messages("square", response.json()) == {"errors": [{"code": code}]}


# --- Amazon ---------------------------------------------------------------------------------------


async def test_amazon_gets_an_order_whatever_included_data_asks(
    emulator: httpx.AsyncClient,
) -> None:
    order = payload("amazon/spapi_2026_getOrder_in_store_pickup.json")["order"]
    await given_account(emulator, "amazon")
    await given_order(emulator, "amazon", order["orderId"], order)

    response = await api(
        emulator,
        "amazon",
        f"/orders/2026-01-01/orders/{order['orderId']}",
        params={"includedData": "BUYER,RECIPIENT"},
    )

    assert (response.status_code, response.json()) == (200, {"order": order})


async def test_amazon_search_pages_through_a_window_with_next_tokens(
    emulator: httpx.AsyncClient,
) -> None:
    # Updated 2026-01-05 10:45:00.123456789Z (nanoseconds) and 12:00:00Z.
    pickup, cancelled = payload(
        "amazon/authored_spapi_2026_searchOrders_pickup_and_cancelled.json"
    )["orders"]
    await given_account(emulator, "amazon")
    for order in (pickup, cancelled):
        await given_order(emulator, "amazon", order["orderId"], order)
    for order_id, updated in [("A", "2026-01-05T09:00:00Z"), ("B", "2026-01-05T12:00:01Z")]:
        await given_order(emulator, "amazon", order_id, amazon_order(order_id, updated))
    window = {
        "lastUpdatedAfter": "2026-01-05T09:00:00Z",  # inclusive
        "lastUpdatedBefore": "2026-01-05T12:00:00Z",  # inclusive
        "marketplaceIds": "ATVPDKIKX0DER",
    }

    first = await api(
        emulator, "amazon", AMAZON_SEARCH, params={**window, "maxResultsPerPage": "2"}
    )
    token = first.json()["pagination"]["nextToken"]
    second = await api(emulator, "amazon", AMAZON_SEARCH, params={"paginationToken": token})
    everything = await api(emulator, "amazon", AMAZON_SEARCH, params=window)

    assert [o["orderId"] for o in first.json()["orders"]] == ["A", "114-1111111-2222222"]
    assert second.json() == {"orders": [cancelled]}
    assert [o["orderId"] for o in everything.json()["orders"]] == [
        "A",
        "114-1111111-2222222",
        "114-3333333-4444444",
    ]
    assert "pagination" not in everything.json()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"lastUpdatedBefore": "2026-01-05T12:00:00Z"},
        {"lastUpdatedAfter": "last week"},
        {"lastUpdatedAfter": "2026-01-05T09:00:00Z", "maxResultsPerPage": "101"},
        {"paginationToken": "not-a-token"},
    ],
)
async def test_amazon_search_refuses_a_query_without_a_readable_window(
    emulator: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await given_any_order(emulator, "amazon")

    response = await api(emulator, "amazon", AMAZON_SEARCH, params=params)

    assert response.status_code == 400
    assert without_messages("amazon", response.json()) == {"errors": [{"code": "InvalidInput"}]}


# --- WooCommerce ----------------------------------------------------------------------------------


async def test_woocommerce_gets_an_order_with_its_key_pair_in_basic_auth_or_the_query(
    emulator: httpx.AsyncClient,
) -> None:
    order = payload("woocommerce/wc_rest_v3_retrieve_order_727_docs.json")
    big = payload("woocommerce/authored_webhook_order_local_pickup_block_guest.json")
    await given_account(emulator, "woocommerce")
    await given_order(emulator, "woocommerce", "727", order)
    await given_order(emulator, "woocommerce", str(big["id"]), big)
    keys = {"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET}

    basic = await api(emulator, "woocommerce", "/wp-json/wc/v3/orders/727")
    by_query = await api(
        emulator, "woocommerce", "/wp-json/wc/v3/orders/727", params=keys, headers={}
    )
    exact = await api(emulator, "woocommerce", f"/wp-json/wc/v3/orders/{big['id']}")
    missing = await api(emulator, "woocommerce", "/wp-json/wc/v3/orders/728")

    assert (basic.status_code, basic.json()) == (200, order)
    assert (by_query.status_code, by_query.json()) == (200, order)
    assert f'"id":{big["id"]},' in exact.text.replace(" ", "")  # 2**53 + 1, never a float
    assert missing.status_code == 404
    assert without_messages("woocommerce", missing.json()) == {
        "code": "woocommerce_rest_shop_order_invalid_id",
        "data": {"status": 404},
    }


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        (auth("woocommerce", f"{WOO_KEY}:cs_wrong"), {}),
        (auth("woocommerce", WOO_KEY), {}),  # the key without its secret
        ({"Authorization": "Basic not-base64!"}, {}),
        ({"Authorization": f"Bearer {WOO_TOKEN}"}, {}),
        ({}, {"consumer_key": WOO_KEY}),
        ({}, {"consumer_key": WOO_KEY, "consumer_secret": "cs_wrong"}),
    ],
)
async def test_woocommerce_wants_the_whole_key_pair(
    emulator: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str]
) -> None:
    await given_any_order(emulator, "woocommerce")

    response = await api(emulator, "woocommerce", WOO_ORDERS, headers=headers, params=params)

    assert response.status_code == 401
    assert without_messages("woocommerce", response.json()) == {
        "code": "woocommerce_rest_cannot_view",
        "data": {"status": 401},
    }


async def woo_ids(emulator: httpx.AsyncClient, **params: str) -> list[int]:
    response = await api(emulator, "woocommerce", WOO_ORDERS, params=params)
    assert response.status_code == 200, response.text
    return [order["id"] for order in response.json()]


async def test_woocommerce_lists_orders_modified_strictly_inside_the_window(
    emulator: httpx.AsyncClient,
) -> None:
    await given_account(emulator, "woocommerce")
    local_only, cancelled = payload(
        "woocommerce/authored_rest_orders_list_pickup_plus_and_cancelled.json"
    )
    modified = {
        1: "2026-12-01T10:00:00",  # at modified_after: out
        2: "2026-12-01T10:00:01",
        6: "2026-12-01T11:00:00",
        5: "2026-12-01T11:59:59",
        4: "2026-12-01T12:00:00",  # at modified_before: out
    }
    for order_id, gmt in modified.items():
        created = f"2026-11-{order_id:02d}T08:00:00"
        await given_order(emulator, "woocommerce", str(order_id), woo_order(order_id, gmt, created))
    # No date_modified_gmt: its site-local date_modified is read as UTC.
    local = woo_order(3, None, "2026-11-30T08:00:00", date_modified="2026-12-01T11:00:00")
    await given_order(emulator, "woocommerce", "3", local)
    for order in (local_only, cancelled):  # modified 2025-11-03 (local) and 2025-11-04 (GMT)
        await given_order(emulator, "woocommerce", str(order["id"]), order)
    window = {
        "modified_after": "2026-12-01T10:00:00",
        "modified_before": "2026-12-01T12:00:00",
        "dates_are_gmt": "true",
        "status": "any",
    }

    assert await woo_ids(emulator, **window, orderby="modified", order="asc") == [2, 3, 6, 5]
    assert await woo_ids(emulator, **window, orderby="modified") == [5, 6, 3, 2]  # desc default
    assert await woo_ids(emulator, **window) == [3, 6, 5, 2]  # by date created, newest first
    assert await woo_ids(emulator, **window, orderby="id", order="asc") == [2, 3, 5, 6]
    assert await woo_ids(emulator, modified_after="2026-12-01T11:00:00+01:00", orderby="id") == [
        6,
        5,
        4,
        3,
        2,
    ]  # 10:00 UTC, exclusive; without dates_are_gmt still UTC
    assert await woo_ids(emulator, modified_before="2025-12-01T00:00:00", order="asc") == [
        1201,
        1202,
    ]
    assert await woo_ids(emulator, modified_after="2027-01-01T00:00:00") == []


async def test_woocommerce_pages_by_number_with_totals_in_headers(
    emulator: httpx.AsyncClient,
) -> None:
    await given_account(emulator, "woocommerce")
    for n in range(1, 26):
        order = woo_order(n, f"2026-12-01T10:{n:02d}:00")
        await given_order(emulator, "woocommerce", str(n), order)
    query = {"modified_after": "2026-12-01T00:00:00", "orderby": "modified", "order": "asc"}

    async def page(**params: str) -> httpx.Response:
        response = await api(emulator, "woocommerce", WOO_ORDERS, params={**query, **params})
        assert response.status_code == 200, response.text
        return response

    pages = [await page(page=str(n)) for n in (1, 2, 3, 4)]
    default = await page()
    hundred = await page(per_page="100")

    assert [[o["id"] for o in p.json()] for p in pages] == [
        list(range(1, 11)),
        list(range(11, 21)),
        list(range(21, 26)),
        [],  # past the end: an empty list, still 200
    ]
    for response in [*pages, default]:
        assert (response.headers["x-wp-total"], response.headers["x-wp-totalpages"]) == ("25", "3")
    assert default.json() == pages[0].json()  # per_page 10, page 1
    assert (len(hundred.json()), hundred.headers["x-wp-totalpages"]) == (25, "1")
    assert "link" not in hundred.headers
    first_links = dict(
        (rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', pages[0].headers["link"])
    )
    assert list(first_links) == ["next"]
    assert parse_qs(httpx.URL(first_links["next"]).query.decode())["page"] == ["2"]
    last = dict(
        (rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', pages[2].headers["link"])
    )
    assert list(last) == ["prev"]


@pytest.mark.parametrize(
    "params",
    [
        {"per_page": "101"},
        {"per_page": "0"},
        {"page": "0"},
        {"orderby": "title"},
        {"order": "ascending"},
        {"modified_after": "2026-12-01"},  # a date without a time: WordPress refuses it too
        {"modified_before": "yesterday"},
        {"dates_are_gmt": "yes please"},
        {"after": "2026-12-01T00:00:00"},  # created-date filters: not emulated, so refused
    ],
)
async def test_woocommerce_refuses_a_listing_it_cannot_answer(
    emulator: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await given_any_order(emulator, "woocommerce")

    response = await api(emulator, "woocommerce", WOO_ORDERS, params=params)

    assert response.status_code == 400
    assert without_messages("woocommerce", response.json()) == {
        "code": "rest_invalid_param",
        "data": {"status": 400},
    }


# --- Shopify --------------------------------------------------------------------------------------


async def test_shopify_gets_an_order_under_any_dated_api_version(
    emulator: httpx.AsyncClient,
) -> None:
    order = payload("shopify/webhook_orders_create_docs_sample_2023-07.json")
    await given_account(emulator, "shopify")
    await given_order(emulator, "shopify", str(order["id"]), order)

    answers = [
        await api(emulator, "shopify", f"/admin/api/{version}/orders/{order['id']}.json")
        for version in ("2025-07", "2026-01", "2025-7", "latest")
    ]
    missing = await api(emulator, "shopify", "/admin/api/2025-07/orders/1.json")

    assert [(r.status_code, r.json()) for r in answers] == [
        (200, {"order": order}),
        (200, {"order": order}),
        (404, {"errors": "Not Found"}),
        (404, {"errors": "Not Found"}),
    ]
    assert (missing.status_code, missing.json()) == (404, {"errors": "Not Found"})


async def shopify_list(emulator: httpx.AsyncClient, **params: str) -> httpx.Response:
    response = await api(emulator, "shopify", SHOPIFY_ORDERS, params=params)
    assert response.status_code == 200, response.text
    return response


def shopify_ids(response: httpx.Response) -> list[int]:
    return [order["id"] for order in response.json()["orders"]]


def links(response: httpx.Response) -> dict[str, str]:
    """The URLs of a `Link` header, by rel."""
    header = response.headers.get("link", "")
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


async def test_shopify_lists_orders_updated_inside_the_window_ends_included(
    emulator: httpx.AsyncClient,
) -> None:
    await given_account(emulator, "shopify")
    updated = {
        1: "2026-12-01T10:00:00-05:00",  # at updated_at_min: in
        2: "2026-12-01T15:00:00Z",  # the same instant: after order 1, by id
        3: "2026-12-01T14:59:59Z",  # before: out
        4: "2026-12-01T20:00:00Z",  # at updated_at_max: in
        5: "2026-12-01T20:00:01Z",  # after: out
    }
    for order_id, at in updated.items():
        await given_order(emulator, "shopify", str(order_id), shopify_order(order_id, at))
    cancelled = shopify_order(
        6, "2026-12-01T16:00:00Z", cancelled_at="2026-12-01T16:00:00Z", cancel_reason="customer"
    )
    closed = shopify_order(7, "2026-12-01T17:00:00Z", closed_at="2026-12-01T17:00:00Z")
    for order in (cancelled, closed):
        await given_order(emulator, "shopify", str(order["id"]), order)
    window = {
        "updated_at_min": "2026-12-01T10:00:00-05:00",
        "updated_at_max": "2026-12-01T15:00:00-05:00",
    }

    assert shopify_ids(await shopify_list(emulator, **window, status="any")) == [1, 2, 6, 7, 4]
    descending = await shopify_list(emulator, **window, status="any", order="updated_at desc")
    assert shopify_ids(descending) == [4, 7, 6, 2, 1]
    assert shopify_ids(await shopify_list(emulator, **window)) == [1, 2, 4]  # status=open
    assert shopify_ids(await shopify_list(emulator, **window, status="cancelled")) == [6]
    assert shopify_ids(await shopify_list(emulator, **window, status="closed")) == [7]
    by_id = await shopify_list(emulator, **window, status="any", order="id desc")
    assert shopify_ids(by_id) == [7, 6, 4, 2, 1]
    unbounded = await shopify_list(emulator, status="any")
    assert shopify_ids(unbounded) == [3, 1, 2, 6, 7, 4, 5]
    assert "link" not in unbounded.headers


async def test_shopify_pages_by_the_link_headers_cursor_to_the_end(
    emulator: httpx.AsyncClient,
) -> None:
    pos, web = payload("shopify/authored_rest_orders_list_pos_and_local_pickup_2025-07.json")[
        "orders"
    ]  # updated 2025-06-01T16:00:05Z and 2025-06-02T08:00:00Z
    await given_account(emulator, "shopify")
    for order in (pos, web):
        await given_order(emulator, "shopify", str(order["id"]), order)
    for n in range(1, 6):
        order = shopify_order(n, f"2025-06-01T{10 + n:02d}:00:00Z")
        await given_order(emulator, "shopify", str(n), order)
    query = {"status": "any", "updated_at_min": "2025-06-01T00:00:00Z", "limit": "3"}

    first = await shopify_list(emulator, **query, order="updated_at asc")
    second = await emulator.get(links(first)["next"], headers=AUTH["shopify"])
    # An order on the page already read is updated meanwhile: it moves to the end, and no other
    # order is skipped or read twice for it.
    await given_order(emulator, "shopify", "1", shopify_order(1, "2025-06-03T00:00:00Z"))
    third = await emulator.get(links(second)["next"], headers=AUTH["shopify"])
    back = await emulator.get(links(third)["previous"], headers=AUTH["shopify"])

    assert shopify_ids(first) == [1, 2, 3]
    assert shopify_ids(second) == [4, 5, pos["id"]]
    assert shopify_ids(third) == [web["id"], 1]
    assert (list(links(first)), list(links(second)), list(links(third))) == (
        ["next"],
        ["previous", "next"],
        ["previous"],
    )
    assert shopify_ids(back) == [4, 5, pos["id"]]
    next_url = httpx.URL(links(first)["next"])
    assert str(next_url).startswith(f"http://emulator/shopify/acme{SHOPIFY_ORDERS}?")
    assert list(parse_qs(next_url.query.decode())) == ["limit", "page_info"]
    assert parse_qs(next_url.query.decode())["limit"] == ["3"]
    # Only limit may come with a page_info; the window, order and status are in it.
    page_info = parse_qs(next_url.query.decode())["page_info"][0]
    wider = await shopify_list(emulator, page_info=page_info, limit="250")
    assert shopify_ids(wider) == [4, 5, pos["id"], web["id"], 1]
    for extra in ({"status": "any"}, {"updated_at_min": "2025-06-01T00:00:00Z"}):
        refused = await api(
            emulator, "shopify", SHOPIFY_ORDERS, params={"page_info": page_info, **extra}
        )
        assert refused.status_code == 400
        assert list(refused.json()["errors"]) == ["page_info"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "251"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"page_info": "not-a-cursor"}, "page_info"),
        ({"updated_at_min": "last tuesday"}, "updated_at_min"),
        ({"order": "total_price asc"}, "order"),
        ({"status": "archived"}, "status"),
        ({"since_id": "5"}, "since_id"),  # a filter not emulated: refused, not ignored
    ],
)
async def test_shopify_refuses_a_listing_it_cannot_answer_naming_the_field(
    emulator: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    await given_any_order(emulator, "shopify")

    response = await api(emulator, "shopify", SHOPIFY_ORDERS, params=params)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert all(isinstance(message, str) for message in errors[field])


# --- faults and rate limits -----------------------------------------------------------------------


async def test_a_fault_for_every_account_answers_in_each_channels_shape_but_spares_admin(
    emulator: httpx.AsyncClient,
) -> None:
    for channel in CHANNELS:
        await given_any_order(emulator, channel)
    await given_fault(emulator, mode="down")
    codes = {
        "bigcommerce": "",
        "square": "SERVICE_UNAVAILABLE",
        "amazon": "InternalFailure",
        "woocommerce": "internal_server_error",
        "shopify": "Service Unavailable",
    }

    for channel in CHANNELS:
        response = await get_any_order(emulator, channel)
        assert response.status_code == 503
        assert without_messages(channel, response.json()) == error_shape(
            channel, 503, codes[channel]
        )
    assert (await admin(emulator, "GET", "/admin/orders/square/acme")).status_code == 200
    assert (await emulator.get("/healthz")).text == "ok"

    await given_fault(emulator, mode="none")
    assert [(await get_any_order(emulator, c)).status_code for c in CHANNELS] == [200] * 5


async def test_a_fault_for_a_number_of_calls_clears_itself(emulator: httpx.AsyncClient) -> None:
    await given_any_order(emulator, "square")
    await given_fault(emulator, channel="square", account="acme", mode="refuse", times=2)

    statuses = [(await get_any_order(emulator, "square")).status_code for _ in range(3)]

    assert statuses == [403, 403, 200]
    assert (await admin(emulator, "GET", "/admin/faults")).json() == []


async def test_a_fault_keeps_to_its_scope_and_none_clears_it(emulator: httpx.AsyncClient) -> None:
    await given_any_order(emulator, "bigcommerce", account="acme")
    await given_any_order(emulator, "bigcommerce", account="beta")
    await given_any_order(emulator, "amazon")
    await given_fault(emulator, channel="bigcommerce", account="acme", mode="down", status=502)
    await given_fault(emulator, channel="amazon", mode="refuse", status=401)
    path = ORDER_PATH["bigcommerce"].format("218")

    acme = await api(emulator, "bigcommerce", path, account="acme")
    beta = await api(emulator, "bigcommerce", path, account="beta")
    amazon = await get_any_order(emulator, "amazon")

    assert (acme.status_code, beta.status_code, amazon.status_code) == (502, 200, 401)
    assert without_messages("amazon", amazon.json()) == {"errors": [{"code": "Unauthorized"}]}
    await given_fault(emulator, channel="bigcommerce", account="acme", mode="none")
    assert (await api(emulator, "bigcommerce", path, account="acme")).status_code == 200
    assert (await get_any_order(emulator, "amazon")).status_code == 401


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_rate_limit_fault_answers_429_with_retry_after(
    emulator: httpx.AsyncClient, channel: str
) -> None:
    await given_any_order(emulator, channel)
    await given_fault(emulator, channel=channel, mode="rate-limit", retryAfter=7, times=1)

    limited = await get_any_order(emulator, channel)

    code = {
        "bigcommerce": "",
        "square": "RATE_LIMITED",
        "amazon": "QuotaExceeded",
        "woocommerce": "too_many_requests",
        "shopify": SHOPIFY_THROTTLED,
    }[channel]
    retry_after = "7.0" if channel == "shopify" else "7"  # Shopify's are float seconds
    assert (limited.status_code, limited.headers["retry-after"]) == (429, retry_after)
    assert without_messages(channel, limited.json()) == error_shape(channel, 429, code)
    if channel == "amazon":
        assert float(limited.headers["x-amzn-ratelimit-limit"]) > 0
    assert (await get_any_order(emulator, channel)).status_code == 200


async def test_a_slow_fault_answers_normally_after_the_delay(emulator: httpx.AsyncClient) -> None:
    await given_any_order(emulator, "amazon")
    await given_fault(emulator, channel="amazon", mode="slow", delaySeconds=0.2, times=1)

    started = time.monotonic()
    slow = await get_any_order(emulator, "amazon")
    took = time.monotonic() - started

    assert slow.status_code == 200
    assert slow.json() == {"order": ANY_ORDER["amazon"][1]}
    assert took >= 0.2


async def test_a_rate_limit_is_a_token_bucket_that_says_when_to_come_back(
    emulator: httpx.AsyncClient, ticks: Ticks
) -> None:
    await given_any_order(emulator, "bigcommerce")
    limit = {"channel": "bigcommerce", "account": "acme", "perSecond": 0.5, "burst": 2}
    assert (await admin(emulator, "POST", "/admin/rate-limit", limit)).status_code == 200

    burst = [(await get_any_order(emulator, "bigcommerce")).status_code for _ in range(2)]
    over = await get_any_order(emulator, "bigcommerce")
    ticks.advance(1.0)
    still_over = await get_any_order(emulator, "bigcommerce")
    ticks.advance(1.0)
    refilled = await get_any_order(emulator, "bigcommerce")

    assert burst == [200, 200]
    assert (over.status_code, over.headers["retry-after"]) == (429, "2")
    assert (still_over.status_code, still_over.headers["retry-after"]) == (429, "1")
    assert refilled.status_code == 200
    lifted = {"channel": "bigcommerce", "account": "acme", "perSecond": None}
    assert (await admin(emulator, "POST", "/admin/rate-limit", lifted)).status_code == 200
    statuses = [(await get_any_order(emulator, "bigcommerce")).status_code for _ in range(5)]
    assert statuses == [200] * 5


@pytest.mark.parametrize(("channel", "retry_after"), [("woocommerce", "2"), ("shopify", "2.0")])
async def test_a_rate_limit_answers_in_the_channels_own_429(
    emulator: httpx.AsyncClient, ticks: Ticks, channel: str, retry_after: str
) -> None:
    await given_any_order(emulator, channel)
    limit = {"channel": channel, "account": "acme", "perSecond": 0.5}
    assert (await admin(emulator, "POST", "/admin/rate-limit", limit)).status_code == 200

    allowed = await get_any_order(emulator, channel)
    over = await get_any_order(emulator, channel)
    ticks.advance(2.0)
    refilled = await get_any_order(emulator, channel)

    code = {"woocommerce": "too_many_requests", "shopify": SHOPIFY_THROTTLED}[channel]
    assert (allowed.status_code, refilled.status_code) == (200, 200)
    assert (over.status_code, over.headers["retry-after"]) == (429, retry_after)
    assert without_messages(channel, over.json()) == error_shape(channel, 429, code)


# --- the admin API --------------------------------------------------------------------------------


async def test_the_request_log_shows_each_api_call_in_order(emulator: httpx.AsyncClient) -> None:
    await given_any_order(emulator, "bigcommerce")
    await given_any_order(emulator, "square")
    before = time.time()
    await api(emulator, "bigcommerce", "/v2/orders", params={"page": "1", "limit": "5"})
    await api(emulator, "bigcommerce", "/v2/orders/404")
    await api(emulator, "square", "/v2/orders/search", method="POST", body={"location_ids": ["L1"]})

    everything = (await admin(emulator, "GET", "/admin/requests")).json()
    bigcommerce = (await admin(emulator, "GET", "/admin/requests?channel=bigcommerce")).json()

    assert [
        (r["channel"], r["account"], r["method"], r["path"], r["status"]) for r in everything
    ] == [
        ("bigcommerce", "acme", "GET", "/v2/orders", 200),
        ("bigcommerce", "acme", "GET", "/v2/orders/404", 404),
        ("square", "acme", "POST", "/v2/orders/search", 200),
    ]
    assert parse_qs(everything[0]["query"]) == {"page": ["1"], "limit": ["5"]}
    assert before <= everything[0]["at"] <= everything[2]["at"] <= time.time()
    assert bigcommerce == everything[:2]
    assert (await admin(emulator, "DELETE", "/admin/requests")).status_code == 200
    assert (await admin(emulator, "GET", "/admin/requests")).json() == []


async def test_the_request_log_shows_woocommerce_and_shopify_calls(
    emulator: httpx.AsyncClient,
) -> None:
    await given_any_order(emulator, "woocommerce")
    await given_any_order(emulator, "shopify")
    window = {"modified_after": "2026-03-01T00:00:00", "per_page": "100", "page": "1"}
    await api(emulator, "woocommerce", WOO_ORDERS, params=window)
    await api(emulator, "shopify", "/admin/api/2025-07/orders/1.json")
    await api(emulator, "shopify", SHOPIFY_ORDERS, headers={})

    logged = (await admin(emulator, "GET", "/admin/requests")).json()
    shopify = (await admin(emulator, "GET", "/admin/requests?channel=shopify&account=acme")).json()

    assert [(r["channel"], r["method"], r["path"], r["status"]) for r in logged] == [
        ("woocommerce", "GET", WOO_ORDERS, 200),
        ("shopify", "GET", "/admin/api/2025-07/orders/1.json", 404),
        ("shopify", "GET", SHOPIFY_ORDERS, 401),
    ]
    assert parse_qs(logged[0]["query"]) == {k: [v] for k, v in window.items()}
    assert shopify == logged[1:]


async def test_stored_orders_are_listed_replaced_and_deleted(emulator: httpx.AsyncClient) -> None:
    await given_account(emulator, "amazon")
    order = amazon_order("114-1", "2026-03-02T09:00:00Z")
    path = "/admin/orders/amazon/acme/114-1"

    created = await admin(emulator, "PUT", path, order)
    replaced = await admin(
        emulator, "PUT", path, {**order, "lastUpdatedTime": "2026-03-03T00:00:00Z"}
    )
    listed = await admin(emulator, "GET", "/admin/orders/amazon/acme")
    served = await api(emulator, "amazon", "/orders/2026-01-01/orders/114-1")
    deleted = await admin(emulator, "DELETE", path)

    assert (created.json()["created"], replaced.json()["created"]) == (True, False)
    assert listed.json() == {"orderIds": ["114-1"]}
    assert served.json()["order"]["lastUpdatedTime"] == "2026-03-03T00:00:00Z"
    assert deleted.status_code == 200
    assert (await admin(emulator, "DELETE", path)).status_code == 404
    assert (await api(emulator, "amazon", "/orders/2026-01-01/orders/114-1")).status_code == 404
    assert (await admin(emulator, "GET", "/admin/orders/amazon/acme")).json() == {"orderIds": []}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/admin/accounts/ebay/acme", {"token": TOKEN}),
        ("PUT", "/admin/accounts/square/acme", {"token": ""}),
        ("PUT", "/admin/accounts/square/acme", ["not", "an", "object"]),
        ("PUT", "/admin/orders/bigcommerce/acme/218", {"order": {"id": 218.0}}),
        ("PUT", "/admin/orders/bigcommerce/acme/0218", {"order": {"id": 218}}),
        ("PUT", "/admin/orders/bigcommerce/acme/218", {"id": 218}),
        ("PUT", "/admin/orders/bigcommerce/acme/218", {"order": {"id": 218}, "products": {}}),
        ("PUT", "/admin/orders/square/acme/SQ1", {"id": "SQ2"}),
        ("PUT", "/admin/orders/amazon/acme/114-1", {"orderId": " 114-1"}),
        ("PUT", "/admin/orders/woocommerce/acme/727", {"id": "727"}),
        ("PUT", "/admin/orders/woocommerce/acme/727", {"id": True}),
        ("PUT", "/admin/orders/shopify/acme/450789469", {"id": 450789470}),
        ("POST", "/admin/faults", {"mode": "broken"}),
        ("POST", "/admin/faults", {"mode": ["down"]}),
        ("POST", "/admin/faults", {"mode": "down", "status": 200}),
        ("POST", "/admin/faults", {"mode": "refuse", "status": 503}),
        ("POST", "/admin/faults", {"mode": "slow", "delaySeconds": 61}),
        ("POST", "/admin/faults", {"mode": "slow", "status": 503}),
        ("POST", "/admin/faults", {"mode": "down", "times": 0}),
        ("POST", "/admin/faults", {"mode": "down", "account": "acme"}),
        ("POST", "/admin/faults", {"mode": "down", "channel": "ebay"}),
        ("POST", "/admin/rate-limit", {"channel": "square", "account": "acme", "perSecond": 0}),
        ("POST", "/admin/rate-limit", {"channel": "square", "perSecond": 1}),
        ("POST", "/admin/rate-limit", {"channel": "square", "account": "a", "perSecond": "1"}),
        ("POST", "/admin/rate-limit", {"channel": "square", "account": "a", "burst": 0}),
        ("GET", "/admin/requests?channel=ebay", None),
        ("POST", "/admin/send", {"channel": "square"}),
        ("POST", "/admin/send", send_body("square", "SQ1", "orders/create")),
        ("POST", "/admin/send", send_body("bigcommerce", "B-218", "store/order/created")),
        ("POST", "/admin/send", send_body("amazon", "114-1", "ORDER_CHANGE", url="ftp://x")),
        ("POST", "/admin/send", send_body("amazon", "114-1", "ORDER_CHANGE", secret="whsec_!")),
        ("POST", "/admin/send", send_body("amazon", "114-1", "ORDER_CHANGE", eventId=7)),
        ("POST", "/admin/send", send_body("woocommerce", "727", "order.created")),  # not stored
        ("POST", "/admin/send", send_body("woocommerce", "727", "orders/create")),
        ("POST", "/admin/send", send_body("woocommerce", "W-1", "order.deleted")),
        ("POST", "/admin/send", send_body("shopify", "450789469", "orders/updated")),
    ],
)
async def test_bad_admin_input_is_answered_400_with_a_message(
    emulator: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await admin(emulator, method, path, body)

    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert (await admin(emulator, "GET", "/admin/faults")).json() == []


async def test_a_body_that_is_not_json_is_answered_400(emulator: httpx.AsyncClient) -> None:
    response = await emulator.put("/admin/orders/square/acme/SQ1", content=b"{not json")

    assert response.status_code == 400
    assert (await admin(emulator, "GET", "/admin/orders/square/acme")).json() == {"orderIds": []}


# --- webhooks to ROPOS ----------------------------------------------------------------------------


async def send(emulator: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await admin(emulator, "POST", "/admin/send", body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert (answer["status"], answer["body"]) == (202, {"messageId": "m-1", "status": "RECEIVED"})
    return answer


async def test_a_bigcommerce_webhook_is_thin_and_signed_with_standard_webhooks(
    emulator: httpx.AsyncClient, receiver: Receiver
) -> None:
    await given_account(emulator, "bigcommerce")
    await given_order(emulator, "bigcommerce", "218", bc_order("218", None, status_id=7))
    body = send_body("bigcommerce", "218", "store/order/statusUpdated", eventId="evt-1")

    answer = await send(emulator, body)

    [(path, headers, raw)] = receiver.received
    verified = verify(SalesChannel.BIGCOMMERCE, headers, raw, [SECRET], now=time.time())
    sent = json.loads(raw)
    assert path == "/intake/bigcommerce/acme"
    assert (verified.method, verified.event_id) == (AuthMethod.STANDARD_WEBHOOKS, "evt-1")
    assert headers["content-type"] == "application/json"
    assert answer["sent"] == sent
    assert answer["headers"]["webhook-id"] == "evt-1"
    assert sent["scope"] == "store/order/statusUpdated"
    assert sent["data"] == {
        "type": "order",
        "id": 218,
        "status": {"previous_status_id": 0, "new_status_id": 7},
    }
    assert sent["store_id"].isdigit()
    assert sent["producer"] == "stores/acme"
    assert len(sent["hash"]) == 40  # a sha1, in hex
    assert abs(sent["created_at"] - time.time()) < 60
    with pytest.raises(AuthFailure):
        verify(SalesChannel.BIGCOMMERCE, headers, raw, ["another-secret-0123456"], now=time.time())


async def test_a_square_webhook_carries_the_stored_orders_state_and_squares_signature(
    emulator: httpx.AsyncClient, receiver: Receiver
) -> None:
    order = square_order("SQ1", "L1", "2026-03-02T09:00:00Z")
    await given_account(emulator, "square")
    await given_order(emulator, "square", "SQ1", order)
    signed_url = "https://ropos.example.com/intake/square/acme"
    body = send_body("square", "SQ1", "order.fulfillment.updated", notificationUrl=signed_url)

    await send(emulator, body)

    [(_, headers, raw)] = receiver.received
    verified = verify(
        SalesChannel.SQUARE, headers, raw, [SECRET], now=time.time(), notification_url=signed_url
    )
    sent = json.loads(raw)
    assert verified.method is AuthMethod.SQUARE
    assert sent["type"] == "order.fulfillment.updated"
    assert sent["data"] == {
        "type": "order_fulfillment_updated",
        "id": "SQ1",
        "object": {
            "order_fulfillment_updated": {
                "order_id": "SQ1",
                "location_id": "L1",
                "state": "OPEN",
                "version": 2,
                "created_at": "2026-03-01T08:00:00Z",
                "updated_at": "2026-03-02T09:00:00Z",
                "fulfillment_update": [],
            }
        },
    }
    assert sent["event_id"]
    assert sent["merchant_id"]
    with pytest.raises(AuthFailure):  # Square signs the URL as registered: another fails
        verify(
            SalesChannel.SQUARE,
            headers,
            raw,
            [SECRET],
            now=time.time(),
            notification_url=body["url"],
        )


async def test_an_amazon_webhook_is_an_order_change_notification(
    emulator: httpx.AsyncClient, receiver: Receiver
) -> None:
    cancelled = payload("amazon/authored_spapi_2026_searchOrders_pickup_and_cancelled.json")[
        "orders"
    ][1]
    await given_account(emulator, "amazon")
    await given_order(emulator, "amazon", cancelled["orderId"], cancelled)

    await send(emulator, send_body("amazon", cancelled["orderId"], "ORDER_CHANGE", eventId="n-1"))

    [(_, headers, raw)] = receiver.received
    verified = verify(SalesChannel.AMAZON, headers, raw, [SECRET], now=time.time())
    sent = json.loads(raw)
    change = sent["Payload"]["OrderChangeNotification"]
    assert verified.event_id == "n-1"
    assert (sent["NotificationType"], sent["NotificationMetadata"]["NotificationId"]) == (
        "ORDER_CHANGE",
        "n-1",
    )
    assert change["AmazonOrderId"] == "114-3333333-4444444"
    assert change["OrderChangeTrigger"]["TimeOfOrderChange"] == cancelled["lastUpdatedTime"]
    assert change["Summary"]["OrderStatus"] == "Canceled"
    assert change["Summary"]["PurchaseDate"] == cancelled["createdTime"]
    assert change["SellerId"].startswith("A")


async def test_a_woocommerce_webhook_carries_the_whole_order_signed_as_woocommerce_signs(
    emulator: httpx.AsyncClient, receiver: Receiver
) -> None:
    order = payload("woocommerce/authored_webhook_order_local_pickup_block_guest.json")
    order_id = str(order["id"])
    await given_account(emulator, "woocommerce")
    await given_order(emulator, "woocommerce", order_id, order)

    answer = await send(
        emulator, send_body("woocommerce", order_id, "order.updated", eventId="d-1")
    )
    await admin(emulator, "DELETE", f"/admin/orders/woocommerce/acme/{order_id}")
    await send(emulator, send_body("woocommerce", order_id, "order.deleted"))

    [(path, headers, raw), (_, deleted_headers, deleted_raw)] = receiver.received
    verified = verify(SalesChannel.WOOCOMMERCE, headers, raw, [SECRET], now=time.time())
    assert path == "/intake/woocommerce/acme"
    assert (verified.method, verified.topic) == (AuthMethod.WOOCOMMERCE, "order.updated")
    assert json.loads(raw) == order == answer["sent"]
    assert f'"id":{order_id},' in raw.decode()  # 2**53 + 1, exact
    assert {name: headers[name] for name in headers if name.startswith("x-wc-")} == {
        "x-wc-webhook-source": "http://emulator/woocommerce/acme/",
        "x-wc-webhook-topic": "order.updated",
        "x-wc-webhook-resource": "order",
        "x-wc-webhook-event": "updated",
        "x-wc-webhook-signature": headers["x-wc-webhook-signature"],
        "x-wc-webhook-id": headers["x-wc-webhook-id"],
        "x-wc-webhook-delivery-id": "d-1",
    }
    assert headers["x-wc-webhook-id"].isdigit()
    assert headers["user-agent"].startswith("WooCommerce/")
    # An order.deleted carries the id alone, and needs no stored order.
    assert json.loads(deleted_raw) == {"id": order["id"]}
    assert (deleted_headers["x-wc-webhook-topic"], deleted_headers["x-wc-webhook-event"]) == (
        "order.deleted",
        "deleted",
    )
    assert deleted_headers["x-wc-webhook-id"] == headers["x-wc-webhook-id"]  # the same account
    uuid.UUID(deleted_headers["x-wc-webhook-delivery-id"])
    assert verify(SalesChannel.WOOCOMMERCE, deleted_headers, deleted_raw, [SECRET], now=time.time())
    with pytest.raises(AuthFailure):
        verify(SalesChannel.WOOCOMMERCE, headers, raw, ["another-secret-0123456"], now=time.time())


async def test_a_shopify_webhook_carries_the_whole_order_signed_as_shopify_signs(
    emulator: httpx.AsyncClient, receiver: Receiver
) -> None:
    order = payload("shopify/webhook_orders_cancelled_docs_sample_2026-04.json")
    await given_account(emulator, "shopify")
    await given_order(emulator, "shopify", str(order["id"]), order)

    answer = await send(
        emulator, send_body("shopify", str(order["id"]), "orders/cancelled", eventId="e-1")
    )

    [(path, headers, raw)] = receiver.received
    verified = verify(SalesChannel.SHOPIFY, headers, raw, [SECRET], now=time.time())
    assert path == "/intake/shopify/acme"
    assert (verified.method, verified.event_id, verified.topic) == (
        AuthMethod.SHOPIFY,
        "e-1",
        "orders/cancelled",
    )
    assert json.loads(raw) == order == answer["sent"]
    assert headers["x-shopify-shop-domain"] == "acme.myshopify.com"
    assert headers["x-shopify-api-version"] == "2025-07"
    uuid.UUID(headers["x-shopify-webhook-id"])
    triggered = datetime.fromisoformat(headers["x-shopify-triggered-at"])
    assert abs(triggered - datetime.now(UTC)).total_seconds() < 60
    with pytest.raises(AuthFailure):
        verify(SalesChannel.SHOPIFY, headers, raw, ["another-secret-0123456"], now=time.time())


async def test_a_webhook_for_an_order_not_stored_is_sent_and_the_api_then_answers_404(
    emulator: httpx.AsyncClient, receiver: Receiver
) -> None:
    await given_account(emulator, "square")

    body = send_body("square", "GONE", "order.created", eventId="e-9")

    await send(emulator, body)

    [(_, headers, raw)] = receiver.received
    sent = json.loads(raw)
    assert sent["event_id"] == "e-9"
    assert sent["data"]["object"] == {"order_created": {"order_id": "GONE"}}
    # Without a notificationUrl the URL signed is the one sent to.
    now = time.time()
    assert verify(
        SalesChannel.SQUARE, headers, raw, [SECRET], now=now, notification_url=body["url"]
    )
    assert (await api(emulator, "square", "/v2/orders/GONE")).status_code == 404


async def test_a_webhook_goes_over_the_network_and_an_unreachable_ropos_is_502() -> None:
    receiver = Receiver()
    app = create_channel_emulator()
    transport = httpx.ASGITransport(app=app)
    async with (
        serving(receiver.app()) as ropos,
        httpx.AsyncClient(transport=transport, base_url="http://emulator") as emulator,
    ):
        answer = await send(
            emulator,
            {**send_body("amazon", "114-1", "ORDER_CHANGE"), "url": f"{ropos}/intake/amazon/acme"},
        )
        closed = f"http://127.0.0.1:{free_port()}/intake/amazon/acme"
        unreachable = await admin(
            emulator,
            "POST",
            "/admin/send",
            {**send_body("amazon", "114-1", "ORDER_CHANGE"), "url": closed},
        )

    [(_, headers, raw)] = receiver.received
    assert verify(SalesChannel.AMAZON, headers, raw, [SECRET], now=time.time())
    assert answer["sent"] == json.loads(raw)
    assert unreachable.status_code == 502
    assert "ROPOS could not be reached" in unreachable.json()["error"]
