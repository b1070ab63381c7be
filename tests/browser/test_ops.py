"""/ops: a dead letter found, replayed from the page, and delivered; dead letters listed by
impact and discarded from the page with a reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.db.tables import wms_outbound
from tests.api.given import given_reservation, given_stores_with_stock
from tests.browser.consoles import Consoles
from tests.helpers import serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

SET_WEBHOOK = """
mutation($url: String) { setStoreWebhook(storeId: "S001", url: $url, secret: "s001-pos-webhook-secret") { url } }
"""
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { status } }"
CHECK_IN = "mutation($id: ID!) { checkIn(id: $id) { status } }"
CANCEL = 'mutation($id: ID!) { cancelReservation(id: $id, reason: "plans changed") { status } }'
DELIVERIES = """
query($status: WebhookDeliveryStatus!) {
  webhookDeliveries(status: $status) { id eventType discardedBy discardReason }
}
"""
MOVEMENTS = """
query($status: WmsMovementStatus) { wmsMovements(status: $status) { id discardReason } }
"""
DELIVERED_WITHIN = 5.0  # seconds: the webhook worker looks every 0.1 s


class Pos:
    """A store's POS system behind a webhook: down (500) until `up`, and what it was sent."""

    def __init__(self) -> None:
        self.up = False
        self.received: list[bytes] = []

    async def hook(self, request: Request) -> Response:
        self.received.append(await request.body())
        return Response(status_code=200 if self.up else 500)


@pytest_asyncio.fixture(loop_scope="session")
async def pos_system() -> AsyncIterator[tuple[Pos, str]]:
    pos = Pos()
    async with serving(Starlette(routes=[Route("/hooks", pos.hook, methods=["POST"])])) as url:
        yield pos, f"{url}/hooks"


async def deliveries(consoles: Consoles, status: str) -> list[dict[str, Any]]:
    found = await consoles.ok(DELIVERIES, {"status": status}, consoles.token("ops"))
    return list(found["webhookDeliveries"])


