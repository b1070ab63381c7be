"""A gateway killed with SIGKILL in the middle of a load of reserves and intake deliveries, then
started again on the same database, loses nothing it acknowledged and leaves nothing half done:
every acknowledged reservation is there with its lines, no refused one is, an idempotency key
retried gives back the same group, every stored delivery is acted on once (those the intake had
claimed at the kill once their lease ends), the outbox drains and every event of a store's POS
webhook reaches it, those committed just before the kill and the requests it cut off included
(the POS may get one twice: it drops repeats by event id).

Both backends: a SQLite file shared by the test and the gateway process, or the run's PostgreSQL
database with the run's Redis as the broker."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.engine import Database
from adapters.db.invariants import violations
from adapters.db.tables import (
    channel_orders,
    intake_messages,
    outbox,
    reservation_lines,
    reservations,
    webhook_deliveries,
)
from domain.clock import SystemClock
from domain.intake import IntakeStatus, SalesChannel
from domain.intake_auth import sign_shopify
from domain.webhooks import WEBHOOK_EVENT_TYPES, WebhookTarget
from services import webhooks
from services.intake import accounts
from services.intake.accounts import AccountChange
from services.unit_of_work import UnitOfWorkFactory
from tests.api.given import RESERVE
from tests.api.test_subscriptions import CANCEL, MARK_READY
from tests.helpers import given_stock, given_stores, store_at
from tests.integration.processes import (
    Call,
    GatewayProcess,
    Load,
    Outcome,
    WebhookSink,
    webhook_sink,
)
from tests.integration.test_broker import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")

BROKER = os.environ.get("ROPOS_TEST_BROKER_URL", "memory://")
WEBHOOK_SECRET = "s001-pos-webhook-secret-crash"
SHOPIFY_SECRET = "shpss_crash0123456789abcdef0123"
RESERVES = 600  # at most: the load stops at the kill
INTAKE = 300
# The kill comes after this many acknowledged reserve calls and stored deliveries.
KILL_AFTER_RESERVES = 40
KILL_AFTER_DELIVERIES = 12
SCARCE = 12  # units of SKU-A: reserves of it run out before the kill
# The POS takes this long to answer a webhook: at the kill some are on their way (cut off).
POS_ANSWER_SECONDS = 0.3
# After the restart: the intake, the outbox and the webhooks catch up. What the killed process
# had claimed of the webhooks is due again at the end of its lease (12.5 s at FAST_WORKERS'
# 0.75 s timeout; 55 s, longer than this, at the default 5 s).
DRAIN_SECONDS = 30.0
KILL_WITHIN_SECONDS = 60.0  # for the kill's moment: intake messages claimed, a webhook on its way
CHECKS_AT_ONCE = 8  # reserves checked (and sent again) at once after the restart


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> Any:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        yield client


# --- the load -------------------------------------------------------------------------------------


def reserve_input(i: int) -> dict[str, Any]:
    """Even calls ask for the scarce SKU-A (they run out), odd ones for two plentiful SKUs."""
    if i % 2 == 0:
        lines = [{"sku": "SKU-A", "quantity": 1 + i % 3}]
    else:
        lines = [{"sku": "SKU-B", "quantity": 1}, {"sku": "SKU-C", "quantity": 2}]
    return {"storeId": "S001", "lines": lines, "idempotencyKey": f"checkout-{i}"}


def shopper(i: int) -> str:
    return f"shopper-{i:04d}"


async def post_graphql(
    http: httpx.AsyncClient,
    gateway: GatewayProcess,
    query: str,
    variables: dict[str, Any],
    token: str,
) -> httpx.Response:
    return await http.post(
        f"{gateway.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )


def reserve_jobs(
    http: httpx.AsyncClient, gateway: GatewayProcess, load: Load
) -> Iterator[Callable[[], Awaitable[object]]]:
    """Reserve, then (while the load runs) mark every fourth reservation ready and cancel every
    fourth other: events the store's POS webhook is sent."""

    def job(i: int) -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            token = gateway.token("customer", sub=shopper(i))
            call = await load.send(
                Call(f"reserve-{i}"),
                lambda: post_graphql(http, gateway, RESERVE, {"input": reserve_input(i)}, token),
            )
            if call.outcome is not Outcome.ACKNOWLEDGED or load.halted or i % 4 in (0, 2):
                return
            (held,) = call.body["data"]["reserve"]["reservations"]
            if i % 4 == 1:
                pos = gateway.token("pos", sub="till-S001", store="S001")
                follow = (MARK_READY, pos, f"ready-{i}")
            else:
                follow = (CANCEL, token, f"cancel-{i}")
            await load.send(
                Call(follow[2]),
                lambda: post_graphql(http, gateway, follow[0], {"id": held["id"]}, follow[1]),
            )

        return run

    return (job(i) for i in range(RESERVES))


