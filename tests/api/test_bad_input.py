"""Bad input over real HTTP: each is refused with a clear code and a message a person can act on,
never a stack trace, and a refused mutation leaves stock, reservations and every table as they were."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.conftest import Gateway, gql
from tests.api.given import (
    DEFAULT_POLICY,
    KINGS_CROSS,
    OXFORD_CIRCUS,
    assert_readable,
    assert_refused,
    database_rows,
    given_stock,
    given_stores_with_stock,
    ops_view,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

RESERVE = """
mutation($input: ReserveInput!) {
  reserve(input: $input) { id reservations { storeId customerId status lines { sku quantity } } }
}
"""
SYNC_STOCK = "mutation($levels: [StockLevelInput!]!) { syncStock(levels: $levels) { applied } }"
UPSERT_STORES = "mutation($stores: [StoreInput!]!) { upsertStores(stores: $stores) { id } }"
UPDATE_POLICY = """
mutation($input: ReservationPolicyInput!) { updateReservationPolicy(input: $input) { defaultHoldSeconds } }
"""
AVAILABILITY = """
query($skus: [String!]!, $quantities: [Int!], $near: GeoPointInput!, $radiusKm: Float, $first: Int) {
  availability(skus: $skus, quantities: $quantities, near: $near, radiusKm: $radiusKm, first: $first) {
    store { id }
  }
}
"""
STORES_NEAR = """
query($near: GeoPointInput, $radiusKm: Float, $first: Int) {
  stores(near: $near, radiusKm: $radiusKm, first: $first) { id }
}
"""
STOCK_LEVEL = """
query($store: ID!, $sku: String!) { stockLevel(storeId: $store, sku: $sku) { onHand reserved } }
"""
PICKUP_QUEUE = """
query($store: ID!) { pickupQueue(storeId: $store) { customerId lines { sku quantity } } }
"""

BAD = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
OXFORD = {"lat": 51.5152, "lon": -0.1419}
ONE = [{"sku": "SKU-1", "quantity": 1}]


@pytest_asyncio.fixture(loop_scope="session")
async def stocked(http: httpx.AsyncClient, api: Gateway) -> None:
    """S001 with 10 of SKU-1 and SKU-2, S002 with 5 of SKU-1."""
    await given_stores_with_stock(
        http, api, {("S001", "SKU-1"): 10, ("S001", "SKU-2"): 10, ("S002", "SKU-1"): 5}
    )


async def world_as_ops_see_it(http: httpx.AsyncClient, api: Gateway) -> dict[str, Any]:
    """Everything a refused call must leave alone: ops' view through the API, and every row."""
    ops = api.token("ops")
    levels = {
        (store, sku): (await gql(http, api, STOCK_LEVEL, {"store": store, "sku": sku}, ops)).ok()[
            "stockLevel"
        ]
        for store, sku in (("S001", "SKU-1"), ("S001", "SKU-2"), ("S002", "SKU-1"))
    }
    queues = {
        store: (await gql(http, api, PICKUP_QUEUE, {"store": store}, ops)).ok()["pickupQueue"]
        for store in ("S001", "S002")
    }
    return {
        "levels": levels,
        "queues": queues,
        "view": await ops_view(http, api),
        "rows": await database_rows(api.db),
    }


# --- reserve -------------------------------------------------------------------------------------

