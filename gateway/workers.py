"""Background workers that run inside every gateway process (or alone, as `ropos worker`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.channels.api import ChannelClients
from domain.clock import Clock
from domain.intake import SalesChannel
from domain.retry import RetryPolicy
from domain.wms import CircuitBreaker, WmsPort
from services import leases, relay, reservations, retention, webhooks
from services.intake import sweep as intake_sweep
from services.intake import worker as intake_worker
from services.intake.edge import AccountCache
from services.intake.worker import Apis, IntakeConfig
from services.kpis import AttemptCounts
from services.relay import Publisher
from services.unit_of_work import UnitOfWorkFactory
from services.webhooks import WebhookSender
from services.wms import feed, inbox, reconciliation

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger(__name__)


MAX_BACKOFF_SECONDS = 30.0
# The relay's pause after a wake: at a few hundred commits a second, one pass per 15 ms (its
# statements through SQLAlchemy, its publish) rather than one per commit; still far inside the
# second a POS may take to show a pickup.
COALESCE_SECONDS = 0.015
# The intake worker's pause after a wake: deliveries arriving together are claimed together.
INTAKE_COALESCE_SECONDS = 0.02
# Short: once the broker is back, what waited in the outbox should go out within seconds.
RELAY_MAX_BACKOFF_SECONDS = 5.0

# The worker whose task (or a task it started) is running; None in a request. Tasks copy their
# context, so what a worker gathers stays marked: logs and tests tell its queries from a request's.
current_worker: ContextVar[str | None] = ContextVar("current_worker", default=None)


class Worker:
    """A task of this process that runs until stopped; its name shows in logs and task dumps."""

    name: str

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        current_worker.set(self.name)
        await self._loop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        raise NotImplementedError


class Periodic(Worker):
    """Runs `job` every `interval` seconds until stopped. A failure is logged, never fatal; while
    failures repeat (the database is down, say) the pause doubles, up to MAX_BACKOFF_SECONDS."""

    def __init__(self, name: str, job: Callable[[], Awaitable[object]], interval: float) -> None:
        super().__init__()
        self.name = name
        self.job = job
        self.interval = interval

    async def _loop(self) -> None:
        pause = self.interval
        while True:
            try:
                await self.job()
                pause = self.interval
            except Exception:
                log.exception(
                    "worker failed; retrying", extra={"worker": self.name, "retry_in": pause}
                )
                pause = min(pause * 2, MAX_BACKOFF_SECONDS)
            await asyncio.sleep(pause)


def expiry_sweeper(
    uow: UnitOfWorkFactory, clock: Clock, *, interval: float, batch_size: int
) -> Periodic:
    """Moves due reservations to EXPIRED and releases their stock, and sends the EXPIRING_SOON
    warnings at the policy's lead time, with nobody acting."""

    async def sweep() -> None:
        await reservations.expire_due(uow=uow, clock=clock, batch_size=batch_size)
        await reservations.warn_expiring(uow=uow, clock=clock, batch_size=batch_size)

    return Periodic("expiry-sweeper", sweep, interval)


def webhook_deliverer(
    uow: UnitOfWorkFactory,
    sender: WebhookSender,
    clock: Clock,
    *,
    interval: float,
    max_attempts: int,
    timeout: float,
) -> Periodic:
    """Sends what is due to the stores' POS webhooks, retrying with backoff. What a process that
    died mid-batch had claimed is sent again once its lease (from the request `timeout`) ends."""
    lease = webhooks.lease_seconds(timeout)

    async def deliver() -> None:
        while await webhooks.deliver_due(
            uow=uow, sender=sender, clock=clock, max_attempts=max_attempts, lease=lease
        ):
            pass

    return Periodic("webhook-deliveries", deliver, interval)


