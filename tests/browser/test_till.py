"""/pos on its own: what the scan field refuses, and the till losing its WebSocket and getting it
back without anything it missed staying missing."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.api.given import given_reservation, given_stores_with_stock
from tests.browser.consoles import TIMES, Consoles, Socket

pytestmark = pytest.mark.asyncio(loop_scope="session")

QR = "query($id: ID!) { reservation(id: $id) { pickupQrPayload } }"
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { status } }"
# graphql-ws waits 0.5 to 1 s, then 1 to 2 s, 2 to 4 s... between tries: the outage below is
# over within two tries, so the till is back within this.
RECONNECT_MS = 8000


async def till_of(consoles: Consoles, store: str, socket: Socket | None = None) -> Page:
    page = await consoles.open(
        "/pos", consoles.token("pos", sub=f"till-{store}", store=store), socket=socket
    )
    await expect(page.get_by_test_id("connection")).to_have_text("Live")
    return page


async def scan(till: Page, text: str) -> None:
    """What a keyboard-wedge scanner does: types into the focused field, then Enter."""
    await expect(till.get_by_label("Scan or type the pickup code")).to_be_focused()
    await till.keyboard.type(text + "\n")


async def test_a_forged_qr_and_another_stores_code_are_refused(consoles: Consoles) -> None:
    await given_stores_with_stock(
        consoles.http, consoles.gateway, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 5}
    )
    alice = consoles.token("customer", sub="alice")
    here = await given_reservation(
        consoles.http,
        consoles.gateway,
        alice,
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    elsewhere = await given_reservation(
        consoles.http,
        consoles.gateway,
        alice,
        storeId="S002",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    payload = (await consoles.ok(QR, {"id": here["id"]}, alice))["reservation"]["pickupQrPayload"]
    prefix, reservation_id, code, signature = payload.split(".")
    altered = "B" if signature[-1] != "B" else "C"
    forged = f"{prefix}.{reservation_id}.{code}.{signature[:-1]}{altered}"
    till = await till_of(consoles, "S001")
    message = till.get_by_test_id("message")

    await scan(till, forged)
    await expect(message).to_have_attribute("role", "alert")
    await expect(message).to_contain_text("(BAD_USER_INPUT)")
    await expect(till.get_by_test_id("panel")).to_have_count(0)

    # S002's receipt code, typed as a person would (lower case, a space): not this store's.
    other = elsewhere["code"].lower()
    await scan(till, f"{other[:3]} {other[3:]}")
    await expect(message).to_have_attribute("role", "alert")
    await expect(message).to_contain_text("(NOT_FOUND)")
    await expect(message).not_to_contain_text("S002")
    await expect(till.get_by_test_id("panel")).to_have_count(0)

    # The same field, the right code in any case and spacing: found.
    mine = here["code"].lower()
    await scan(till, f" {mine[:3]} {mine[3:]} ")
    await expect(message).to_have_attribute("role", "status")
    await expect(till.get_by_test_id("panel")).to_have_attribute("data-status", "HELD")
    await expect(till.get_by_label("Scan or type the pickup code")).to_be_focused()


async def test_the_socket_dropped_and_restored(consoles: Consoles) -> None:
    await given_stores_with_stock(consoles.http, consoles.gateway, {("S001", "SKU-1"): 10})
    alice = consoles.token("customer", sub="alice")
    first = await given_reservation(
        consoles.http,
        consoles.gateway,
        alice,
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    socket = Socket()
    till = await till_of(consoles, "S001", socket)
    queued = till.locator(f'[data-code="{first["code"]}"]')
    await expect(queued).to_have_attribute("data-status", "HELD")
    await queued.get_by_role("button", name="Open").click()
    panel = till.get_by_test_id("panel")
    await panel.get_by_label("Amount").fill("5.00")
    complete = panel.get_by_role("button", name="Complete pickup")
    await expect(complete).to_be_enabled()

    await socket.drop()
    connection = till.get_by_test_id("connection")
    await expect(connection).to_have_text("Reconnecting…")
    await expect(till.get_by_test_id("offline-banner")).to_contain_text("Payments are paused")
    await expect(complete).to_be_disabled()

    # While the till is deaf: the first is made ready by someone else, a second one comes in.
    staff = consoles.token("staff", sub="floor-1", store="S001")
    await consoles.ok(MARK_READY, {"id": first["id"]}, staff)
    bob = consoles.token("customer", sub="bob")
    second = await given_reservation(
        consoles.http,
        consoles.gateway,
        bob,
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 3}],
    )
    await expect(till.locator(f'[data-code="{second["code"]}"]')).to_have_count(0)
    await expect(queued).to_have_attribute("data-status", "HELD")

    socket.restore()
    await expect(connection).to_have_text("Live", timeout=RECONNECT_MS)
    # What it missed is there: the first is ready, the second in the queue, payment back.
    await expect(queued).to_have_attribute("data-status", "READY_FOR_PICKUP")
    await expect(panel).to_have_attribute("data-status", "READY_FOR_PICKUP")
    await expect(till.locator(f'[data-code="{second["code"]}"]')).to_contain_text(
        f"3 {TIMES} SKU-1"
    )
    await expect(till.get_by_test_id("offline-banner")).to_have_count(0)
    await expect(complete).to_be_enabled()
    # And it is live again: an event after the reconnect arrives by itself.
    await consoles.ok(MARK_READY, {"id": second["id"]}, staff)
    await expect(till.locator(f'[data-code="{second["code"]}"]')).to_have_attribute(
        "data-status", "READY_FOR_PICKUP"
    )