BAD_RESERVES = [
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 0}]},
        {"code": BAD, "field": "quantity", "sku": "SKU-1"},
        "Quantity of SKU-1 must be a whole number from 1 to 10000, got 0.",
        id="quantity-0",
    ),
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": -2}]},
        {"code": BAD, "field": "quantity", "sku": "SKU-1"},
        "Quantity of SKU-1 must be a whole number from 1 to 10000, got -2.",
        id="quantity-negative",
    ),
    pytest.param(
        {"storeId": "S001", "lines": []},
        {"code": BAD, "field": "lines"},
        "A reservation needs at least one line.",
        id="no-lines",
    ),
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "NOPE", "quantity": 1}]},
        {"code": NOT_FOUND, "skus": ["NOPE"]},
        "Unknown SKU: NOPE",
        id="unknown-sku",
    ),
    pytest.param(
        # SKU-1 could be locked; the unknown line takes it down with it (all or none).
        {
            "storeId": "S001",
            "lines": [{"sku": "SKU-1", "quantity": 2}, {"sku": "NOPE", "quantity": 1}],
        },
        {"code": NOT_FOUND, "skus": ["NOPE"]},
        "Unknown SKU: NOPE",
        id="unknown-sku-beside-a-known-one",
    ),
    pytest.param(
        {"near": OXFORD, "lines": [{"sku": "NOPE", "quantity": 1}]},
        {"code": NOT_FOUND, "skus": ["NOPE"]},
        "Unknown SKU: NOPE",
        id="unknown-sku-near-a-point",
    ),
    pytest.param(
        {"storeId": "S999", "lines": ONE},
        {"code": NOT_FOUND, "storeId": "S999"},
        "Unknown store: S999",
        id="unknown-store",
    ),
    pytest.param(
        {"near": {"lat": 91, "lon": -0.1419}, "lines": ONE},
        {"code": BAD, "field": "lat"},
        "Latitude must be between -90 and 90, got 91.0.",
        id="latitude-91",
    ),
    pytest.param(
        {"near": {"lat": 51.5152, "lon": -181}, "lines": ONE},
        {"code": BAD, "field": "lon"},
        "Longitude must be between -180 and 180, got -181.0.",
        id="longitude-minus-181",
    ),
    pytest.param(
        {"near": OXFORD, "radiusKm": 0, "lines": ONE},
        {"code": BAD, "field": "radiusKm"},
        "radiusKm must be more than 0 and at most 1000, got 0.0.",
        id="radius-0",
    ),
    pytest.param(
        {"near": OXFORD, "radiusKm": 5000, "lines": ONE},
        {"code": BAD, "field": "radiusKm"},
        "radiusKm must be more than 0 and at most 1000, got 5000.0.",
        id="radius-5000",
    ),
    pytest.param(
        {"storeId": "S001", "radiusKm": 10, "lines": ONE},
        {"code": BAD, "field": "radiusKm"},
        "radiusKm goes with near, not with storeId.",
        id="radius-with-a-store",
    ),
    pytest.param(
        {"storeId": "S001", "near": OXFORD, "lines": ONE},
        {"code": BAD, "field": "storeId"},
        "Give exactly one of storeId or near.",
        id="both-store-and-near",
    ),
    pytest.param(
        {"lines": ONE},
        {"code": BAD, "field": "storeId"},
        "Give exactly one of storeId or near.",
        id="neither-store-nor-near",
    ),
    pytest.param(
        {"storeId": "S001", "lines": ONE, "holdSeconds": 3600},
        {"code": BAD, "field": "holdSeconds", "allowed": [7200, 86400]},
        "holdSeconds must be one of [7200, 86400], got 3600.",
        id="hold-not-allowed",
    ),
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "", "quantity": 1}]},
        {"code": BAD, "field": "sku"},
        "sku must be 1 to 64 printable characters, got ''.",
        id="empty-sku",
    ),
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "   ", "quantity": 1}]},
        {"code": BAD, "field": "sku"},
        "sku must be 1 to 64 printable characters, got '   '.",
        id="blank-sku",
    ),
    pytest.param(
        {"storeId": "S001", "lines": ONE, "idempotencyKey": "k" * 129},
        {"code": BAD, "field": "idempotencyKey"},
        "idempotencyKey must be 1 to 128 printable characters.",
        id="idempotency-key-129-characters",
    ),
    pytest.param(
        {"storeId": "S001", "lines": ONE, "idempotencyKey": ""},
        {"code": BAD, "field": "idempotencyKey"},
        "idempotencyKey must be 1 to 128 printable characters.",
        id="idempotency-key-empty",
    ),
]


@pytest.mark.parametrize(("reserve_input", "extensions", "message"), BAD_RESERVES)
async def test_a_bad_reserve_is_refused_and_locks_nothing(
    http: httpx.AsyncClient,
    api: Gateway,
    stocked: None,
    reserve_input: dict[str, Any],
    extensions: dict[str, Any],
    message: str,
) -> None:
    # Given stock at two stores
    before = await world_as_ops_see_it(http, api)

    # When a customer reserves with bad input
    result = await gql(
        http, api, RESERVE, {"input": reserve_input}, api.token("customer", sub="alice")
    )

    # Then it is refused with the code and a clear message, and nothing was locked or written
    assert_refused(result, extensions, field="reserve")
    assert result.errors[0]["message"] == message
    assert await world_as_ops_see_it(http, api) == before


