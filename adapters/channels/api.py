"""The channels' own APIs, as the intake calls them: fetch back the order a thin webhook names.

One client per channel, configured per account (`apiBaseUrl` and the write-only `apiToken`):

- BigCommerce (`https://api.bigcommerce.com/stores/{store_hash}`, header `X-Auth-Token`):
  `GET /v2/orders/{id}`, its `/products` (paged, 250 a page; a page past the end is `204`) and
  its `/consignments`, returned as the envelope `adapters.channels.bigcommerce` reads, with the
  webhook's scope.
- Square (`https://connect.squareup.com`, `Authorization: Bearer`): RetrieveOrder,
  `GET /v2/orders/{order_id}`. An order whose `version` is below the webhook's is a read that has
  not caught up yet: tried again later.
- Amazon (`https://sellingpartnerapi-na.amazon.com`, header `x-amz-access-token`): the Orders API
  2026-01-01 getOrder, `GET /orders/2026-01-01/orders/{orderId}` with the data sets the adapter
  reads.

Each client also lists the orders changed in a window, for the gap sweep (all pages, oldest
change first): BigCommerce `GET /v2/orders?min_date_modified=&max_date_modified=` (each as a
thin webhook to fetch back: its products and consignments come with the fetch), Square
SearchOrders by `updated_at` over the account's mapped locations, Amazon searchOrders by
`lastUpdatedAfter`/`lastUpdatedBefore`, WooCommerce `GET /wp-json/wc/v3/orders?modified_after=`
(`apiToken` is `consumer_key:consumer_secret`, sent as HTTP Basic), Shopify `GET
/admin/api/2025-07/orders.json?updated_at_min=` (`X-Shopify-Access-Token`, cursor pages by the
`Link` header).

Every call goes through a per-account gate: at most `per_second` requests a second (a token
bucket, `burst` at once), and none while the channel asked to wait (a 429's `Retry-After`). A
call that would wait longer than `max_wait` seconds is not made: it fails as unavailable, with
that wait, and its message is taken again then. The rate is per gateway process.

Timeouts, refused connections, 5xx and 429 raise `ChannelApiUnavailable` (retried with backoff);
other 4xx and bodies that are not what was asked for raise `ChannelApiRefused` (dead-lettered,
with the channel's answer). Tokens never reach a log line or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import httpx

from adapters.channels.common import as_dict, id_text, parse_timestamp
from domain.intake import (
    ChannelAccount,
    ChannelApi,
    ChannelApiRefused,
    ChannelApiUnavailable,
    FetchBack,
    SalesChannel,
    Swept,
)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_PER_SECOND = 5.0
DEFAULT_BURST = 10
DEFAULT_MAX_WAIT_SECONDS = 5.0
# What a 429 without Retry-After makes the account's calls wait.
DEFAULT_RETRY_AFTER_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 3600.0
MAX_ANSWER_CHARS = 300
BIGCOMMERCE_PAGE = 250
BIGCOMMERCE_MAX_PAGES = 40
# A sweep reads at most this many pages of a listing (a longer window is swept in parts).
MAX_SWEEP_PAGES = 400
SQUARE_LOCATIONS_PER_SEARCH = 10
SHOPIFY_VERSION = "2025-07"
SQUARE_VERSION = "2025-10-16"
AMAZON_DATA = "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,CANCELLATION"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    paused_until: float = 0.0


class RateGate:
    """Per key (an account), a token bucket of `per_second` with `burst` tokens, and a pause
    the channel asked for. Time is the monotonic clock: a gate paces real requests."""

    def __init__(
        self,
        per_second: float = DEFAULT_PER_SECOND,
        burst: int = DEFAULT_BURST,
        *,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be positive and burst at least 1")
        self.per_second = per_second
        self.burst = burst
        self.max_wait = max_wait
        self._now = now
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _bucket(self, key: tuple[str, str], now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_second)
            bucket.at = now
        return bucket

    def reserve(self, key: tuple[str, str]) -> float:
        """Take a request's token: how long to wait before making it. Raises
        `ChannelApiUnavailable` (taking nothing) when that is longer than `max_wait`."""
        now = self._now()
        bucket = self._bucket(key, now)
        wait = max(0.0, bucket.paused_until - now)
        if bucket.tokens < 1:
            wait = max(wait, (1 - bucket.tokens) / self.per_second)
        if wait > self.max_wait:
            raise ChannelApiUnavailable(
                f"the account's request rate to {key[0]} is used up for {wait:.1f} s",
                retry_after=wait,
            )
        bucket.tokens -= 1
        return wait

    def pause(self, key: tuple[str, str], seconds: float) -> None:
        """No request of `key` for `seconds` (the channel's Retry-After)."""
        now = self._now()
        bucket = self._bucket(key, now)
        bucket.paused_until = max(bucket.paused_until, now + seconds)

    def clear(self) -> None:
        """Forget every account's budget and pause."""
        self._buckets.clear()

    async def wait(self, key: tuple[str, str]) -> None:
        delay = self.reserve(key)
        if delay > 0:
            await asyncio.sleep(delay)


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header's seconds (the delay form; an HTTP date is not trusted to clocks
    agreeing and counts as absent), capped."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


