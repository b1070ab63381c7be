"""Steps shared by the API tests: stores, stock and reservations set up through the API, what an
ops token sees afterwards, every table's rows, and the shape of a clean refusal."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlalchemy as sa

from adapters.db.engine import Database
from adapters.db.tables import metadata
from tests.api.conftest import Endpoint, Result, gql

UPSERT_STORES = """
mutation($stores: [StoreInput!]!) { upsertStores(stores: $stores) { id } }
"""
SYNC_STOCK = """
mutation($levels: [StockLevelInput!]!) { syncStock(levels: $levels) { applied } }
"""
STORES_WITH_STOCK = """
mutation($stores: [StoreInput!]!, $levels: [StockLevelInput!]!) {
  upsertStores(stores: $stores) { id }
  syncStock(levels: $levels) { applied }
}
"""
RESERVE = """
mutation($input: ReserveInput!) {
  reserve(input: $input) {
    id reservations { id code customerId storeId channel status lines { sku quantity } }
  }
}
"""
# What ops see of the world around S001: its stock of SKU-1, its pickup queue, the stores and the
# policy (no generated ids, so a test can say exactly what it expects). A refused call must leave
# all of it as it was.
OPS_VIEW = """
query {
  stockLevel(storeId: "S001", sku: "SKU-1") { onHand reserved available }
  pickupQueue(storeId: "S001") { customerId channel status lines { sku quantity } }
  stores { id name lat lon timezone }
  reservationPolicy {
    defaultHoldSeconds allowedHoldSeconds maxActiveReservationsPerCustomer
    maxUnitsPerSkuPerCustomer expiryWarningSeconds maxStoresPerGroup
  }
}
"""

# Two London stores about 2 km apart.
OXFORD_CIRCUS = {
    "id": "S001",
    "name": "Oxford Circus",
    "lat": 51.5152,
    "lon": -0.1419,
    "timezone": "Europe/London",
}
KINGS_CROSS = {
    "id": "S002",
    "name": "King's Cross",
    "lat": 51.5308,
    "lon": -0.1238,
    "timezone": "Europe/London",
}
DEFAULT_POLICY = {
    "defaultHoldSeconds": 7200,
    "allowedHoldSeconds": [7200, 86400],
    "maxActiveReservationsPerCustomer": 5,
    "maxUnitsPerSkuPerCustomer": 10,
    "expiryWarningSeconds": 900,
    "maxStoresPerGroup": 3,
}


async def given_stores(http: httpx.AsyncClient, api: Endpoint, *stores: dict[str, Any]) -> None:
    chosen = list(stores) or [OXFORD_CIRCUS, KINGS_CROSS]
    (await gql(http, api, UPSERT_STORES, {"stores": chosen}, api.token("ops"))).ok()


async def given_stock(
    http: httpx.AsyncClient, api: Endpoint, levels: dict[tuple[str, str], int]
) -> None:
    rows = [{"storeId": s, "sku": k, "onHand": q} for (s, k), q in levels.items()]
    result = (await gql(http, api, SYNC_STOCK, {"levels": rows}, api.token("ops"))).ok()
    assert result == {"syncStock": {"applied": len(rows)}}


async def given_stores_with_stock(
    http: httpx.AsyncClient, api: Endpoint, levels: dict[tuple[str, str], int]
) -> None:
    """S001 and S002, and these on-hand counts, in one request."""
    rows = [{"storeId": s, "sku": k, "onHand": q} for (s, k), q in levels.items()]
    variables = {"stores": [OXFORD_CIRCUS, KINGS_CROSS], "levels": rows}
    result = (await gql(http, api, STORES_WITH_STOCK, variables, api.token("ops"))).ok()
    assert result["syncStock"] == {"applied": len(rows)}


async def given_reservation(
    http: httpx.AsyncClient, api: Endpoint, token: str, **reserve_input: Any
) -> dict[str, Any]:
    """One reservation made through `reserve`; returns it as the API gave it back."""
    variables = {"input": reserve_input}
    (reservation,) = (await gql(http, api, RESERVE, variables, token)).ok()["reserve"][
        "reservations"
    ]
    return dict(reservation)


async def ops_view(http: httpx.AsyncClient, api: Endpoint) -> dict[str, Any]:
    return in_order(dict((await gql(http, api, OPS_VIEW, token=api.token("ops"))).ok()))


def in_order(view: dict[str, Any]) -> dict[str, Any]:
    # Two holds made at the same instant expire together; their order is not what is compared.
    view["pickupQueue"] = sorted(
        view["pickupQueue"], key=lambda r: (r["customerId"], r["channel"] or "")
    )
    return view


_DELIVERY_COLUMNS = {"outbox": ("published_at", "attempts")}
# What counts requests rather than what they change: a refused reserve is counted as an attempt
# (the KPIs' reservation success rate), and the count is written in the background.
_COUNTING_TABLES = frozenset({"reserve_attempts"})


async def database_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: stock, reservations, groups, holds, outbox, ledger, policy."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in _COUNTING_TABLES:
                continue
            # The relay marks outbox rows published in the background: delivery bookkeeping, not
            # a change a request made.
            columns = [
                c for c in table.columns if c.name not in _DELIVERY_COLUMNS.get(table.name, ())
            ]
            ordered = sa.select(*columns).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in (await conn.execute(ordered)).all()]
    return rows


def assert_refused(
    result: Result,
    extensions: dict[str, Any],
    *,
    field: str | None,
    nullable: bool = False,
    message: str | None = None,
) -> None:
    """One error with exactly these extensions and a message a person can act on (no stack
    trace); the field's data is null. `field` is None when the request failed before execution
    (parse, validation, variable types): then there is no path and no data at all."""
    assert result.status == 200
    assert result.data == ({field: None} if nullable and field else None)
    assert [error.get("extensions") for error in result.errors] == [extensions]
    (error,) = result.errors
    assert error.get("path") == ([field] if field else None)
    assert_readable(error["message"])
    if message is not None:
        assert message in error["message"]
    assert "Traceback" not in json.dumps(result.body)


def assert_readable(message: str) -> None:
    assert message.strip()
    assert "Traceback" not in message
    assert 'File "' not in message