WRONG_TYPES = [
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": "3"}]},
        ["Int cannot represent non-integer value: '3'"],
        id="quantity-a-string",
    ),
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 2.5}]},
        ["Int cannot represent non-integer value: 2.5"],
        id="quantity-a-float",
    ),
    pytest.param(
        {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": None}]},
        ["Expected value of non-null type 'Int!' not to be None."],
        id="quantity-null",
    ),
    pytest.param(
        # An object where the list of lines goes, keyed by SKU: not a ReserveLineInput.
        {"storeId": "S001", "lines": {"SKU-1": 2}},
        [
            "to include required field 'sku'",
            "to include required field 'quantity'",
            "not to include unknown field 'SKU-1'",
        ],
        id="lines-an-object",
    ),
    pytest.param(
        {"storeId": "S001", "lines": "SKU-1"},
        ["Expected value of type 'ReserveLineInput' to be an object, found: 'SKU-1'."],
        id="lines-a-string",
    ),
]


@pytest.mark.parametrize(("reserve_input", "messages"), WRONG_TYPES)
async def test_a_reserve_with_wrong_types_is_refused_before_it_runs(
    http: httpx.AsyncClient,
    api: Gateway,
    stocked: None,
    reserve_input: dict[str, Any],
    messages: list[str],
) -> None:
    # Given stock at two stores
    before = await world_as_ops_see_it(http, api)

    # When a customer sends a value of the wrong type
    result = await gql(
        http, api, RESERVE, {"input": reserve_input}, api.token("customer", sub="alice")
    )

    # Then the request is refused as bad input, naming what is wrong, and nothing ran
    assert result.status == 200
    assert result.data is None
    assert result.codes == [BAD] * len(messages)
    for error, expected in zip(result.errors, messages, strict=True):
        assert error["message"].startswith("Variable '$input' has invalid value at .lines")
        assert expected in error["message"]
        assert_readable(error["message"])
        assert "path" not in error
    assert await world_as_ops_see_it(http, api) == before


def skus(count: int) -> list[str]:
    return [f"SKU-{n:03d}" for n in range(count)]


@pytest_asyncio.fixture(loop_scope="session")
async def many_skus(http: httpx.AsyncClient, api: Gateway) -> None:
    """S001 with one unit of each of 101 SKUs: enough stock for a reservation of 101 lines."""
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10})
    await given_stock(http, api, {("S001", sku): 1 for sku in skus(101)})


async def test_a_reservation_of_100_lines_is_made(
    http: httpx.AsyncClient, api: Gateway, many_skus: None
) -> None:
    # Given 100 SKUs in stock at S001 (the default policy allows one unit of each)
    lines = [{"sku": sku, "quantity": 1} for sku in skus(100)]

    # When a customer reserves one of each
    result = await gql(
        http,
        api,
        RESERVE,
        {"input": {"storeId": "S001", "lines": lines}},
        api.token("customer", sub="alice"),
    )

    # Then one reservation holds all 100 lines, and the last SKU's unit is locked
    (reservation,) = result.ok()["reserve"]["reservations"]
    assert reservation["storeId"] == "S001"
    assert reservation["status"] == "HELD"
    assert sorted(reservation["lines"], key=lambda line: line["sku"]) == lines
    ops = api.token("ops")
    assert (await gql(http, api, STOCK_LEVEL, {"store": "S001", "sku": "SKU-099"}, ops)).ok() == {
        "stockLevel": {"onHand": 1, "reserved": 1}
    }


async def test_a_reservation_of_101_lines_is_refused_and_locks_nothing(
    http: httpx.AsyncClient, api: Gateway, many_skus: None
) -> None:
    # Given 101 SKUs in stock at S001: only the number of lines is wrong
    lines = [{"sku": sku, "quantity": 1} for sku in skus(101)]
    rows_before = await database_rows(api.db)

    # When a customer reserves one of each
    result = await gql(
        http,
        api,
        RESERVE,
        {"input": {"storeId": "S001", "lines": lines}},
        api.token("customer", sub="alice"),
    )

    # Then it is refused, and nothing was locked
    assert_refused(result, {"code": BAD, "field": "lines"}, field="reserve")
    assert result.errors[0]["message"] == "A reservation takes at most 100 lines, got 101."
    ops = api.token("ops")
    assert (await gql(http, api, STOCK_LEVEL, {"store": "S001", "sku": "SKU-000"}, ops)).ok() == {
        "stockLevel": {"onHand": 1, "reserved": 0}
    }
    assert (await gql(http, api, PICKUP_QUEUE, {"store": "S001"}, ops)).ok() == {"pickupQueue": []}
    assert await database_rows(api.db) == rows_before


