"""The channel API clients against a mock transport: what each asks, how each answer is taken,
and the per-account gate that paces them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.channels.api import (
    BIGCOMMERCE_PAGE,
    ChannelClients,
    RateGate,
    retry_after_seconds,
)
from domain.intake import (
    ChannelAccount,
    ChannelApiRefused,
    ChannelApiUnavailable,
    FetchBack,
    SalesChannel,
)

TOKEN = "secret-api-token"


def account(channel: SalesChannel, **fields: Any) -> ChannelAccount:
    values: dict[str, Any] = {
        "api_base_url": f"https://api.example.com/{channel.value}/",
        "api_token": TOKEN,
    }
    values.update(fields)
    return ChannelAccount(channel=channel, account="acme", **values)


def clients(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> ChannelClients:
    return ChannelClients(transport=httpx.MockTransport(handler), **options)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- the gate -----------------------------------------------------------------------------------


def test_the_gate_lets_a_burst_through_then_paces_at_the_rate() -> None:
    clock = Clock()
    gate = RateGate(per_second=2, burst=3, max_wait=10, now=clock)
    key = ("square", "acme")
    assert [gate.reserve(key) for _ in range(3)] == [0, 0, 0]
    assert gate.reserve(key) == pytest.approx(0.5)
    assert gate.reserve(key) == pytest.approx(1.0)
    clock.now += 10  # refilled, but never past the burst
    assert [gate.reserve(key) for _ in range(3)] == [0, 0, 0]
    assert gate.reserve(key) > 0


def test_each_account_has_its_own_budget() -> None:
    gate = RateGate(per_second=1, burst=1, max_wait=10, now=Clock())
    assert gate.reserve(("square", "acme")) == 0
    assert gate.reserve(("square", "other")) == 0
    assert gate.reserve(("square", "acme")) == pytest.approx(1.0)


def test_a_wait_longer_than_the_limit_is_refused_and_takes_nothing() -> None:
    clock = Clock()
    gate = RateGate(per_second=1, burst=1, max_wait=5, now=clock)
    key = ("amazon", "acme")
    gate.pause(key, 30)
    with pytest.raises(ChannelApiUnavailable) as refused:
        gate.reserve(key)
    assert refused.value.retry_after == pytest.approx(30)
    clock.now += 30
    assert gate.reserve(key) == 0  # the token was not spent by the refused call


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 2.5 ", 2.5), ("-1", None), ("soon", None), (None, None), ("1e9", 3600.0)],
)
def test_retry_after_is_read_in_seconds_and_capped(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(header) == seconds


# --- the answers --------------------------------------------------------------------------------

WANTED = FetchBack(external_id="ORD/1", topic="order.updated")


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (500, {}, ChannelApiUnavailable, None),
        (503, {}, ChannelApiUnavailable, None),
        (429, {"Retry-After": "12"}, ChannelApiUnavailable, 12.0),
        (429, {}, ChannelApiUnavailable, None),
        (401, {}, ChannelApiRefused, None),
        (404, {}, ChannelApiRefused, None),
    ],
)
async def test_each_answer_is_unavailable_or_refused(
    status: int, headers: dict[str, str], error: type[Exception], retry_after: float | None
) -> None:
    api = clients(lambda _: httpx.Response(status, headers=headers, text=f"nope {TOKEN[:0]}"))
    with pytest.raises(error) as raised:
        await api.apis[SalesChannel.SQUARE].fetch(account(SalesChannel.SQUARE), WANTED)
    assert f"answered {status}" in str(raised.value)
    if isinstance(raised.value, ChannelApiUnavailable):
        assert raised.value.retry_after == retry_after
    await api.aclose()


async def test_a_429_pauses_the_accounts_next_calls() -> None:
    api = clients(lambda _: httpx.Response(429, headers={"Retry-After": "60"}))
    square = api.apis[SalesChannel.SQUARE]
    with pytest.raises(ChannelApiUnavailable):
        await square.fetch(account(SalesChannel.SQUARE), WANTED)
    with pytest.raises(ChannelApiUnavailable, match="rate") as paused:
        await square.fetch(account(SalesChannel.SQUARE), WANTED)  # not even sent
    assert paused.value.retry_after is not None
    assert paused.value.retry_after > 50
    await api.aclose()


async def test_timeouts_and_refused_connections_are_unavailable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler, text in ((timeout, "in time"), (refused, "ConnectError")):
        api = clients(handler)
        with pytest.raises(ChannelApiUnavailable, match=text):
            await api.apis[SalesChannel.AMAZON].fetch(account(SalesChannel.AMAZON), WANTED)
        await api.aclose()


async def test_no_credentials_is_refused_without_a_call() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={})

    api = clients(handler)
    with pytest.raises(ChannelApiRefused, match="no API credentials"):
        await api.apis[SalesChannel.AMAZON].fetch(
            account(SalesChannel.AMAZON, api_token=None), WANTED
        )
    assert calls == []
    await api.aclose()


async def test_a_body_that_is_not_json_or_not_the_order_is_refused() -> None:
    for answer in (httpx.Response(200, text="<html>"), httpx.Response(200, json={"x": 1})):

        def handler(_: httpx.Request, given: httpx.Response = answer) -> httpx.Response:
            return given

        api = clients(handler)
        with pytest.raises(ChannelApiRefused):
            await api.apis[SalesChannel.SQUARE].fetch(account(SalesChannel.SQUARE), WANTED)
        await api.aclose()


# --- what each channel is asked ----------------------------------------------------------------


async def test_square_retrieve_order_with_bearer_and_a_quoted_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"order": {"id": "ORD/1", "version": 4}})

    api = clients(handler)
    got = await api.apis[SalesChannel.SQUARE].fetch(account(SalesChannel.SQUARE), WANTED)
    assert got == {"order": {"id": "ORD/1", "version": 4}}
    (request,) = seen
    assert request.url.raw_path == b"/square/v2/orders/ORD%2F1"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "square-version" in request.headers
    await api.aclose()


async def test_a_square_order_behind_the_webhooks_version_is_unavailable() -> None:
    api = clients(lambda _: httpx.Response(200, json={"order": {"id": "ORD/1", "version": 4}}))
    wanted = FetchBack(external_id="ORD/1", topic="order.updated", version=5)
    with pytest.raises(ChannelApiUnavailable, match="not caught up"):
        await api.apis[SalesChannel.SQUARE].fetch(account(SalesChannel.SQUARE), wanted)
    await api.aclose()


async def test_bigcommerce_reads_every_page_of_products_into_the_envelope() -> None:
    paths: list[str] = []
    total = BIGCOMMERCE_PAGE + 3

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(f"{request.url.path}?{request.url.query.decode()}")
        assert request.headers["x-auth-token"] == TOKEN
        if request.url.path.endswith("/products"):
            page = int(request.url.params["page"])
            start = (page - 1) * BIGCOMMERCE_PAGE
            rows = [{"id": i} for i in range(start, min(total, start + BIGCOMMERCE_PAGE))]
            return httpx.Response(200, json=rows) if rows else httpx.Response(204)
        if request.url.path.endswith("/consignments"):
            return httpx.Response(200, json={"pickups": [{"id": 1}]})
        return httpx.Response(200, content=json.dumps({"id": 9007199254740993}).encode())

    api = clients(handler)
    wanted = FetchBack(external_id="9007199254740993", topic="store/order/created")
    got = await api.apis[SalesChannel.BIGCOMMERCE].fetch(account(SalesChannel.BIGCOMMERCE), wanted)
    assert got["order"]["id"] == 9007199254740993  # never through a float
    assert len(got["products"]) == total
    assert got["consignments"] == {"pickups": [{"id": 1}]}
    assert got["scope"] == "store/order/created"
    assert [p.split("?")[0].rsplit("/", 1)[-1] for p in paths] == [
        "9007199254740993",
        "products",
        "products",
        "consignments",
    ]
    await api.aclose()


async def test_amazon_get_order_asks_for_the_data_sets_the_adapter_reads() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"order": {"orderId": "ORD/1"}})

    api = clients(handler)
    await api.apis[SalesChannel.AMAZON].fetch(account(SalesChannel.AMAZON), WANTED)
    (request,) = seen
    assert request.headers["x-amz-access-token"] == TOKEN
    assert "FULFILLMENT" in request.url.params["includedData"]
    assert request.url.raw_path.split(b"?")[0] == b"/amazon/orders/2026-01-01/orders/ORD%2F1"
    await api.aclose()


# --- listing what changed (the gap sweep) ------------------------------------------------------

SINCE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
UNTIL = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


async def test_shopify_follows_its_link_header_to_the_last_page() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "page_info" not in request.url.params:
            assert request.url.params["updated_at_min"] == "2026-12-01T09:00:00Z"
            assert request.url.params["status"] == "any"
            nxt = f"{request.url.scheme}://{request.url.host}/shopify/admin/api/2025-07/orders.json"
            link = f'<{nxt}?limit=250&page_info=abc>; rel="next"'
            order = {"id": 1, "updated_at": "2026-12-01T10:00:00-05:00"}
            return httpx.Response(200, json={"orders": [order]}, headers={"Link": link})
        return httpx.Response(200, json={"orders": [{"id": 2, "updated_at": "2026-12-01T11:00Z"}]})

    api = clients(handler)
    found = await api.apis[SalesChannel.SHOPIFY].changed(
        account(SalesChannel.SHOPIFY), SINCE, UNTIL
    )
    assert [(s.external_id, s.topic) for s in found] == [
        ("1", "orders/updated"),
        ("2", "orders/updated"),
    ]
    assert found[0].changed_at == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert json.loads(found[0].body) == {
        "order": {"id": 1, "updated_at": "2026-12-01T10:00:00-05:00"}
    }
    assert len(seen) == 2
    await api.aclose()


async def test_a_next_page_outside_the_accounts_api_is_refused() -> None:
    link = '<https://elsewhere.example.com/steal?page_info=x>; rel="next"'
    api = clients(lambda _: httpx.Response(200, json={"orders": []}, headers={"Link": link}))
    with pytest.raises(ChannelApiRefused, match="outside"):
        await api.apis[SalesChannel.SHOPIFY].changed(account(SalesChannel.SHOPIFY), SINCE, UNTIL)
    await api.aclose()


async def test_woocommerce_sends_its_keys_as_basic_auth_and_reads_every_page() -> None:
    pages: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        expected = base64.b64encode(b"ck_1:cs_2").decode()
        assert request.headers["authorization"] == f"Basic {expected}"
        assert request.url.params["modified_after"] == "2026-12-01T09:00:00"
        page = int(request.url.params["page"])
        pages.append(page)
        size = 100 if page == 1 else 7
        rows = [
            {"id": page * 1000 + n, "date_modified_gmt": "2026-12-01T10:00:00", "total": 1.5}
            for n in range(size)
        ]
        return httpx.Response(200, json=rows)

    api = clients(handler)
    found = await api.apis[SalesChannel.WOOCOMMERCE].changed(
        account(SalesChannel.WOOCOMMERCE, api_token="ck_1:cs_2"), SINCE, UNTIL
    )
    assert pages == [1, 2]
    assert len(found) == 107
    assert json.loads(found[0].body)["total"] == 1.5  # an exact number stays a number
    await api.aclose()


async def test_bigcommerce_lists_each_order_as_a_thin_webhook_to_fetch_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["page"] == "1":
            order = {"id": 9007199254740993, "date_modified": "Tue, 01 Dec 2026 10:00:00 +0000"}
            return httpx.Response(200, content=json.dumps([order]).encode())
        return httpx.Response(204)

    api = clients(handler)
    (found,) = await api.apis[SalesChannel.BIGCOMMERCE].changed(
        account(SalesChannel.BIGCOMMERCE), SINCE, UNTIL
    )
    assert found.external_id == "9007199254740993"
    assert json.loads(found.body) == {
        "scope": "store/order/updated",
        "data": {"type": "order", "id": 9007199254740993},
    }
    await api.aclose()


async def test_square_searches_ten_locations_at_a_time_and_needs_some() -> None:
    searched: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        searched.append(body["location_ids"])
        return httpx.Response(200, json={})

    api = clients(handler)
    square = api.apis[SalesChannel.SQUARE]
    locations = {f"L{n:02d}": "S001" for n in range(12)}
    assert (
        await square.changed(account(SalesChannel.SQUARE, locations=locations), SINCE, UNTIL) == []
    )
    assert [len(ids) for ids in searched] == [10, 2]
    with pytest.raises(ChannelApiRefused, match="location"):
        await square.changed(account(SalesChannel.SQUARE), SINCE, UNTIL)
    await api.aclose()


async def test_amazon_sweeps_the_marketplaces_its_api_url_names() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if not request.url.path.endswith("/orders"):
            return httpx.Response(200, json={"order": {"orderId": "ORD/1"}})
        if "paginationToken" not in request.url.params:
            order = {"orderId": "114-1", "lastUpdatedTime": "2026-12-01T10:00:00Z"}
            return httpx.Response(200, json={"orders": [order], "pagination": {"nextToken": "t2"}})
        return httpx.Response(200, json={"orders": [{"orderId": "114-2"}]})

    api = clients(handler)
    amazon = api.apis[SalesChannel.AMAZON]
    base = "https://sellingpartnerapi-eu.amazon.com/?marketplaceIds=A1PA6795UKMFR9"
    found = await amazon.changed(account(SalesChannel.AMAZON, api_base_url=base), SINCE, UNTIL)
    assert [s.external_id for s in found] == ["114-1", "114-2"]
    assert [r.url.path for r in seen] == ["/orders/2026-01-01/orders"] * 2
    assert {r.url.params["marketplaceIds"] for r in seen} == {"A1PA6795UKMFR9"}
    await amazon.fetch(account(SalesChannel.AMAZON, api_base_url=base), WANTED)
    assert seen[-1].url.raw_path.split(b"?")[0] == b"/orders/2026-01-01/orders/ORD%2F1"
    with pytest.raises(ChannelApiRefused, match="marketplaceIds"):
        await amazon.changed(account(SalesChannel.AMAZON), SINCE, UNTIL)
    await api.aclose()
