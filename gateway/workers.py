"""Background workers that run inside every gateway process (or alone, as `ropos worker`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from domain.clock import Clock
from services import relay, reservations, webhooks
from services.relay import Publisher
from services.unit_of_work import UnitOfWorkFactory
from services.webhooks import WebhookSender

log = logging.getLogger(__name__)


MAX_BACKOFF_SECONDS = 30.0
COALESCE_SECONDS = 0.005
# Short: once the broker is back, what waited in the outbox should go out within seconds.
RELAY_MAX_BACKOFF_SECONDS = 5.0


class Worker:
    """A task of this process that runs until stopped; its name shows in logs and task dumps."""

    name: str

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

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
) -> Periodic:
    """Sends what is due to the stores' POS webhooks, retrying with backoff."""

    async def deliver() -> None:
        while await webhooks.deliver_due(
            uow=uow, sender=sender, clock=clock, max_attempts=max_attempts
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