def shopify_order(n: int, *, cancelled: bool = False) -> bytes:
    placed = datetime.now(UTC) - timedelta(minutes=10)
    updated = placed + timedelta(minutes=5 if cancelled else 0)
    order: dict[str, Any] = {
        "id": 7_000_000 + n,
        "admin_graphql_api_id": f"gid://shopify/Order/{7_000_000 + n}",
        "name": f"#{n}",
        "created_at": placed.isoformat(),
        "updated_at": updated.isoformat(),
        "currency": "EUR",
        "presentment_currency": "EUR",
        "total_price": "10.00",
        "email": f"buyer-{n}@example.com",
        "customer": None,
        "location_id": None,
        "line_items": [
            {"id": 1, "sku": "SKU-B", "quantity": 1, "price": "10.00", "title": "Sku B"}
        ],
        "shipping_lines": [],
    }
    if cancelled:
        order["cancelled_at"] = updated.isoformat()
        order["cancel_reason"] = "customer"
    return json.dumps(order).encode()


def intake_jobs(
    http: httpx.AsyncClient, gateway: GatewayProcess, load: Load
) -> Iterator[Callable[[], Awaitable[object]]]:
    """Shopify's order webhooks, signed: a new order each, and every fifth the cancellation of
    an order sent a little earlier."""

    def job(n: int) -> Callable[[], Awaitable[object]]:
        cancel = n % 5 == 4
        body = shopify_order(n - 3 if cancel else n, cancelled=cancel)
        headers = {
            "content-type": "application/json",
            "X-Shopify-Hmac-Sha256": sign_shopify(SHOPIFY_SECRET, body),
            "X-Shopify-Topic": "orders/cancelled" if cancel else "orders/create",
            "X-Shopify-Event-Id": f"evt-{n}",
        }

        async def run() -> None:
            await load.send(
                Call(f"delivery-{n}"),
                lambda: http.post(
                    f"{gateway.url}/intake/shopify/acme", content=body, headers=headers
                ),
                judge=lambda response: response.status_code == 202,
            )

        return run

    return (job(n) for n in range(INTAKE))


# --- what the database holds ----------------------------------------------------------------------


async def groups_of(db: Database, customer: str) -> dict[str, list[dict[str, Any]]]:
    """The customer's reservations by group: each with its store and lines."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    reservations.c.group_id,
                    reservations.c.id,
                    reservations.c.store_id,
                    reservations.c.status,
                    reservation_lines.c.sku,
                    reservation_lines.c.quantity,
                )
                .join(reservation_lines, reservation_lines.c.reservation_id == reservations.c.id)
                .where(reservations.c.customer_id == customer)
                .order_by(reservations.c.id, reservation_lines.c.sku)
            )
        ).all()
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        held = found.setdefault(row.group_id, {}).setdefault(
            row.id, {"id": row.id, "storeId": row.store_id, "status": row.status, "lines": []}
        )
        held["lines"].append({"sku": row.sku, "quantity": row.quantity})
    return {group: list(by_id.values()) for group, by_id in found.items()}


async def unpublished(db: Database) -> int:
    async with db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return int(count or 0)


async def webhook_events(db: Database) -> set[str]:
    """The ids of every event in the outbox that S001's POS webhook is sent."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(outbox.c.event_id).where(
                outbox.c.store_id == "S001", outbox.c.type.in_(sorted(WEBHOOK_EVENT_TYPES))
            )
        )
        return {str(r.event_id) for r in rows}


