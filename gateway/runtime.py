"""What a process runs on, made and closed in one place: the database, the broker, the WMS
client, the unit-of-work factory and, when asked, the background workers. The gateway's lifespan
and `ropos worker` both open it with `running`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from adapters.broker import Broker, make_broadcast
from adapters.channels.api import ChannelClients
from adapters.db.engine import Database
from adapters.db.uow import SqlUnitOfWork
from adapters.db.views import Views
from adapters.rate_limits import make_rate_limiter
from domain.clock import Clock
from domain.intake import SalesChannel
from gateway import migrate
from gateway.deps import Deps
from gateway.rate_limits import EdgeLimits
from gateway.settings import Settings
from gateway.workers import IntakeWorker, OutboxRelay, WmsFeed, build_workers, wms_client
from services.intake.edge import AccountCache


class SchemaNotCurrent(RuntimeError):
    """The database is not at the migration this code needs."""


@dataclass(frozen=True)
class Runtime:
    db: Database
    broadcast: Broker
    deps: Deps
    # The WMS feed worker of this process, when it runs one (its breaker, for tests and ops).
    wms_feed: WmsFeed | None = None
    # The intake worker of this process (deps.wake_intake wakes it).
    intake: IntakeWorker | None = None
    # The channel API clients its intake worker fetches thin webhooks' orders with.
    channels: ChannelClients | None = None
    # The rate limits of the edges (GraphQL, the webhooks), counted in memory or Redis.
    rate_limits: EdgeLimits | None = None


def database(settings: Settings) -> Database:
    return Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        policy_cache_seconds=settings.policy_cache_seconds,
        store_cache_seconds=settings.store_cache_seconds,
    )


async def ensure_schema_current(db: Database) -> None:
    current, head = await migrate.current_revision(db), migrate.head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"The database is at migration {current or 'none'}, the code needs {head}: "
            "run `ropos migrate` first."
        )


@asynccontextmanager
async def running(settings: Settings, clock: Clock, *, workers: bool) -> AsyncIterator[Runtime]:
    """Open everything, start the workers (if `workers`), and on leaving close it all in the
    reverse order: workers first, so none is left using a closed connection."""
    async with AsyncExitStack() as stack:
        db = database(settings)
        stack.push_async_callback(db.dispose)
        await ensure_schema_current(db)
        broadcast = make_broadcast(settings.broker_url, max_pending=settings.subscription_buffer)
        await broadcast.connect()
        stack.push_async_callback(_quietly_disconnect, broadcast)
        client = wms_client(settings)
        if client is not None:
            stack.push_async_callback(client.close)
        channels = ChannelClients(
            timeout=settings.intake_fetch_timeout_seconds,
            per_second=settings.intake_fetch_per_second,
            burst=settings.intake_fetch_burst,
        )
        stack.push_async_callback(channels.aclose)
        # Counted where the broker is: in this process on memory://, in the same Redis (on a
        # connection pool of its own) on redis://, so every replica shares each caller's budget.
        rate_limits = EdgeLimits(settings, make_rate_limiter(settings.broker_url, clock), clock)
        stack.push_async_callback(rate_limits.close)
        relay: OutboxRelay | None = None
        intake: IntakeWorker | None = None

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(db, notify=relay.wake if relay is not None else None)

        def single() -> SqlUnitOfWork:
            return SqlUnitOfWork(db, single=True)

        def wake_intake(account: tuple[SalesChannel, str] | None) -> None:
            if intake is not None:
                intake.wake(account)

        deps = Deps(
            uow=uow,
            single=single,
            read=Views(db),
            clock=clock,
            qr_key=settings.qr_key,
            broadcast=broadcast,
            wms=client,
            resource_radius_km=settings.resource_radius_km,
            intake_accounts=AccountCache(settings.intake_account_cache_seconds),
            wake=wake_intake,
            channel_apis=channels.apis,
        )
        deps.intake_counts.start(uow)
        stack.push_async_callback(deps.intake_counts.stop)
        deps.reserve_attempts.start(uow)
        stack.push_async_callback(deps.reserve_attempts.stop)
        if not workers:
            yield Runtime(db, broadcast, deps, channels=channels, rate_limits=rate_limits)
            return
        background = build_workers(
            settings,
            uow,
            broadcast,
            clock,
            client,
            channels,
            deps.reserve_attempts,
            deps.intake_accounts,
        )
        relay, intake = background.relay, background.intake
        for close in background.closers:
            stack.push_async_callback(close)
        for worker in background.workers:
            worker.start()
            stack.push_async_callback(worker.stop)
        yield Runtime(
            db,
            broadcast,
            deps,
            background.wms_feed,
            background.intake,
            channels,
            rate_limits=rate_limits,
        )


def runtime_of(request: HTTPConnection) -> Runtime:
    """What the app's lifespan opened (requests and WebSockets alike)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _quietly_disconnect(broadcast: Broker) -> None:
    # At shutdown a broker that is already gone is no reason to fail the rest of the closing.
    with contextlib.suppress(Exception):
        await broadcast.disconnect()