async def until_some(consoles: Consoles, status: str, count: int = 1) -> list[dict[str, Any]]:
    async with asyncio.timeout(DELIVERED_WITHIN):
        # The worker tells nothing outside the API: ask it again until it says.
        while len(found := await deliveries(consoles, status)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return found


async def test_ops_replays_a_dead_webhook_delivery(
    consoles: Consoles, pos_system: tuple[Pos, str]
) -> None:
    pos, hook_url = pos_system
    await given_stores_with_stock(consoles.http, consoles.gateway, {("S001", "SKU-1"): 10})
    ops = consoles.token("ops", sub="ops-anna")
    await consoles.ok(SET_WEBHOOK, {"url": hook_url}, ops)
    held = await given_reservation(
        consoles.http,
        consoles.gateway,
        consoles.token("customer", sub="alice"),
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    await consoles.ok(MARK_READY, {"id": held["id"]}, consoles.token("pos", store="S001"))
    (dead,) = await until_some(consoles, "DEAD")  # one try allowed in these tests: it failed
    assert dead["eventType"] == "READY_FOR_PICKUP"

    page = await consoles.open("/ops", ops)
    letters = page.get_by_test_id("dead-webhooks")
    await expect(page.get_by_role("heading", name="POS webhook deliveries (1)")).to_be_visible()
    await expect(letters).to_contain_text("READY_FOR_PICKUP for store S001")
    await expect(letters).to_contain_text("HTTP 500")

    pos.up = True
    await letters.get_by_role(
        "button", name="Replay the READY_FOR_PICKUP delivery to store S001"
    ).click()
    await expect(page.get_by_role("status").filter(has_text="replayed")).to_contain_text(
        f"Webhook delivery {dead['id']} replayed: now PENDING."
    )
    await expect(page.get_by_role("heading", name="POS webhook deliveries (0)")).to_be_visible()

    (delivered,) = await until_some(consoles, "DELIVERED")
    assert delivered["id"] == dead["id"]
    assert len(pos.received) == 2
    assert await deliveries(consoles, "DEAD") == []


async def test_ops_sees_dead_letters_by_impact_and_discards_them(
    consoles: Consoles, pos_system: tuple[Pos, str]
) -> None:
    _, hook_url = pos_system  # the POS stays down: every event is dead at its one try
    await given_stores_with_stock(consoles.http, consoles.gateway, {("S001", "SKU-1"): 10})
    ops = consoles.token("ops", sub="ops-anna")
    await consoles.ok(SET_WEBHOOK, {"url": hook_url}, ops)
    alice = consoles.token("customer", sub="alice")
    held = await given_reservation(
        consoles.http,
        consoles.gateway,
        alice,
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    # Ready, arrived, cancelled, in that order: newest first would list them backwards, oldest
    # first in this order; by impact the shopper at the counter comes first.
    await consoles.ok(MARK_READY, {"id": held["id"]}, consoles.token("pos", store="S001"))
    await until_some(consoles, "DEAD", 1)
    await consoles.ok(CHECK_IN, {"id": held["id"]}, alice)
    await until_some(consoles, "DEAD", 2)
    await consoles.ok(CANCEL, {"id": held["id"]}, alice)
    dead = await until_some(consoles, "DEAD", 3)
    arrived = next(d for d in dead if d["eventType"] == "CUSTOMER_ARRIVED")
    # And a WMS movement that died two hours ago (no WMS runs in these tests).
    now = consoles.gateway.clock.now()
    async with consoles.gateway.db.engine.begin() as conn:
        await conn.execute(
            wms_outbound.insert().values(
                id="m-lock-1",
                store_id="S001",
                sku="SKU-1",
                sequence=1_000,
                kind="LOCK",
                quantity=2,
                occurred_at=now - timedelta(hours=2),
                status="DEAD",
                attempts=20,
                next_attempt_at=now,
                last_error="HTTP 503",
                created_at=now - timedelta(hours=2),
            )
        )

    page = await consoles.open("/ops", ops)
    letters = page.get_by_test_id("dead-webhooks")
    await expect(
        page.get_by_role("heading", name="POS webhook deliveries (3), most impact first")
    ).to_be_visible()
    await expect(letters.get_by_role("listitem")).to_have_count(3)
    kinds = [
        await item.locator("strong").inner_text() for item in await letters.locator("li").all()
    ]
    assert kinds == ["CUSTOMER_ARRIVED", "READY_FOR_PICKUP", "CANCELLED"]
    movements = page.get_by_test_id("dead-movements")
    await expect(movements).to_contain_text(
        "LOCK 2 \N{MULTIPLICATION SIGN} SKU-1 at store S001 · impact 18.0"
    )

    # Discard needs a reason: the button waits for one.
    discard = letters.get_by_role(
        "button", name="Discard the CUSTOMER_ARRIVED delivery to store S001"
    )
    await expect(discard).to_be_disabled()
    await letters.get_by_label("Reason to discard").first.fill("shopper served at the counter")
    await discard.click()
    await expect(page.get_by_role("status").filter(has_text="discarded")).to_contain_text(
        f"Webhook delivery {arrived['id']} discarded: now DISCARDED."
    )
    await expect(
        page.get_by_role("heading", name="POS webhook deliveries (2), most impact first")
    ).to_be_visible()

    await movements.get_by_label("Reason to discard").fill("the WMS counted it already")
    await movements.get_by_role("button", name="Discard movement m-lock-1").click()
    await expect(page.get_by_role("status").filter(has_text="discarded")).to_contain_text(
        "WMS movement m-lock-1 discarded: now DISCARDED."
    )
    await expect(
        page.get_by_role("heading", name="WMS movements (0), most impact first")
    ).to_be_visible()

    (gone,) = await deliveries(consoles, "DISCARDED")
    assert gone == {
        "id": arrived["id"],
        "eventType": "CUSTOMER_ARRIVED",
        "discardedBy": "ops-anna",
        "discardReason": "shopper served at the counter",
    }
    found = await consoles.ok(MOVEMENTS, {"status": "DISCARDED"}, ops)
    assert found["wmsMovements"] == [
        {"id": "m-lock-1", "discardReason": "the WMS counted it already"}
    ]
