"""Background workers that run inside every gateway process (or alone, as `ropos worker`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from domain.clock import Clock
from services import reservations
from services.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


MAX_BACKOFF_SECONDS = 30.0


class Periodic:
    """Runs `job` every `interval` seconds until stopped. A failure is logged, never fatal; while
    failures repeat (the database is down, say) the pause doubles, up to MAX_BACKOFF_SECONDS."""

    def __init__(self, name: str, job: Callable[[], Awaitable[object]], interval: float) -> None:
        self.name = name
        self.job = job
        self.interval = interval
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