async def test_an_idempotency_key_of_128_characters_is_accepted(
    http: httpx.AsyncClient, api: Gateway, stocked: None
) -> None:
    # Given stock at S001
    # When a customer reserves with the longest key allowed
    result = await gql(
        http,
        api,
        RESERVE,
        {"input": {"storeId": "S001", "lines": ONE, "idempotencyKey": "k" * 128}},
        api.token("customer", sub="alice"),
    )

    # Then the reservation is made
    assert [r["status"] for r in result.ok()["reserve"]["reservations"]] == ["HELD"]


# --- syncStock -----------------------------------------------------------------------------------

BAD_SYNCS = [
    pytest.param(
        [
            {"storeId": "S001", "sku": "SKU-1", "onHand": 50},
            {"storeId": "S001", "sku": "SKU-2", "onHand": -1},
        ],
        {"code": BAD, "field": "onHand"},
        "onHand of SKU-2 at S001 must be from 0 to 1000000000, got -1.",
        id="negative-on-hand",
    ),
    pytest.param(
        [{"storeId": "S001", "sku": "SKU-1", "onHand": 50, "safetyStock": -3}],
        {"code": BAD, "field": "safetyStock"},
        "safetyStock of SKU-1 at S001 must be from 0 to 1000000000, got -3.",
        id="negative-safety-stock",
    ),
    pytest.param(
        [
            {"storeId": "S001", "sku": "SKU-1", "onHand": 50},
            {"storeId": "S999", "sku": "SKU-1", "onHand": 5},
        ],
        {"code": NOT_FOUND, "storeIds": ["S999"]},
        "Unknown store: S999",
        id="unknown-store",
    ),
    pytest.param(
        [
            {"storeId": "S001", "sku": "SKU-1", "onHand": 50},
            {"storeId": "S001", "sku": "SKU-1", "onHand": 60},
        ],
        {"code": BAD, "field": "level"},
        "appears twice in one call",
        id="the-same-level-twice",
    ),
    pytest.param(
        [{"storeId": "S001", "sku": "", "onHand": 5}],
        {"code": BAD, "field": "sku"},
        "sku must be 1 to 64 printable characters",
        id="empty-sku",
    ),
    pytest.param([], {"code": BAD, "field": "levels"}, "at least one", id="no-levels"),
]


@pytest.mark.parametrize(("levels", "extensions", "message"), BAD_SYNCS)
async def test_a_bad_stock_sync_is_refused_and_applies_nothing(
    http: httpx.AsyncClient,
    api: Gateway,
    stocked: None,
    levels: list[dict[str, Any]],
    extensions: dict[str, Any],
    message: str,
) -> None:
    # Given stock at two stores
    before = await world_as_ops_see_it(http, api)

    # When ops send a sync with a bad level among good ones
    result = await gql(http, api, SYNC_STOCK, {"levels": levels}, api.token("ops"))

    # Then the whole batch is refused, and no level changed
    assert_refused(result, extensions, field="syncStock", message=message)
    assert await world_as_ops_see_it(http, api) == before


# --- upsertStores --------------------------------------------------------------------------------

RENAMED = {**OXFORD_CIRCUS, "name": "Oxford Circus (renamed)"}
NEW_STORE = {
    "id": "S004",
    "name": "Canary Wharf",
    "lat": 51.5054,
    "lon": -0.0235,
    "timezone": "Europe/London",
}

