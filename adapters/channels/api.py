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
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from domain.intake import (
    ChannelAccount,
    ChannelApi,
    ChannelApiRefused,
    ChannelApiUnavailable,
    FetchBack,
    SalesChannel,
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
                "(apiBaseUrl and apiToken): the order cannot be fetched back"
            )
        key = (account.channel.value, account.account)
        await self.gate.wait(key)
        url = base.rstrip("/") + path
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


class BigCommerceApi:
    channel = SalesChannel.BIGCOMMERCE

    def __init__(self, caller: _Caller) -> None:
        self._caller = caller

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


class SquareApi:
    channel = SalesChannel.SQUARE

    def __init__(self, caller: _Caller) -> None:
        self._caller = caller

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


class AmazonApi:
    channel = SalesChannel.AMAZON

    def __init__(self, caller: _Caller) -> None:
        self._caller = caller

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        path = f"/orders/2026-01-01/orders/{_segment(wanted.external_id)}"
        headers = {"x-amz-access-token": account.api_token or ""}
        params = {"includedData": AMAZON_DATA}
        response = await self._caller.call(account, "GET", path, headers, params=params)
        body = _json(response, "the order")
        if not isinstance(body, dict) or not isinstance(body.get("order"), dict):
            raise ChannelApiRefused(f"GET {path} gave no order")
        return {"order": body["order"]}


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
        )
        self.apis: dict[SalesChannel, ChannelApi] = {api.channel: api for api in apis}

    async def aclose(self) -> None:
        await self.http.aclose()
