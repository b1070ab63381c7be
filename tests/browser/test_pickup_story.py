"""The whole pickup in two browsers at once: a shopper on /shop (a phone) and the store's till on
/pos, each live on the API's subscriptions, neither ever reloaded."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, expect

from tests.api.given import OXFORD_CIRCUS, given_reservation, given_stores_with_stock
from tests.browser.consoles import PHONE, TIMES, Consoles

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The bound: what one page does reaches the other within a second, without a reload.
LIVE_MS = 1000
MINE = "query($id: ID!) { reservation(id: $id) { id code storeId } }"
QR = "query($id: ID!) { reservation(id: $id) { pickupQrPayload } }"
LEVEL = "query($store: ID!, $sku: String!) { stockLevel(storeId: $store, sku: $sku) { reserved } }"
SWEEP_SECONDS = 3.0  # the sweeper (every 0.1 s) has acted on a move of the clock within this
STOCK = '{ stockLevel(storeId: "S001", sku: "SKU-1") { onHand reserved available } }'
HERE = {"latitude": OXFORD_CIRCUS["lat"], "longitude": OXFORD_CIRCUS["lon"]}


async def mark_never_reloaded(page: Page) -> None:
    """A flag in the page's own window: a reload or a navigation would lose it."""
    await page.evaluate("() => { window.__sameDocument = true; }")


async def still_the_same_document(page: Page) -> bool:
    return bool(await page.evaluate("() => window.__sameDocument === true"))


async def test_reserve_ready_arrive_scan_and_pay(consoles: Consoles) -> None:
    await given_stores_with_stock(
        consoles.http, consoles.gateway, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 4}
    )
    customer = consoles.token("customer", sub="alice")
    till = await consoles.open("/pos", consoles.token("pos", sub="till-1", store="S001"))
    await expect(till.get_by_test_id("connection")).to_have_text("Live")
    await mark_never_reloaded(till)

    # The shopper finds the stores near where they stand and reserves at the nearest.
    shop = await consoles.open(
        "/shop", customer, viewport=PHONE, geolocation=HERE, permissions=["geolocation"]
    )
    await shop.get_by_role("button", name="Use my location").click()
    await shop.locator("#sku-0").fill("sku-1")
    await shop.locator("#qty-0").fill("2")
    await shop.get_by_role("button", name="Find stores").click()
    results = shop.get_by_role("listitem").filter(has_text="Oxford Circus")
    await expect(results.first).to_contain_text("SKU-1: 10 available (you want 2)")
    await shop.get_by_role("button", name="Reserve at Oxford Circus").click()
    await shop.wait_for_url("**/shop/reservations/*")
    reservation_id = shop.url.rsplit("/", 1)[1]
    reservation = (await consoles.ok(MINE, {"id": reservation_id}, customer))["reservation"]
    assert reservation["storeId"] == "S001"

    # The till hears of it within a second, without a reload.
    item = till.locator(f'[data-code="{reservation["code"]}"]')
    await expect(item).to_be_visible(timeout=LIVE_MS)
    await expect(item).to_contain_text(f"2 {TIMES} SKU-1")
    await expect(item).to_contain_text("New")
    spaced = f"{reservation['code'][:3]} {reservation['code'][3:]}"
    heard = till.locator("#announce-polite")  # the live region screen readers hear
    await expect(heard).to_have_text(f"New reservation: {spaced}.")

    # The shopper's page: held, counting down, the QR code, the receipt code, the store.
    await expect(shop.locator(".big-status")).to_have_attribute("data-status", "HELD")
    await expect(shop.get_by_role("timer")).to_have_text("2:00:00")
    await expect(shop.locator(".qr svg")).to_be_visible()
    code = await shop.get_by_test_id("pickup-code").inner_text()
    assert code == spaced
    await expect(shop.locator("address")).to_contain_text("Oxford Circus")
    await mark_never_reloaded(shop)

    # The till opens it and marks it ready; the shopper's page changes by itself.
    await item.get_by_role("button", name="Open").click()
    panel = till.get_by_test_id("panel")
    await panel.get_by_role("button", name="Mark ready").click()
    await expect(panel).to_have_attribute("data-status", "READY_FOR_PICKUP")
    await expect(shop.locator(".big-status")).to_have_attribute(
        "data-status", "READY_FOR_PICKUP", timeout=LIVE_MS
    )
    await expect(shop.get_by_role("main")).to_contain_text("Your order is ready")
    await expect(shop.locator("#announce-assertive")).to_have_text(
        "Ready for pickup. Your order is ready: show the code at the till."
    )

    # "I'm here": the till shows the arrival, with the note, at the counter.
    await shop.get_by_label("Note for the staff").fill("car bay 4")
    await shop.get_by_role("button", name="I'm here").click()
    await expect(shop.get_by_test_id("checked-in")).to_contain_text("(car bay 4)")
    arrived = till.get_by_test_id("arrived").locator(f'[data-code="{reservation["code"]}"]')
    await expect(arrived).to_be_visible(timeout=LIVE_MS)
    await expect(arrived.get_by_test_id("waiting")).to_contain_text("waiting 0:")
    await expect(arrived.get_by_test_id("waiting")).to_contain_text("car bay 4")
    await expect(till.get_by_test_id("badge")).to_have_text("2")  # ready, then arrived
    await expect(heard).to_have_text(f"{spaced} — the shopper has arrived (car bay 4).")

    # A keyboard-wedge scanner types the QR code's text and Enter into whatever has the focus:
    # the scan field has it back after every action.
    await expect(till.get_by_label("Scan or type the pickup code")).to_be_focused()
    payload = (await consoles.ok(QR, {"id": reservation["id"]}, customer))["reservation"][
        "pickupQrPayload"
    ]
    await till.keyboard.type(payload + "\n")
    await expect(till.get_by_test_id("message")).to_contain_text(f"Found {code}: Ready for pickup.")
    await panel.get_by_label("Amount").fill("19.90")
    await panel.get_by_label("Paid by").select_option("card")
    await panel.get_by_role("button", name="Complete pickup").click()
    await expect(till.get_by_test_id("message")).to_contain_text(
        f"{code} collected: paid 19.90 GBP by card."
    )
    await expect(panel).to_have_attribute("data-status", "COLLECTED")
    await expect(till.locator(f'[data-code="{reservation["code"]}"]')).to_have_count(0)

    # Both end in the final state; neither page was ever reloaded.
    await expect(shop.locator(".big-status")).to_have_attribute(
        "data-status", "COLLECTED", timeout=LIVE_MS
    )
    await expect(shop.get_by_role("main")).to_contain_text("Collected. Thank you!")
    assert await still_the_same_document(shop)
    assert await still_the_same_document(till)

    # The stock: two units left the store, nothing is held, and the shop says so too.
    level = (await consoles.ok(STOCK, token=consoles.token("ops")))["stockLevel"]
    assert level == {"onHand": 8, "reserved": 0, "available": 8}
    await shop.get_by_role("link", name="Back to the shop").click()
    await shop.get_by_role("button", name="Use my location").click()
    await shop.locator("#sku-0").fill("SKU-1")
    await shop.get_by_role("button", name="Find stores").click()
    await expect(
        shop.get_by_role("listitem").filter(has_text="Oxford Circus").first
    ).to_contain_text("SKU-1: 8 available (you want 1)")