BAD_STORES = [
    pytest.param(
        {**NEW_STORE, "lat": 100},
        {"code": BAD, "field": "lat"},
        "Latitude must be between -90 and 90, got 100.0.",
        id="latitude-100",
    ),
    pytest.param(
        {**NEW_STORE, "lon": 200},
        {"code": BAD, "field": "lon"},
        "Longitude must be between -180 and 180, got 200.0.",
        id="longitude-200",
    ),
    pytest.param(
        {**NEW_STORE, "timezone": "Mars/Olympus"},
        {"code": BAD, "field": "timezone"},
        "Store S004: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/London).",
        id="timezone-on-mars",
    ),
    pytest.param(
        {**NEW_STORE, "name": "  "},
        {"code": BAD, "field": "name"},
        "Store S004: name must be 1 to 200 characters.",
        id="blank-name",
    ),
    pytest.param(
        {**NEW_STORE, "id": "S001"},
        {"code": BAD, "field": "store"},
        "appears twice in one call",
        id="the-same-store-twice",
    ),
]


@pytest.mark.parametrize(("bad_store", "extensions", "message"), BAD_STORES)
async def test_a_bad_store_is_refused_and_no_store_changes(
    http: httpx.AsyncClient,
    api: Gateway,
    stocked: None,
    bad_store: dict[str, Any],
    extensions: dict[str, Any],
    message: str,
) -> None:
    # Given S001 and S002
    before = await world_as_ops_see_it(http, api)

    # When ops rename S001 and add a bad store in the same call
    result = await gql(http, api, UPSERT_STORES, {"stores": [RENAMED, bad_store]}, api.token("ops"))

    # Then the call is refused, S001 keeps its name and no store was added
    assert_refused(result, extensions, field="upsertStores", message=message)
    after = await world_as_ops_see_it(http, api)
    assert after["view"]["stores"] == [OXFORD_CIRCUS, KINGS_CROSS]
    assert after == before


@pytest.mark.parametrize(
    "bad_store",
    [
        pytest.param({**NEW_STORE, "lat": 100}, id="latitude"),
        pytest.param({**NEW_STORE, "lon": 200}, id="longitude"),
        pytest.param({**NEW_STORE, "timezone": "Mars/Olympus"}, id="timezone"),
        pytest.param({**NEW_STORE, "name": "  "}, id="name"),
    ],
)
async def test_the_message_names_the_store_at_fault_in_a_batch(
    http: httpx.AsyncClient, api: Gateway, stocked: None, bad_store: dict[str, Any]
) -> None:
    # Given a batch of stores (up to 1000 in one call) with one bad one
    batch = [RENAMED, KINGS_CROSS, bad_store]

    # When ops send it
    result = await gql(http, api, UPSERT_STORES, {"stores": batch}, api.token("ops"))

    # Then the message says which store to fix
    assert result.codes == [BAD]
    assert "S004" in result.errors[0]["message"]


# --- updateReservationPolicy ---------------------------------------------------------------------

BAD_POLICIES = [
    pytest.param(
        {"defaultHoldSeconds": 3600},
        {"code": BAD, "field": "defaultHoldSeconds"},
        "defaultHoldSeconds (3600) must be one of allowedHoldSeconds [7200, 86400].",
        id="default-not-allowed",
    ),
    pytest.param(
        {"maxActiveReservationsPerCustomer": 0},
        {"code": BAD, "field": "maxActiveReservationsPerCustomer"},
        "maxActiveReservationsPerCustomer must be between 1 and 1000000, got 0.",
        id="no-active-reservations",
    ),
    pytest.param(
        {"maxUnitsPerSkuPerCustomer": -1},
        {"code": BAD, "field": "maxUnitsPerSkuPerCustomer"},
        "maxUnitsPerSkuPerCustomer must be between 1 and 1000000, got -1.",
        id="negative-units",
    ),
    pytest.param(
        {"allowedHoldSeconds": []},
        {"code": BAD, "field": "allowedHoldSeconds"},
        "allowedHoldSeconds needs at least one duration.",
        id="no-holds",
    ),
    pytest.param(
        {"allowedHoldSeconds": [30, 7200]},
        {"code": BAD, "field": "allowedHoldSeconds"},
        "Each hold duration must be between 60 and 2592000 seconds, got 30.",
        id="hold-too-short",
    ),
    pytest.param(
        {"expiryWarningSeconds": 7200},
        {"code": BAD, "field": "expiryWarningSeconds"},
        "expiryWarningSeconds must be at least 0 and shorter than the shortest hold (7200 s), "
        "got 7200.",
        id="warning-not-before-expiry",
    ),
]


