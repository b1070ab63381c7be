"""Workers acting on the intake at once (as several replicas do): the messages of one order never
race each other, whichever worker takes which. Each order here is created, then cancelled; the
two messages go to different workers. At the end no order holds anything and the invariants
hold."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from adapters.channels import ADAPTERS
from adapters.db.engine import Database
from adapters.db.invariants import violations
from adapters.db.tables import intake_messages, reservations
from domain.intake import (
    ChannelOrder,
    Customer,
    Money,
    OrderEvent,
    OrderLine,
    Pickup,
    SalesChannel,
    to_json,
)
from services.intake import accounts, edge
from services.intake.accounts import AccountChange
from services.intake.worker import IntakeConfig, process_due
from services.unit_of_work import UnitOfWorkFactory
from tests.clock import FakeClock
from tests.conftest import START
from tests.helpers import given_stock, given_stores, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDERS = 30


def order(n: int, event: OrderEvent) -> ChannelOrder:
    minute = 0 if event is OrderEvent.CREATE else 5
    return ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="acme",
        external_id=f"ORD-{n:03d}",
        event=event,
        placed_at=START - timedelta(hours=1),
        updated_at=START - timedelta(hours=1) + timedelta(minutes=minute),
        customer=Customer(id=f"C-{n}", guest=False),
        currency="EUR",
        total=Money(Decimal("10.00"), "EUR"),
        lines=(OrderLine(sku="SKU-1", quantity=1),),
        pickup=Pickup(requested=True, channel_location_id="LOC-1"),
    )


async def test_two_workers_on_creates_and_cancels_of_the_same_orders(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S001", 0))
    await given_stock(uow, clock, {("S001", "SKU-1"): 1000})
    account = await accounts.upsert_account(
        AccountChange(
            channel=SalesChannel.GENERIC,
            account="acme",
            secret="whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3",
            locations={"LOC-1": "S001"},
        ),
        uow=uow,
        clock=clock,
    )
    # Creates and cancels interleaved, so that each claim of 7 holds halves of several orders.
    for n in range(ORDERS):
        for event in (OrderEvent.CREATE, OrderEvent.CANCEL):
            body = json.dumps(to_json(order(n, event))).encode()
            headers = {"webhook-id": f"{n}-{event.value}"}
            await edge.receive(account, headers, body, None, uow=uow, clock=clock)
    config = IntakeConfig(adapters=ADAPTERS, batch_size=7, concurrency=4)

    async def worker() -> None:
        while (await process_due(uow=uow, clock=clock, config=config)).taken:
            pass

    await asyncio.gather(worker(), worker())

    async with clean_db.read() as conn:
        statuses: dict[str, int] = dict(
            (
                await conn.execute(
                    sa.select(intake_messages.c.status, sa.func.count()).group_by(
                        intake_messages.c.status
                    )
                )
            ).all()
        )
        active = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(reservations)
                .where(reservations.c.status.in_(["HELD", "READY_FOR_PICKUP"]))
            )
        ).scalar_one()
    # Each create was accepted and its cancel released it, or the cancel came first and the
    # create was then stale: either way nothing is held.
    assert sum(statuses.values()) == 2 * ORDERS
    assert set(statuses) <= {"ACCEPTED", "IGNORED"}
    assert active == 0
    assert await violations(clean_db) == {}