class _Caller:
    """What every channel's client shares: the HTTP pool, the gate, the error mapping."""

    def __init__(self, http: httpx.AsyncClient, gate: RateGate) -> None:
        self.http = http
        self.gate = gate

    async def call(
        self,
        account: ChannelAccount,
        method: str,
        path: str,
        headers: Mapping[str, str],
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """One request to the account's API; an answer that is not a success raises."""
        base = account.api_base_url
        if not base or not account.api_token:
            raise ChannelApiRefused(
                f"the {account.channel.value} account {account.account} has no API credentials "
                "(apiBaseUrl and apiToken): its API cannot be asked"
            )
        key = (account.channel.value, account.account)
        root = api_root(base)
        url = root + path
        if path.startswith(("http://", "https://")):  # a next page the channel linked to
            if not path.startswith(root + "/"):
                raise ChannelApiRefused("the channel linked to a page outside its API")
            url = path
        await self.gate.wait(key)
        try:
            response = await self.http.request(
                method,
                url,
                headers={"Accept": "application/json", **headers},
                params=params,
                content=None if body is None else json.dumps(body).encode(),
            )
        except httpx.TimeoutException:
            raise ChannelApiUnavailable(
                f"{method} {path}: the channel did not answer in time"
            ) from None
        except httpx.HTTPError as error:
            raise ChannelApiUnavailable(f"{method} {path}: {type(error).__name__}") from None
        return self._checked(key, method, path, response)

    def _checked(
        self, key: tuple[str, str], method: str, path: str, response: httpx.Response
    ) -> httpx.Response:
        status = response.status_code
        if status < 300:
            return response
        answer = f"{method} {path} answered {status}: {_answer(response)}"
        if status == 429:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            self.gate.pause(key, DEFAULT_RETRY_AFTER_SECONDS if wait is None else wait)
            raise ChannelApiUnavailable(answer, status=status, retry_after=wait)
        if status >= 500 or status == 408:
            raise ChannelApiUnavailable(answer, status=status)
        raise ChannelApiRefused(answer, status=status)


def api_root(base: str) -> str:
    """The account's API URL without its query (which carries options such as Amazon's
    marketplaceIds) or a trailing slash: what paths are added to."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def base_options(base: str | None) -> dict[str, str]:
    """Options an account's API URL carries in its query (`?marketplaceIds=ATVPDKIKX0DER`)."""
    return dict(parse_qsl(urlsplit(base or "").query))


def _answer(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:MAX_ANSWER_CHARS] or "(no body)"


def _json(response: httpx.Response, what: str) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise ChannelApiRefused(f"{what}: the answer is not JSON ({_answer(response)})") from None


def _segment(value: str) -> str:
    return quote(value, safe="")


def _utc(moment: datetime, *, zone: bool = True) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}Z" if zone else text


def _pages() -> range:
    return range(1, MAX_SWEEP_PAGES + 1)


def _too_many_pages(what: str) -> ChannelApiRefused:
    return ChannelApiRefused(
        f"{what}: more than {MAX_SWEEP_PAGES} pages changed in the window; sweep a shorter one"
    )


def _number(value: object) -> object:
    """A Decimal the answer held, back to a JSON number: as a float where that is exact, else
    as its text (adapters read money and quantities from either)."""
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _swept(external_id: object, changed_at: object, topic: str, payload: Any) -> Swept | None:
    """One listed order, with the body the intake is fed for it."""
    order_id = id_text(external_id)
    if order_id is None:
        return None
    body = json.dumps(payload, default=_number, separators=(",", ":")).encode()
    return Swept(order_id, parse_timestamp(changed_at), topic, body)


