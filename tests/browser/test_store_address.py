"""The store's postal address where the shopper sees a store: /shop's results and the
reservation's page ("Where to collect")."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.api.given import KINGS_CROSS, OXFORD_CIRCUS, given_reservation
from tests.browser.consoles import Consoles

pytestmark = pytest.mark.asyncio(loop_scope="session")

SETUP = """
mutation($stores: [StoreInput!]!, $levels: [StockLevelInput!]!) {
  upsertStores(stores: $stores) { id }
  syncStock(levels: $levels) { applied }
}
"""
ADDRESS = "240 Oxford Street, London W1C 1DE"
HERE = {"latitude": OXFORD_CIRCUS["lat"], "longitude": OXFORD_CIRCUS["lon"]}


async def test_the_shopper_sees_where_to_collect(consoles: Consoles) -> None:
    levels = [{"storeId": s, "sku": "SKU-1", "onHand": 5} for s in ("S001", "S002")]
    stores = [{**OXFORD_CIRCUS, "address": ADDRESS}, KINGS_CROSS]  # King's Cross has none
    await consoles.ok(SETUP, {"stores": stores, "levels": levels}, consoles.token("ops"))
    customer = consoles.token("customer", sub="alice")

    shop = await consoles.open("/shop", customer, geolocation=HERE, permissions=["geolocation"])
    await shop.get_by_role("button", name="Use my location").click()
    await shop.locator("#sku-0").fill("SKU-1")
    await shop.get_by_role("button", name="Find stores").click()
    oxford = shop.get_by_role("listitem").filter(has_text="Oxford Circus").first
    await expect(oxford).to_contain_text(ADDRESS)
    kings_cross = shop.get_by_role("listitem").filter(has_text="King's Cross").first
    await expect(kings_cross).to_contain_text("km away")
    await expect(kings_cross).not_to_contain_text("London")

    held = await given_reservation(
        consoles.http,
        consoles.gateway,
        customer,
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    page = await consoles.open(f"/shop/reservations/{held['id']}", customer)
    where = page.get_by_test_id("store-address")
    await expect(where).to_contain_text("Oxford Circus")
    await expect(where).to_contain_text(ADDRESS)