async def waiting_messages(db: Database) -> int:
    async with db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(intake_messages)
            .where(intake_messages.c.status.in_(("RECEIVED", "RETRYING")))
        )
    return int(count or 0)


async def message_statuses(db: Database, ids: list[str]) -> dict[str, str]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(intake_messages.c.id, intake_messages.c.status).where(
                intake_messages.c.id.in_(ids)
            )
        )
        return {str(r.id): str(r.status) for r in rows}


def lines_of(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (line for held in group for line in held["lines"]), key=lambda line: str(line["sku"])
    )


# --- the test -------------------------------------------------------------------------------------


async def test_a_gateway_killed_mid_load_loses_nothing_it_acknowledged_and_drains_after_restart(
    http: httpx.AsyncClient,
    database_url: str,
    clean_db: Database,
    uow: UnitOfWorkFactory,
    tmp_path: Path,
) -> None:
    clock = SystemClock()
    await given_stores(uow, clock, store_at("S001", 0))
    await given_stock(
        uow, clock, {("S001", "SKU-A"): SCARCE, ("S001", "SKU-B"): 5000, ("S001", "SKU-C"): 5000}
    )
    await accounts.upsert_account(
        AccountChange(
            channel=SalesChannel.SHOPIFY,
            account="acme",
            secret=SHOPIFY_SECRET,
            default_store_id="S001",
            assume_pickup=True,
        ),
        uow=uow,
        clock=clock,
    )
    gateway = GatewayProcess(database_url, BROKER, tmp_path / "gateway.log")
    try:
        async with webhook_sink(WEBHOOK_SECRET, answer_after=POS_ANSWER_SECONDS) as sink:
            target = WebhookTarget.build(sink.url, WEBHOOK_SECRET)
            await webhooks.set_store_webhook("S001", target, uow=uow, clock=clock)
            await gateway.start(http)
            await crash_and_recover(http, gateway, clean_db, sink)
    finally:
        await gateway.stop()