class OutboxRelay(Worker):
    """Publishes the outbox: woken right after each commit that wrote events, and every
    `interval` seconds besides, for what a crash or a broker outage left behind. While the broker
    is down, attempts back off up to RELAY_MAX_BACKOFF_SECONDS; events wait in the outbox."""

    name = "outbox-relay"

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        publisher: Publisher,
        clock: Clock,
        *,
        interval: float,
        batch_size: int,
    ) -> None:
        super().__init__()
        self._uow = uow
        self._publisher = publisher
        self._clock = clock
        self._interval = interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that wrote outbox events."""
        self._wake.set()

    async def _loop(self) -> None:
        pause = self._interval
        while True:
            self._wake.clear()
            try:
                published = await relay.publish_pending(
                    uow=self._uow,
                    publisher=self._publisher,
                    clock=self._clock,
                    batch_size=self._batch_size,
                )
                pause = self._interval
                if published == self._batch_size:
                    continue  # more waiting
            except Exception as error:
                log.warning(
                    "outbox relay could not publish; events wait in the outbox",
                    extra={"error": str(error), "retry_in": pause},
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RELAY_MAX_BACKOFF_SECONDS)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
                # Let the commits of the same moment gather: one relay transaction for many
                # events costs far less than one for each, and a few ms are not noticed.
                await asyncio.sleep(COALESCE_SECONDS)


class IntakeWorker(Worker):
    """Takes intake messages and keeps up to `concurrency` orders in flight, each started as a
    slot frees (services.intake.worker.Dispatch decides which, and when to claim more). Woken
    when the edge stores a message (named by its account), when an order finishes, and every
    `interval` seconds for retries that came due and what another process left (a crash, a
    lease run out). Woken after a quiet spell, it lets the deliveries of that moment gather
    first (a claim costs a transaction)."""

    name = "intake"

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, config: IntakeConfig, *, interval: float
    ) -> None:
        super().__init__()
        self._uow = uow
        self._clock = clock
        self._config = config
        self._interval = interval
        self._wake = asyncio.Event()
        self._dispatch = intake_worker.Dispatch(config.concurrency, config.batch_size)
        self._orders: set[asyncio.Task[None]] = set()
        self._stopping = False

    def wake(self, account: tuple[SalesChannel, str] | None = None) -> None:
        """A message was stored (for `account`, or None: any)."""
        self._dispatch.arrived(account, time.monotonic())
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        super().start()

    async def stop(self) -> None:
        self._stopping = True  # an order cancelled below must not start another
        await super().stop()
        for task in list(self._orders):
            task.cancel()
        await asyncio.gather(*self._orders, return_exceptions=True)

    async def _loop(self) -> None:
        pause = self._interval
        dispatch = self._dispatch
        while True:
            self._wake.clear()
            self._start(dispatch.next(time.monotonic()))
            ticket = dispatch.claim(time.monotonic())
            if ticket is not None:
                try:
                    claimed = await intake_worker.claim(
                        uow=self._uow,
                        clock=self._clock,
                        config=self._config,
                        batch_size=ticket.size,
                        exclude=ticket.exclude,
                    )
                except Exception:
                    log.exception("intake worker failed; retrying", extra={"retry_in": pause})
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, MAX_BACKOFF_SECONDS)
                    dispatch.due()
                    continue
                pause = self._interval
                dispatch.claimed(claimed, ticket, time.monotonic())
                self._start(dispatch.next(time.monotonic()))
                if claimed.sweep.taken:
                    continue  # more may be waiting
            idle = not self._orders
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            except TimeoutError:
                dispatch.due()
                continue
            if idle:  # after a quiet spell: let the deliveries of this moment gather
                await asyncio.sleep(INTAKE_COALESCE_SECONDS)

    def _start(self, orders: list[intake_worker.OrderReads]) -> None:
        if self._stopping:
            return  # the claimed messages' leases run out; another process takes them
        for reads in orders:
            task = asyncio.create_task(self._act(reads), name="intake-order")
            self._orders.add(task)

    async def _act(self, reads: intake_worker.OrderReads) -> None:
        try:
            await intake_worker.act_on(reads, uow=self._uow, clock=self._clock, config=self._config)
        except Exception:  # act_on records failures itself; this is a bug, not the database
            log.exception("intake order failed", extra={"message_id": reads[0].message.id})
        finally:
            self._orders.discard(asyncio.current_task())
            self._dispatch.done(reads, time.monotonic())
            # The freed slot is filled at once, not when the loop's claim under way returns.
            self._start(self._dispatch.next(time.monotonic()))
            self._wake.set()


class WmsFeed(Worker):
    """Sends the ledger's movements to the WMS, in order per (store, SKU). One process at a time
    holds the feed's lease and does it; the others stand by, ready to take over when the lease
    runs out. A circuit breaker stops calls while the WMS keeps failing; movements wait in the
    database meanwhile."""

    name = "wms-feed"

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        client: WmsPort,
        clock: Clock,
        *,
        holder: str,
        interval: float,
        batch_size: int,
        max_attempts: int,
        breaker: CircuitBreaker,
        timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self._timeout = timeout
        self._uow = uow
        self._client = client
        self._clock = clock
        self._holder = holder
        self._interval = interval
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self.breaker = breaker

    async def run_once(self) -> feed.FeedStats:
        """Queue what is new, then send until nothing is due (or the WMS stops taking it)."""
        total = feed.FeedStats()
        # Longer than a batch can take (the request timeout), renewed before every batch: the
        # lease never runs out under a feed that is still sending.
        lease = max(10.0, self._interval * 10, self._timeout * 2)
        if not await leases.take(self._uow, feed.LEASE, self._holder, self._clock, lease):
            return total
        while await feed.queue_movements(uow=self._uow, clock=self._clock):
            pass
        while True:
            if not await leases.take(self._uow, feed.LEASE, self._holder, self._clock, lease):
                return total
            stats = await feed.deliver_movements(
                uow=self._uow,
                clock=self._clock,
                wms=self._client,
                breaker=self.breaker,
                max_attempts=self._max_attempts,
                batch_size=self._batch_size,
            )
            total.delivered += stats.delivered
            total.failed += stats.failed
            total.dead += stats.dead
            total.skipped_open_circuit = stats.skipped_open_circuit
            if not stats.delivered and not stats.dead:
                return total

    async def _loop(self) -> None:
        pause = self._interval
        while True:
            try:
                await self.run_once()
                pause = self._interval
            except Exception:
                log.exception("wms feed failed; retrying", extra={"retry_in": pause})
                pause = min(pause * 2, MAX_BACKOFF_SECONDS)
            await asyncio.sleep(pause)


def intake_sweeper(
    uow: UnitOfWorkFactory,
    clock: Clock,
    apis: Apis,
    *,
    holder: str,
    interval: float,
) -> Periodic:
    """The gap sweep: asks each account's API for the orders changed since its last sweep and
    feeds those ROPOS has not seen. One process at a time does it (a lease)."""
    lease = max(60.0, interval * 2)

    async def sweep() -> None:
        if await leases.take(uow, intake_sweep.LEASE, holder, clock, lease):
            await intake_sweep.sweep_due(apis=apis, uow=uow, clock=clock)

    return Periodic("intake-sweep", sweep, interval)


def wms_inbox_retrier(
    uow: UnitOfWorkFactory, clock: Clock, *, interval: float, radius_km: float
) -> Periodic:
    """Applies WMS batches that were stored but not applied (a crash between the two)."""

    async def retry() -> None:
        await inbox.retry_received(uow=uow, clock=clock, radius_km=radius_km)

    return Periodic("wms-inbox", retry, interval)


def retention_sweeper(
    uow: UnitOfWorkFactory, clock: Clock, *, days: float, interval: float
) -> Periodic:
    """Deletes bookkeeping older than `days` (services.retention), every `interval` seconds."""

    async def sweep() -> None:
        await retention.sweep(uow=uow, clock=clock, days=days)

    return Periodic("retention", sweep, interval)


def reconciler(
    uow: UnitOfWorkFactory,
    client: WmsPort,
    clock: Clock,
    *,
    holder: str,
    interval: float,
    radius_km: float,
) -> Periodic:
    """Compares stock with the WMS every `interval` seconds, in one process at a time."""

    async def run() -> None:
        await reconciliation.reconcile_if_due(
            uow=uow,
            clock=clock,
            wms=client,
            holder=holder,
            interval_seconds=interval,
            radius_km=radius_km,
        )

    return Periodic("reconciliation", run, interval)


def wms_client(settings: Settings) -> WmsPort | None:
    """The WMS over HTTP, when ROPOS_WMS_URL names one."""
    if not settings.wms_url:
        return None
    from adapters.wms.http import HttpWms

    token = settings.wms_token.get_secret_value() if settings.wms_token else None
    return HttpWms(settings.wms_url, token, settings.wms_timeout_seconds)


@dataclass
class Background:
    relay: OutboxRelay
    workers: list[Worker]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    wms_feed: WmsFeed | None = None
    intake: IntakeWorker | None = None


def intake_config(
    settings: Settings,
    apis: Apis | None = None,
    attempts: AttemptCounts | None = None,
    accounts: AccountCache | None = None,
) -> IntakeConfig:
    """The intake worker's configuration; `accounts` is the process's account cache (the
    edge's, which changes through this process clear), else one of its own."""
    from adapters.channels import ADAPTERS

    return IntakeConfig(
        adapters=ADAPTERS,
        apis=apis or {},
        retry=RetryPolicy(settings.intake_max_attempts),
        radius_km=settings.intake_radius_km,
        batch_size=settings.intake_batch_size,
        lease_seconds=settings.intake_lease_seconds,
        concurrency=settings.intake_concurrency,
        attempts=attempts,
        accounts=AccountCache(settings.intake_account_cache_seconds)
        if accounts is None
        else accounts,
    )


def build_workers(
    settings: Settings,
    uow: UnitOfWorkFactory,
    publisher: Publisher,
    clock: Clock,
    client: WmsPort | None,
    channels: ChannelClients,
    attempts: AttemptCounts | None = None,
    accounts: AccountCache | None = None,
) -> Background:
    """Every background worker a process runs, from the settings (the gateway's lifespan and
    `ropos worker` both use this); `channels` are the process's channel API clients."""
    from adapters.pos.webhooks import HttpWebhookSender

    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    relay = OutboxRelay(
        uow,
        publisher,
        clock,
        interval=settings.relay_interval_seconds,
        batch_size=settings.relay_batch_size,
    )
    sender = HttpWebhookSender(settings.webhook_timeout_seconds)
    background = Background(
        relay,
        [
            relay,
            expiry_sweeper(
                uow,
                clock,
                interval=settings.sweep_interval_seconds,
                batch_size=settings.sweep_batch_size,
            ),
            webhook_deliverer(
                uow,
                sender,
                clock,
                interval=settings.webhook_interval_seconds,
                max_attempts=settings.webhook_max_attempts,
                timeout=settings.webhook_timeout_seconds,
            ),
            wms_inbox_retrier(
                uow,
                clock,
                interval=max(1.0, settings.wms_interval_seconds),
                radius_km=settings.resource_radius_km,
            ),
        ],
        [sender.close],
    )
    background.intake = IntakeWorker(
        uow,
        clock,
        intake_config(settings, channels.apis, attempts, accounts),
        interval=settings.intake_interval_seconds,
    )
    background.workers.append(background.intake)
    if settings.intake_sweep_interval_seconds > 0:
        background.workers.append(
            intake_sweeper(
                uow,
                clock,
                channels.apis,
                holder=holder,
                interval=settings.intake_sweep_interval_seconds,
            )
        )
    if settings.retention_days > 0:
        background.workers.append(
            retention_sweeper(
                uow,
                clock,
                days=settings.retention_days,
                interval=settings.retention_interval_seconds,
            )
        )
    if client is not None:
        background.wms_feed = WmsFeed(
            uow,
            client,
            clock,
            holder=holder,
            interval=settings.wms_interval_seconds,
            batch_size=settings.wms_batch_size,
            max_attempts=settings.wms_max_attempts,
            breaker=CircuitBreaker(
                settings.wms_breaker_threshold, settings.wms_breaker_cooldown_seconds
            ),
            timeout=settings.wms_timeout_seconds,
        )
        background.workers.append(background.wms_feed)
        if settings.reconcile_interval_seconds > 0:
            background.workers.append(
                reconciler(
                    uow,
                    client,
                    clock,
                    holder=holder,
                    interval=settings.reconcile_interval_seconds,
                    radius_km=settings.resource_radius_km,
                )
            )
    return background
