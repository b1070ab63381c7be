"""A reference emulator of five sales channels' order APIs (BigCommerce v2, Square Orders, Amazon
SP-API Orders 2026-01-01, WooCommerce REST v3, Shopify Admin REST) for the demo and the tests:
in-memory orders per (channel, account), each channel's auth, paging and error shape, faults on
demand, and signed webhooks sent to ROPOS's intake (thin ones for BigCommerce, Square and Amazon;
WooCommerce's and Shopify's carry the whole order, as theirs do).

An account's API base URL (its `apiBaseUrl` in ROPOS) is `{emulator}/{channel}/{account}`:

    GET  /bigcommerce/{account}/v2/orders/{id}                 X-Auth-Token: <token>
    GET  /bigcommerce/{account}/v2/orders/{id}/products        ?page=&limit= (204 past the end)
    GET  /bigcommerce/{account}/v2/orders/{id}/consignments
    GET  /bigcommerce/{account}/v2/orders                      ?min_date_modified=
                                 &max_date_modified=&page=&limit=&sort= (204 when none)
    GET  /square/{account}/v2/orders/{order_id}                Authorization: Bearer <token>
    POST /square/{account}/v2/orders/search                    location_ids, cursor, limit, query
    GET  /amazon/{account}/orders/2026-01-01/orders/{orderId}  x-amz-access-token: <token>
    GET  /amazon/{account}/orders/2026-01-01/orders            ?lastUpdatedAfter=
                                 &lastUpdatedBefore=&maxResultsPerPage=&paginationToken=
    GET  /woocommerce/{account}/wp-json/wc/v3/orders/{id}      Authorization: Basic base64(<token>)
                                 (the token is "ck_...:cs_..."; or ?consumer_key=&consumer_secret=)
    GET  /woocommerce/{account}/wp-json/wc/v3/orders           ?modified_after=&modified_before=
                                 &dates_are_gmt=&per_page=&page=&orderby=&order=&status=
                                 (a list; X-WP-Total, X-WP-TotalPages and Link headers)
    GET  /shopify/{account}/admin/api/{version}/orders/{id}.json  X-Shopify-Access-Token: <token>
    GET  /shopify/{account}/admin/api/{version}/orders.json    ?status=&updated_at_min=
                                 &updated_at_max=&order=&limit=, then the Link header's
                                 ?limit=&page_info= ({version} is YYYY-MM)
    (any other path under an account answers 404 in that channel's error shape)

    PUT    /admin/accounts/{channel}/{account}      set its token    } for tests and the demo
    PUT    /admin/orders/{channel}/{account}/{id}   store an order   } only: no authentication,
    DELETE /admin/orders/{channel}/{account}/{id}   remove it        } never expose them beyond
    GET    /admin/orders/{channel}/{account}        the stored ids   } a test or demo host; they
    POST   /admin/faults                            down, slow, ...  } never get faults
    GET    /admin/faults                            those in force   }
    POST   /admin/rate-limit                        a token bucket   }
    GET    /admin/requests?channel=&account=        API calls seen   }
    DELETE /admin/requests                          forget them      }
    POST   /admin/send                              a signed webhook to ROPOS
    GET    /healthz
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from domain.intake_auth import (
    SQUARE_SIGNATURE,
    sign_shopify,
    sign_square,
    sign_woocommerce,
    standard_headers,
)

MAX_DELAY_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 3600
MAX_PER_SECOND = 10_000.0
MAX_BURST = 10_000
MAX_ID_CHARS = 200
SEND_TIMEOUT_SECONDS = 10.0
FAULT_MODES = ("down", "slow", "rate-limit", "refuse", "none")
# The fields each fault mode takes besides channel, account and mode.
FAULT_FIELDS: Mapping[str, frozenset[str]] = {
    "down": frozenset({"status", "times"}),
    "refuse": frozenset({"status", "times"}),
    "slow": frozenset({"delaySeconds", "times"}),
    "rate-limit": frozenset({"retryAfter", "times"}),
    "none": frozenset(),
}
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]

Scope = tuple[str | None, str | None]  # (channel, account); None is every one
Key = tuple[str, str]  # (modification time as sortable text, order id): the keyset of a page


class BadRequest(Exception):
    """Admin input the emulator cannot use: answered 400 `{"error": <this message>}`."""


class ApiError(Exception):
    """A channel API call answered with an error, in that channel's error shape."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


# --- state ----------------------------------------------------------------------------------------


@dataclass
class TokenBucket:
    """A request-rate limit: `burst` requests at once, refilled at `per_second`."""

    per_second: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """Take one token: None when there was one, else the seconds until there is one."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.per_second


@dataclass
class Account:
    """One channel account: the credential its API calls need, its orders, its rate limit."""

    token: str | None = None  # None: every API call is refused (401)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    bucket: TokenBucket | None = None

    def authorized(self, credential: str | None) -> bool:
        if self.token is None or credential is None:
            return False
        return hmac.compare_digest(credential.encode(), self.token.encode())


@dataclass
class Fault:
    """Trouble set on purpose for the API calls of a scope."""

    mode: str
    status: int = 0
    delay_seconds: float = 0.0
    retry_after: int = 1
    remaining: int | None = None  # the calls still to get it; None: until cleared

    def to_json(self, scope: Scope) -> dict[str, Any]:
        return {
            "channel": scope[0],
            "account": scope[1],
            "mode": self.mode,
            "status": self.status or None,
            "delaySeconds": self.delay_seconds or None,
            "retryAfter": self.retry_after if self.mode == "rate-limit" else None,
            "times": self.remaining,
        }


@dataclass(frozen=True)
class LoggedRequest:
    """One API call as it arrived (the path relative to the account's base URL, the raw query
    string) and the status it was answered with."""

    channel: str
    account: str
    method: str
    path: str
    query: str
    status: int
    at: float  # unix seconds, on arrival

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "account": self.account,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "at": self.at,
        }


class EmulatedChannels:
    """The emulator's state. Every method runs without awaiting, so one request's changes never
    interleave with another's. `clock` is monotonic seconds, for the rate limits."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.accounts: dict[tuple[str, str], Account] = {}
        self.faults: dict[Scope, Fault] = {}
        self.log: list[LoggedRequest] = []

    def account(self, channel: str, account: str) -> Account:
        return self.accounts.setdefault((channel, account), Account())

    def find(self, channel: str, account: str) -> Account | None:
        return self.accounts.get((channel, account))

    def take_fault(self, channel: str, account: str) -> Fault | None:
        """The fault for one API call, the most specific scope first; a fault set for a number
        of calls counts this one, and clears itself after the last."""
        for scope in ((channel, account), (channel, None), (None, None)):
            fault = self.faults.get(scope)
            if fault is None:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.faults[scope]
            return fault
        return None


# --- reading values -------------------------------------------------------------------------------


def _in_utc(moment: datetime) -> datetime:
    """`moment` in UTC (naive read as UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso_time(value: object) -> datetime | None:
    """An ISO 8601 / RFC 3339 time, in UTC, or None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _in_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        return None


def _rfc2822_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _in_utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _time_key(moment: datetime | None) -> str:
    """A UTC time as fixed-width text, which sorts as the time does; "" (first) for none."""
    return "" if moment is None else moment.isoformat(timespec="microseconds")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _within(
    moment: datetime | None,
    low: datetime | None,
    high: datetime | None,
    *,
    end_inclusive: bool,
    start_inclusive: bool = True,
) -> bool:
    """Whether `moment` is in the window; with no bound at all everything is, else a moment that
    cannot be read is not."""
    if low is None and high is None:
        return True
    if moment is None:
        return False
    if low is not None and (moment < low if start_inclusive else moment <= low):
        return False
    return high is None or (moment <= high if end_inclusive else moment < high)