async def crash_and_recover(
    http: httpx.AsyncClient, gateway: GatewayProcess, db: Database, pos: WebhookSink
) -> None:
    reserving, delivering = Load(), Load()
    lanes = asyncio.gather(
        reserving.lane(reserve_jobs(http, gateway, reserving), concurrency=12),
        delivering.lane(intake_jobs(http, gateway, delivering), concurrency=4),
    )
    try:
        try:
            await wait_until(
                lambda: (
                    reserving.acknowledged >= KILL_AFTER_RESERVES
                    and delivering.acknowledged >= KILL_AFTER_DELIVERIES
                    and bool(reserving.of(Outcome.REFUSED))
                ),
                within=60,
                what="acknowledged and refused calls before the kill",
            )
            in_flight, claimed = await kill_while_claimed(db, gateway, pos, reserving, delivering)
        except AssertionError as error:
            loads = f"reserves {reserving.summary()}; deliveries {delivering.summary()}"
            raise AssertionError(f"{error}: {loads}\n{gateway.log()}") from None
    finally:
        reserving.halt()
        delivering.halt()
        await lanes
    await gateway.reap()
    assert in_flight > 0, "nothing was in flight at the kill"

    refused = reserving.of(Outcome.REFUSED)
    assert refused, "no reserve ran out of stock before the kill"
    assert {c for call in refused for c in call.codes} == {"OUT_OF_STOCK"}, [
        call.body for call in refused if call.codes != ["OUT_OF_STOCK"]
    ]
    assert not delivering.of(Outcome.REFUSED), [c.body for c in delivering.of(Outcome.REFUSED)]
    # What the webhook had not been sent at the kill: committed just before it, or on its way.
    expected_at_kill = await webhook_events(db)
    pending_at_kill = expected_at_kill - pos.event_ids
    stuck_at_kill = await unpublished(db)
    await gateway.start(http)  # the same database, the same port
    await wait_until(
        lambda: _drained(db),
        within=DRAIN_SECONDS,
        what=f"the intake and the outbox to drain after the restart\n{gateway.log()}",
    )
    await wait_until(
        lambda: _all_sent(db, pos.event_ids),
        within=DRAIN_SECONDS,
        what=f"every webhook event to reach the sink\n{gateway.log()}",
    )
    assert pos.cut_off > 0, "no webhook request was cut off by the kill"
    assert pending_at_kill, (
        "every webhook event had reached the sink before the kill: the test proved nothing "
        f"of recovery ({len(expected_at_kill)} events, {stuck_at_kill} unpublished)"
    )

    await check_reserves(http, gateway, db, reserving)
    await check_intake(db, delivering)
    # What the dead process had claimed came due again at the end of its lease and was finished.
    finished = await message_statuses(db, claimed)
    assert set(finished) == set(claimed), (claimed, finished)
    assert all(IntakeStatus(s).final for s in finished.values()), finished
    assert await violations(db) == {}
    # The retries made events of their own: they drain too, and S001's reach its webhook.
    await wait_until(lambda: _drained(db), within=DRAIN_SECONDS, what="the outbox to drain")
    await wait_until(
        lambda: _all_sent(db, pos.event_ids), within=DRAIN_SECONDS, what="the last events"
    )


async def kill_while_claimed(
    db: Database, gateway: GatewayProcess, pos: WebhookSink, *loads: Load
) -> tuple[int, list[str]]:
    """SIGKILL the gateway while its intake worker holds messages it claimed and has not
    finished, and a webhook is on its way to the POS. The look is made holding the write lock
    on the intake's messages (SQLite's database lock; PostgreSQL's table lock), and the kill
    comes before it is let go: none of them can finish in between. Returns how many calls were
    in flight at the kill and the claimed messages' ids."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KILL_WITHIN_SECONDS
    while loop.time() < deadline:
        async with db.write() as conn:
            if db.dialect == "postgresql":
                # Blocks the claims and the finishes (UPDATE) of others, not their reads.
                await conn.exec_driver_sql("LOCK TABLE intake_messages IN SHARE ROW EXCLUSIVE MODE")
            claimed = await claimed_messages(conn)
            if claimed and pos.answering > 0:
                # No await from the look to the kill: what was in flight then is what it cut.
                in_flight = sum(load.in_flight for load in loads)
                gateway.kill()
                return in_flight, claimed
        await asyncio.sleep(0.01)  # let the gateway work: the next look sees it further on
    raise AssertionError(
        f"waited {KILL_WITHIN_SECONDS} s for intake messages claimed and unfinished, and a "
        "webhook on its way, at once"
    )


async def claimed_messages(conn: AsyncConnection) -> list[str]:
    """The messages a worker claimed and has not finished: still waiting, tried, and leased
    (not due again until the lease ends). A message put back to wait has its attempts reset."""
    rows = await conn.execute(
        sa.select(intake_messages.c.id).where(
            intake_messages.c.status == "RECEIVED",
            intake_messages.c.attempts >= 1,
            intake_messages.c.next_attempt_at > datetime.now(UTC),
        )
    )
    return [str(r.id) for r in rows]


async def _drained(db: Database) -> bool:
    return await waiting_messages(db) == 0 and await unpublished(db) == 0


async def _all_sent(db: Database, sink: set[str]) -> bool:
    return not (await webhook_events(db) - sink)


async def check_reserves(
    http: httpx.AsyncClient, gateway: GatewayProcess, db: Database, load: Load
) -> None:
    """Acknowledged: there with its lines. Refused: absent. Unknown: all of it or nothing. And
    the same request again (its idempotency key) gives back the same group, never a second.
    Each customer's calls are their own: they are checked several at a time."""
    reserves = {
        int(c.name.partition("-")[2]): c for c in load.calls if c.name.startswith("reserve-")
    }
    assert sorted(reserves) == list(range(len(reserves))), "the reserves were not sent in order"
    at_once = asyncio.Semaphore(CHECKS_AT_ONCE)

    async def check(i: int, call: Call) -> None:
        async with at_once:
            await check_reserve(http, gateway, db, i, call)

    await asyncio.gather(*(check(i, call) for i, call in reserves.items()))

    for call in load.of(Outcome.ACKNOWLEDGED):
        kind, _, number = call.name.partition("-")
        if kind not in ("ready", "cancel"):
            continue
        (group,) = (await groups_of(db, shopper(int(number)))).values()
        wanted = "READY_FOR_PICKUP" if kind == "ready" else "CANCELLED"
        assert [held["status"] for held in group] == [wanted], (call.name, group)