def _each(orders: object, read: Callable[[dict[str, Any]], Swept | None]) -> list[Swept]:
    """A listing's orders, read into what the sweep feeds (entries that are not orders, or that
    name none, left out)."""
    found = []
    for order in orders if isinstance(orders, list) else []:
        if isinstance(order, dict) and (item := read(order)) is not None:
            found.append(item)
    return found


def _bigcommerce_thin(order: dict[str, Any]) -> Swept | None:
    scope = "store/order/updated"
    thin = {"scope": scope, "data": {"type": "order", "id": order.get("id")}}
    return _swept(order.get("id"), order.get("date_modified"), scope, thin)


def _square(order: dict[str, Any]) -> Swept | None:
    return _swept(order.get("id"), order.get("updated_at"), "order.updated", {"order": order})


def _amazon(order: dict[str, Any]) -> Swept | None:
    changed = order.get("lastUpdatedTime")
    return _swept(order.get("orderId"), changed, "ORDER_CHANGE", {"order": order})


def _woocommerce(order: dict[str, Any]) -> Swept | None:
    changed = order.get("date_modified_gmt") or order.get("date_modified")
    return _swept(order.get("id"), changed, "order.updated", order)


def _shopify(order: dict[str, Any]) -> Swept | None:
    return _swept(order.get("id"), order.get("updated_at"), "orders/updated", {"order": order})


def _next_link(response: httpx.Response) -> str | None:
    """The `rel="next"` URL of a `Link` header (Shopify's cursor pages)."""
    header: str = response.headers.get("link", "")
    for part in header.split(","):
        url, _, rel = part.partition(";")
        if 'rel="next"' in rel.replace(" ", ""):
            return url.strip().strip("<>")
    return None


class _Client:
    """A channel's client: its calls go through the process's shared caller."""

    def __init__(self, caller: _Caller) -> None:
        self._caller = caller


class BigCommerceApi(_Client):
    channel = SalesChannel.BIGCOMMERCE

    def _headers(self, account: ChannelAccount) -> dict[str, str]:
        return {"X-Auth-Token": account.api_token or ""}

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        base = f"/v2/orders/{_segment(wanted.external_id)}"
        headers = self._headers(account)
        order = _json(await self._caller.call(account, "GET", base, headers), "the order")
        if not isinstance(order, dict):
            raise ChannelApiRefused(f"GET {base} gave no order object")
        products: list[Any] = []
        for page in range(1, BIGCOMMERCE_MAX_PAGES + 1):
            params = {"page": page, "limit": BIGCOMMERCE_PAGE}
            response = await self._caller.call(
                account, "GET", f"{base}/products", headers, params=params
            )
            found = _json(response, "the order's products")
            if found is None:
                break
            if not isinstance(found, list):
                raise ChannelApiRefused(f"GET {base}/products gave no list")
            products.extend(found)
            if len(found) < BIGCOMMERCE_PAGE:
                break
        else:
            raise ChannelApiRefused(f"the order has more than {len(products)} products")
        consignments = _json(
            await self._caller.call(account, "GET", f"{base}/consignments", headers),
            "the order's consignments",
        )
        envelope: dict[str, Any] = {"order": order, "products": products, "scope": wanted.topic}
        if isinstance(consignments, dict | list):
            envelope["consignments"] = consignments
        return envelope

    async def changed(
        self, account: ChannelAccount, since: datetime, until: datetime
    ) -> list[Swept]:
        found: list[Swept] = []
        for page in _pages():
            params: dict[str, str | int] = {
                "min_date_modified": _utc(since),
                "max_date_modified": _utc(until),
                "sort": "date_modified:asc",
                "page": page,
                "limit": BIGCOMMERCE_PAGE,
            }
            response = await self._caller.call(
                account, "GET", "/v2/orders", self._headers(account), params=params
            )
            orders = _json(response, "the changed orders")
            if orders is None:
                return found
            if not isinstance(orders, list):
                raise ChannelApiRefused("GET /v2/orders gave no list")
            found += _each(orders, _bigcommerce_thin)
            if len(orders) < BIGCOMMERCE_PAGE:
                return found
        raise _too_many_pages("GET /v2/orders")


