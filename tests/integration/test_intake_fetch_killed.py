"""A worker that dies while it is fetching a thin webhook's order back (nothing of the message is
committed then) loses nothing and applies nothing twice: the message stays leased, comes back when
the lease runs out, and the next worker fetches and reserves it once. Both backends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.channels import ADAPTERS
from adapters.db.engine import Database
from adapters.db.invariants import violations
from adapters.db.tables import reservations
from domain.intake import ChannelAccount, FetchBack, IntakeStatus, SalesChannel
from services.intake import accounts, edge, ops
from services.intake.accounts import AccountChange
from services.intake.worker import IntakeConfig, process_due
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock
from tests.helpers import given_stock, given_stores, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")

LEASE = 30.0
WEBHOOK = {
    "merchant_id": "M1",
    "type": "order.created",
    "event_id": "evt-1",
    "created_at": "2026-03-02T08:59:00Z",
    "data": {
        "type": "order_created",
        "id": "SQ-1",
        "object": {"order_created": {"order_id": "SQ-1", "state": "OPEN", "version": 1}},
    },
}
ORDER = {
    "id": "SQ-1",
    "location_id": "LOC-1",
    "customer_id": "C-1",
    "created_at": "2026-03-02T08:58:00Z",
    "updated_at": "2026-03-02T08:58:00Z",
    "state": "OPEN",
    "version": 1,
    "line_items": [
        {
            "uid": "li-1",
            "catalog_object_id": "CAT-1",
            "quantity": "2",
            "base_price_money": {"amount": 500, "currency": "EUR"},
        }
    ],
    "fulfillments": [{"uid": "f-1", "type": "PICKUP", "state": "PROPOSED"}],
}


class StuckApi:
    """A channel API that never answers: the worker is killed while it waits."""

    channel = SalesChannel.SQUARE

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        self.asked.set()
        await asyncio.Event().wait()

    async def changed(self, account: ChannelAccount, since: Any, until: Any) -> list[Any]:
        return []


class SquareApi:
    channel = SalesChannel.SQUARE

    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def fetch(self, account: ChannelAccount, wanted: FetchBack) -> Any:
        self.fetched.append(wanted.external_id)
        return {"order": ORDER}

    async def changed(self, account: ChannelAccount, since: Any, until: Any) -> list[Any]:
        return []


async def test_a_worker_killed_mid_fetch_loses_nothing_and_applies_nothing_twice(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S001", 0))
    await given_stock(uow, clock, {("S001", "SKU-1"): 10})
    account = await accounts.upsert_account(
        AccountChange(
            channel=SalesChannel.SQUARE,
            account="acme",
            secret="square-signing-key",
            locations={"LOC-1": "S001"},
            products={"CAT-1": "SKU-1"},
            api_base_url="https://connect.squareup.com",
            api_token="square-token",
            notification_url="https://ropos.example.com/intake/square/acme",
        ),
        uow=uow,
        clock=clock,
    )
    receipt = await edge.receive(
        account, {}, json.dumps(WEBHOOK).encode(), None, uow=uow, clock=clock
    )
    assert receipt.message_id is not None

    stuck = StuckApi()
    config = IntakeConfig(adapters=ADAPTERS, apis={SalesChannel.SQUARE: stuck}, lease_seconds=LEASE)
    worker = asyncio.create_task(process_due(uow=uow, clock=clock, config=config))
    await asyncio.wait_for(stuck.asked.wait(), 10)
    worker.cancel()  # the process dies mid-fetch: nothing after the claim was committed
    with pytest.raises(asyncio.CancelledError):
        await worker

    leased = await ops.message(receipt.message_id, uow=uow)
    assert leased is not None
    assert (leased.status, leased.attempts) == (IntakeStatus.RECEIVED, 1)
    square = SquareApi()
    config = IntakeConfig(
        adapters=ADAPTERS, apis={SalesChannel.SQUARE: square}, lease_seconds=LEASE
    )
    # While its lease holds, no other worker takes it
    assert (await process_due(uow=uow, clock=clock, config=config)).taken == 0

    clock.advance(LEASE + 1)
    assert (await process_due(uow=uow, clock=clock, config=config)).taken == 1
    assert (await process_due(uow=uow, clock=clock, config=config)).taken == 0

    done = await ops.message(receipt.message_id, uow=uow)
    assert done is not None
    assert (done.status, done.attempts) == (IntakeStatus.ACCEPTED, 2)
    assert square.fetched == ["SQ-1"]
    async with clean_db.engine.connect() as conn:
        held = (
            await conn.execute(sa.select(sa.func.count()).select_from(reservations))
        ).scalar_one()
    assert held == 1
    assert await violations(clean_db) == {}