def _id_text(value: object) -> str | None:
    """An id as exact text: a string as it is, an integer in decimal; nothing else is an id (a
    float never is: 218.0 is not BigCommerce order 218)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _numeric_id_key(order_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order (9 before 10), then any others as text."""
    if order_id.isascii() and order_id.isdigit():
        return (0, len(order_id.lstrip("0")), order_id.lstrip("0"))
    return (1, 0, order_id)


def _encode_token(content: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(content, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    """What `_encode_token` made, its padding optional; ValueError for anything else."""
    try:
        padded = token + "=" * (-len(token) % 4)
        content: object = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        raise ValueError("not a token of this emulator") from None
    if not isinstance(content, dict):
        raise ValueError("not a token of this emulator")
    key = content.get("k")
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise ValueError("not a token of this emulator")
    return content


def _keyset_page(
    rows: list[tuple[Key, dict[str, Any]]], after: Key | None, size: int, *, descending: bool
) -> tuple[list[dict[str, Any]], Key | None]:
    """One page of `rows` in key order: those past `after`, and the page's last key when more
    remain. Keyset rather than offset: an order changed meanwhile moves, the others stay put."""
    ordered = sorted(rows, key=lambda row: row[0], reverse=descending)
    if after is not None:
        ordered = [row for row in ordered if (row[0] < after if descending else row[0] > after)]
    page = ordered[:size]
    next_key = page[-1][0] if len(ordered) > size else None
    return [order for _, order in page], next_key


def _whole_param(params: QueryParams, name: str, default: int, code: str | None) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise ApiError(400, f"{name} must be a whole number, 1 or more.", code)
    return int(text)


# --- the channels ---------------------------------------------------------------------------------

Handler = Callable[[Request, Account], Awaitable[Response]]


@dataclass(frozen=True)
class Send:
    """A webhook to send, as `POST /admin/send` asked for it."""

    account: str
    account_url: str  # the account's API base URL here, `{emulator}/{channel}/{account}`
    order_id: str
    topic: str
    url: str
    secret: str
    notification_url: str
    event_id: str
    now: datetime


class ChannelApi:
    """What differs between the channels: the credential, the error shape, what an order is, the
    endpoints, the webhook and how it is signed."""

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]

    def credential(self, request: Request) -> str | None:
        raise NotImplementedError

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        raise NotImplementedError

    def normalise(self, resource: Mapping[str, Any], order_id: str) -> dict[str, Any]:
        """The resource to store for `order_id`; BadRequest when it is not one."""
        raise NotImplementedError

    def endpoints(self) -> list[tuple[str, list[str], Handler]]:
        """(path under the account's base URL, methods, handler)."""
        raise NotImplementedError

    def webhook(self, send: Send, stored: dict[str, Any] | None) -> dict[str, Any]:
        """The webhook's body; BadRequest when it cannot be made."""
        raise NotImplementedError

    def sign(self, send: Send, body: bytes) -> dict[str, str]:
        """The webhook's headers besides Content-Type: the signature (Standard Webhooks, unless
        the channel signs its own way) and whatever else the channel sends with it."""
        try:
            return standard_headers(send.secret, send.event_id, int(send.now.timestamp()), body)
        except ValueError as error:
            raise BadRequest(f"secret: {error}.") from None

    def rate_limited(self, retry_after: int, per_second: float | None) -> Response:
        response = self.error(429, "Too many requests; send again later.")
        response.headers["Retry-After"] = str(retry_after)
        return response

    def fault_response(self, fault: Fault) -> Response:
        if fault.mode == "rate-limit":
            return self.rate_limited(fault.retry_after, None)
        if fault.mode == "refuse":
            return self.error(fault.status, "The request is refused (emulated refusal).")
        return self.error(fault.status, "The service is unavailable (emulated outage).")

    def stored(self, request: Request, account: Account) -> dict[str, Any]:
        resource = account.orders.get(request.path_params["order_id"])
        if resource is None:
            raise ApiError(404, "The requested resource was not found.")
        return resource

    async def unknown_path(self, request: Request, account: Account) -> Response:
        raise ApiError(404, f"The emulator has no {request.method} {request.url.path}.")

    def routes(self) -> list[BaseRoute]:
        base = f"/{self.name}/{{account}}"
        routes: list[BaseRoute] = [
            Route(base + path, _api_endpoint(self, handler), methods=methods)
            for path, methods, handler in self.endpoints()
        ]
        routes.append(
            Route(base + "/{rest:path}", _api_endpoint(self, self.unknown_path), methods=ANY_METHOD)
        )
        return routes


def _stable_digest(channel: str, account: str) -> bytes:
    return hashlib.sha256(f"{channel}/{account}".encode()).digest()


def _stable_code(channel: str, account: str, chars: int) -> str:
    """Upper-case letters and digits, the same for an account every time."""
    return base64.b32encode(_stable_digest(channel, account)).decode()[:chars]


# BigCommerce ------------------------------------------------------------------------------------

BC_DEFAULT_LIMIT = 50
BC_MAX_LIMIT = 250
BC_SORTS = {"date_modified:asc": False, "date_modified:desc": True}


def _bc_date(params: QueryParams, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    moment = _rfc2822_time(text) or _iso_time(text)
    if moment is None:
        raise ApiError(400, f"{name} must be an RFC 2822 or ISO 8601 date.")
    return moment


def _bc_page(items: list[Any], params: QueryParams) -> Response:
    """A page of a BigCommerce v2 collection: `page` from 1, `limit` up to 250 (more is taken as
    250); an empty page (past the end, or nothing at all) is 204 with no body."""
    page = _whole_param(params, "page", 1, None)
    limit = min(_whole_param(params, "limit", BC_DEFAULT_LIMIT, None), BC_MAX_LIMIT)
    chunk = items[(page - 1) * limit : page * limit]
    if not chunk:
        return Response(status_code=204)
    return JSONResponse(chunk)


def _bc_status_id(stored: dict[str, Any] | None) -> int:
    status = stored["order"].get("status_id") if stored else None
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    if isinstance(status, str) and status.isascii() and status.isdigit() and len(status) < 4:
        return int(status)
    return 11  # Awaiting Fulfillment


class BigCommerce(ChannelApi):
    name = "bigcommerce"
    topics = ("store/order/created", "store/order/updated", "store/order/statusUpdated")

    def credential(self, request: Request) -> str | None:
        return request.headers.get("x-auth-token")

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        return JSONResponse([{"status": status, "message": message}], status_code=status)

    def normalise(self, resource: Mapping[str, Any], order_id: str) -> dict[str, Any]:
        order = resource.get("order")
        if not isinstance(order, dict) or _id_text(order.get("id")) != order_id:
            raise BadRequest(
                'bigcommerce: the body is {"order": {...}, "products"?: [...], '
                f'"consignments"?: {{...}}}} with order.id the path\'s id, {order_id!r}.'
            )
        products = resource.get("products", [])
        if not isinstance(products, list):
            raise BadRequest("bigcommerce: products must be a list.")
        consignments = resource.get("consignments", {"pickups": [], "shipping": []})
        if not isinstance(consignments, dict):
            raise BadRequest("bigcommerce: consignments must be an object (the v2 shape).")
        return {"order": order, "products": products, "consignments": consignments}

    def endpoints(self) -> list[tuple[str, list[str], Handler]]:
        return [
            ("/v2/orders", ["GET"], self.list_orders),
            ("/v2/orders/{order_id}", ["GET"], self.get_order),
            ("/v2/orders/{order_id}/products", ["GET"], self.get_products),
            ("/v2/orders/{order_id}/consignments", ["GET"], self.get_consignments),
        ]

    async def get_order(self, request: Request, account: Account) -> Response:
        return JSONResponse(self.stored(request, account)["order"])

    async def get_products(self, request: Request, account: Account) -> Response:
        return _bc_page(self.stored(request, account)["products"], request.query_params)

    async def get_consignments(self, request: Request, account: Account) -> Response:
        return JSONResponse(self.stored(request, account)["consignments"])

    async def list_orders(self, request: Request, account: Account) -> Response:
        params = request.query_params
        low = _bc_date(params, "min_date_modified")
        high = _bc_date(params, "max_date_modified")
        sort = params.get("sort") or "date_modified:asc"
        if sort not in BC_SORTS:
            raise ApiError(400, f"sort must be one of {', '.join(BC_SORTS)}.")
        rows: list[tuple[tuple[str, tuple[int, int, str]], dict[str, Any]]] = []
        for order_id, resource in account.orders.items():
            modified = _rfc2822_time(resource["order"].get("date_modified"))
            if _within(modified, low, high, end_inclusive=True):
                rows.append(((_time_key(modified), _numeric_id_key(order_id)), resource["order"]))
        rows.sort(key=lambda row: row[0], reverse=BC_SORTS[sort])
        return _bc_page([order for _, order in rows], params)

    def webhook(self, send: Send, stored: dict[str, Any] | None) -> dict[str, Any]:
        order_id = send.order_id
        if not (order_id.isascii() and order_id.isdigit() and len(order_id) <= 30):
            raise BadRequest("bigcommerce: orderId must be a whole number, as its order ids are.")
        data: dict[str, Any] = {"type": "order", "id": int(order_id)}
        if send.topic == "store/order/statusUpdated":
            data["status"] = {"previous_status_id": 0, "new_status_id": _bc_status_id(stored)}
        digest = hashlib.sha1(json.dumps(data, sort_keys=True).encode(), usedforsecurity=False)
        store_id = int.from_bytes(_stable_digest(self.name, send.account)[:4], "big")
        return {
            "scope": send.topic,
            "store_id": str(store_id),
            "data": data,
            "hash": digest.hexdigest(),
            "created_at": int(send.now.timestamp()),
            "producer": f"stores/{send.account}",
        }


# Square -----------------------------------------------------------------------------------------

SQUARE_DEFAULT_LIMIT = 500
SQUARE_MAX_LIMIT = 1000
SQUARE_MAX_LOCATIONS = 10
SQUARE_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST_ERROR", "BAD_REQUEST"),
    401: ("AUTHENTICATION_ERROR", "UNAUTHORIZED"),
    403: ("AUTHENTICATION_ERROR", "FORBIDDEN"),
    404: ("INVALID_REQUEST_ERROR", "NOT_FOUND"),
    429: ("RATE_LIMIT_ERROR", "RATE_LIMITED"),
    500: ("API_ERROR", "INTERNAL_SERVER_ERROR"),
    503: ("API_ERROR", "SERVICE_UNAVAILABLE"),
    504: ("API_ERROR", "GATEWAY_TIMEOUT"),
}
SQUARE_THIN_FIELDS = ("location_id", "state", "version", "created_at", "updated_at")


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_VALUE")


def _square_locations(value: object) -> set[str]:
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= SQUARE_MAX_LOCATIONS
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise _invalid(f"location_ids must list 1 to {SQUARE_MAX_LOCATIONS} location ids.")
    return set(value)


def _square_limit(value: object) -> int:
    if value is None:
        return SQUARE_DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid("limit must be a whole number, 1 or more.")
    return min(value, SQUARE_MAX_LIMIT)


def _object(value: object, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid(f"{name} must be an object.")
    return value


def _square_window(query: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """[start_at, end_at) of `query.filter.date_time_filter.updated_at`, the one filter the
    emulator reads: any other is refused rather than silently ignored."""
    filters = _object(query.get("filter"), "query.filter")
    if set(filters) - {"date_time_filter"}:
        raise _invalid("The emulator filters on query.filter.date_time_filter.updated_at only.")
    times = _object(filters.get("date_time_filter"), "query.filter.date_time_filter")
    if set(times) - {"updated_at"}:
        raise _invalid("The emulator filters on query.filter.date_time_filter.updated_at only.")
    window = _object(times.get("updated_at"), "updated_at")
    bounds = []
    for name in ("start_at", "end_at"):
        moment = _iso_time(window.get(name))
        if window.get(name) is not None and moment is None:
            raise _invalid(f"updated_at.{name} must be an RFC 3339 time.")
        bounds.append(moment)
    return bounds[0], bounds[1]


def _square_descending(query: Mapping[str, Any]) -> bool:
    sort = _object(query.get("sort"), "query.sort")
    if sort.get("sort_field", "UPDATED_AT") != "UPDATED_AT":
        raise _invalid("The emulator sorts by UPDATED_AT only.")
    order = sort.get("sort_order", "ASC")
    if order not in ("ASC", "DESC"):
        raise _invalid("sort_order must be ASC or DESC.")
    return bool(order == "DESC")


def _after(token: object, code: str) -> Key | None:
    if token is None or token == "":
        return None
    if not isinstance(token, str):
        raise ApiError(400, "The cursor must be a string.", code)
    try:
        key = _decode_token(token)["k"]
    except ValueError:
        raise ApiError(400, "The cursor is not one this emulator gave.", code) from None
    return (key[0], key[1])


async def _api_json(request: Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise ApiError(400, "The body must be JSON.") from None
    if not isinstance(body, Mapping):
        raise ApiError(400, "The body must be a JSON object.")
    return body


class Square(ChannelApi):
    name = "square"
    topics = ("order.created", "order.updated", "order.fulfillment.updated")

    def credential(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        fallback = ("API_ERROR", "INTERNAL_SERVER_ERROR") if status >= 500 else SQUARE_ERRORS[400]
        category, default_code = SQUARE_ERRORS.get(status, fallback)
        return JSONResponse(
            {"errors": [{"category": category, "code": code or default_code, "detail": message}]},
            status_code=status,
        )

    def normalise(self, resource: Mapping[str, Any], order_id: str) -> dict[str, Any]:
        if _id_text(resource.get("id")) != order_id:
            raise BadRequest(
                f"square: the body is a Square Order object whose id is the path's id, {order_id!r}."
            )
        return dict(resource)

    def endpoints(self) -> list[tuple[str, list[str], Handler]]:
        return [
            ("/v2/orders/search", ["POST"], self.search),
            ("/v2/orders/{order_id}", ["GET"], self.get_order),
        ]

    async def get_order(self, request: Request, account: Account) -> Response:
        return JSONResponse({"order": self.stored(request, account)})

    async def search(self, request: Request, account: Account) -> Response:
        body = await _api_json(request)
        locations = _square_locations(body.get("location_ids"))
        limit = _square_limit(body.get("limit"))
        query = _object(body.get("query"), "query")
        start, end = _square_window(query)
        descending = _square_descending(query)
        after = _after(body.get("cursor"), "INVALID_CURSOR")
        rows: list[tuple[Key, dict[str, Any]]] = []
        for order_id, order in account.orders.items():
            updated = _iso_time(order.get("updated_at"))
            location = order.get("location_id")
            if (
                isinstance(location, str)
                and location in locations
                and _within(updated, start, end, end_inclusive=False)
            ):
                rows.append(((_time_key(updated), order_id), order))
        page, next_key = _keyset_page(rows, after, limit, descending=descending)
        answer: dict[str, Any] = {}
        if page:
            answer["orders"] = page
        if next_key is not None:
            answer["cursor"] = _encode_token({"k": next_key})
        return JSONResponse(answer)

    def webhook(self, send: Send, stored: dict[str, Any] | None) -> dict[str, Any]:
        kind = send.topic.replace(".", "_")  # order.created -> order_created
        thin: dict[str, Any] = {"order_id": send.order_id}
        for name in SQUARE_THIN_FIELDS:
            if stored is not None and name in stored:
                thin[name] = stored[name]
        if send.topic == "order.fulfillment.updated":
            thin["fulfillment_update"] = []
        return {
            "merchant_id": _stable_code(self.name, send.account, 13),
            "type": send.topic,
            "event_id": send.event_id,
            "created_at": _rfc3339(send.now),
            "data": {"type": kind, "id": send.order_id, "object": {kind: thin}},
        }

    def sign(self, send: Send, body: bytes) -> dict[str, str]:
        return {SQUARE_SIGNATURE: sign_square(send.secret, send.notification_url, body)}


# Amazon -----------------------------------------------------------------------------------------

AMAZON_MAX_PAGE = 100
AMAZON_DEFAULT_RATE = "0.0167"  # searchOrders' documented rate, requests per second
AMAZON_CODES: Mapping[int, str] = {
    400: "InvalidInput",
    401: "Unauthorized",
    403: "Unauthorized",
    404: "NotFound",
    429: "QuotaExceeded",
}


def _amazon_time(params: QueryParams, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    moment = _iso_time(text)
    if moment is None:
        raise ApiError(400, f"{name} must be an ISO 8601 time.", "InvalidInput")
    return moment


def _amazon_window(params: QueryParams) -> tuple[datetime | None, datetime | None, Key | None]:
    """[lastUpdatedAfter, lastUpdatedBefore] and where the page starts: from the query, or all
    from the paginationToken (which carries the window it was given for)."""
    token = params.get("paginationToken")
    if not token:
        after = _amazon_time(params, "lastUpdatedAfter")
        if after is None:
            raise ApiError(400, "lastUpdatedAfter is required.", "InvalidInput")
        return after, _amazon_time(params, "lastUpdatedBefore"), None
    try:
        content = _decode_token(token)
    except ValueError:
        raise ApiError(
            400, "paginationToken is not one this emulator gave.", "InvalidInput"
        ) from None
    key = content["k"]
    return _iso_time(content.get("a")), _iso_time(content.get("b")), (key[0], key[1])


def _amazon_order_status(order: dict[str, Any] | None) -> str:
    """The v0 OrderStatus ("Unshipped", "PartiallyShipped", "Canceled") of a 2026 order's
    fulfillmentStatus ("UNSHIPPED", ...); Unshipped when it cannot be told."""
    fulfillment = order.get("fulfillment") if order else None
    status = fulfillment.get("fulfillmentStatus") if isinstance(fulfillment, dict) else None
    if not isinstance(status, str) or not status.strip():
        return "Unshipped"
    if status.upper() in ("CANCELLED", "CANCELED"):
        return "Canceled"
    return "".join(part.capitalize() for part in status.split("_")) if status.isupper() else status


class Amazon(ChannelApi):
    name = "amazon"
    topics = ("ORDER_CHANGE",)

    def credential(self, request: Request) -> str | None:
        return request.headers.get("x-amz-access-token")

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        fallback = "InternalFailure" if status >= 500 else "InvalidInput"
        return JSONResponse(
            {"errors": [{"code": code or AMAZON_CODES.get(status, fallback), "message": message}]},
            status_code=status,
        )

    def rate_limited(self, retry_after: int, per_second: float | None) -> Response:
        response = super().rate_limited(retry_after, per_second)
        rate = AMAZON_DEFAULT_RATE if per_second is None else f"{per_second:g}"
        response.headers["x-amzn-RateLimit-Limit"] = rate
        return response

    def normalise(self, resource: Mapping[str, Any], order_id: str) -> dict[str, Any]:
        if _id_text(resource.get("orderId")) != order_id:
            raise BadRequest(
                f"amazon: the body is an Orders API 2026-01-01 Order whose orderId is the path's "
                f"id, {order_id!r}."
            )
        return dict(resource)

    def endpoints(self) -> list[tuple[str, list[str], Handler]]:
        return [
            ("/orders/2026-01-01/orders", ["GET"], self.search),
            ("/orders/2026-01-01/orders/{order_id}", ["GET"], self.get_order),
        ]

    async def get_order(self, request: Request, account: Account) -> Response:
        return JSONResponse({"order": self.stored(request, account)})

    async def search(self, request: Request, account: Account) -> Response:
        params = request.query_params
        size = _whole_param(params, "maxResultsPerPage", AMAZON_MAX_PAGE, "InvalidInput")
        if size > AMAZON_MAX_PAGE:
            raise ApiError(400, f"maxResultsPerPage is at most {AMAZON_MAX_PAGE}.", "InvalidInput")
        low, high, after = _amazon_window(params)
        rows: list[tuple[Key, dict[str, Any]]] = []
        for order_id, order in account.orders.items():
            updated = _iso_time(order.get("lastUpdatedTime"))
            if _within(updated, low, high, end_inclusive=True):
                rows.append(((_time_key(updated), order_id), order))
        page, next_key = _keyset_page(rows, after, size, descending=False)
        answer: dict[str, Any] = {"orders": page}
        if next_key is not None:
            window = {
                "a": None if low is None else low.isoformat(),
                "b": None if high is None else high.isoformat(),
            }
            answer["pagination"] = {"nextToken": _encode_token({**window, "k": next_key})}
        return JSONResponse(answer)

    def webhook(self, send: Send, stored: dict[str, Any] | None) -> dict[str, Any]:
        now = _rfc3339(send.now)
        order = stored or {}
        summary = {
            "MarketplaceId": "ATVPDKIKX0DER",
            "OrderStatus": _amazon_order_status(stored),
            "PurchaseDate": order.get("createdTime") or now,
            "FulfillmentType": "MFN",
        }
        change = {
            "NotificationLevel": "OrderLevel",
            "SellerId": "A" + _stable_code(self.name, send.account, 13),
            "AmazonOrderId": send.order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {
                "TimeOfOrderChange": order.get("lastUpdatedTime") or now,
                "ChangeReason": "BuyerRequestedChange",
            },
            "Summary": summary,
        }
        return {
            "NotificationVersion": "1.0",
            "NotificationType": "ORDER_CHANGE",
            "PayloadVersion": "1.0",
            "EventTime": now,
            "Payload": {"OrderChangeNotification": change},
            "NotificationMetadata": {
                "ApplicationId": "amzn1.sellerapps.app.emulator",
                "SubscriptionId": str(uuid.uuid4()),
                "PublishTime": now,
                "NotificationId": send.event_id,
            },
        }


# WooCommerce ------------------------------------------------------------------------------------

WOO_DEFAULT_PER_PAGE = 10
WOO_MAX_PER_PAGE = 100
WOO_CODES: Mapping[int, str] = {
    400: "rest_invalid_param",
    401: "woocommerce_rest_cannot_view",
    403: "woocommerce_rest_cannot_view",
    404: "rest_no_route",
    429: "too_many_requests",
}
WOO_INVALID = "rest_invalid_param"
WOO_NO_ROUTE = "No route was found matching the URL and request method."
# The order time each `orderby` sorts by: the `_gmt` field (UTC), else the site-local one.
WOO_TIMES: Mapping[str, tuple[str, str]] = {
    "modified": ("date_modified_gmt", "date_modified"),
    "date": ("date_created_gmt", "date_created"),
}
WOO_ORDERBY = ("date", "modified", "id")
WOO_BOOLEANS = ("true", "false", "1", "0")
# WooCommerce's own list filters the emulator does not apply: refused, not silently ignored.
WOO_UNSUPPORTED = (
    "after",
    "before",
    "offset",
    "include",
    "exclude",
    "search",
    "customer",
    "product",
    "parent",
)
# What WordPress's rest_parse_date takes: a whole date and time, the zone optional.
WOO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|z|[+-]\d{2}(:?\d{2})?)?")
WOO_USER_AGENT = "WooCommerce/9.9.0 Hookshot (WordPress/6.8.1)"


def _int_id(resource: Mapping[str, Any], order_id: str) -> bool:
    """Whether the resource's `id` is a whole number, 0 or more, written as `order_id` is."""
    value = resource.get("id")
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 0
        and len(order_id) <= 30
        and str(value) == order_id
    )


def _woo_time(order: Mapping[str, Any], names: tuple[str, str]) -> datetime | None:
    """An order time: its `_gmt` field, else the site-local one (read as UTC too: the emulated
    site's timezone is UTC)."""
    gmt, local = names
    return _iso_time(order.get(gmt)) or _iso_time(order.get(local))


def _woo_invalid(name: str, why: str) -> ApiError:
    return ApiError(400, f"Invalid parameter(s): {name} ({why}).", WOO_INVALID)


def _woo_date(params: QueryParams, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    moment = _iso_time(text) if WOO_DATE.fullmatch(text.strip()) else None
    if moment is None:
        raise _woo_invalid(name, "an ISO 8601 date and time, as 2026-12-01T10:00:00")
    return moment


def _woo_choice(params: QueryParams, name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in choices:
        raise _woo_invalid(name, f"one of {', '.join(choices)}")
    return value


def _woo_page_links(request: Request, page: int, pages: int) -> str:
    """The `Link` header WooCommerce sends with a list: the same query, another page."""
    links = []
    if page > 1 and pages >= 1:
        previous = request.url.include_query_params(page=min(page - 1, pages))
        links.append(f'<{previous}>; rel="prev"')
    if pages > page:
        links.append(f'<{request.url.include_query_params(page=page + 1)}>; rel="next"')
    return ", ".join(links)


class WooCommerce(ChannelApi):
    name = "woocommerce"
    topics = ("order.created", "order.updated", "order.deleted")

    def credential(self, request: Request) -> str | None:
        """`key:secret`, from HTTP Basic, else from `consumer_key` and `consumer_secret` in the
        query (as WooCommerce takes them over HTTPS)."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and encoded.strip():
            try:
                return base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return None
        key = request.query_params.get("consumer_key")
        secret = request.query_params.get("consumer_secret")
        return f"{key}:{secret}" if key and secret else None

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        fallback = "internal_server_error" if status >= 500 else WOO_INVALID
        return JSONResponse(
            {
                "code": code or WOO_CODES.get(status, fallback),
                "message": message,
                "data": {"status": status},
            },
            status_code=status,
        )

    def normalise(self, resource: Mapping[str, Any], order_id: str) -> dict[str, Any]:
        if not _int_id(resource, order_id):
            raise BadRequest(
                "woocommerce: the body is a REST v3 order whose id is the path's id as a number, "
                f"{order_id!r}."
            )
        return dict(resource)

    def endpoints(self) -> list[tuple[str, list[str], Handler]]:
        return [
            ("/wp-json/wc/v3/orders", ["GET"], self.list_orders),
            ("/wp-json/wc/v3/orders/{order_id}", ["GET"], self.get_order),
        ]

    async def get_order(self, request: Request, account: Account) -> Response:
        order_id = request.path_params["order_id"]
        if not (order_id.isascii() and order_id.isdigit()):
            raise ApiError(404, WOO_NO_ROUTE, "rest_no_route")  # the route takes digits only
        resource = account.orders.get(order_id.lstrip("0") or "0")
        if resource is None:
            raise ApiError(404, "Invalid ID.", "woocommerce_rest_shop_order_invalid_id")
        return JSONResponse(resource)

    async def list_orders(self, request: Request, account: Account) -> Response:
        """Orders modified in (modified_after, modified_before), both ends exclusive, a page of
        them by offset: as WooCommerce pages, an order modified meanwhile moves and the pages
        after it shift."""
        params = request.query_params
        for name in WOO_UNSUPPORTED:
            if name in params:
                raise _woo_invalid(name, "the emulator filters on modified_after/before only")
        _woo_choice(params, "dates_are_gmt", WOO_BOOLEANS, "false")  # either way, read as UTC
        per_page = _whole_param(params, "per_page", WOO_DEFAULT_PER_PAGE, WOO_INVALID)
        if per_page > WOO_MAX_PER_PAGE:
            raise _woo_invalid("per_page", f"at most {WOO_MAX_PER_PAGE}")
        page = _whole_param(params, "page", 1, WOO_INVALID)
        orderby = _woo_choice(params, "orderby", WOO_ORDERBY, "date")
        descending = _woo_choice(params, "order", ("asc", "desc"), "desc") == "desc"
        low = _woo_date(params, "modified_after")
        high = _woo_date(params, "modified_before")
        rows: list[tuple[tuple[str, tuple[int, int, str]], dict[str, Any]]] = []
        for order_id, order in account.orders.items():
            modified = _woo_time(order, WOO_TIMES["modified"])
            if _within(modified, low, high, start_inclusive=False, end_inclusive=False):
                moment = _woo_time(order, WOO_TIMES[orderby]) if orderby != "id" else None
                rows.append(((_time_key(moment), _numeric_id_key(order_id)), order))
        rows.sort(key=lambda row: row[0], reverse=descending)
        pages = math.ceil(len(rows) / per_page)
        response = JSONResponse([order for _, order in rows[(page - 1) * per_page :][:per_page]])
        response.headers["X-WP-Total"] = str(len(rows))
        response.headers["X-WP-TotalPages"] = str(pages)
        links = _woo_page_links(request, page, pages)
        if links:
            response.headers["Link"] = links
        return response

    def webhook(self, send: Send, stored: dict[str, Any] | None) -> dict[str, Any]:
        """The whole order, as the REST API gives it; `order.deleted` carries only its id."""
        if send.topic == "order.deleted":
            if not (
                send.order_id.isascii() and send.order_id.isdigit() and len(send.order_id) <= 30
            ):
                raise BadRequest("woocommerce: orderId must be a whole number, as its ids are.")
            return {"id": int(send.order_id)}
        if stored is None:
            raise BadRequest(
                f"woocommerce: order {send.order_id!r} is not stored for that account, and a "
                f"{send.topic} webhook carries the whole order."
            )
        return stored

    def sign(self, send: Send, body: bytes) -> dict[str, str]:
        webhook_id = 1 + int.from_bytes(_stable_digest(self.name, send.account)[:3], "big")
        return {
            "User-Agent": WOO_USER_AGENT,
            "X-WC-Webhook-Source": send.account_url + "/",  # the site's home URL
            "X-WC-Webhook-Topic": send.topic,
            "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": send.topic.removeprefix("order."),
            "X-WC-Webhook-Signature": sign_woocommerce(send.secret, body),
            "X-WC-Webhook-ID": str(webhook_id),
            "X-WC-Webhook-Delivery-ID": send.event_id,
        }


# Shopify ----------------------------------------------------------------------------------------

SHOPIFY_DEFAULT_LIMIT = 50
SHOPIFY_MAX_LIMIT = 250
SHOPIFY_WEBHOOK_VERSION = "2025-07"
SHOPIFY_VERSION = re.compile(r"\d{4}-\d{2}")
SHOPIFY_MESSAGES: Mapping[int, str] = {
    401: "[API] Invalid API key or access token (unrecognized login or wrong password)",
    404: "Not Found",
    429: "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service.",
}
# `order`: the order field sorted by (then the id), and whether descending.
SHOPIFY_ORDERS: Mapping[str, tuple[str, bool]] = {
    "updated_at asc": ("updated_at", False),
    "updated_at desc": ("updated_at", True),
    "created_at asc": ("created_at", False),
    "created_at desc": ("created_at", True),
    "id asc": ("id", False),
    "id desc": ("id", True),
}
SHOPIFY_DEFAULT_ORDER = "updated_at asc"
SHOPIFY_STATUSES = ("open", "closed", "cancelled", "any")
SHOPIFY_DEFAULT_STATUS = "open"  # as Shopify's: a sweep must ask for status=any
# Shopify's own list filters the emulator does not apply: refused, not silently ignored.
SHOPIFY_UNSUPPORTED = (
    "ids",
    "since_id",
    "created_at_min",
    "created_at_max",
    "processed_at_min",
    "processed_at_max",
    "financial_status",
    "fulfillment_status",
    "attribution_app_id",
    "name",
)
SHOPIFY_ID_DIGITS = 30


def _shopify_time(params: QueryParams, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    moment = _iso_time(text)
    if moment is None:
        raise ApiError(400, "must be an ISO 8601 time, as 2026-12-01T10:00:00-05:00", name)
    return moment


def _shopify_status(order: Mapping[str, Any], status: str) -> bool:
    """Whether an order has `status`: open is neither closed nor cancelled."""
    closed = bool(order.get("closed_at"))
    cancelled = bool(order.get("cancelled_at"))
    if status == "open":
        return not closed and not cancelled
    if status == "closed":
        return closed
    return cancelled if status == "cancelled" else True


@dataclass(frozen=True)
class ShopifyListing:
    """What a Shopify order listing is of: the window [low, high] on updated_at, the order and
    the status. A page_info token carries it, with where its page starts or ends."""

    low: datetime | None
    high: datetime | None
    order: str
    status: str

    @classmethod
    def of_query(cls, params: QueryParams) -> ShopifyListing:
        for name in SHOPIFY_UNSUPPORTED:
            if name in params:
                raise ApiError(400, "the emulator filters on updated_at_min/max only", name)
        order = " ".join((params.get("order") or SHOPIFY_DEFAULT_ORDER).lower().split())
        if order not in SHOPIFY_ORDERS:
            raise ApiError(400, f"must be one of {', '.join(SHOPIFY_ORDERS)}", "order")
        status = params.get("status") or SHOPIFY_DEFAULT_STATUS
        if status not in SHOPIFY_STATUSES:
            raise ApiError(400, f"must be one of {', '.join(SHOPIFY_STATUSES)}", "status")
        low = _shopify_time(params, "updated_at_min")
        return cls(low, _shopify_time(params, "updated_at_max"), order, status)

    @classmethod
    def of_token(cls, token: str) -> tuple[ShopifyListing, Key, bool]:
        """The listing, the key a page is next to, and whether it is the page before it."""
        try:
            content = _decode_token(token)
        except ValueError:
            content = {}
        order, status, direction = content.get("o"), content.get("s"), content.get("d")
        low, high = content.get("a"), content.get("b")
        if (
            not isinstance(order, str)
            or order not in SHOPIFY_ORDERS
            or status not in SHOPIFY_STATUSES
            or direction not in ("next", "previous")
            or (low is not None and _iso_time(low) is None)
            or (high is not None and _iso_time(high) is None)
        ):
            raise ApiError(400, "is not a page_info this emulator gave", "page_info")
        key = content["k"]
        listing = cls(_iso_time(low), _iso_time(high), str(order), str(status))
        return listing, (key[0], key[1]), direction == "previous"

    def token(self, key: Key, direction: str) -> str:
        content = {
            "a": None if self.low is None else self.low.isoformat(),
            "b": None if self.high is None else self.high.isoformat(),
            "o": self.order,
            "s": self.status,
            "d": direction,
            "k": list(key),
        }
        return _encode_token(content).rstrip("=")  # as Shopify's: url-safe, unpadded

    def key(self, order_id: str, order: Mapping[str, Any]) -> Key:
        """The sort key: the order field (as sortable text), then the id (zero-padded)."""
        field_name = SHOPIFY_ORDERS[self.order][0]
        padded = order_id.rjust(SHOPIFY_ID_DIGITS, "0")
        if field_name == "id":
            return (padded, "")
        return (_time_key(_iso_time(order.get(field_name))), padded)

    def rows(self, account: Account) -> list[tuple[Key, dict[str, Any]]]:
        """The listing's orders in its order."""
        rows = [
            (self.key(order_id, order), order)
            for order_id, order in account.orders.items()
            if _shopify_status(order, self.status)
            and _within(_iso_time(order.get("updated_at")), self.low, self.high, end_inclusive=True)
        ]
        descending = SHOPIFY_ORDERS[self.order][1]
        rows.sort(key=lambda row: row[0], reverse=descending)
        return rows


def _shopify_page(
    rows: list[tuple[Key, dict[str, Any]]], start: int, end: int
) -> tuple[list[tuple[Key, dict[str, Any]]], bool, bool]:
    """rows[start:end], whether any come before and whether any come after."""
    return rows[start:end], start > 0, end < len(rows)


def _reason(status: int, fallback: str) -> str:
    """HTTP's reason phrase for `status` ("Service Unavailable"), else `fallback`."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return fallback


class Shopify(ChannelApi):
    name = "shopify"
    topics = ("orders/create", "orders/updated", "orders/cancelled")

    def credential(self, request: Request) -> str | None:
        return request.headers.get("x-shopify-access-token")

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        """`{"errors": "<text>"}`, or `{"errors": {"<field>": ["<text>"]}}` when `code` names
        the field at fault."""
        errors: str | dict[str, list[str]]
        if code is not None:
            errors = {code: [message]}
        elif status in SHOPIFY_MESSAGES:
            errors = SHOPIFY_MESSAGES[status]
        elif status >= 500:
            errors = _reason(status, message)
        else:
            errors = message
        return JSONResponse({"errors": errors}, status_code=status)

    def rate_limited(self, retry_after: int, per_second: float | None) -> Response:
        response = super().rate_limited(retry_after, per_second)
        response.headers["Retry-After"] = f"{retry_after:.1f}"  # Shopify's float seconds
        return response

    def normalise(self, resource: Mapping[str, Any], order_id: str) -> dict[str, Any]:
        if not _int_id(resource, order_id):
            raise BadRequest(
                "shopify: the body is an Admin REST order whose id is the path's id as a number, "
                f"{order_id!r}."
            )
        return dict(resource)

    def endpoints(self) -> list[tuple[str, list[str], Handler]]:
        return [
            ("/admin/api/{version}/orders.json", ["GET"], self.list_orders),
            ("/admin/api/{version}/orders/{order_id}.json", ["GET"], self.get_order),
        ]

    def check_version(self, request: Request) -> None:
        if not SHOPIFY_VERSION.fullmatch(request.path_params["version"]):
            raise ApiError(404, "Not Found")

    async def get_order(self, request: Request, account: Account) -> Response:
        self.check_version(request)
        return JSONResponse({"order": self.stored(request, account)})

    async def list_orders(self, request: Request, account: Account) -> Response:
        """A page of the orders updated in [updated_at_min, updated_at_max], by keyset: a
        page_info token says where the page is, and carries the listing, so that only `limit`
        may come with it."""
        self.check_version(request)
        params = request.query_params
        limit = _whole_param(params, "limit", SHOPIFY_DEFAULT_LIMIT, "limit")
        if limit > SHOPIFY_MAX_LIMIT:
            raise ApiError(400, f"must be at most {SHOPIFY_MAX_LIMIT}", "limit")
        token = params.get("page_info")
        if token is None:
            listing = ShopifyListing.of_query(params)
            rows = listing.rows(account)
            page, before, after = _shopify_page(rows, 0, limit)
        else:
            others = sorted(set(params.keys()) - {"limit", "page_info"})
            if others:
                raise ApiError(
                    400, f"cannot be given with {', '.join(others)}: only limit can", "page_info"
                )
            listing, key, previous = ShopifyListing.of_token(token)
            rows = listing.rows(account)
            descending = SHOPIFY_ORDERS[listing.order][1]
            # How many rows come before the key, in the listing's order.
            ahead = sum(1 for k, _ in rows if (k > key if descending else k < key))
            if previous:
                page, before, after = _shopify_page(rows, max(0, ahead - limit), ahead)
            else:
                at_or_ahead = ahead + sum(1 for k, _ in rows if k == key)
                page, before, after = _shopify_page(rows, at_or_ahead, at_or_ahead + limit)
        response = JSONResponse({"orders": [order for _, order in page]})
        links = []
        if page and before:
            links.append((listing.token(page[0][0], "previous"), "previous"))
        if page and after:
            links.append((listing.token(page[-1][0], "next"), "next"))
        if links:
            response.headers["Link"] = ", ".join(
                f"<{request.url.replace(query=urlencode({'limit': limit, 'page_info': t}))}>; "
                f'rel="{rel}"'
                for t, rel in links
            )
        return response

    def webhook(self, send: Send, stored: dict[str, Any] | None) -> dict[str, Any]:
        """The whole order, as the REST API gives it."""
        if stored is None:
            raise BadRequest(
                f"shopify: order {send.order_id!r} is not stored for that account, and a "
                f"{send.topic} webhook carries the whole order."
            )
        return stored

    def sign(self, send: Send, body: bytes) -> dict[str, str]:
        return {
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": send.topic,
            "X-Shopify-Hmac-Sha256": sign_shopify(send.secret, body),
            "X-Shopify-Shop-Domain": f"{send.account}.myshopify.com",
            "X-Shopify-API-Version": SHOPIFY_WEBHOOK_VERSION,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": send.event_id,
            "X-Shopify-Triggered-At": send.now.isoformat(timespec="microseconds").replace(
                "+00:00", "Z"
            ),
        }


CHANNELS: Mapping[str, ChannelApi] = {
    api.name: api for api in (BigCommerce(), Square(), Amazon(), WooCommerce(), Shopify())
}


# --- the channel API calls ------------------------------------------------------------------------


async def _answer(
    state: EmulatedChannels, api: ChannelApi, request: Request, handler: Handler
) -> Response:
    """The checks in front of every API call, in order: a fault (a slow one only delays), the
    credential, the rate limit; then the handler."""
    name = request.path_params["account"]
    fault = state.take_fault(api.name, name)
    if fault is not None and fault.mode == "slow":
        await asyncio.sleep(fault.delay_seconds)
    elif fault is not None:
        return api.fault_response(fault)
    account = state.find(api.name, name)
    if account is None or not account.authorized(api.credential(request)):
        return api.error(401, f"The credential is missing or wrong for {api.name} account {name}.")
    bucket = account.bucket
    wait = bucket.take(state.clock()) if bucket is not None else None
    if bucket is not None and wait is not None:
        return api.rate_limited(max(1, math.ceil(wait)), bucket.per_second)
    try:
        return await handler(request, account)
    except ApiError as error:
        return api.error(error.status, error.message, error.code)


def _api_endpoint(api: ChannelApi, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: EmulatedChannels = request.app.state.channels
        account = request.path_params["account"]
        at = time.time()
        response = await _answer(state, api, request, handler)
        path = request.url.path.removeprefix(f"/{api.name}/{account}")
        state.log.append(
            LoggedRequest(
                api.name, account, request.method, path, request.url.query, response.status_code, at
            )
        )
        return response

    return endpoint


# --- admin: for tests and the demo ----------------------------------------------------------------


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("The body must be JSON.") from None
    if not isinstance(body, Mapping):
        raise BadRequest("The body must be a JSON object.")
    return body


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise BadRequest(f"{name} must be a non-empty string.")
    return value


def _channel(value: Any) -> ChannelApi:
    api = CHANNELS.get(value) if isinstance(value, str) else None
    if api is None:
        raise BadRequest(f"channel must be one of {', '.join(CHANNELS)}.")
    return api


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}.")
    return value


def _number(value: Any, name: str, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise BadRequest(f"{name} must be a number from 0 to {high:g}.")
    return float(value)


def _order_id(value: str) -> str:
    if len(value) > MAX_ID_CHARS:
        raise BadRequest(f"An order id has at most {MAX_ID_CHARS} characters.")
    return value


async def put_admin_account(request: Request) -> Response:
    """Create an account, or replace its credential: `{"token": "..."}`."""
    state: EmulatedChannels = request.app.state.channels
    try:
        api = _channel(request.path_params["channel"])
        token = _text((await _json_object(request)).get("token"), "token")
    except BadRequest as error:
        return _error(str(error), 400)
    account = request.path_params["account"]
    state.account(api.name, account).token = token
    return JSONResponse({"channel": api.name, "account": account, "tokenSet": True})


async def put_admin_order(request: Request) -> Response:
    state: EmulatedChannels = request.app.state.channels
    try:
        api = _channel(request.path_params["channel"])
        order_id = _order_id(request.path_params["order_id"])
        resource = api.normalise(await _json_object(request), order_id)
    except BadRequest as error:
        return _error(str(error), 400)
    account = request.path_params["account"]
    orders = state.account(api.name, account).orders
    created = order_id not in orders
    orders[order_id] = resource
    return JSONResponse(
        {"channel": api.name, "account": account, "orderId": order_id, "created": created}
    )


async def delete_admin_order(request: Request) -> Response:
    state: EmulatedChannels = request.app.state.channels
    try:
        api = _channel(request.path_params["channel"])
    except BadRequest as error:
        return _error(str(error), 400)
    account = state.find(api.name, request.path_params["account"])
    order_id = request.path_params["order_id"]
    if account is None or account.orders.pop(order_id, None) is None:
        return _error(f"No {api.name} order {order_id!r} is stored for that account.", 404)
    return JSONResponse({"orderId": order_id, "deleted": True})


async def get_admin_orders(request: Request) -> Response:
    state: EmulatedChannels = request.app.state.channels
    try:
        api = _channel(request.path_params["channel"])
    except BadRequest as error:
        return _error(str(error), 400)
    account = state.find(api.name, request.path_params["account"])
    return JSONResponse({"orderIds": list(account.orders) if account else []})


def _scope(body: Mapping[str, Any]) -> Scope:
    channel = body.get("channel")
    account = body.get("account")
    if channel is None and account is not None:
        raise BadRequest("An account is named with its channel.")
    return (
        None if channel is None else _channel(channel).name,
        None if account is None else _text(account, "account"),
    )


def _fault(body: Mapping[str, Any]) -> Fault | None:
    """The fault a `POST /admin/faults` body asks for; None for `none`."""
    mode = body.get("mode")
    if not isinstance(mode, str) or mode not in FAULT_FIELDS:
        raise BadRequest(f"mode must be one of {', '.join(FAULT_MODES)}.")
    given = {name for name, value in body.items() if value is not None}
    extra = sorted(given - {"channel", "account", "mode"} - FAULT_FIELDS[mode])
    if extra:
        raise BadRequest(f"{', '.join(extra)}: not for mode {mode!r}.")
    if mode == "none":
        return None
    fault = Fault(mode=mode)
    if mode == "down":
        fault.status = _whole(body.get("status", 503), "status (down)", 500, 599)
    elif mode == "refuse":
        fault.status = _whole(body.get("status", 403), "status (refuse)", 400, 499)
    elif mode == "slow":
        fault.delay_seconds = _number(
            body.get("delaySeconds", 2.0), "delaySeconds", MAX_DELAY_SECONDS
        )
    else:
        fault.retry_after = _whole(
            body.get("retryAfter", 1), "retryAfter", 0, MAX_RETRY_AFTER_SECONDS
        )
    if body.get("times") is not None:
        fault.remaining = _whole(body["times"], "times", 1, 1_000_000)
    return fault


async def post_admin_faults(request: Request) -> Response:
    """Set (or with mode `none` clear) the fault of one account, of every account of a channel
    (no account), or of every account (neither)."""
    state: EmulatedChannels = request.app.state.channels
    try:
        body = await _json_object(request)
        scope = _scope(body)
        fault = _fault(body)
    except BadRequest as error:
        return _error(str(error), 400)
    if fault is None:
        state.faults.pop(scope, None)
        return JSONResponse({"channel": scope[0], "account": scope[1], "mode": "none"})
    state.faults[scope] = fault
    return JSONResponse(fault.to_json(scope))


async def get_admin_faults(request: Request) -> Response:
    state: EmulatedChannels = request.app.state.channels
    return JSONResponse([fault.to_json(scope) for scope, fault in state.faults.items()])


async def post_admin_rate_limit(request: Request) -> Response:
    """`{"channel", "account", "perSecond": float | null, "burst"?: int (default 1)}`: a token
    bucket, full to start with; `perSecond: null` lifts it."""
    state: EmulatedChannels = request.app.state.channels
    try:
        body = await _json_object(request)
        api = _channel(body.get("channel"))
        name = _text(body.get("account"), "account")
        per_second = body.get("perSecond")
        if per_second is not None:
            per_second = _number(per_second, "perSecond", MAX_PER_SECOND)
            if per_second <= 0:
                raise BadRequest("perSecond must be above 0 (null lifts the limit).")
        burst = _whole(body.get("burst", 1), "burst", 1, MAX_BURST)
    except BadRequest as error:
        return _error(str(error), 400)
    account = state.account(api.name, name)
    account.bucket = (
        None
        if per_second is None
        else TokenBucket(per_second, burst, tokens=float(burst), updated=state.clock())
    )
    return JSONResponse(
        {
            "channel": api.name,
            "account": name,
            "perSecond": per_second,
            "burst": burst if per_second is not None else None,
        }
    )


async def get_admin_requests(request: Request) -> Response:
    state: EmulatedChannels = request.app.state.channels
    channel = request.query_params.get("channel")
    account = request.query_params.get("account")
    if channel and channel not in CHANNELS:
        return _error(f"channel must be one of {', '.join(CHANNELS)}.", 400)
    return JSONResponse(
        [
            logged.to_json()
            for logged in state.log
            if (not channel or logged.channel == channel)
            and (not account or logged.account == account)
        ]
    )


async def delete_admin_requests(request: Request) -> Response:
    state: EmulatedChannels = request.app.state.channels
    state.log.clear()
    return JSONResponse({"cleared": True})


def _send(body: Mapping[str, Any], emulator_url: str) -> tuple[ChannelApi, Send]:
    api = _channel(body.get("channel"))
    topic = body.get("topic")
    if topic not in api.topics:
        raise BadRequest(f"topic must be one of {', '.join(api.topics)} for {api.name}.")
    url = _text(body.get("url"), "url")
    if not url.startswith(("http://", "https://")):
        raise BadRequest("url must be an http(s) URL.")
    order_id = _id_text(body.get("orderId"))
    event_id = body.get("eventId")
    account = _text(body.get("account"), "account")
    return api, Send(
        account=account,
        account_url=f"{emulator_url.rstrip('/')}/{api.name}/{account}",
        order_id=_order_id(_text(order_id, "orderId")),
        topic=topic,
        url=url,
        secret=_text(body.get("secret"), "secret"),
        notification_url=_text(body.get("notificationUrl") or url, "notificationUrl"),
        event_id=str(uuid.uuid4()) if event_id is None else _text(event_id, "eventId"),
        now=datetime.now(UTC),
    )


async def post_admin_send(request: Request) -> Response:
    """Send a webhook for an order to ROPOS, signed as the channel signs it. A thin one
    (BigCommerce, Square, Amazon) needs no stored order (then only what the request gives is in
    it); one that carries the whole order (WooCommerce, Shopify) does, but for WooCommerce's
    `order.deleted`, which carries only the id. Answers what ROPOS said and what was sent:
    `{"status", "body", "sent", "headers"}`; 502 when ROPOS cannot be reached."""
    state: EmulatedChannels = request.app.state.channels
    try:
        api, send = _send(await _json_object(request), str(request.base_url))
        stored = state.accounts.get((api.name, send.account), Account()).orders.get(send.order_id)
        message = api.webhook(send, stored)
        payload = json.dumps(message, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **api.sign(send, payload)}
    except BadRequest as error:
        return _error(str(error), 400)
    transport: httpx.AsyncBaseTransport | None = request.app.state.webhook_transport
    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(SEND_TIMEOUT_SECONDS), follow_redirects=False
        ) as client:
            response = await client.post(send.url, content=payload, headers=headers)
    except httpx.HTTPError as error:
        return _error(f"ROPOS could not be reached ({type(error).__name__}: {error}).", 502)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    return JSONResponse(
        {"status": response.status_code, "body": answer, "sent": message, "headers": headers}
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_channel_emulator(
    *,
    clock: Callable[[], float] = time.monotonic,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The emulator app; its state is `app.state.channels` (an `EmulatedChannels`), which a test
    may read, change or replace with a fresh one between tests. `clock` (monotonic seconds)
    drives the rate limits; `webhook_transport` carries `POST /admin/send`'s webhooks (default:
    the network), so a test can deliver them to an ASGI app in process."""
    admin = "/admin/orders/{channel}/{account}"
    routes: list[BaseRoute] = [
        Route("/admin/accounts/{channel}/{account}", put_admin_account, methods=["PUT"]),
        Route(admin + "/{order_id}", put_admin_order, methods=["PUT"]),
        Route(admin + "/{order_id}", delete_admin_order, methods=["DELETE"]),
        Route(admin, get_admin_orders, methods=["GET"]),
        Route("/admin/faults", post_admin_faults, methods=["POST"]),
        Route("/admin/faults", get_admin_faults, methods=["GET"]),
        Route("/admin/rate-limit", post_admin_rate_limit, methods=["POST"]),
        Route("/admin/requests", get_admin_requests, methods=["GET"]),
        Route("/admin/requests", delete_admin_requests, methods=["DELETE"]),
        Route("/admin/send", post_admin_send, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    for api in CHANNELS.values():
        routes += api.routes()
    app = Starlette(routes=routes)
    app.state.channels = EmulatedChannels(clock)
    app.state.webhook_transport = webhook_transport
    return app
