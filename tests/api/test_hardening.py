"""The gateway's edges, over real HTTP and WebSocket: tokens it must not trust, keys rotated under
it, a store's token kept to its store on every socket, introspection, the sizes it accepts, the
browser origins it answers, and what a store's POS sees of the customer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from adapters.db.engine import Database
from domain.access import MASKED_CUSTOMER_ID, Role
from gateway.app import GraphQLApp
from gateway.auth import issue_token
from gateway.settings import Settings
from tests.api.conftest import Endpoint, Gateway, gql, running_gateway
from tests.api.given import assert_readable, given_reservation, given_stores_with_stock
from tests.api.test_pos_webhooks import (  # the receiver fixture is used by name
    Receiver,
    given_a_webhook_and_a_ready_reservation,
    receiver,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

__all__ = ["receiver"]

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
STORE_ROLES = ["pos", "staff"]
SECONDS = 10.0  # a generous bound on any one answer from the gateway

SHOP = "https://shop.example.com"
FOREIGN = "https://evil.example.com"
MAX_BYTES = 16 * 1024
MAX_QUERY_CHARS = 2_000

MY_RESERVATIONS = "query { myReservations { id } }"
PICKUP_EVENTS = """
subscription($storeId: ID!) { pickupEvents(storeId: $storeId) { id type reservation { id } } }
"""
POLICY = "query { reservationPolicy { defaultHoldSeconds } }"
INTROSPECTION = "query { __schema { queryType { name } } }"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hardened(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    """A second gateway on the same database, with the edges set tight: no introspection, small
    bodies and queries, one browser origin. It runs no workers: the module's other gateway
    relays the events (each has its own in-memory broker)."""
    async with running_gateway(
        database_url,
        db,
        introspection=False,
        graphql_max_bytes=MAX_BYTES,
        max_query_chars=MAX_QUERY_CHARS,
        allowed_origins=[SHOP],
        run_workers=False,
    ) as running:
        yield running


def store_token(api: Endpoint, role: str, store: str) -> str:
    return api.token(role, sub=f"{role}-of-{store}", store=store)


# --- tokens ---------------------------------------------------------------------------------------


def forged(api: Gateway, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """An ops token as the gateway issues it, with these claims changed (None: left out)."""
    now = api.clock.now()
    base: dict[str, Any] = {
        "sub": "mallory",
        "role": "ops",
        "iss": api.settings.jwt_issuer,
        "aud": api.settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    present = {k: v for k, v in {**base, **claims}.items() if v is not None}
    kid = {"kid": api.settings.signing_kid, **(header or {})}
    return jwt.encode(present, api.settings.jwt_key, algorithm="HS256", headers=kid)


def none_signed(api: Gateway) -> str:
    good = forged(api)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT","kid":"default"}')
    return f"{header.rstrip(b'=').decode()}.{good.split('.')[1]}."


UNTRUSTED = [
    pytest.param(none_signed, "only HS256", id="alg-none"),
    pytest.param(
        lambda api: jwt.encode(
            jwt.decode(forged(api), options={"verify_signature": False}),
            api.settings.jwt_key + "-padded-to-be-long-enough-for-sha512-0123456789",
            algorithm="HS512",
            headers={"kid": api.settings.signing_kid},
        ),
        "only HS256",
        id="hs512",
    ),
    pytest.param(lambda api: forged(api, aud=None), "aud", id="no-audience"),
    pytest.param(lambda api: forged(api, aud="another-service"), "Audience", id="other-audience"),
    pytest.param(lambda api: forged(api, exp=None), "exp", id="no-expiry"),
    pytest.param(lambda api: forged(api, header={"kid": "2019"}), "kid '2019'", id="unknown-kid"),
]


@pytest.mark.parametrize(("make_token", "said"), UNTRUSTED)
async def test_a_token_the_gateway_must_not_trust_is_refused_saying_why(
    http: httpx.AsyncClient, api: Gateway, make_token: Any, said: str
) -> None:
    result = await gql(http, api, MY_RESERVATIONS, token=make_token(api))

    assert result.codes == ["UNAUTHENTICATED"]
    assert result.data is None
    assert said in result.errors[0]["message"]
    assert_readable(result.errors[0]["message"])


async def test_the_same_token_well_formed_is_accepted(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # The forgeries above differ from this one by one thing each.
    result = await gql(http, api, "query { webhookDeliveries { id } }", token=forged(api))

    assert result.ok() == {"webhookDeliveries": []}


OLD_KEY = "the-key-of-last-quarter-0123456789abcdef"
NEW_KEY = "the-key-of-this-quarter-0123456789abcdef"


async def test_rotating_the_key_keeps_old_tokens_until_the_old_key_is_dropped(
    http: httpx.AsyncClient, api: Gateway, database_url: str, db: Database
) -> None:
    # Given a customer's token signed last quarter, by a gateway that had only that key
    before = Settings(jwt_keys={"q1": OLD_KEY})
    old = issue_token(before, role=Role.CUSTOMER, subject="alice", now=api.clock.now())

    # When the gateway runs with both keys, signing with the new one, then with the new one only
    both = {"jwt_keys": {"q1": OLD_KEY, "q2": NEW_KEY}, "jwt_signing_kid": "q2"}
    async with running_gateway(database_url, db, run_workers=False, **both) as during:
        new = during.token("customer", sub="alice")
        old_during = await gql(http, during, MY_RESERVATIONS, token=old)
        new_during = await gql(http, during, MY_RESERVATIONS, token=new)
    only_new = {"jwt_keys": {"q2": NEW_KEY}}
    async with running_gateway(database_url, db, run_workers=False, **only_new) as after:
        old_after = await gql(http, after, MY_RESERVATIONS, token=old)
        new_after = await gql(http, after, MY_RESERVATIONS, token=new)

    # Then the old token works while both keys are there, and stops once its key is gone
    assert jwt.get_unverified_header(new)["kid"] == "q2"
    assert old_during.ok() == new_during.ok() == new_after.ok() == {"myReservations": []}
    assert old_after.codes == ["UNAUTHENTICATED"]
    assert "kid 'q1'" in old_after.errors[0]["message"]


# --- a store's token on WebSockets ------------------------------------------------------------------


def ws_url(api: Endpoint) -> str:
    return api.url.replace("http://", "ws://", 1) + "/graphql"


@asynccontextmanager
async def socket(
    api: Endpoint, protocol: str = TRANSPORT_WS, *, origin: str | None = None
) -> AsyncIterator[ClientConnection]:
    """A raw WebSocket to /graphql (the messages are the test's to write)."""
    async with connect(
        ws_url(api),
        subprotocols=[Subprotocol(protocol)],
        origin=Origin(origin) if origin else None,
        open_timeout=SECONDS,
        close_timeout=2,
        max_size=None,
    ) as ws:
        yield ws


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next message that is not a keep-alive."""
    async with asyncio.timeout(SECONDS):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] not in ("ka", "ping", "pong"):
                return message


async def read_forever(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def close_code(ws: ClientConnection) -> int:
    """The code the server closes the socket with (whatever it sends before that is passed)."""
    async with asyncio.timeout(SECONDS):
        with pytest.raises(ConnectionClosed) as closed:
            await read_forever(ws)
    received = closed.value.rcvd
    assert received is not None, "closed without a close frame"
    return received.code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def initialised(ws: ClientConnection, token: str) -> None:
    await send(ws, {"type": "connection_init", "payload": bearer(token)})
    assert (await receive(ws))["type"] == "connection_ack"


async def subscribe(
    ws: ClientConnection, protocol: str, store_id: str, **extra: Any
) -> list[dict[str, Any]]:
    """Subscribes to the store's pickupEvents; returns the errors it is refused with."""
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    payload = {"query": PICKUP_EVENTS, "variables": {"storeId": store_id}, **extra}
    await send(ws, {"id": "1", "type": kind, "payload": payload})
    message = await receive(ws)
    assert message.get("id") == "1", message
    assert message["type"] in ("error", "next", "data"), message
    body = message["payload"]
    errors = body if isinstance(body, list) else body.get("errors") or [body]
    assert errors, message
    return list(errors)


def assert_forbidden_for(errors: list[dict[str, Any]], store_id: str) -> None:
    assert [e.get("extensions", {}).get("code") for e in errors] == ["FORBIDDEN"], errors
    assert store_id in errors[0]["message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("role", STORE_ROLES)
async def test_a_store_token_never_subscribes_to_another_store_even_after_a_reconnect(
    api: Gateway, role: str, protocol: str
) -> None:
    token = store_token(api, role, "S001")

    # The same token, on a first socket and on a second one opened after the first closed
    for _ in range(2):
        async with socket(api, protocol) as ws:
            await initialised(ws, token)
            assert_forbidden_for(await subscribe(ws, protocol, "S002"), "S002")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("role", STORE_ROLES)
async def test_a_second_connection_init_cannot_switch_a_socket_to_another_store(
    api: Gateway, role: str, protocol: str
) -> None:
    async with socket(api, protocol) as ws:
        await initialised(ws, store_token(api, role, "S001"))

        # A second connection_init, with a valid token of the other store
        await send(
            ws, {"type": "connection_init", "payload": bearer(store_token(api, role, "S002"))}
        )

        # Is never acknowledged: the socket is closed
        if protocol == LEGACY_WS:  # no close code of its own: connection_error, then the close
            refusal = await receive(ws)
            assert refusal["type"] == "connection_error", refusal
            assert "already initialised" in refusal["payload"]["message"]
        code = await close_code(ws)
    assert code == (4429 if protocol == TRANSPORT_WS else 1011)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("role", STORE_ROLES)
async def test_a_token_sent_with_the_operation_does_not_change_the_sockets_caller(
    api: Gateway, role: str, protocol: str
) -> None:
    other = store_token(api, role, "S002")
    per_operation = {
        "extensions": {**bearer(other), "token": other},
        **bearer(other),
        "token": other,
    }

    async with socket(api, protocol) as ws:
        await initialised(ws, store_token(api, role, "S001"))
        errors = await subscribe(ws, protocol, "S002", **per_operation)

    assert_forbidden_for(errors, "S002")


# --- introspection ------------------------------------------------------------------------------------


async def test_introspection_is_served_in_development(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    result = await gql(http, api, INTROSPECTION)

    assert result.ok() == {"__schema": {"queryType": {"name": "Query"}}}


@pytest.mark.parametrize(
    "query",
    [INTROSPECTION, 'query { __type(name: "Reservation") { fields { name } } }'],
)
async def test_introspection_is_refused_when_off(
    http: httpx.AsyncClient, hardened: Gateway, query: str
) -> None:
    result = await gql(http, hardened, query)

    assert result.status == 200
    assert result.data is None
    assert set(result.codes) == {"BAD_USER_INPUT"}
    assert "introspection" in result.errors[0]["message"]


async def test_typename_is_not_introspection(http: httpx.AsyncClient, hardened: Gateway) -> None:
    result = await gql(http, hardened, "query { __typename }")

    assert result.ok() == {"__typename": "Query"}


async def test_introspection_is_off_in_production_unless_enabled() -> None:
    secret = "a-production-secret-that-is-long-enough"
    production = GraphQLApp(Settings(env="prod", jwt_secret=secret))
    enabled = GraphQLApp(Settings(env="prod", jwt_secret=secret, introspection=True))

    refused = await production.schema.execute(INTROSPECTION)
    served = await enabled.schema.execute(INTROSPECTION)

    assert refused.errors
    assert "introspection" in refused.errors[0].message
    assert served.errors is None


# --- sizes ------------------------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A valid GraphQL request body of exactly `size` bytes (the padding is an unused variable)."""
    empty = json.dumps({"query": POLICY, "variables": {"pad": ""}}).encode()
    return json.dumps({"query": POLICY, "variables": {"pad": "x" * (size - len(empty))}}).encode()


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    body = response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert f"{MAX_BYTES} bytes" in error["message"]
    assert_readable(error["message"])


async def test_a_body_at_the_limit_is_served(http: httpx.AsyncClient, hardened: Gateway) -> None:
    body = padded_body(MAX_BYTES)
    assert len(body) == MAX_BYTES

    response = await http.post(
        f"{hardened.url}/graphql", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 200
    assert response.json()["data"] == {"reservationPolicy": {"defaultHoldSeconds": 7200}}


async def test_a_body_over_the_limit_is_refused_with_413(
    http: httpx.AsyncClient, hardened: Gateway
) -> None:
    response = await http.post(
        f"{hardened.url}/graphql",
        content=padded_body(MAX_BYTES + 1),
        headers={"content-type": "application/json"},
    )

    assert_too_large(response)


async def test_a_body_over_the_limit_without_a_length_is_refused_as_it_arrives(
    http: httpx.AsyncClient, hardened: Gateway
) -> None:
    body = padded_body(4 * MAX_BYTES)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    # No Content-Length: chunked, so only counting what arrives can tell
    response = await http.post(
        f"{hardened.url}/graphql", content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_too_large(response)


async def test_a_query_text_over_its_limit_is_refused_before_it_is_parsed(
    http: httpx.AsyncClient, hardened: Gateway
) -> None:
    # Mostly a comment: few tokens, but too many characters.
    query = POLICY + "\n#" + "x" * MAX_QUERY_CHARS
    at_limit = POLICY + "\n#" + "x" * (MAX_QUERY_CHARS - len(POLICY) - 2)

    refused = await gql(http, hardened, query)
    served = await gql(http, hardened, at_limit)

    assert refused.status == 200
    assert refused.data is None
    assert refused.codes == ["BAD_USER_INPUT"]
    assert f"at most {MAX_QUERY_CHARS}" in refused.errors[0]["message"]
    assert len(at_limit) == MAX_QUERY_CHARS
    assert served.ok() == {"reservationPolicy": {"defaultHoldSeconds": 7200}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_websocket_message_over_the_limit_closes_the_socket(
    hardened: Gateway, protocol: str
) -> None:
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    huge = {"query": POLICY, "variables": {"pad": "x" * MAX_BYTES}}

    async with socket(hardened, protocol) as ws:
        await send(ws, {"type": "connection_init", "payload": {}})
        assert (await receive(ws))["type"] == "connection_ack"  # a small message passes
        await send(ws, {"id": "1", "type": kind, "payload": huge})
        code = await close_code(ws)

    assert code == 1009


# --- browser origins ----------------------------------------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }


async def test_a_preflight_from_an_allowed_origin_gets_the_cors_headers(
    http: httpx.AsyncClient, hardened: Gateway
) -> None:
    response = await http.options(f"{hardened.url}/graphql", headers=preflight(SHOP))

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]


@pytest.mark.parametrize("configured", [True, False])
async def test_a_preflight_from_another_origin_gets_no_cors_headers(
    http: httpx.AsyncClient, api: Gateway, hardened: Gateway, configured: bool
) -> None:
    # From a foreign origin where one is configured; from any origin where none is.
    target, origin = (hardened, FOREIGN) if configured else (api, SHOP)

    response = await http.options(f"{target.url}/graphql", headers=preflight(origin))

    assert "access-control-allow-origin" not in response.headers
    assert response.status_code >= 400


async def test_a_request_from_an_allowed_origin_may_read_the_answer_and_its_request_id(
    http: httpx.AsyncClient, hardened: Gateway
) -> None:
    allowed = await http.post(
        f"{hardened.url}/graphql", json={"query": POLICY}, headers={"origin": SHOP}
    )
    foreign = await http.post(
        f"{hardened.url}/graphql", json={"query": POLICY}, headers={"origin": FOREIGN}
    )

    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in foreign.headers


async def test_a_websocket_from_an_allowed_origin_or_no_browser_is_accepted(
    hardened: Gateway,
) -> None:
    for origin in (SHOP, None):
        async with socket(hardened, origin=origin) as ws:
            await send(ws, {"type": "connection_init", "payload": {}})
            assert (await receive(ws))["type"] == "connection_ack"


@pytest.mark.parametrize("configured", [True, False])
async def test_a_websocket_handshake_from_another_origin_is_refused(
    api: Gateway, hardened: Gateway, configured: bool
) -> None:
    # From a foreign origin where one is configured; from any origin where none is.
    target, origin = (hardened, FOREIGN) if configured else (api, SHOP)

    with pytest.raises(InvalidStatus) as refused:
        async with socket(target, origin=origin):
            pass

    assert refused.value.response.status_code == 403


# --- what the store's POS sees of the customer --------------------------------------------------

RESERVATION = """
query($id: ID!) {
  reservation(id: $id) {
    id customerId code storeId status lines { sku quantity } pickupQrPayload arrivedAt arrivalNote
  }
}
"""
QUEUE = 'query { pickupQueue(storeId: "S001") { id customerId code lines { sku quantity } } }'
CHECK_IN = 'mutation($id: ID!) { checkIn(id: $id, note: "bay 4") { id } }'
STAFF_RESERVE = """
mutation($input: ReserveInput!) {
  reserve(input: $input) { customerId reservations { id customerId } }
}
"""


async def given_alices_reservation(http: httpx.AsyncClient, api: Gateway) -> dict[str, Any]:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10})
    alice = api.token("customer", sub="alice")
    held = await given_reservation(
        http, api, alice, storeId="S001", lines=[{"sku": "SKU-1", "quantity": 2}]
    )
    (await gql(http, api, CHECK_IN, {"id": held["id"]}, alice)).ok()
    return held


async def test_the_store_sees_the_handoff_but_not_whose_reservation_it_is(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_alices_reservation(http, api)
    seen = {}
    for caller, token in {
        "alice": api.token("customer", sub="alice"),
        "ops": api.token("ops"),
        "pos": store_token(api, "pos", "S001"),
        "staff": store_token(api, "staff", "S001"),
    }.items():
        seen[caller] = (await gql(http, api, RESERVATION, {"id": held["id"]}, token)).ok()[
            "reservation"
        ]

    # The customer and ops see whose it is; the store gets it masked
    assert seen["alice"]["customerId"] == seen["ops"]["customerId"] == "alice"
    assert seen["pos"]["customerId"] == seen["staff"]["customerId"] == MASKED_CUSTOMER_ID
    # and everything the handoff needs: the reservation, its lines, its code, the arrival
    for store_view in (seen["pos"], seen["staff"]):
        assert store_view == {**seen["alice"], "customerId": MASKED_CUSTOMER_ID}
        assert store_view["code"] == held["code"]
        assert store_view["lines"] == [{"sku": "SKU-1", "quantity": 2}]
        assert store_view["pickupQrPayload"]
        assert store_view["arrivalNote"] == "bay 4"


async def test_the_pickup_queue_masks_the_customer_for_the_store_not_for_ops(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_alices_reservation(http, api)

    by_pos = (await gql(http, api, QUEUE, token=store_token(api, "pos", "S001"))).ok()
    by_ops = (await gql(http, api, QUEUE, token=api.token("ops"))).ok()

    entry = {"id": held["id"], "code": held["code"], "lines": [{"sku": "SKU-1", "quantity": 2}]}
    assert by_pos == {"pickupQueue": [{**entry, "customerId": MASKED_CUSTOMER_ID}]}
    assert by_ops == {"pickupQueue": [{**entry, "customerId": "alice"}]}


async def test_staff_reserving_for_a_customer_get_it_back_masked(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10})
    variables = {
        "input": {
            "storeId": "S001",
            "customerId": "carol",
            "lines": [{"sku": "SKU-1", "quantity": 1}],
        }
    }

    group = (
        await gql(http, api, STAFF_RESERVE, variables, store_token(api, "staff", "S001"))
    ).ok()["reserve"]
    (reservation,) = group["reservations"]
    by_ops = (await gql(http, api, RESERVATION, {"id": reservation["id"]}, api.token("ops"))).ok()

    assert group["customerId"] == reservation["customerId"] == MASKED_CUSTOMER_ID
    assert by_ops["reservation"]["customerId"] == "carol"


async def test_a_channel_sees_the_customer_of_its_own_reservations(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10})
    web = api.token("channel", sub="webshop", channel="web")
    held = await given_reservation(
        http, api, web, storeId="S001", customerId="carol", lines=[{"sku": "SKU-1", "quantity": 1}]
    )

    by_channel = (await gql(http, api, RESERVATION, {"id": held["id"]}, web)).ok()
    by_pos = (
        await gql(http, api, RESERVATION, {"id": held["id"]}, store_token(api, "pos", "S001"))
    ).ok()

    assert by_channel["reservation"]["customerId"] == "carol"
    assert by_pos["reservation"]["customerId"] == MASKED_CUSTOMER_ID


async def test_a_pos_webhook_carries_the_reservation_without_the_customer(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    reservation_id = await given_a_webhook_and_a_ready_reservation(http, api, receiver)

    await receiver.wait_for(1)

    sent = json.loads(receiver.received[0]["body"])
    assert sent["type"] == "READY_FOR_PICKUP"
    assert sent["reservation"]["id"] == reservation_id
    assert sent["reservation"]["customerId"] == MASKED_CUSTOMER_ID
    assert sent["reservation"]["lines"] == [{"sku": "SKU-1", "quantity": 1}]
    assert sent["reservation"]["code"]
    assert "alice" not in receiver.received[0]["body"].decode()
