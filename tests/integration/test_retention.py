"""Retention: bookkeeping older than the period goes, in batches; what is still needed stays
(unpublished events, dead or pending deliveries, open discrepancies, batches still waiting), and
business records (reservations, the ledger) are never touched."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.db.engine import Database
from adapters.db.tables import (
    idempotency_keys,
    intake_counts,
    intake_messages,
    outbox,
    reservations,
    stock_discrepancies,
    stock_movements,
    webhook_deliveries,
    wms_inbox,
    wms_outbound,
)
from domain.intake import IntakeCount, IntakeMessage, IntakeStatus, SalesChannel
from domain.reconciliation import Discrepancy, DiscrepancyKind, DiscrepancyStatus
from domain.wms import parse_batch
from services import relay, retention
from services import reservations as reservation_service
from services.unit_of_work import UnitOfWorkFactory
from services.wms import inbox
from tests.clock import FakeClock
from tests.helpers import given_stock, given_stores, reserve_cmd, store_at

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Sink:
    async def publish(self, channel: str, message: str) -> None:
        return None


async def count(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_old_bookkeeping_goes_and_what_is_still_needed_stays(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    await given_stores(uow, clock, store_at("S1", 0))
    await given_stock(uow, clock, {("S1", "A"): 50})
    # Old: a reservation with an idempotency key, its events published, a WMS batch applied
    cmd = reserve_cmd("old", {"A": 1}, store_id="S1", idempotency_key="k-old")
    await reservation_service.reserve(cmd, uow=uow, clock=clock)
    payload = {"batchId": "old", "levels": [{"storeId": "S1", "sku": "B", "onHand": 3}]}
    await inbox.receive_batch(parse_batch(payload), payload, uow=uow, clock=clock)
    await relay.publish_pending(uow=uow, publisher=Sink(), clock=clock, batch_size=100)
    async with uow() as tx:
        await tx.wms_inbox.add("waiting", payload, 1, clock.now())  # stored, never applied
        await tx.reconciliation.add_discrepancies(
            [
                Discrepancy(
                    "d-open",
                    "r",
                    "S1",
                    "A",
                    DiscrepancyKind.MISSING_IN_WMS,
                    1,
                    None,
                    DiscrepancyStatus.OPEN,
                    "",
                    clock.now(),
                ),
                Discrepancy(
                    "d-done",
                    "r",
                    "S1",
                    "A",
                    DiscrepancyKind.ON_HAND,
                    1,
                    2,
                    DiscrepancyStatus.REPAIRED,
                    "",
                    clock.now(),
                ),
            ]
        )
        await tx.commit()
    published_old = await count(clean_db, outbox)

    # 31 days later: a new reservation whose events are not published yet
    clock.advance(31 * 86400)
    await reservation_service.reserve(
        reserve_cmd("new", {"A": 1}, store_id="S1"), uow=uow, clock=clock
    )
    ledger = await count(clean_db, stock_movements)

    deleted = await retention.sweep(uow=uow, clock=clock, days=30)

    assert deleted == {
        "outbox": published_old,
        "wms_inbox": 1,
        "idempotency_keys": 1,
        "stock_discrepancies": 1,
    }
    assert await count(clean_db, outbox) == 1  # the new, unpublished event
    async with clean_db.read() as conn:
        batches = (await conn.execute(sa.select(wms_inbox.c.batch_id))).scalars().all()
        discrepancies = (await conn.execute(sa.select(stock_discrepancies.c.id))).scalars().all()
    assert batches == ["waiting"]
    assert discrepancies == ["d-open"]
    assert await count(clean_db, idempotency_keys) == 0
    assert await count(clean_db, reservations) == 2  # business records stay
    assert await count(clean_db, stock_movements) == ledger
    assert await retention.sweep(uow=uow, clock=clock, days=30) == {}
    assert await retention.sweep(uow=uow, clock=clock, days=0) == {}  # 0: keep everything


async def test_delivered_movements_and_webhooks_go_dead_ones_stay(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    old = clock.now() - timedelta(days=40)
    statuses = ["DELIVERED"] * (retention.BATCH + 100) + ["DEAD"] * 3 + ["PENDING"] * 3
    common = {"store_id": "S1", "attempts": 1, "next_attempt_at": old, "created_at": old}
    async with clean_db.write() as conn:
        await conn.execute(
            wms_outbound.insert(),
            [
                {
                    **common,
                    "id": f"m{i}",
                    "sku": "A",
                    "sequence": i + 1,
                    "kind": "LOCK",
                    "quantity": 1,
                    "occurred_at": old,
                    "status": status,
                    "delivered_at": old if status == "DELIVERED" else None,
                }
                for i, status in enumerate(statuses)
            ],
        )
        await conn.execute(
            webhook_deliveries.insert(),
            [
                {
                    **common,
                    "id": f"w{i}",
                    "event_id": f"e{i}",
                    "event_type": "READY_FOR_PICKUP",
                    "url": "https://pos.example.com/hooks",
                    "payload": {},
                    "status": status,
                    "delivered_at": old if status == "DELIVERED" else None,
                }
                for i, status in enumerate(statuses)
            ],
        )
        await conn.commit()

    deleted = await retention.sweep(uow=uow, clock=clock, days=30)

    delivered = retention.BATCH + 100  # more than one batch
    assert deleted == {"wms_outbound": delivered, "webhook_deliveries": delivered}
    async with clean_db.read() as conn:
        movements = (await conn.execute(sa.select(wms_outbound.c.status))).scalars().all()
        hooks = (await conn.execute(sa.select(webhook_deliveries.c.status))).scalars().all()
    assert sorted(movements) == sorted(hooks) == ["DEAD"] * 3 + ["PENDING"] * 3


async def test_finished_intake_messages_go_dead_letters_and_what_they_feed_stay(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    def message(mid: str, status: IntakeStatus, parent: str | None = None) -> IntakeMessage:
        return IntakeMessage(
            id=mid,
            channel=SalesChannel.GENERIC,
            account="acme",
            status=status,
            received_at=clock.now(),
            attempts=0,
            next_attempt_at=clock.now(),
            dedupe_key=f"event:{mid}",
            parent_id=parent,
            finished_at=clock.now() if status.final else None,
        )

    async with uow() as tx:
        for mid, status, parent in [
            ("done", IntakeStatus.ACCEPTED, None),
            ("refused", IntakeStatus.REJECTED, None),
            ("dead", IntakeStatus.DEAD, None),
            ("waiting", IntakeStatus.RETRYING, None),
            ("split", IntakeStatus.ACCEPTED, None),
            ("split-child", IntakeStatus.DEAD, "split"),
        ]:
            await tx.intake.add(message(mid, status, parent), b"{}")
        await tx.commit()
    clock.advance(31 * 86400)

    deleted = await retention.sweep(uow=uow, clock=clock, days=30)

    assert deleted == {"intake_messages": 2}
    async with clean_db.read() as conn:
        kept = (await conn.execute(sa.select(intake_messages.c.id))).scalars().all()
    assert sorted(kept) == ["dead", "split", "split-child", "waiting"]


async def test_the_intakes_counts_go_once_older_than_the_period(
    uow: UnitOfWorkFactory, clock: FakeClock, clean_db: Database
) -> None:
    async with uow() as tx:
        for what in (IntakeCount.DUPLICATE, IntakeCount.SIGNATURE_FAILURE):
            await tx.intake.count(SalesChannel.GENERIC, "acme", what, clock.now(), 3)
        await tx.commit()
    clock.advance(29 * 86400)
    async with uow() as tx:
        await tx.intake.count(SalesChannel.GENERIC, "acme", IntakeCount.DUPLICATE, clock.now())
        await tx.commit()
    clock.advance(2 * 86400)

    assert await retention.sweep(uow=uow, clock=clock, days=30) == {"intake_counts": 2}
    async with clean_db.read() as conn:
        kept = (await conn.execute(sa.select(intake_counts.c.what, intake_counts.c.count))).all()
    assert [tuple(row) for row in kept] == [("duplicate", 1)]
