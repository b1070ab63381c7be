"""/ops: a dead letter found, replayed from the page, and delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.api.given import given_reservation, given_stores_with_stock
from tests.browser.consoles import Consoles
from tests.helpers import serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

SET_WEBHOOK = """
mutation($url: String) { setStoreWebhook(storeId: "S001", url: $url, secret: "s001-pos-webhook-secret") { url } }
"""
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { status } }"
DELIVERIES = """
query($status: WebhookDeliveryStatus!) { webhookDeliveries(status: $status) { id eventType } }
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


async def until_some(consoles: Consoles, status: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(DELIVERED_WITHIN):
        # The worker tells nothing outside the API: ask it again until it says.
        while not (found := await deliveries(consoles, status)):  # noqa: ASYNC110
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
