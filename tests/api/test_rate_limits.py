"""Rate limits per caller over real HTTP and WebSockets, on a gateway with tight limits: a caller
over its limit gets 429 RATE_LIMITED with a retry-after and nothing it asked for happens, other
callers go on, the webhooks are refused before their body is read or anything is looked up, and
after the retry-after the caller is served again (the gateway's clock is moved, nobody sleeps).
On redis:// two gateways share a caller's budget; a Redis that does not answer lets requests
through."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from adapters.db.engine import Database
from adapters.db.tables import intake_messages, wms_inbox
from domain.intake import SalesChannel
from services.intake import accounts
from services.intake.accounts import AccountChange
from tests.api.conftest import Gateway, intake_stopped, running_gateway
from tests.api.given import RESERVE, database_rows, given_stores_with_stock
from tests.api.test_intake_flow import SECRET, an_order, generic_body, given_account, post
from tests.helpers import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

# People 2 at once, systems 4, anonymous addresses 1, then one a second; the intake 2 per
# account, the WMS 1 per address. The test client itself (127.0.0.1) is the trusted proxy, so
# X-Forwarded-For stands for the address of the caller behind it.
TIGHT: dict[str, Any] = {
    "rate_limit_graphql_per_second": 1,
    "rate_limit_graphql_burst": 2,
    "rate_limit_graphql_service_per_second": 1,
    "rate_limit_graphql_service_burst": 4,
    "rate_limit_graphql_anonymous_per_second": 1,
    "rate_limit_graphql_anonymous_burst": 1,
    "rate_limit_intake_per_second": 1,
    "rate_limit_intake_burst": 2,
    "rate_limit_wms_per_second": 1,
    "rate_limit_wms_burst": 1,
    "trusted_proxies": ["127.0.0.1/32"],
}
MINE = "{ myReservations { id } }"
POLICY = "{ reservationPolicy { defaultHoldSeconds } }"
QUEUE = '{ pickupQueue(storeId: "S001") { id } }'
# A subscription refused at once for a reason of its own: proof that the operation ran.
UNKNOWN_UPDATES = (
    'subscription { reservationUpdates(id: "00000000-0000-0000-0000-000000000000") { type } }'
)
WS_SECONDS = 5.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    """This module's gateway (the `api` fixture resets it before each test): tight limits."""
    async with running_gateway(database_url, db, **TIGHT) as running:
        yield running


