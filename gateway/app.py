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
from gateway.inbound import stock_levels_endpoint
from gateway.intake import intake_endpoint
from gateway.runtime import running, runtime_of
from gateway.settings import Settings
from resolvers.errors import client_error
from resolvers.root import build_schema
from schema.context import Context
from schema.qr import qr_png

log = logging.getLogger(__name__)


class GraphQLApp(GraphQL[Context, None]):
    """The GraphQL endpoint: HTTP and WebSocket at /graphql."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(
            build_schema(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
                plain_completion=settings.plain_completion,
            ),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allowed_origins=settings.allowed_origins,
            **options,
        )
        self.settings = settings

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
        the connection anonymous (public subscriptions only)."""
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        if header is None and params.get("token"):
            header = f"Bearer {params['token']}"
        if header is not None:
            actor, problem = actor_from_header(self.settings, str(header), context.deps.clock.now())
            if actor is None:
                raise ConnectionRejectionError({"message": problem or "Invalid token."})
            context.actor, context.auth_problem = actor, None
        accepted: UnsetType = UNSET  # strawberry types its UNSET sentinel as Any
        return accepted

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        deps = runtime_of(request).deps
        actor, problem = actor_from_header(
            self.settings, request.headers.get("authorization"), deps.clock.now()
        )
        return Context(deps=deps, actor=actor, auth_problem=problem, request=request)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings, clock, workers=settings.run_workers) as runtime:
            app.state.runtime = runtime
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
            yield

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

    graphql = GraphQLApp(settings)
    middleware = []
    if settings.allowed_origins:
        # Browser front-ends on another origin: HTTP needs CORS (WebSockets check the origin apart).
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    return Starlette(
        middleware=middleware,
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/reservations/{reservation_id}/qr.png", pickup_qr, methods=["GET"]),
            Route("/wms/stock-levels", stock_levels_endpoint(settings), methods=["POST"]),
            Route("/intake/{channel}/{account}", intake_endpoint(settings), methods=["POST"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
