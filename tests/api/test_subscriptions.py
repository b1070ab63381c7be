"""Subscriptions end to end, with a real third-party client (gql over WebSocket, in both
subprotocols) against the module's running gateway: what a POS terminal, a customer's app and a
storefront receive, and who is refused."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from graphql import FieldNode, OperationDefinitionNode
from websockets.exceptions import ConnectionClosed

from domain.access import MASKED_CUSTOMER_ID
from tests.api.conftest import Endpoint, Gateway, gql
from tests.api.given import given_reservation, given_stores_with_stock

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"  # subscriptions-transport-ws, gql's default
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]

DELIVERY_SECONDS = 1.0  # an event reaches its subscriber within this of the mutation that made it
SWEEP_SECONDS = 3.0  # the sweeper (every 0.1 s) has acted on a move of the clock within this
CONNECT_SECONDS = 5.0  # opening a WebSocket and the connection_init handshake

# Reservations made only to prove that a subscription is live; their events are skipped (by id:
# the store's POS does not see whose they are).
WARM_UP = "warm-up"
WARM_UP_IDS: set[str] = set()

RESERVATION_FIELDS = """
    id code storeId customerId status expiresAt secondsRemaining lines { sku quantity }
"""
PICKUP_EVENTS = f"""
subscription($storeId: ID!) {{
  pickupEvents(storeId: $storeId) {{
    id type occurredAt sequence reservation {{ {RESERVATION_FIELDS} }}
  }}
}}
"""
RESERVATION_UPDATES = f"""
subscription($id: ID!) {{
  reservationUpdates(id: $id) {{
    id type occurredAt sequence reservation {{ {RESERVATION_FIELDS} }}
  }}
}}
"""
STOCK_UPDATES = """
subscription($storeId: ID, $skus: [String!]) {
  stockUpdates(storeId: $storeId, skus: $skus) { storeId sku available occurredAt }
}
"""
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { id status } }"
COMPLETE = """
mutation($id: ID!, $payment: PaymentInput!) { completePickup(id: $id, payment: $payment) { status } }
"""
CANCEL = 'mutation($id: ID!) { cancelReservation(id: $id, reason: "changed my mind") { status } }'
CHECK_IN = "mutation($id: ID!, $note: String) { checkIn(id: $id, note: $note) { arrivedAt } }"
SYNC_STOCK = "mutation($levels: [StockLevelInput!]!) { syncStock(levels: $levels) { applied } }"
PAYMENT = {"amount": "19.90", "currency": "GBP", "method": "card", "reference": "till-1/0042"}

START_ISO = "2026-03-02T09:00:00+00:00"
EXPIRY_ISO = "2026-03-02T11:00:00+00:00"  # START + the default 2 h hold
HOLD_SECONDS = 7200
WARNING_SECONDS = 900  # the default policy's expiry warning lead time


# --- a subscription, read with deadlines ----------------------------------------------------------


class NoEvent(AssertionError):
    """Nothing arrived in time."""


_END = object()  # the server completed the subscription


class Live:
    """One subscription of a gql session, read by a task of its own into a queue, so that each
    wait has a deadline (the client's iterator has none). `skip` tells the events that are no part
    of the test (the warm-up's)."""

    def __init__(
        self,
        session: AsyncClientSession,
        field: str,
        request: GraphQLRequest,
        skip: Callable[[dict[str, Any]], bool],
    ) -> None:
        self.field = field
        self.skip = skip
        self._items: asyncio.Queue[object] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(session, request))

    async def _read(self, session: AsyncClientSession, request: GraphQLRequest) -> None:
        try:
            async for data in session.subscribe(request):
                self._items.put_nowait(data)
        except Exception as error:
            self._items.put_nowait(error)
        else:
            self._items.put_nowait(_END)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _item(self, deadline: float, within: float) -> object:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(self._items.get(), max(remaining, 0))
        except TimeoutError:
            raise NoEvent(f"no {self.field} event within {within:.2f} s") from None

    async def next(
        self, within: float = DELIVERY_SECONDS, *, skipping: bool = True
    ) -> dict[str, Any]:
        """The next event (the warm-up's skipped unless `skipping` is False)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            item = await self._item(deadline, within)
            if isinstance(item, Exception):
                raise item
            assert item is not _END, f"{self.field} ended while an event was expected"
            assert isinstance(item, dict)
            event: dict[str, Any] = item[self.field]
            if skipping and self.skip(event):
                continue
            return event

    async def ended(self, within: float = DELIVERY_SECONDS) -> None:
        """The server completes the subscription next (the client's iterator ends)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            item = await self._item(deadline, within)
            if isinstance(item, dict) and self.skip(item[self.field]):
                continue
            assert item is _END, f"expected the end of {self.field}, got {item!r}"
            return

    async def refused(self, within: float = DELIVERY_SECONDS) -> list[dict[str, Any]]:
        """The subscription fails with GraphQL errors: they are returned."""
        item = await self._item(asyncio.get_running_loop().time() + within, within)
        assert isinstance(item, TransportQueryError), f"expected a refusal, got {item!r}"
        assert item.errors, item
        return list(item.errors)


def ws_url(api: Endpoint) -> str:
    return api.url.replace("http://", "ws://", 1) + "/graphql"


def client(api: Endpoint, protocol: str, init_payload: dict[str, Any] | None) -> Client:
    transport = WebsocketsTransport(
        url=ws_url(api),
        subprotocols=[protocol],
        init_payload=init_payload or {},
        connect_timeout=CONNECT_SECONDS,
        ack_timeout=CONNECT_SECONDS,
        close_timeout=2,
    )
    return Client(transport=transport)


def bearer(token: str | None) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@asynccontextmanager
async def subscribed(
    api: Endpoint,
    query: str,
    variables: dict[str, Any],
    *,
    init_payload: dict[str, Any] | None = None,
    protocol: str = TRANSPORT_WS,
    skip: Callable[[dict[str, Any]], bool] = lambda event: False,
) -> AsyncIterator[Live]:
    """A WebSocket of its own (connection_init with `init_payload`) with one subscription on it."""
    request = GraphQLRequest(query, variable_values=variables)
    (operation,) = request.document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    (selection,) = operation.selection_set.selections
    assert isinstance(selection, FieldNode)
    async with client(api, protocol, init_payload) as session:
        live = Live(session, selection.name.value, request, skip)
        try:
            yield live
        finally:
            await live.stop()


def _connection_closed(error: BaseException | None) -> ConnectionClosed | None:
    """The WebSocket close behind a client error, if there is one."""
    while error is not None:
        if isinstance(error, ConnectionClosed):
            return error
        error = error.__cause__ or error.__context__
    return None


def is_warm_up(event: dict[str, Any]) -> bool:
    return str(event["reservation"]["id"]) in WARM_UP_IDS


def is_warm_up_stock(event: dict[str, Any]) -> bool:
    return bool(event["sku"] == "WARM")


async def until_live(live: Live, poke: Callable[[], Awaitable[None]], attempts: int = 5) -> None:
    """Subscribing has no acknowledgement: make harmless events until one comes through. From
    then on the subscription is listening on the server, and whatever the set-up's own commits
    published (the relay sends in outbox order) has come before: it is passed over. The warm-up's
    events are skipped afterwards."""
    for _ in range(attempts):
        await poke()
        try:
            while not live.skip(await live.next(skipping=False)):
                pass  # published by the set-up, before the test acts
        except NoEvent:
            continue  # published before the server was listening: try again
        return
    raise AssertionError(f"{live.field} did not come live after {attempts} warm-up events")


# --- given ----------------------------------------------------------------------------------------


async def given_two_stores(http: httpx.AsyncClient, api: Endpoint) -> None:
    await given_stores_with_stock(
        http,
        api,
        {
            ("S001", "SKU-1"): 10,
            ("S001", "SKU-2"): 10,
            ("S001", "WARM"): 10,
            ("S002", "SKU-1"): 10,
            ("S002", "WARM"): 10,
        },
    )


async def reserve(
    http: httpx.AsyncClient,
    api: Endpoint,
    customer: str = "alice",
    *,
    store: str = "S001",
    sku: str = "SKU-1",
    quantity: int = 2,
) -> dict[str, Any]:
    token = api.token("customer", sub=customer)
    return await given_reservation(
        http, api, token, storeId=store, lines=[{"sku": sku, "quantity": quantity}]
    )


def pos(api: Endpoint, store: str = "S001") -> str:
    return api.token("pos", sub=f"till-{store}", store=store)


async def mark_ready(http: httpx.AsyncClient, api: Endpoint, reservation: dict[str, Any]) -> None:
    store = reservation["storeId"]
    (await gql(http, api, MARK_READY, {"id": reservation["id"]}, pos(api, store))).ok()


def ready_warm_up(
    http: httpx.AsyncClient, api: Endpoint, store: str = "S001"
) -> Callable[[], Awaitable[None]]:
    """A poke for until_live: a warm-up customer's reservation of WARM marked ready at `store`."""
    customers = itertools.count()

    async def poke() -> None:
        held = await reserve(
            http, api, f"{WARM_UP}-{next(customers)}", store=store, sku="WARM", quantity=1
        )
        WARM_UP_IDS.add(held["id"])
        await mark_ready(http, api, held)

    return poke


def restock_warm_up(
    http: httpx.AsyncClient, api: Endpoint, store: str = "S001"
) -> Callable[[], Awaitable[None]]:
    """A poke for until_live: the WMS counts the store's WARM units again (a new figure each time)."""
    counts = itertools.count(11)

    async def poke() -> None:
        levels = [{"storeId": store, "sku": "WARM", "onHand": next(counts)}]
        (await gql(http, api, SYNC_STOCK, {"levels": levels}, api.token("ops"))).ok()

    return poke


@asynccontextmanager
async def pos_terminal(
    http: httpx.AsyncClient, api: Endpoint, store: str = "S001", protocol: str = TRANSPORT_WS
) -> AsyncIterator[Live]:
    """The store's POS terminal, subscribed to pickupEvents and known to be listening."""
    async with subscribed(
        api,
        PICKUP_EVENTS,
        {"storeId": store},
        init_payload=bearer(pos(api, store)),
        protocol=protocol,
        skip=is_warm_up,
    ) as live:
        await until_live(live, ready_warm_up(http, api, store))
        yield live


def seconds_since(started: float) -> float:
    return asyncio.get_running_loop().time() - started


# --- pickupEvents: the POS terminal ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_pos_terminal_sees_a_reservation_become_ready_within_a_second(
    http: httpx.AsyncClient, api: Gateway, protocol: str
) -> None:
    await given_two_stores(http, api)
    held = await reserve(http, api)

    async with pos_terminal(http, api, protocol=protocol) as terminal:
        started = asyncio.get_running_loop().time()
        await mark_ready(http, api, held)
        event = await terminal.next(within=DELIVERY_SECONDS - seconds_since(started))

    assert event["type"] == "READY_FOR_PICKUP"
    assert event["occurredAt"] == START_ISO
    assert event["sequence"] == 2  # created, then ready
    assert event["reservation"] == {
        "id": held["id"],
        "code": held["code"],
        "storeId": "S001",
        "customerId": MASKED_CUSTOMER_ID,  # the store does not see whose it is
        "status": "READY_FOR_PICKUP",
        "expiresAt": EXPIRY_ISO,
        "secondsRemaining": HOLD_SECONDS,
        "lines": [{"sku": "SKU-1", "quantity": 2}],
    }


async def test_the_pos_terminal_sees_collections_and_cancellations(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_two_stores(http, api)
    collected = await reserve(http, api, "alice")
    cancelled = await reserve(http, api, "bob", quantity=1)
    await mark_ready(http, api, collected)

    async with pos_terminal(http, api) as terminal:
        payment = {"id": collected["id"], "payment": PAYMENT}
        (await gql(http, api, COMPLETE, payment, pos(api))).ok()
        first = await terminal.next()
        bob = api.token("customer", sub="bob")
        (await gql(http, api, CANCEL, {"id": cancelled["id"]}, bob)).ok()
        second = await terminal.next()

    assert (first["type"], first["reservation"]["id"]) == ("COLLECTED", collected["id"])
    assert first["reservation"]["status"] == "COLLECTED"
    assert first["reservation"]["secondsRemaining"] == 0
    assert (second["type"], second["reservation"]["id"]) == ("CANCELLED", cancelled["id"])
    assert second["reservation"]["status"] == "CANCELLED"
    assert second["reservation"]["lines"] == [{"sku": "SKU-1", "quantity": 1}]


async def test_the_pos_terminal_is_warned_at_the_lead_time_then_told_of_the_expiry(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_two_stores(http, api)
    early = await reserve(http, api, "alice")
    api.clock.advance(1)
    late = await reserve(http, api, "bob")  # expires one second after alice's

    async with pos_terminal(http, api) as terminal:
        # Alice's hold has exactly the lead time left; Bob's one second more.
        api.clock.advance(HOLD_SECONDS - WARNING_SECONDS - 1)
        warned = await terminal.next(within=SWEEP_SECONDS)
        # Had Bob been warned too early, his warning would have come before this marker event.
        await mark_ready(http, api, early)
        marker = await terminal.next()
        api.clock.advance(1)
        warned_late = await terminal.next(within=SWEEP_SECONDS)
        api.clock.advance(WARNING_SECONDS)  # past both expiries
        expired = [await terminal.next(within=SWEEP_SECONDS) for _ in range(2)]

    assert (warned["type"], warned["reservation"]["id"]) == ("EXPIRING_SOON", early["id"])
    assert warned["reservation"]["secondsRemaining"] == WARNING_SECONDS
    assert (marker["type"], marker["reservation"]["id"]) == ("READY_FOR_PICKUP", early["id"])
    assert (warned_late["type"], warned_late["reservation"]["id"]) == ("EXPIRING_SOON", late["id"])
    assert warned_late["reservation"]["secondsRemaining"] == WARNING_SECONDS
    assert sorted((e["type"], e["reservation"]["id"]) for e in expired) == sorted(
        [("EXPIRED", early["id"]), ("EXPIRED", late["id"])]
    )
    assert {e["reservation"]["status"] for e in expired} == {"EXPIRED"}


async def test_the_pos_terminal_gets_nothing_of_another_store(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_two_stores(http, api)
    elsewhere = await reserve(http, api, "alice", store="S002")
    here = await reserve(http, api, "bob", store="S001")

    async with pos_terminal(http, api, store="S001") as terminal:
        await mark_ready(http, api, elsewhere)
        await mark_ready(http, api, here)
        event = await terminal.next()

    # The relay publishes in outbox order: S002's event, had it been delivered, came first.
    assert (event["type"], event["reservation"]["id"]) == ("READY_FOR_PICKUP", here["id"])
    assert event["reservation"]["storeId"] == "S001"


SHORTAGE_FIELDS = """
    id type sequence
    reservation { id status cancelReason lines { sku quantity } }
    shortage { sku quantity reason movedToReservationId movedToStoreId }
"""


async def test_a_shrink_below_reserved_reaches_the_pos_and_the_customer_with_where_it_went(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_two_stores(http, api)  # S001 and S002 have 10 of SKU-1 each
    held = await reserve(http, api, "alice", quantity=3)
    alice = bearer(api.token("customer", sub="alice"))
    app_query = f"subscription($id: ID!) {{ reservationUpdates(id: $id) {{ {SHORTAGE_FIELDS} }} }}"
    pos_query = f"""subscription($storeId: ID!) {{
      pickupEvents(storeId: $storeId) {{ {SHORTAGE_FIELDS} reservation {{ customerId }} }} }}"""

    async with (
        subscribed(api, app_query, {"id": held["id"]}, init_payload=alice) as app,
        subscribed(
            api,
            pos_query,
            {"storeId": "S001"},
            init_payload=bearer(pos(api)),
            skip=is_warm_up,
        ) as terminal,
    ):
        await app.next()  # the snapshot: listening
        await until_live(terminal, ready_warm_up(http, api))
        # The WMS counts 1 of SKU-1 at S001 where 3 are reserved: King's Cross takes them over
        levels = [{"storeId": "S001", "sku": "SKU-1", "onHand": 1}]
        (await gql(http, api, SYNC_STOCK, {"levels": levels}, api.token("ops"))).ok()
        seen_by_app = await app.next()
        seen_by_pos = await terminal.next()
        await app.ended()

    for event in (seen_by_app, seen_by_pos):
        assert event["type"] == "CANCELLED"
        assert event["reservation"]["id"] == held["id"]
        assert event["reservation"]["cancelReason"] == "STOCK_SHORTAGE"
        shortage = event["shortage"]
        assert (shortage["sku"], shortage["quantity"], shortage["reason"]) == (
            "SKU-1",
            3,
            "SHORTAGE",
        )
        assert shortage["movedToStoreId"] == "S002"
    moved = await gql(
        http,
        api,
        "query($id: ID!) { reservation(id: $id) { storeId status resourcedFrom lines { quantity } } }",
        {"id": seen_by_app["shortage"]["movedToReservationId"]},
        api.token("customer", sub="alice"),
    )
    assert moved.ok()["reservation"] == {
        "storeId": "S002",
        "status": "HELD",
        "resourcedFrom": held["id"],
        "lines": [{"quantity": 3}],
    }


async def test_the_store_and_the_shoppers_app_hear_the_shopper_arrive(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given alice's reservation, ready, and 20 minutes later her app and the store's POS listening
    await given_two_stores(http, api)
    held = await reserve(http, api, "alice")
    await mark_ready(http, api, held)
    api.clock.advance(1200)
    alice = api.token("customer", sub="alice")
    arrival_fields = "id type sequence reservation { id status customerId arrivedAt arrivalNote }"
    app_query = f"subscription($id: ID!) {{ reservationUpdates(id: $id) {{ {arrival_fields} }} }}"
    pos_query = f"""subscription($storeId: ID!) {{
      pickupEvents(storeId: $storeId) {{ {arrival_fields} }} }}"""

    async with (
        subscribed(api, app_query, {"id": held["id"]}, init_payload=bearer(alice)) as app,
        subscribed(
            api, pos_query, {"storeId": "S001"}, init_payload=bearer(pos(api)), skip=is_warm_up
        ) as terminal,
    ):
        await app.next()  # the snapshot: listening
        await until_live(terminal, ready_warm_up(http, api))
        # When she checks in from the car park
        note = {"id": held["id"], "note": "car bay 4"}
        (await gql(http, api, CHECK_IN, note, alice)).ok()
        seen_by_app = await app.next()
        seen_by_pos = await terminal.next()
        # Then the app stays subscribed: the handoff comes next
        payment = {"id": held["id"], "payment": PAYMENT}
        (await gql(http, api, COMPLETE, payment, pos(api))).ok()
        collected = await app.next()
        await app.ended()

    # Both heard the arrival, with the note for the store; the status is what it was; only the
    # app sees whose it is
    for event, customer in ((seen_by_app, "alice"), (seen_by_pos, MASKED_CUSTOMER_ID)):
        assert event["type"] == "CUSTOMER_ARRIVED"
        assert event["sequence"] == 3  # created, ready, arrived
        assert event["reservation"] == {
            "id": held["id"],
            "status": "READY_FOR_PICKUP",
            "customerId": customer,
            "arrivedAt": "2026-03-02T09:20:00+00:00",
            "arrivalNote": "car bay 4",
        }
    assert seen_by_app["id"] == seen_by_pos["id"]
    assert (collected["type"], collected["sequence"]) == ("COLLECTED", 4)


# --- reservationUpdates: the customer's app -------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_customer_follows_their_reservation_until_it_expires(
    http: httpx.AsyncClient, api: Gateway, protocol: str
) -> None:
    await given_two_stores(http, api)
    held = await reserve(http, api, "alice")
    api.clock.advance(600)
    alice = {"token": api.token("customer", sub="alice")}

    async with subscribed(
        api, RESERVATION_UPDATES, {"id": held["id"]}, init_payload=alice, protocol=protocol
    ) as app:
        snapshot = await app.next()  # also proves that the subscription is listening
        started = asyncio.get_running_loop().time()
        await mark_ready(http, api, held)
        ready = await app.next(within=DELIVERY_SECONDS - seconds_since(started))
        api.clock.advance(HOLD_SECONDS)  # well past expiresAt
        expired = await app.next(within=SWEEP_SECONDS)
        await app.ended()

    assert snapshot["type"] == "SNAPSHOT"
    assert snapshot["reservation"]["status"] == "HELD"
    assert snapshot["reservation"]["expiresAt"] == EXPIRY_ISO
    assert snapshot["reservation"]["secondsRemaining"] == HOLD_SECONDS - 600
    assert snapshot["reservation"]["code"] == held["code"]
    assert snapshot["sequence"] == 1
    assert (ready["type"], ready["reservation"]["status"]) == (
        "READY_FOR_PICKUP",
        "READY_FOR_PICKUP",
    )
    assert ready["sequence"] == 2
    assert (expired["type"], expired["reservation"]["status"]) == ("EXPIRED", "EXPIRED")
    assert expired["reservation"]["secondsRemaining"] == 0
    assert expired["sequence"] == 3


async def test_a_customer_is_warned_at_the_lead_time(http: httpx.AsyncClient, api: Gateway) -> None:
    await given_two_stores(http, api)
    held = await reserve(http, api, "alice")
    alice = bearer(api.token("customer", sub="alice"))

    async with subscribed(api, RESERVATION_UPDATES, {"id": held["id"]}, init_payload=alice) as app:
        snapshot = await app.next()
        api.clock.advance(HOLD_SECONDS - WARNING_SECONDS)
        warning = await app.next(within=SWEEP_SECONDS)

    assert snapshot["type"] == "SNAPSHOT"
    assert warning["type"] == "EXPIRING_SOON"
    assert warning["reservation"]["status"] == "HELD"
    assert warning["reservation"]["secondsRemaining"] == WARNING_SECONDS


async def test_a_reservation_already_final_gives_its_snapshot_and_completes(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_two_stores(http, api)
    held = await reserve(http, api, "alice")
    alice = api.token("customer", sub="alice")
    (await gql(http, api, CANCEL, {"id": held["id"]}, alice)).ok()

    async with subscribed(
        api, RESERVATION_UPDATES, {"id": held["id"]}, init_payload=bearer(alice)
    ) as app:
        snapshot = await app.next()
        await app.ended()

    assert snapshot["type"] == "SNAPSHOT"
    assert snapshot["reservation"]["status"] == "CANCELLED"
    assert snapshot["reservation"]["secondsRemaining"] == 0


# --- stockUpdates: the storefront -----------------------------------------------------------------


async def test_an_anonymous_storefront_sees_available_units_after_reserve_and_cancel(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_two_stores(http, api)

    async with subscribed(
        api,
        STOCK_UPDATES,
        {"storeId": "S001", "skus": ["SKU-1", "WARM"]},
        init_payload=None,  # no token at all
        skip=is_warm_up_stock,
    ) as storefront:
        await until_live(storefront, restock_warm_up(http, api))
        started = asyncio.get_running_loop().time()
        held = await reserve(http, api, "alice", quantity=3)
        reserved = await storefront.next(within=DELIVERY_SECONDS - seconds_since(started))
        alice = api.token("customer", sub="alice")
        (await gql(http, api, CANCEL, {"id": held["id"]}, alice)).ok()
        released = await storefront.next()

    assert {k: reserved[k] for k in ("storeId", "sku", "available")} == {
        "storeId": "S001",
        "sku": "SKU-1",
        "available": 7,
    }
    assert reserved["occurredAt"] == START_ISO
    assert {k: released[k] for k in ("storeId", "sku", "available")} == {
        "storeId": "S001",
        "sku": "SKU-1",
        "available": 10,
    }


async def test_stock_updates_are_filtered_by_store_and_skus(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_two_stores(http, api)

    async with subscribed(
        api,
        STOCK_UPDATES,
        {"storeId": "S001", "skus": ["SKU-1", "WARM"]},
        skip=is_warm_up_stock,
    ) as storefront:
        await until_live(storefront, restock_warm_up(http, api))
        await reserve(http, api, "alice", sku="SKU-2", quantity=4)  # another SKU
        await reserve(http, api, "bob", store="S002", quantity=5)  # another store
        await reserve(http, api, "carol", quantity=1)
        event = await storefront.next()

    # In outbox order the other SKU's and the other store's changes came first: none came through.
    assert {k: event[k] for k in ("storeId", "sku", "available")} == {
        "storeId": "S001",
        "sku": "SKU-1",
        "available": 9,
    }


# --- who may subscribe ----------------------------------------------------------------------------


async def test_a_bad_token_in_connection_init_closes_the_socket_with_4403(api: Gateway) -> None:
    transport_client = client(api, TRANSPORT_WS, bearer("not-a-token"))

    with pytest.raises((TransportConnectionFailed, TransportClosed)) as refused:
        async with transport_client:
            pass

    closed = _connection_closed(refused.value)
    assert closed is not None, f"no WebSocket close behind {refused.value!r}"
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4403


async def test_a_bad_token_on_the_legacy_protocol_gets_a_connection_error(api: Gateway) -> None:
    legacy_client = client(api, LEGACY_WS, {"token": "not-a-token"})

    with pytest.raises(TransportServerError) as refused:
        async with legacy_client:
            pass

    # subscriptions-transport-ws has no close code for this: connection_error, then the close.
    assert "token" in str(refused.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_pickup_events_of_another_store_are_forbidden(
    http: httpx.AsyncClient, api: Gateway, protocol: str
) -> None:
    await given_two_stores(http, api)

    async with subscribed(
        api,
        PICKUP_EVENTS,
        {"storeId": "S001"},
        init_payload=bearer(pos(api, "S002")),
        protocol=protocol,
    ) as terminal:
        errors = await terminal.refused()

    assert [e.get("extensions", {}).get("code") for e in errors] == ["FORBIDDEN"], errors
    assert "S001" in errors[0]["message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_another_customers_reservation_is_not_found(
    http: httpx.AsyncClient, api: Gateway, protocol: str
) -> None:
    await given_two_stores(http, api)
    held = await reserve(http, api, "alice")

    async with subscribed(
        api,
        RESERVATION_UPDATES,
        {"id": held["id"]},
        init_payload=bearer(api.token("customer", sub="bob")),
        protocol=protocol,
    ) as app:
        errors = await app.refused()

    assert [e.get("extensions", {}).get("code") for e in errors] == ["NOT_FOUND"], errors
    assert "alice" not in str(errors)
