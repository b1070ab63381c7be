"""The edge's counts of refused and repeated deliveries: summed in memory per account, kind and
minute, written in one unit of work, kept when the write fails, written when the process stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from domain.intake import ChannelAccount, IntakeCount, SalesChannel
from services.intake.edge import EdgeCounts

T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)
ACME = ChannelAccount(channel=SalesChannel.SHOPIFY, account="acme")
OTHER = ChannelAccount(channel=SalesChannel.SHOPIFY, account="other")


class Store:
    def __init__(self) -> None:
        self.written: list[tuple[Any, ...]] = []
        self.totals: list[tuple[Any, ...]] = []
        self.fail = False
        self.commits = 0


class Tx:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[tuple[Any, ...]] = []
        self.intake = self
        self.channel_accounts = self

    async def __aenter__(self) -> Tx:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def count(self, channel: Any, account: str, what: Any, at: Any, n: int = 1) -> None:
        if self.store.fail:
            raise ConnectionError("the database is gone")
        self.pending.append((account, what, at, n))

    async def count_refusal(self, channel: Any, account: str, what: Any, n: int = 1) -> None:
        self.store.totals.append((account, what, n))

    async def commit(self) -> None:
        self.store.written += self.pending
        self.store.commits += 1


def counts_on(store: Store) -> EdgeCounts:
    counts = EdgeCounts(interval_seconds=3600)
    counts._uow = lambda: Tx(store)  # type: ignore[assignment]
    return counts


async def test_a_flood_is_one_write_per_account_kind_and_minute() -> None:
    store = Store()
    counts = counts_on(store)
    for n in range(500):
        counts.add(ACME, IntakeCount.BACKLOG_FULL, T0 + timedelta(seconds=n % 40))
    counts.add(ACME, IntakeCount.BACKLOG_FULL, T0 + timedelta(minutes=1))
    counts.add(OTHER, IntakeCount.SIGNATURE_FAILURE, T0)

    await counts.flush()

    minute = T0.replace(second=0)
    assert sorted(store.written) == [
        ("acme", IntakeCount.BACKLOG_FULL, minute, 500),
        ("acme", IntakeCount.BACKLOG_FULL, minute + timedelta(minutes=1), 1),
        ("other", IntakeCount.SIGNATURE_FAILURE, minute, 1),
    ]
    assert store.commits == 1
    await counts.flush()  # nothing pending: nothing written
    assert store.commits == 1


async def test_what_could_not_be_written_is_written_next_time() -> None:
    store = Store()
    counts = counts_on(store)
    counts.add(ACME, IntakeCount.DUPLICATE, T0, 3)
    store.fail = True
    await counts.flush()
    assert store.written == []
    counts.add(ACME, IntakeCount.DUPLICATE, T0, 2)
    store.fail = False
    await counts.flush()
    assert store.written == [("acme", IntakeCount.DUPLICATE, T0.replace(second=0), 5)]


async def test_stopping_writes_what_is_pending() -> None:
    store = Store()
    counts = EdgeCounts(interval_seconds=3600)
    counts.start(lambda: Tx(store))  # type: ignore[arg-type,return-value]
    counts.add(ACME, IntakeCount.OVERSIZED, T0)
    await counts.stop()
    assert store.written == [("acme", IntakeCount.OVERSIZED, T0.replace(second=0), 1)]
    assert store.totals == [("acme", IntakeCount.OVERSIZED, 1)]
