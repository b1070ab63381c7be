"""The app factory: settings in, a Starlette app out, with its lifespan owning every connection."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from adapters.broker import redact
from domain.clock import Clock, SystemClock
from domain.pickup import qr_payload
from gateway.auth import actor_from_header
from gateway.consoles import console_routes
from gateway.inbound import stock_levels_endpoint
from gateway.intake import intake_endpoint
from gateway.logs import REQUEST_ID_HEADER, RequestIdMiddleware
from gateway.metrics import MeteredSchema, Metrics, MetricsMiddleware, metrics_endpoint
from gateway.rate_limits import LimitedHttp, LimitedLegacyWS, LimitedTransportWS
from gateway.runtime import running, runtime_of
from gateway.settings import Settings
from resolvers.errors import BAD_REQUEST, client_error
from resolvers.root import build_schema
from schema.context import Context
from schema.qr import qr_png

log = logging.getLogger(__name__)

# The close code of a WebSocket message over the size limit (RFC 6455).
MESSAGE_TOO_BIG = 1009


class GraphQLApp(GraphQL[Context, None]):
    """The GraphQL endpoint: HTTP and WebSocket at /graphql."""

    # Each connection_init and subscribe counts against the caller's rate limit.
    graphql_transport_ws_handler_class = LimitedTransportWS
    graphql_ws_handler_class = LimitedLegacyWS

    def __init__(
        self, settings: Settings, *, metrics: Metrics | None = None, **options: Any
    ) -> None:
        schema = build_schema(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            max_query_chars=settings.max_query_chars,
            introspection=settings.introspection_enabled,
            plain_completion=settings.plain_completion,
            schema_class=MeteredSchema,
        )
        if metrics is not None:
            metrics.instrument(schema)  # operations and open subscriptions, for /metrics
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allowed_origins=settings.allowed_origins,
            **options,
        )
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Sizes are checked on the bytes as they arrive, before anything parses them.
        limit = self.settings.graphql_max_bytes
        if scope["type"] == "websocket":
            await super().__call__(scope, *_messages_capped(receive, send, limit))
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        body = await _body_capped(scope, receive, limit)
        if body is None:
            await _too_large(limit)(scope, receive, send)
            return
        await super().__call__(scope, _replaying(body, receive), send)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # OperationRules shapes the errors of operations that ran; a parse error raised in
        # the parser cache never reaches it, so every HTTP result is shaped here as well.
        if result.errors:
            result.errors = [client_error(error) for error in result.errors]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket messages must go out as text frames.
        return orjson.dumps(data).decode()

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """WebSocket clients send their token in connection_init: {"Authorization": "Bearer
        <token>"} (or {"token": "<token>"}). A bad token closes the socket (4403); none leaves
        the connection anonymous (public subscriptions only). A socket has one caller, the one
        of its first connection_init: a second is refused (graphql-transport-ws refuses it
        before this, with 4429; the legacy protocol would let the socket change hands, e.g.
        from one store's token to another's, so it is closed)."""
        connection = context.request.state
        if getattr(connection, "ropos_initialised", False):
            raise ConnectionRejectionError(
                {"message": "This socket is already initialised; open a new one."}
            )
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        if header is None and params.get("token"):
            header = f"Bearer {params['token']}"
        if header is not None:
            actor, problem = actor_from_header(self.settings, str(header), context.deps.clock.now())
            if actor is None:
                raise ConnectionRejectionError({"message": problem or "Invalid token."})
            context.actor, context.auth_problem = actor, None
        connection.ropos_initialised = True
        accepted: UnsetType = UNSET  # strawberry types its UNSET sentinel as Any
        return accepted

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        deps = runtime_of(request).deps
        actor, problem = actor_from_header(
            self.settings, request.headers.get("authorization"), deps.clock.now()
        )
        return Context(deps=deps, actor=actor, auth_problem=problem, request=request)


async def _body_capped(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to be over `limit` bytes: from
    Content-Length, or while it arrives (whatever Content-Length said)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the app finds out when it answers
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body already read, then whatever the server sends next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _too_large(limit: int) -> Response:
    message = (
        f"The request body is over {limit} bytes (ROPOS_GRAPHQL_MAX_BYTES); send a shorter "
        "query or fewer variables."
    )
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": BAD_REQUEST}}]},
        status_code=413,
    )


def _messages_capped(receive: Receive, send: Send, limit: int) -> tuple[Receive, Send]:
    """receive and send of a WebSocket whose messages may be at most `limit` bytes: a larger
    one closes it (1009) and the app is told the client left. (`ropos serve` has uvicorn refuse
    such a frame before buffering it; this holds under any server.)"""
    closed = False

    async def capped_receive() -> Message:
        nonlocal closed
        message = await receive()
        if message["type"] == "websocket.receive":
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > limit:
                closed = True
                reason = f"A message may be at most {limit} bytes."
                await send({"type": "websocket.close", "code": MESSAGE_TOO_BIG, "reason": reason})
                return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
        return message

    async def guarded_send(message: Message) -> None:
        if not closed:  # closed by us: what the app still sends would go nowhere
            await send(message)

    return capped_receive, guarded_send


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings, clock, workers=settings.run_workers) as runtime:
            app.state.runtime = runtime
            app.state.metrics = metrics
            metrics.bind(runtime)
            # Everything made so far (schema, modules, caches) lives as long as the process: keep
            # it out of the garbage collector's sweeps, which otherwise show up as latency spikes.
            gc.freeze()
            log.info(
                "started",
                extra={
                    "database": runtime.db.url.render_as_string(hide_password=True),
                    "broker": redact(settings.broker_url),
                },
            )
            try:
                yield
            finally:
                metrics.bind(None)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        # The database decides readiness. A broker outage does not: mutations go on and events
        # wait in the outbox, and taking every replica out of rotation at once would be worse.
        broker = "up" if runtime_of(request).broadcast.healthy else "down"
        try:
            async with runtime_of(request).db.read() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as error:
            log.warning("not ready", extra={"error": str(error)})
            return JSONResponse(
                {"status": "unavailable", "database": "down", "broker": broker}, status_code=503
            )
        status = "ok" if broker == "up" else "degraded"
        return JSONResponse({"status": status, "database": "up", "broker": broker})

    async def pickup_qr(request: Request) -> Response:
        """The pickup QR code as PNG, for the reservation's customer and its store."""
        deps = runtime_of(request).deps
        actor, problem = actor_from_header(
            settings, request.headers.get("authorization"), deps.clock.now()
        )
        if actor is None:
            return JSONResponse(
                {"error": problem or "Sign in: send 'Authorization: Bearer <token>'."},
                status_code=401,
            )
        reservation_id = request.path_params["reservation_id"]
        reservation = (await deps.read.reservations_by_ids([reservation_id])).get(reservation_id)
        if reservation is None or not actor.sees_pickup_code(reservation):
            return JSONResponse({"error": f"No reservation {reservation_id}."}, status_code=404)
        payload = qr_payload(reservation.id, reservation.code, deps.qr_key)
        return Response(
            qr_png(payload), media_type="image/png", headers={"Cache-Control": "private, no-store"}
        )

    metrics = Metrics(max_tokens=settings.max_tokens, max_query_chars=settings.max_query_chars)
    graphql = GraphQLApp(settings, metrics=metrics)
    # Outermost: every line logged while a request is served carries its id. Then the metrics,
    # so that every answer is counted, a refused preflight or a rate limit's 429 too.
    middleware = [Middleware(RequestIdMiddleware), Middleware(MetricsMiddleware, metrics=metrics)]
    if settings.allowed_origins:
        # Browser front-ends on another origin: HTTP needs CORS (WebSockets check the origin apart).
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
                expose_headers=[REQUEST_ID_HEADER],
                max_age=600,
            )
        )
    return Starlette(
        middleware=middleware,
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint(settings, metrics), methods=["GET"]),
            Route("/reservations/{reservation_id}/qr.png", pickup_qr, methods=["GET"]),
            Route("/wms/stock-levels", stock_levels_endpoint(settings), methods=["POST"]),
            Route("/intake/{channel}/{account}", intake_endpoint(settings), methods=["POST"]),
            Route("/graphql", LimitedHttp(graphql), methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *console_routes(),  # /shop, /pos, /ops: clients of the public API only
        ],
        lifespan=lifespan,
    )