async def check_reserve(
    http: httpx.AsyncClient, gateway: GatewayProcess, db: Database, i: int, call: Call
) -> None:
    customer = shopper(i)
    groups = await groups_of(db, customer)
    asked = sorted(reserve_input(i)["lines"], key=lambda line: str(line["sku"]))
    if call.outcome is Outcome.REFUSED:
        assert groups == {}, (call.name, call.body, groups)
        return
    if call.outcome is Outcome.ACKNOWLEDGED:
        answer = call.body["data"]["reserve"]
        assert list(groups) == [answer["id"]], (call.name, answer, groups)
        (held,) = groups[answer["id"]]
        assert held["id"] == answer["reservations"][0]["id"]
        assert lines_of(groups[answer["id"]]) == asked
    else:  # in flight at the kill: done in full, or not at all
        assert len(groups) <= 1, (call.name, groups)
        for group in groups.values():
            assert lines_of(group) == asked, (call.name, group)
    again = await post_graphql(
        http, gateway, RESERVE, {"input": reserve_input(i)}, gateway.token("customer", sub=customer)
    )
    after = await groups_of(db, customer)
    assert len(after) <= 1, (call.name, after)
    body = again.json()
    if call.outcome is Outcome.ACKNOWLEDGED or groups:
        assert not body.get("errors"), (call.name, body)
        assert list(after) == list(groups) == [body["data"]["reserve"]["id"]], (call.name, body)
    elif body.get("errors"):
        assert after == {}, (call.name, body, after)
    else:
        assert list(after) == [body["data"]["reserve"]["id"]], (call.name, body, after)


async def check_intake(db: Database, load: Load) -> None:
    """Every delivery answered 202 reached a final status, and each order holds at most one
    reservation group: the one its channel order names."""
    stored = [str(call.body["messageId"]) for call in load.of(Outcome.ACKNOWLEDGED)]
    statuses = await message_statuses(db, stored)
    assert set(statuses) == set(stored)
    assert not {s for s in statuses.values() if s in ("RECEIVED", "RETRYING")}, statuses
    assert "ACCEPTED" in statuses.values()
    async with db.read() as conn:
        held = (
            await conn.execute(
                sa.select(reservations.c.customer_id, reservations.c.group_id)
                .where(reservations.c.channel == "shopify:acme")
                .distinct()
            )
        ).all()
        orders = {
            str(r.group_id)
            for r in await conn.execute(
                sa.select(channel_orders.c.group_id).where(channel_orders.c.group_id.is_not(None))
            )
        }
        dead = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(webhook_deliveries)
            .where(webhook_deliveries.c.status == "DEAD")
        )
    per_customer: dict[str, set[str]] = {}
    for row in held:
        per_customer.setdefault(str(row.customer_id), set()).add(str(row.group_id))
    assert all(len(groups) == 1 for groups in per_customer.values()), per_customer
    assert {g for groups in per_customer.values() for g in groups} == orders
    assert dead == 0
