"""A store's postal address, over HTTP: set and cleared through upsertStores, kept when an
upsert does not name it (a WMS that knows no addresses), shown wherever a store is, and
validated."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Gateway, gql
from tests.api.given import database_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")

UPSERT = """
mutation($stores: [StoreInput!]!) { upsertStores(stores: $stores) { id name address } }
"""
STORES = "query { stores { id address } }"
AVAILABILITY = """
query { availability(skus: ["SKU-1"], near: {lat: 51.5152, lon: -0.1419}) {
  store { id address } } }
"""
RESERVE = """
mutation($input: ReserveInput!) { reserve(input: $input) { reservations { store { address } } } }
"""
SYNC = """
mutation($levels: [StockLevelInput!]!) { syncStock(levels: $levels) { applied } }
"""
OXFORD = {"id": "S001", "name": "Oxford Circus", "lat": 51.5152, "lon": -0.1419}
ADDRESS = "240 Oxford Street, London W1C 1DE"


def store(**fields: Any) -> dict[str, Any]:
    return {**OXFORD, "timezone": "Europe/London", **fields}


async def upsert(http: httpx.AsyncClient, api: Gateway, token: str, *stores: Any) -> Any:
    return await gql(http, api, UPSERT, {"stores": list(stores)}, token)


async def addresses(http: httpx.AsyncClient, api: Gateway) -> dict[str, str | None]:
    found = (await gql(http, api, STORES)).ok()["stores"]
    return {s["id"]: s["address"] for s in found}


async def test_an_address_is_set_kept_when_not_named_and_cleared_with_null(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    ops = api.token("ops")
    saved = (await upsert(http, api, ops, store(address=f"  {ADDRESS} "))).ok()
    assert saved["upsertStores"] == [{"id": "S001", "name": "Oxford Circus", "address": ADDRESS}]
    assert await addresses(http, api) == {"S001": ADDRESS}

    # A WMS renaming the store, knowing nothing of addresses, leaves it as it is.
    renamed = (await upsert(http, api, api.token("wms"), store(name="Oxford St"))).ok()
    assert renamed["upsertStores"] == [{"id": "S001", "name": "Oxford St", "address": ADDRESS}]
    assert await addresses(http, api) == {"S001": ADDRESS}

    # A new store not naming one has none; null and empty clear one.
    fresh = store(id="S002", name="King's Cross", lat=51.5308, lon=-0.1238)
    (await upsert(http, api, ops, fresh)).ok()
    assert await addresses(http, api) == {"S001": ADDRESS, "S002": None}
    (await upsert(http, api, ops, store(address=None), {**fresh, "address": "1 Euston Rd"})).ok()
    assert await addresses(http, api) == {"S001": None, "S002": "1 Euston Rd"}
    (await upsert(http, api, ops, {**fresh, "address": "  "})).ok()
    assert await addresses(http, api) == {"S001": None, "S002": None}


async def test_the_shopper_sees_the_address_where_the_store_is_shown(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    ops = api.token("ops")
    (await upsert(http, api, ops, store(address=ADDRESS))).ok()
    levels = [{"storeId": "S001", "sku": "SKU-1", "onHand": 3}]
    (await gql(http, api, SYNC, {"levels": levels}, ops)).ok()

    found = (await gql(http, api, AVAILABILITY)).ok()["availability"]
    reserve = {"input": {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 1}]}}
    held = (await gql(http, api, RESERVE, reserve, api.token("customer", sub="alice"))).ok()

    assert found == [{"store": {"id": "S001", "address": ADDRESS}}]
    assert held["reserve"]["reservations"] == [{"store": {"address": ADDRESS}}]


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("x" * 201, id="too-long"),
        pytest.param("1 Oxford Street\nLondon", id="two-lines"),
        pytest.param("1 Oxford Street\x00", id="control-character"),
    ],
)
async def test_a_bad_address_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway, address: str
) -> None:
    ops = api.token("ops")
    (await upsert(http, api, ops, store(address=ADDRESS))).ok()
    before = await database_rows(api.db)

    # One bad store in a batch refuses the whole batch.
    fresh = store(id="S002", name="King's Cross", address="1 Euston Road")
    result = await upsert(http, api, ops, fresh, store(address=address))

    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == "address"
    assert await database_rows(api.db) == before