async def test_the_shoppers_page_follows_a_short_pick_and_the_expiry(consoles: Consoles) -> None:
    await given_stores_with_stock(
        consoles.http,
        consoles.gateway,
        {("S001", "SKU-1"): 10, ("S001", "SKU-2"): 5, ("S002", "SKU-2"): 5},
    )
    customer = consoles.token("customer", sub="alice")
    held = await given_reservation(
        consoles.http,
        consoles.gateway,
        customer,
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-2", "quantity": 2}],
    )
    shop = await consoles.open(f"/shop/reservations/{held['id']}", customer, viewport=PHONE)
    await expect(shop.locator(".big-status")).to_have_attribute("data-status", "HELD")
    till = await consoles.open("/pos", consoles.token("pos", sub="till-1", store="S001"))
    await till.locator(f'[data-code="{held["code"]}"]').get_by_role("button", name="Open").click()

    # The till finds no SKU-2 on the shelf: the units move to King's Cross, and the shopper
    # is told where.
    panel = till.get_by_test_id("panel")
    await panel.get_by_label("Units of SKU-2 found").fill("0")
    await panel.get_by_role("button", name="Report short pick of SKU-2").click()
    await expect(till.get_by_test_id("message")).to_contain_text("Short pick of SKU-2 reported")
    note = shop.get_by_test_id("shortage")
    await expect(note).to_contain_text(
        f"2 {TIMES} SKU-2 were not on the shelf; now held for you at King's Cross",
        timeout=LIVE_MS,
    )
    reserved = shop.get_by_role("region", name="What you reserved")
    await expect(reserved).to_contain_text(f"1 {TIMES} SKU-1")
    await expect(reserved).not_to_contain_text("SKU-2")
    moved = await note.get_by_role("link", name="see that reservation").get_attribute("href")
    assert moved is not None
    assert moved != f"/shop/reservations/{held['id']}"

    # Nobody comes: the hold runs out and the page says so by itself.
    consoles.gateway.clock.advance(7200 + 1)
    await expect(shop.locator(".big-status")).to_have_attribute("data-status", "EXPIRED")
    await expect(shop.get_by_role("main")).to_contain_text("The time ran out")
    await expect(shop.get_by_role("timer")).to_have_count(0)
    # Both holds ran out (the moved one has the same expiry): every unit is back on sale.
    async with asyncio.timeout(SWEEP_SECONDS):
        while await reserved_units(consoles) != {"S001": 0, "S002": 0}:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def reserved_units(consoles: Consoles) -> dict[str, int]:
    ops = consoles.token("ops")
    levels = {}
    for store, sku in (("S001", "SKU-1"), ("S002", "SKU-2")):
        found = await consoles.ok(LEVEL, {"store": store, "sku": sku}, ops)
        levels[store] = found["stockLevel"]["reserved"]
    return levels
