"""The reservation core over real HTTP: stock, reserve, read back, cancel."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Gateway, gql

pytestmark = pytest.mark.asyncio(loop_scope="session")

SETUP_STORES = """
mutation($stores: [StoreInput!]!) { upsertStores(stores: $stores) { id } }
"""
SYNC = """
mutation($levels: [StockLevelInput!]!) { syncStock(levels: $levels) { applied } }
"""
RESERVE = """
mutation($input: ReserveInput!) {
  reserve(input: $input) {
    id replayed
    reservations { id code storeId customerId status expiresAt secondsRemaining lines { sku quantity } }
  }
}
"""
RESERVATION = """
query($id: ID!) { reservation(id: $id) { id status secondsRemaining store { id name } } }
"""
CANCEL = """
mutation($id: ID!) { cancelReservation(id: $id, reason: "no longer needed") { id status cancelReason } }
"""
STOCK = """
query($store: ID!, $sku: String!) { stockLevel(storeId: $store, sku: $sku) { onHand reserved available } }
"""


async def given_a_store_with_stock(
    http: httpx.AsyncClient, api: Gateway, on_hand: int = 10
) -> None:
    ops = api.token("ops")
    stores = [
        {
            "id": "S001",
            "name": "Oxford Circus",
            "lat": 51.5152,
            "lon": -0.1419,
            "timezone": "Europe/London",
        }
    ]
    (await gql(http, api, SETUP_STORES, {"stores": stores}, ops)).ok()
    levels = [{"storeId": "S001", "sku": "SKU-1", "onHand": on_hand}]
    assert (await gql(http, api, SYNC, {"levels": levels}, ops)).ok() == {
        "syncStock": {"applied": 1}
    }


async def test_customer_reserves_reads_and_cancels(http: httpx.AsyncClient, api: Gateway) -> None:
    await given_a_store_with_stock(http, api)
    alice = api.token("customer", sub="alice")

    reserved = (
        await gql(
            http,
            api,
            RESERVE,
            {"input": {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 3}]}},
            alice,
        )
    ).ok()["reserve"]
    (r,) = reserved["reservations"]
    assert r["customerId"] == "alice"
    assert r["status"] == "HELD"
    assert r["secondsRemaining"] == 7200
    assert r["expiresAt"].startswith("2026-03-02T11:00:00")

    api.clock.advance(600)
    seen = (await gql(http, api, RESERVATION, {"id": r["id"]}, alice)).ok()["reservation"]
    assert seen == {
        "id": r["id"],
        "status": "HELD",
        "secondsRemaining": 6600,
        "store": {"id": "S001", "name": "Oxford Circus"},
    }

    staff = api.token("staff", store="S001")
    assert (await gql(http, api, STOCK, {"store": "S001", "sku": "SKU-1"}, staff)).ok()[
        "stockLevel"
    ] == {"onHand": 10, "reserved": 3, "available": 7}
    cancelled = (await gql(http, api, CANCEL, {"id": r["id"]}, alice)).ok()["cancelReservation"]
    assert cancelled == {"id": r["id"], "status": "CANCELLED", "cancelReason": "no longer needed"}
    assert (await gql(http, api, STOCK, {"store": "S001", "sku": "SKU-1"}, staff)).ok()[
        "stockLevel"
    ]["reserved"] == 0


async def test_out_of_stock_over_http_names_the_sku(http: httpx.AsyncClient, api: Gateway) -> None:
    await given_a_store_with_stock(http, api, on_hand=2)
    result = await gql(
        http,
        api,
        RESERVE,
        {"input": {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 3}]}},
        api.token("customer", sub="bob"),
    )
    assert result.data is None
    assert result.codes == ["OUT_OF_STOCK"]
    assert result.errors[0]["extensions"]["skus"] == ["SKU-1"]
    assert "Traceback" not in str(result.body)