class SquareApi(_Client):
    channel = SalesChannel.SQUARE

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        path = f"/v2/orders/{_segment(wanted.external_id)}"
        headers = {
            "Authorization": f"Bearer {account.api_token or ''}",
            "Square-Version": SQUARE_VERSION,
        }
        body = _json(await self._caller.call(account, "GET", path, headers), "the order")
        order = body.get("order") if isinstance(body, dict) else None
        if not isinstance(order, dict):
            raise ChannelApiRefused(f"GET {path} gave no order")
        version = order.get("version")
        if wanted.version is not None and isinstance(version, int) and version < wanted.version:
            raise ChannelApiUnavailable(
                f"GET {path} gave version {version}; the webhook announced {wanted.version}: "
                "Square has not caught up yet"
            )
        return {"order": order}

    async def changed(
        self, account: ChannelAccount, since: datetime, until: datetime
    ) -> list[Swept]:
        locations = sorted(account.locations)
        if not locations:
            raise ChannelApiRefused(
                "Square searches orders by location: map the account's Square locations "
                "(locations) to stores first"
            )
        headers = {
            "Authorization": f"Bearer {account.api_token or ''}",
            "Square-Version": SQUARE_VERSION,
        }
        found: list[Swept] = []
        for start in range(0, len(locations), SQUARE_LOCATIONS_PER_SEARCH):
            chunk = locations[start : start + SQUARE_LOCATIONS_PER_SEARCH]
            found += await self._search(account, headers, chunk, since, until)
        return sorted(found, key=lambda s: (s.changed_at is None, s.changed_at, s.external_id))

    async def _search(
        self,
        account: ChannelAccount,
        headers: Mapping[str, str],
        locations: list[str],
        since: datetime,
        until: datetime,
    ) -> list[Swept]:
        window = {"start_at": _utc(since), "end_at": _utc(until)}
        query = {
            "filter": {"date_time_filter": {"updated_at": window}},
            "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
        }
        found: list[Swept] = []
        cursor: str | None = None
        for _ in _pages():
            body: dict[str, Any] = {"location_ids": locations, "query": query, "limit": 500}
            if cursor:
                body["cursor"] = cursor
            response = await self._caller.call(
                account,
                "POST",
                "/v2/orders/search",
                {**headers, "Content-Type": "application/json"},
                body=body,
            )
            answer = _json(response, "the changed orders")
            answer = answer if isinstance(answer, dict) else {}
            found += _each(answer.get("orders"), _square)
            cursor = answer.get("cursor") if isinstance(answer.get("cursor"), str) else None
            if not cursor:
                return found
        raise _too_many_pages("POST /v2/orders/search")


class AmazonApi(_Client):
    channel = SalesChannel.AMAZON

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        path = f"/orders/2026-01-01/orders/{_segment(wanted.external_id)}"
        headers = {"x-amz-access-token": account.api_token or ""}
        params = {"includedData": AMAZON_DATA}
        response = await self._caller.call(account, "GET", path, headers, params=params)
        body = _json(response, "the order")
        if not isinstance(body, dict) or not isinstance(body.get("order"), dict):
            raise ChannelApiRefused(f"GET {path} gave no order")
        return {"order": body["order"]}

    async def changed(
        self, account: ChannelAccount, since: datetime, until: datetime
    ) -> list[Swept]:
        path = "/orders/2026-01-01/orders"
        headers = {"x-amz-access-token": account.api_token or ""}
        marketplaces = base_options(account.api_base_url).get("marketplaceIds")
        if not marketplaces:
            raise ChannelApiRefused(
                "Amazon's searchOrders needs the seller's marketplaces: give them in apiBaseUrl, "
                "e.g. https://sellingpartnerapi-eu.amazon.com?marketplaceIds=A1PA6795UKMFR9"
            )
        window: dict[str, str | int] = {
            "marketplaceIds": marketplaces,
            "lastUpdatedAfter": _utc(since),
            "lastUpdatedBefore": _utc(until),
            "maxResultsPerPage": 100,
            "includedData": AMAZON_DATA,
        }
        found: list[Swept] = []
        params = window
        for _ in _pages():
            response = await self._caller.call(account, "GET", path, headers, params=params)
            answer = _json(response, "the changed orders")
            answer = answer if isinstance(answer, dict) else {}
            found += _each(answer.get("orders"), _amazon)
            token = as_dict(answer.get("pagination")).get("nextToken")
            if not isinstance(token, str) or not token:
                return found
            params = {
                "paginationToken": token,
                "maxResultsPerPage": 100,
                "marketplaceIds": marketplaces,
            }
        raise _too_many_pages(f"GET {path}")