def unique(name: str) -> str:
    """A subject or account of this test alone (a Redis shared by runs keeps counts a moment)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def an_address() -> str:
    return f"2001:db8::{random.getrandbits(32):x}"


async def post_graphql(
    http: httpx.AsyncClient,
    api: Gateway,
    query: str,
    *,
    token: str | None = None,
    address: str | None = None,
    variables: dict[str, Any] | None = None,
) -> httpx.Response:
    headers = {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if address is not None:
        headers["x-forwarded-for"] = address
    return await http.post(
        f"{api.url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )


def assert_rate_limited(response: httpx.Response, retry_after: int = 1) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry_after)
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfterSeconds": retry_after}
    assert f"{retry_after} s" in error["message"]


def assert_served(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.json()


# --- GraphQL over HTTP ----------------------------------------------------------------------------


async def test_a_caller_over_its_limit_gets_429_with_a_retry_after_and_others_go_on(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    alice = api.token("customer", sub=unique("alice"))
    bob = api.token("customer", sub=unique("bob"))

    for _ in range(2):  # the burst
        assert_served(await post_graphql(http, api, MINE, token=alice))
    assert_rate_limited(await post_graphql(http, api, MINE, token=alice))

    assert_served(await post_graphql(http, api, MINE, token=bob))  # another subject
    assert_rate_limited(await post_graphql(http, api, MINE, token=alice))  # still refused


async def test_after_the_retry_after_the_caller_is_served_again_at_the_steady_rate(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    alice = api.token("customer", sub=unique("alice"))
    for _ in range(2):
        assert_served(await post_graphql(http, api, MINE, token=alice))
    refused = await post_graphql(http, api, MINE, token=alice)
    assert_rate_limited(refused)

    api.clock.advance(int(refused.headers["retry-after"]))

    assert_served(await post_graphql(http, api, MINE, token=alice))
    assert_rate_limited(await post_graphql(http, api, MINE, token=alice))  # one a second


async def test_the_service_roles_have_a_limit_of_their_own(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    pos = api.token("pos", sub=unique("till"), store="S001")

    for _ in range(4):  # ROPOS_RATE_LIMIT_GRAPHQL_SERVICE_BURST, not the 2 of people
        assert_served(await post_graphql(http, api, QUEUE, token=pos))
    assert_rate_limited(await post_graphql(http, api, QUEUE, token=pos))


async def test_an_anonymous_caller_is_limited_by_its_address(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    here, there = an_address(), an_address()

    assert_served(await post_graphql(http, api, POLICY, address=here))
    assert_rate_limited(await post_graphql(http, api, POLICY, address=here))

    assert_served(await post_graphql(http, api, POLICY, address=there))
    # A token is a caller of its own, wherever it calls from.
    customer = api.token("customer", sub=unique("carol"))
    assert_served(await post_graphql(http, api, POLICY, token=customer, address=here))


async def test_a_token_that_does_not_verify_counts_against_the_address(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    here = an_address()

    # The garbage token spends the address's budget (the public field is still answered)...
    first = await post_graphql(http, api, POLICY, token="garbage", address=here)
    assert first.status_code == 200
    # ...so neither more garbage nor a plain anonymous request gets through from there.
    assert_rate_limited(await post_graphql(http, api, POLICY, token="more-garbage", address=here))
    assert_rate_limited(await post_graphql(http, api, POLICY, address=here))


async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # A peer that is not a trusted proxy (any loopback address but 127.0.0.1) is itself the
    # caller, whatever address it claims to forward for.
    peer = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    transport = httpx.AsyncHTTPTransport(local_address=peer)
    async with httpx.AsyncClient(transport=transport, timeout=30) as untrusted:
        assert_served(await post_graphql(untrusted, api, POLICY, address=an_address()))
        assert_rate_limited(await post_graphql(untrusted, api, POLICY, address=an_address()))

    # Behind the trusted proxy, a client's own X-Forwarded-For entries (left of the address the
    # proxy appended) change nothing.
    client = an_address()
    assert_served(await post_graphql(http, api, POLICY, address=client))
    spoofed = f"{an_address()}, {client}"
    assert_rate_limited(await post_graphql(http, api, POLICY, address=spoofed))


async def test_a_refused_mutation_changes_nothing(http: httpx.AsyncClient, api: Gateway) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5})
    alice = api.token("customer", sub=unique("alice"))
    for _ in range(2):
        assert_served(await post_graphql(http, api, MINE, token=alice))
    reserve = {"input": {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 1}]}}
    before = await database_rows(api.db)

    refused = await post_graphql(http, api, RESERVE, token=alice, variables=reserve)

    assert_rate_limited(refused)
    assert await database_rows(api.db) == before
    # The same request, once the caller may again, is one that changes things.
    api.clock.advance(1)
    assert_served(await post_graphql(http, api, RESERVE, token=alice, variables=reserve))
    assert await database_rows(api.db) != before


# --- the webhooks ---------------------------------------------------------------------------------


async def count(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_the_intake_is_limited_per_account_before_anything_is_read_or_stored(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5})
    await given_account(api, SalesChannel.GENERIC)
    deps = api.app.state.runtime.deps
    await accounts.upsert_account(
        AccountChange(channel=SalesChannel.GENERIC, account="beta", secret=SECRET),
        uow=deps.uow,
        clock=deps.clock,
        cache=deps.intake_accounts,
    )
    async with intake_stopped(api):  # what is stored stays as it is
        for n in (1, 2):  # the account's burst
            assert (await post(http, api, generic_body(an_order(f"ORD-{n}")))).status_code == 202
        stored = await count(api.db, intake_messages)

        refused = await post(http, api, generic_body(an_order("ORD-3")))
        too_large = await post(http, api, b"x" * (api.settings.intake_max_bytes + 1))

        for response in (refused, too_large):  # 429, not 413: the body was never read
            assert response.status_code == 429, response.text
            assert response.headers["retry-after"] == "1"
            error = response.json()["error"]
            assert error["code"] == "RATE_LIMITED"
            assert error["retryAfterSeconds"] == 1
            assert "rate limit" in error["message"]
            assert "backlog" not in error["message"]  # the other 429 says so
            assert "maxBacklog" not in error
        assert await count(api.db, intake_messages) == stored
        # Another account is not refused; after the retry-after this one is served again.
        assert (
            await post(http, api, generic_body(an_order("B-1")), account="beta")
        ).status_code == (202)
        api.clock.advance(1)
        assert (await post(http, api, generic_body(an_order("ORD-3")))).status_code == 202


async def test_an_unknown_account_path_is_limited_before_it_is_looked_up(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    ghost = unique("ghost")
    answers = [
        (await post(http, api, b"{}", account=ghost)).status_code for _ in range(3)
    ]  # 404 is what a look-up answers; the third is not looked up at all

    assert answers == [404, 404, 429]


async def test_the_wms_edge_is_limited_per_address_before_the_token_or_body(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5})
    wms = {"authorization": f"Bearer {api.token('wms')}"}
    here = an_address()
    level = {"storeId": "S001", "sku": "SKU-1", "onHand": 7, "sequence": 1}

    async def push(batch_id: str, headers: dict[str, str], address: str) -> httpx.Response:
        body = json.dumps({"batchId": batch_id, "levels": [level]})
        return await http.post(
            f"{api.url}/wms/stock-levels",
            content=body,
            headers={**headers, "content-type": "application/json", "x-forwarded-for": address},
        )

    assert (await push("B-1", wms, here)).status_code == 200
    kept = await count(api.db, wms_inbox)
    before = await database_rows(api.db)

    refused = await push("B-2", wms, here)
    anonymous = await push("B-3", {}, here)  # 429, not 401: the token is not even looked at

    for response in (refused, anonymous):
        assert response.status_code == 429, response.text
        assert response.headers["retry-after"] == "1"
        error = response.json()["error"]
        assert (error["code"], error["retryAfterSeconds"]) == ("RATE_LIMITED", 1)
    assert await count(api.db, wms_inbox) == kept
    assert await database_rows(api.db) == before
    # Another address is not limited (and is refused for what it is: no token).
    assert (await push("B-4", {}, an_address())).status_code == 401
    api.clock.advance(1)
    assert (await push("B-2", wms, here)).status_code == 200


# --- GraphQL over WebSocket -----------------------------------------------------------------------


async def open_socket(api: Gateway, protocol: str) -> ClientConnection:
    url = api.url.replace("http://", "ws://", 1) + "/graphql"
    return await connect(url, subprotocols=[Subprotocol(protocol)], open_timeout=WS_SECONDS)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), WS_SECONDS))
    assert isinstance(message, dict)
    return message


async def operation_errors(ws: ClientConnection, op_id: str) -> list[dict[str, Any]]:
    """The errors the server answers operation `op_id` with (in whatever message carries them)."""
    while True:
        message = await receive(ws)
        if message.get("id") != op_id:
            continue  # keep-alives, another operation's messages
        payload: Any = message.get("payload")
        if message["type"] == "error":
            return list(payload) if isinstance(payload, list) else [payload]
        if message["type"] in ("next", "data") and payload.get("errors"):
            return list(payload["errors"])
        assert message["type"] != "complete", f"{op_id} completed without an error"


def codes(errors: list[dict[str, Any]]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in errors]


async def test_a_subscribe_over_the_limit_is_refused_on_that_operation_and_the_socket_stays(
    api: Gateway,
) -> None:
    alice = api.token("customer", sub=unique("alice"))
    ws = await open_socket(api, "graphql-transport-ws")
    try:
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer(alice)}))
        assert (await receive(ws))["type"] == "connection_ack"  # 1 of 2
        subscribe = {"type": "subscribe", "payload": {"query": UNKNOWN_UPDATES}}
        await ws.send(json.dumps({**subscribe, "id": "1"}))
        assert codes(await operation_errors(ws, "1")) == ["NOT_FOUND"]  # 2 of 2: it ran

        await ws.send(json.dumps({**subscribe, "id": "2"}))
        (refused,) = await operation_errors(ws, "2")

        assert refused["extensions"] == {"code": "RATE_LIMITED", "retryAfterSeconds": 1}
        api.clock.advance(1)
        await ws.send(json.dumps({**subscribe, "id": "3"}))  # the same socket, served again
        assert codes(await operation_errors(ws, "3")) == ["NOT_FOUND"]
    finally:
        await ws.close()


async def test_a_legacy_start_over_the_limit_is_refused_on_that_operation(api: Gateway) -> None:
    alice = api.token("customer", sub=unique("alice"))
    ws = await open_socket(api, "graphql-ws")
    try:
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer(alice)}))
        assert (await receive(ws))["type"] == "connection_ack"
        start = {"type": "start", "payload": {"query": UNKNOWN_UPDATES}}
        await ws.send(json.dumps({**start, "id": "1"}))
        assert codes(await operation_errors(ws, "1")) == ["NOT_FOUND"]

        await ws.send(json.dumps({**start, "id": "2"}))
        assert codes(await operation_errors(ws, "2")) == ["RATE_LIMITED"]

        api.clock.advance(1)
        await ws.send(json.dumps({**start, "id": "3"}))
        assert codes(await operation_errors(ws, "3")) == ["NOT_FOUND"]
    finally:
        await ws.close()


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_connection_init_over_the_limit_is_refused(
    http: httpx.AsyncClient, api: Gateway, protocol: str
) -> None:
    alice = api.token("customer", sub=unique("alice"))
    for _ in range(2):
        assert_served(await post_graphql(http, api, MINE, token=alice))  # HTTP and WS: one budget

    ws = await open_socket(api, protocol)
    try:
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer(alice)}))
        if protocol == "graphql-ws":
            refused = await receive(ws)
            assert refused["type"] == "connection_error"
            assert refused["payload"]["extensions"] == {
                "code": "RATE_LIMITED",
                "retryAfterSeconds": 1,
            }
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WS_SECONDS)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == (4429 if protocol == "graphql-transport-ws" else 1011)
    finally:
        await ws.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- across replicas, and without Redis -----------------------------------------------------------


async def test_two_gateways_share_a_callers_budget_through_redis(
    http: httpx.AsyncClient, database_url: str, clean_db: Database
) -> None:
    async with (
        running_gateway(database_url, clean_db, **TIGHT) as one,
        running_gateway(database_url, clean_db, **TIGHT) as other,
    ):
        shared = one.settings.broker_url.startswith("redis")
        alice = one.token("customer", sub=unique("alice"))
        for _ in range(2):
            assert_served(await post_graphql(http, one, MINE, token=alice))

        across = await post_graphql(http, other, MINE, token=alice)

        if shared:  # redis://: every replica counts against the same budget
            assert_rate_limited(across)
        else:  # memory://, the embedded mode: one process, its own counts
            assert_served(across)
        assert_rate_limited(await post_graphql(http, one, MINE, token=alice))


async def test_a_redis_that_does_not_answer_lets_requests_through(
    http: httpx.AsyncClient, database_url: str, clean_db: Database
) -> None:
    closed_port = free_port()  # nothing listens there
    async with running_gateway(
        database_url, clean_db, **TIGHT, broker_url=f"redis://127.0.0.1:{closed_port}/0"
    ) as gateway:
        store = gateway.app.state.runtime.rate_limits.store
        alice = gateway.token("customer", sub=unique("alice"))

        answers = [await post_graphql(http, gateway, MINE, token=alice) for _ in range(5)]

        for response in answers:  # 5, over the burst of 2: the limit fails open
            assert_served(response)
        assert store.failed_open >= 5
