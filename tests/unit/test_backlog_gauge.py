"""The edge's backlog gauge: each account's backlog counted at most once a refresh, and by one
delivery at a time: under a flood, the account's other deliveries go on the last count (or wait
for the first one) instead of running the same count hundreds of times at once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import TracebackType
from typing import Any, cast

import pytest

from domain.intake import ChannelAccount, SalesChannel
from services.intake.edge import BacklogGauge
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock
from tests.conftest import START

pytestmark = pytest.mark.asyncio

ACCOUNT = ChannelAccount(channel=SalesChannel.SHOPIFY, account="alpha", max_backlog=100)


class Counts:
    """A stand-in unit of work whose backlog count takes until `release` is set."""

    def __init__(self, waiting: int, finished: int) -> None:
        self.waiting, self.finished = waiting, finished
        self.calls = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None
        self.intake = self

    async def backlog(
        self, channel: SalesChannel, account: str, since: datetime, horizon: datetime
    ) -> tuple[int, int]:
        self.calls += 1
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return self.waiting, self.finished

    async def __aenter__(self) -> Counts:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def factory(self) -> UnitOfWorkFactory:
        return cast(UnitOfWorkFactory, lambda: self)


async def many(gauge: BacklogGauge, counts: Counts, n: int) -> list[Any]:
    clock = FakeClock(START)
    calls = [
        asyncio.create_task(gauge.retry_after(ACCOUNT, uow=counts.factory(), clock=clock))
        for _ in range(n)
    ]
    await asyncio.sleep(0.01)
    counts.release.set()
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_a_flood_of_deliveries_counts_the_backlog_once() -> None:
    gauge = BacklogGauge(refresh_seconds=0.0)  # every delivery would count again
    counts = Counts(waiting=150, finished=100)  # full; 10 drained a second
    answers = await many(gauge, counts, 50)
    assert counts.calls == 1
    assert answers == [answers[0]] * 50
    assert isinstance(answers[0], int)
    assert answers[0] >= 1


async def test_while_a_count_runs_the_others_go_on_the_last_one() -> None:
    gauge = BacklogGauge(refresh_seconds=0.0)
    counts = Counts(waiting=10, finished=0)
    counts.release.set()
    assert await gauge.retry_after(ACCOUNT, uow=counts.factory(), clock=FakeClock(START)) is None
    counts.release.clear()
    counts.waiting = 500
    answers = await many(gauge, counts, 20)
    assert counts.calls == 2  # one more count for the twenty, not twenty
    assert answers.count(None) == 19  # they went on the last count, which had room
    assert sum(isinstance(a, int) for a in answers) == 1  # the one that counted sees it full


async def test_a_failed_count_fails_those_waiting_for_it_and_the_next_counts_again() -> None:
    gauge = BacklogGauge()
    counts = Counts(waiting=0, finished=0)
    counts.fail = RuntimeError("database gone")
    answers = await many(gauge, counts, 5)
    assert counts.calls == 1
    assert all(isinstance(a, RuntimeError) for a in answers)
    counts.fail = None
    assert await gauge.retry_after(ACCOUNT, uow=counts.factory(), clock=FakeClock(START)) is None
    assert counts.calls == 2