@pytest.mark.parametrize(("change", "extensions", "message"), BAD_POLICIES)
async def test_a_bad_policy_is_refused_and_the_old_one_stays(
    http: httpx.AsyncClient,
    api: Gateway,
    stocked: None,
    change: dict[str, Any],
    extensions: dict[str, Any],
    message: str,
) -> None:
    # Given the default policy
    before = await world_as_ops_see_it(http, api)

    # When ops replace it with one that breaks a rule
    result = await gql(
        http, api, UPDATE_POLICY, {"input": {**DEFAULT_POLICY, **change}}, api.token("ops")
    )

    # Then it is refused, and the default policy is still in force
    assert_refused(result, extensions, field="updateReservationPolicy")
    assert result.errors[0]["message"] == message
    after = await world_as_ops_see_it(http, api)
    assert after["view"]["reservationPolicy"] == DEFAULT_POLICY
    assert after == before


# --- reads ---------------------------------------------------------------------------------------

BAD_READS = [
    pytest.param(
        AVAILABILITY,
        {"skus": [], "near": OXFORD},
        {"code": BAD, "field": "skus"},
        "Give at least one SKU.",
        id="availability-of-no-skus",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": skus(101), "near": OXFORD},
        {"code": BAD, "field": "skus"},
        "At most 100 SKUs per query.",
        id="availability-of-101-skus",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": ["SKU-1", "SKU-1"], "near": OXFORD},
        {"code": BAD, "field": "skus"},
        "Each SKU may appear only once.",
        id="availability-of-a-sku-twice",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": ["SKU-1", "SKU-2"], "quantities": [1], "near": OXFORD},
        {"code": BAD, "field": "quantities"},
        "quantities must have one entry per SKU.",
        id="availability-quantities-length-mismatch",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": ["SKU-1"], "quantities": [0], "near": OXFORD},
        {"code": BAD, "field": "quantities"},
        "Each quantity must be at least 1.",
        id="availability-quantity-0",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": ["SKU-1"], "near": OXFORD, "first": 0},
        {"code": BAD, "field": "first"},
        "first must be from 1 to 100, got 0.",
        id="availability-first-0",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": ["SKU-1"], "near": OXFORD, "first": 101},
        {"code": BAD, "field": "first"},
        "first must be from 1 to 100, got 101.",
        id="availability-first-101",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": ["SKU-1"], "near": {"lat": 91, "lon": 0}},
        {"code": BAD, "field": "lat"},
        "Latitude must be between -90 and 90, got 91.0.",
        id="availability-latitude-91",
    ),
    pytest.param(
        AVAILABILITY,
        {"skus": ["SKU-1"], "near": OXFORD, "radiusKm": 5000},
        {"code": BAD, "field": "radiusKm"},
        "radiusKm must be more than 0 and at most 1000, got 5000.0.",
        id="availability-radius-5000",
    ),
    pytest.param(
        STORES_NEAR,
        {"near": {"lat": 0, "lon": -181}},
        {"code": BAD, "field": "lon"},
        "Longitude must be between -180 and 180, got -181.0.",
        id="stores-longitude-minus-181",
    ),
    pytest.param(
        STORES_NEAR,
        {"near": OXFORD, "radiusKm": 0},
        {"code": BAD, "field": "radiusKm"},
        "radiusKm must be more than 0 and at most 1000, got 0.0.",
        id="stores-radius-0",
    ),
    pytest.param(
        STORES_NEAR,
        {"first": 101},
        {"code": BAD, "field": "first"},
        "first must be from 1 to 100, got 101.",
        id="stores-first-101",
    ),
]


@pytest.mark.parametrize(("query", "variables", "extensions", "message"), BAD_READS)
async def test_a_bad_public_query_is_refused_with_a_clear_message(
    http: httpx.AsyncClient,
    api: Gateway,
    stocked: None,
    query: str,
    variables: dict[str, Any],
    extensions: dict[str, Any],
    message: str,
) -> None:
    # Given stock at two stores
    # When an anonymous shopper searches with bad arguments
    result = await gql(http, api, query, variables)

    # Then the search is refused, saying what to change
    root = "availability" if query is AVAILABILITY else "stores"
    assert_refused(result, extensions, field=root)
    assert result.errors[0]["message"] == message
