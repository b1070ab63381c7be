"""Rate limits at the edges: who the caller is, which of the limits ops set applies to it, and
the answer once it is over.

- The caller of GraphQL is a verified bearer token's `role:subject`; without a token, or with
  one that does not verify, its client address (so a flood of made-up tokens is limited like
  any anonymous flood). POST /intake/{channel}/{account} is limited per account path, POST
  /wms/stock-levels per client address.
- Every check runs before the request's body is read and before any database work: a refused
  request costs one look at the counts (gateway.runtime makes them: adapters.rate_limits).
- Over the limit: HTTP 429 with `Retry-After` and the code RATE_LIMITED with
  `retryAfterSeconds` (a GraphQL-shaped body on /graphql, the edges' own error shape on the
  webhooks); on a WebSocket, an error on that operation (the socket stays open), or a close
  with 4429 for a connection_init.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError, GraphQLFormattedError
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from adapters.rate_limits import RateLimiter
from domain.access import Actor, Role
from domain.clock import Clock
from domain.errors import RateLimited
from domain.rate_limits import ALLOWED, Rate, Verdict
from gateway.auth import actor_from_header
from gateway.settings import Settings
from schema.context import Context

# Systems rather than people: a POS terminal polls, a channel or the WMS acts for many shoppers
# or stores, ops run tools. They get ROPOS_RATE_LIMIT_GRAPHQL_SERVICE_*.
SERVICE_ROLES = frozenset({Role.OPS, Role.POS, Role.WMS, Role.CHANNEL})
# The longest part of a key taken from the request itself (the intake's account path): a long
# made-up path must not make a long key.
MAX_KEY_PART = 200

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """The address to count a request against. `peer` is the connection's own; only when it is
    a trusted proxy does X-Forwarded-For count: read from the right (each proxy appends the
    address it was reached from), the first entry that is not a trusted proxy is the client.
    Entries further left were written by the client itself and are never believed. An entry
    that is not an address stops the walk at the last trusted hop (stricter, never looser)."""
    if peer is None:
        return "unknown"
    if not trusted or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    address = peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        parsed = _ip(hop)
        if parsed is None:
            return address
        if not any(parsed in network for network in trusted):
            return str(parsed)
        address = str(parsed)
    return address  # every hop is a proxy of ours: the left-most is as far as it goes


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d: the same caller, the same networks.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    parsed = _ip(address)
    return parsed is not None and any(parsed in network for network in trusted)


class EdgeLimits:
    """The process's rate limits: the figures ops set (ROPOS_RATE_LIMIT_*) and the counts
    (`store`: memory or Redis). Made once by gateway.runtime; `limits_of` finds it."""

    def __init__(self, settings: Settings, store: RateLimiter, clock: Clock) -> None:
        self.store = store
        self._settings = settings
        self._clock = clock
        self.graphql = Rate(
            settings.rate_limit_graphql_per_second, settings.rate_limit_graphql_burst
        )
        self.service = Rate(
            settings.rate_limit_graphql_service_per_second,
            settings.rate_limit_graphql_service_burst,
        )
        self.anonymous = Rate(
            settings.rate_limit_graphql_anonymous_per_second,
            settings.rate_limit_graphql_anonymous_burst,
        )
        self.intake_rate = Rate(
            settings.rate_limit_intake_per_second, settings.rate_limit_intake_burst
        )
        self.wms_rate = Rate(settings.rate_limit_wms_per_second, settings.rate_limit_wms_burst)
        self._trusted = tuple(
            ipaddress.ip_network(proxy, strict=False) for proxy in settings.trusted_proxies
        )

    async def close(self) -> None:
        await self.store.close()

    # --- who is calling ---------------------------------------------------------------------

    def address(self, conn: HTTPConnection) -> str:
        peer = conn.client.host if conn.client is not None else None
        return client_address(peer, conn.headers.getlist("x-forwarded-for"), self._trusted)

    def caller(self, conn: HTTPConnection, actor: Actor | None) -> tuple[str, Rate]:
        """The GraphQL key and limit of a caller: its token's role and subject, else its
        address."""
        if actor is None:
            return f"addr:{self.address(conn)}", self.anonymous
        rate = self.service if actor.role in SERVICE_ROLES else self.graphql
        return f"{actor.role.value}:{actor.subject}", rate

    def actor(self, header: str | None) -> Actor | None:
        """The verified caller behind an Authorization header; None for none, or one that does
        not verify (counted against the address; the request itself is refused further on)."""
        if not header:
            return None
        actor, _ = actor_from_header(self._settings, header, self._clock.now())
        return actor

    # --- the checks -------------------------------------------------------------------------

    async def check(self, edge: str, key: str, rate: Rate) -> Verdict:
        if not rate.enabled:
            return ALLOWED
        return await self.store.admit(f"{edge}:{key}", rate)

    async def graphql_caller(self, conn: HTTPConnection, actor: Actor | None) -> Verdict:
        key, rate = self.caller(conn, actor)
        return await self.check("graphql", key, rate)

    async def graphql_http(self, request: Request) -> Response | None:
        """None when the request may go on to GraphQL; else the 429 that refuses it."""
        verdict = await self.graphql_caller(
            request, self.actor(request.headers.get("authorization"))
        )
        return None if verdict.allowed else graphql_refusal(verdict)

    async def intake(self, request: Request) -> Response | None:
        """POST /intake/{channel}/{account}: per account path, before the account is looked up
        (an unknown one costs no database read either) and before the body is read."""
        path = f"{request.path_params['channel']}/{request.path_params['account']}"
        verdict = await self.check("intake", path[:MAX_KEY_PART], self.intake_rate)
        if verdict.allowed:
            return None
        return edge_refusal(
            verdict,
            f"Too many deliveries to this account: over its rate limit; send again in "
            f"{verdict.retry_after} s.",
        )

    async def wms(self, request: Request) -> Response | None:
        """POST /wms/stock-levels: per client address, before the token or body is looked at."""
        verdict = await self.check("wms", f"addr:{self.address(request)}", self.wms_rate)
        if verdict.allowed:
            return None
        return edge_refusal(
            verdict,
            f"Too many stock batches from this address: over its rate limit; send again in "
            f"{verdict.retry_after} s.",
        )


def limits_of(conn: HTTPConnection) -> EdgeLimits:
    """What the app's lifespan made (gateway.runtime.Runtime.rate_limits)."""
    limits: EdgeLimits = conn.app.state.runtime.rate_limits
    return limits


