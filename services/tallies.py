"""Counts kept in memory and written in sums: a hot path (every reserve, every refused delivery)
adds to a Counter, and a background task writes the sums at most every `interval_seconds`, one
upsert per key. Nothing per event touches the database, and a flood never queues on one row's
lock or holds the pool the real work needs.

What could not be written is kept for the next write (up to MAX_KEYS keys); what is pending when
the process stops is written then. A process killed outright loses at most one interval of
counts: these are figures for operators, not records (the reservations and messages they count
are written in their own transactions)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Hashable
from typing import Generic, TypeVar

from services.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Tally(Generic[K]):
    """Sums per key, written by `write` (a subclass's) in one transaction per interval."""

    MAX_KEYS = 10_000
    # Names the counts in the log line when a write fails.
    WHAT = "counts"

    def __init__(self, interval_seconds: float = 1.0) -> None:
        self.interval = interval_seconds
        self._pending: Counter[K] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._uow: UnitOfWorkFactory | None = None

    def add_key(self, key: K, n: int = 1) -> None:
        if key in self._pending or len(self._pending) < self.MAX_KEYS:
            self._pending[key] += n

    def clear(self) -> None:
        """Forget what is pending (the tests reset the database under a running gateway)."""
        self._pending.clear()

    def start(self, uow: UnitOfWorkFactory) -> None:
        """Write what is counted every interval from now on (in the running loop)."""
        self._uow = uow
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the writes and write what is still pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending now (a query of the figures does, to read its own process's
        latest counts)."""
        if not self._pending or self._uow is None:
            return
        taken, self._pending = self._pending, Counter()
        try:
            async with self._uow() as tx:
                await self.write(tx, sorted(taken.items(), key=lambda item: repr(item[0])))
                await tx.commit()
        except Exception as error:
            log.warning(f"{self.WHAT} not written yet", extra={"error": repr(error)[:300]})
            for key, n in taken.items():
                self.add_key(key, n)
            return
        self.written(taken)

    async def write(self, tx: UnitOfWork, items: list[tuple[K, int]]) -> None:
        raise NotImplementedError

    def written(self, taken: Counter[K]) -> None:
        """After a successful write (a subclass may log a summary)."""