class WooCommerceApi(_Client):
    """WooCommerce REST v3; `apiToken` is `consumer_key:consumer_secret` (HTTP Basic)."""

    channel = SalesChannel.WOOCOMMERCE
    PAGE = 100

    def _headers(self, account: ChannelAccount) -> dict[str, str]:
        token = base64.b64encode((account.api_token or "").encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        path = f"/wp-json/wc/v3/orders/{_segment(wanted.external_id)}"
        order = _json(
            await self._caller.call(account, "GET", path, self._headers(account)), "the order"
        )
        if not isinstance(order, dict):
            raise ChannelApiRefused(f"GET {path} gave no order")
        return order

    async def changed(
        self, account: ChannelAccount, since: datetime, until: datetime
    ) -> list[Swept]:
        path = "/wp-json/wc/v3/orders"
        found: list[Swept] = []
        for page in _pages():
            params: dict[str, str | int] = {
                "modified_after": _utc(since, zone=False),
                "modified_before": _utc(until, zone=False),
                "dates_are_gmt": "true",
                "orderby": "modified",
                "order": "asc",
                "status": "any",
                "per_page": self.PAGE,
                "page": page,
            }
            response = await self._caller.call(
                account, "GET", path, self._headers(account), params=params
            )
            orders = _json(response, "the changed orders")
            if not isinstance(orders, list):
                raise ChannelApiRefused(f"GET {path} gave no list")
            found += _each(orders, _woocommerce)
            if len(orders) < self.PAGE:
                return found
        raise _too_many_pages(f"GET {path}")


class ShopifyApi(_Client):
    """Shopify Admin REST; `apiToken` is the access token (`X-Shopify-Access-Token`)."""

    channel = SalesChannel.SHOPIFY
    PAGE = 250

    def _headers(self, account: ChannelAccount) -> dict[str, str]:
        return {"X-Shopify-Access-Token": account.api_token or ""}

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        path = f"/admin/api/{SHOPIFY_VERSION}/orders/{_segment(wanted.external_id)}.json"
        body = _json(
            await self._caller.call(account, "GET", path, self._headers(account)), "the order"
        )
        if not isinstance(body, dict) or not isinstance(body.get("order"), dict):
            raise ChannelApiRefused(f"GET {path} gave no order")
        return {"order": body["order"]}

    async def changed(
        self, account: ChannelAccount, since: datetime, until: datetime
    ) -> list[Swept]:
        path = f"/admin/api/{SHOPIFY_VERSION}/orders.json"
        params: dict[str, str | int] | None = {
            "status": "any",
            "updated_at_min": _utc(since),
            "updated_at_max": _utc(until),
            "order": "updated_at asc",
            "limit": self.PAGE,
        }
        found: list[Swept] = []
        for _ in _pages():
            response = await self._caller.call(
                account, "GET", path, self._headers(account), params=params
            )
            answer = _json(response, "the changed orders")
            answer = answer if isinstance(answer, dict) else {}
            found += _each(answer.get("orders"), _shopify)
            link = _next_link(response)
            if link is None:
                return found
            path, params = link, None
        raise _too_many_pages("GET orders.json")


class ChannelClients:
    """The channel APIs of one process, sharing one connection pool and one rate gate."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        per_second: float = DEFAULT_PER_SECOND,
        burst: int = DEFAULT_BURST,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False, trust_env=False
        )
        self.gate = RateGate(per_second, burst, max_wait=max_wait)
        caller = _Caller(self.http, self.gate)
        apis: tuple[ChannelApi, ...] = (
            BigCommerceApi(caller),
            SquareApi(caller),
            AmazonApi(caller),
            WooCommerceApi(caller),
            ShopifyApi(caller),
        )
        self.apis: dict[SalesChannel, ChannelApi] = {api.channel: api for api in apis}

    async def aclose(self) -> None:
        await self.http.aclose()