# --- the answers ----------------------------------------------------------------------------


def rate_limited_error(verdict: Verdict) -> GraphQLFormattedError:
    """The GraphQL error of a refused operation: code RATE_LIMITED, retryAfterSeconds."""
    return GraphQLError(
        f"Too many requests: over your rate limit; try again in {verdict.retry_after} s.",
        extensions={"code": RateLimited.code, "retryAfterSeconds": verdict.retry_after},
    ).formatted


def graphql_refusal(verdict: Verdict) -> JSONResponse:
    return JSONResponse(
        {"errors": [rate_limited_error(verdict)]},
        status_code=429,
        headers={"Retry-After": str(verdict.retry_after)},
    )


def edge_refusal(verdict: Verdict, message: str) -> JSONResponse:
    """The webhook edges' error shape (gateway/intake.py, gateway/inbound.py)."""
    body: dict[str, Any] = {
        "error": {
            "code": RateLimited.code,
            "message": message,
            "retryAfterSeconds": verdict.retry_after,
        }
    }
    return JSONResponse(body, 429, headers={"Retry-After": str(verdict.retry_after)})


# --- GraphQL over HTTP ----------------------------------------------------------------------


class LimitedHttp:
    """Wraps the GraphQL endpoint: each HTTP request is checked against its caller's limit
    before strawberry reads its body. WebSockets pass through: their handlers (below) check each
    connection_init and subscribe message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)  # no receive: nothing of the body is read here
            refused = await limits_of(request).graphql_http(request)
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- GraphQL over WebSocket -----------------------------------------------------------------


def _init_actor(limits: EdgeLimits, context: Context, payload: object) -> Actor | None:
    """The caller a connection_init names: its payload's token (as GraphQLApp.on_ws_connect
    reads it), else the handshake's Authorization header (already in the context)."""
    params = payload if isinstance(payload, dict) else {}
    header = params.get("Authorization") or params.get("authorization")
    if header is None and params.get("token"):
        header = f"Bearer {params['token']}"
    if header is None:
        return context.actor
    return limits.actor(str(header))


async def _connect_verdict(context: Context, payload: object) -> Verdict:
    limits = limits_of(context.request)
    return await limits.graphql_caller(context.request, _init_actor(limits, context, payload))


async def _operation_verdict(context: Context) -> Verdict:
    return await limits_of(context.request).graphql_caller(context.request, context.actor)


def _close_reason(verdict: Verdict) -> str:
    return f"Rate limited: retry in {verdict.retry_after} s"  # a close reason: at most 123 bytes


class LimitedTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with the caller's limit on connection_init (over it: closed with
    4429, the protocol's code for too many initialisations) and on each subscribe (over it: an
    error message for that operation id; the socket and its other operations go on)."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if not self.connection_init_received:
            verdict = await _connect_verdict(self.context, message.get("payload"))
            if not verdict.allowed:
                await self.websocket.close(code=4429, reason=_close_reason(verdict))
                return
        await super().handle_connection_init(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.operations:
            verdict = await _operation_verdict(self.context)
            if not verdict.allowed:
                error = rate_limited_error(verdict)
                await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
                return
        await super().handle_subscribe(message)


class LimitedLegacyWS(BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws, limited the same way: a connection_init over the limit gets a
    connection_error with the code, then the close (as a refused token does); a start over it
    gets an error message for that operation id."""

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        verdict = await _connect_verdict(self.context, message.get("payload"))
        if not verdict.allowed:
            error = dict(rate_limited_error(verdict))
            await self.send_message({"type": "connection_error", "payload": error})
            await self.websocket.close(code=1011, reason=_close_reason(verdict))
            return
        await super().handle_connection_init(message)

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged:
            verdict = await _operation_verdict(self.context)
            if not verdict.allowed:
                error = rate_limited_error(verdict)
                await self.send_message({"type": "error", "id": message["id"], "payload": error})
                return
        await super().handle_start(message)
