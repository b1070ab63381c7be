"""The running service: expiry with nobody acting, and list queries without N+1 statements."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPICursor

from gateway.workers import current_worker
from tests.api.conftest import Gateway, gql
from tests.api.test_reserve_http import RESERVE, given_a_store_with_stock

pytestmark = pytest.mark.asyncio(loop_scope="session")

STATUS = "query($id: ID!) { reservation(id: $id) { status secondsRemaining expiredAt } }"
QUEUE = """
query($store: ID!) {
  pickupQueue(storeId: $store) { id code status lines { sku quantity } store { id name } }
}
"""


async def test_the_sweeper_expires_a_reservation_within_2_seconds_of_its_time(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_a_store_with_stock(http, api)
    alice = api.token("customer", sub="alice")
    reserved = await gql(
        http,
        api,
        RESERVE,
        {"input": {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 2}]}},
        alice,
    )
    reservation_id = reserved.ok()["reserve"]["reservations"][0]["id"]

    api.clock.advance(7200)  # the hold is over; nobody calls anything but reads
    deadline = time.monotonic() + 2.0
    while True:
        seen = (await gql(http, api, STATUS, {"id": reservation_id}, alice)).ok()["reservation"]
        if seen["status"] == "EXPIRED" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)

    assert seen["status"] == "EXPIRED", "not expired within 2 s of expiresAt"
    assert seen["secondsRemaining"] == 0
    staff = api.token("staff", store="S001")
    level = await gql(
        http,
        api,
        '{ stockLevel(storeId: "S001", sku: "SKU-1") { reserved available } }',
        token=staff,
    )
    assert level.ok()["stockLevel"] == {"reserved": 0, "available": 10}


async def test_a_list_query_costs_the_same_few_statements_however_long_the_list(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_a_store_with_stock(http, api, on_hand=100)
    pos = api.token("pos", store="S001")

    async def statements_for_queue_of(n: int) -> int:
        for i in range(n):
            (
                await gql(
                    http,
                    api,
                    RESERVE,
                    {"input": {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 1}]}},
                    api.token("customer", sub=f"shopper-{n}-{i}"),
                )
            ).ok()
        selects: list[str] = []

        def count(conn: Connection, cursor: DBAPICursor, statement: str, *args: object) -> None:
            if current_worker.get() is not None:
                return  # the gateway's workers query on their own: not the request's
            if statement.lstrip().upper().startswith("SELECT"):
                selects.append(statement)

        engine = api.app.state.runtime.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            queue = (await gql(http, api, QUEUE, {"store": "S001"}, pos)).ok()["pickupQueue"]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert all(r["store"]["id"] == "S001" and r["lines"] for r in queue)
        return len(selects)

    (await gql(http, api, "{ stores { id } }")).ok()  # the store directory is read once
    few = await statements_for_queue_of(2)
    many = await statements_for_queue_of(20)

    # The reservations and their lines; their stores come from the in-process store directory.
    # Two statements for 2 as for 22 reservations.
    assert few == many == 2
