"""The app factory: settings in, a Starlette app out, with its lifespan owning every connection."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
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

from adapters.broker import make_broadcast, redact
from adapters.db.engine import Database
from adapters.db.uow import SqlUnitOfWork
from adapters.db.views import Views
from domain.clock import Clock, SystemClock
from domain.pickup import qr_payload
from gateway import migrate
from gateway.auth import actor_from_header
from gateway.inbound import stock_levels_endpoint
from gateway.settings import Settings
from gateway.workers import OutboxRelay, Worker, build_workers, wms_client
from resolvers.context import Context, Deps
from resolvers.errors import client_error
from schema.qr import qr_png
from schema.root import build_schema

log = logging.getLogger(__name__)


class SchemaNotCurrent(RuntimeError):
    pass


class GraphQLApp(GraphQL[Context, None]):
    """The GraphQL endpoint: HTTP and WebSocket at /graphql."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(
            build_schema(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
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
        return UNSET

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        deps: Deps = request.app.state.deps
        actor, problem = actor_from_header(
            self.settings, request.headers.get("authorization"), deps.clock.now()
        )
        return Context(deps=deps, actor=actor, auth_problem=problem, request=request)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            policy_cache_seconds=settings.policy_cache_seconds,
            store_cache_seconds=settings.store_cache_seconds,
        )
        broadcast = make_broadcast(settings.broker_url, max_pending=settings.subscription_buffer)
        workers: list[Worker] = []
        closers: list[Callable[[], Awaitable[None]]] = []
        try:
            current, head = await migrate.current_revision(db), migrate.head_revision()
            if current != head:
                raise SchemaNotCurrent(
                    f"The database is at migration {current or 'none'}, the code needs {head}: "
                    "run `ropos migrate` first."
                )
            await broadcast.connect()
            read = Views(db)
            relay: OutboxRelay | None = None

            def uow() -> SqlUnitOfWork:
                return SqlUnitOfWork(db, notify=relay.wake if relay is not None else None)

            client = wms_client(settings)
            if client is not None:
                closers.append(client.close)
            if settings.run_workers:
                background = build_workers(settings, uow, broadcast, clock, client)
                relay = background.relay
                workers += background.workers
                closers += background.closers
                app.state.wms_feed = background.wms_feed
            app.state.db = db
            app.state.broadcast = broadcast
            app.state.deps = Deps(
                uow=uow,
                read=read,
                clock=clock,
                qr_key=settings.qr_key,
                broadcast=broadcast,
                wms=client,
                resource_radius_km=settings.resource_radius_km,
            )
            for worker in workers:
                worker.start()
            # Everything made so far (schema, modules, caches) lives as long as the process: keep
            # it out of the garbage collector's sweeps, which otherwise show up as latency spikes.
            gc.freeze()
            log.info(
                "started",
                extra={
                    "database": db.url.render_as_string(hide_password=True),
                    "broker": redact(settings.broker_url),
                },
            )
            yield
        finally:
            for worker in workers:
                await worker.stop()
            for close in closers:
                await close()
            with contextlib.suppress(Exception):
                await broadcast.disconnect()
            await db.dispose()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        # The database decides readiness. A broker outage does not: mutations go on and events
        # wait in the outbox, and taking every replica out of rotation at once would be worse.
        broker = "up" if request.app.state.broadcast.healthy else "down"
        try:
            async with request.app.state.db.read() as conn:
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
        deps: Deps = request.app.state.deps
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
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
