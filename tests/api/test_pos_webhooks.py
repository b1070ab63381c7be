"""POS webhooks against a local HTTP receiver: signed, retried, dead-lettered, replayed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.api.conftest import Gateway, gql
from tests.api.given import SYNC_STOCK, given_reservation, given_stores_with_stock
from tests.helpers import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "s001-pos-webhook-secret"
SET_WEBHOOK = """
mutation($url: String, $secret: String) {
  setStoreWebhook(storeId: "S001", url: $url, secret: $secret) { storeId url }
}
"""
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { id } }"
CHECK_IN = "mutation($id: ID!, $note: String) { checkIn(id: $id, note: $note) { id } }"
DELIVERIES = """
query($status: WebhookDeliveryStatus!) {
  webhookDeliveries(status: $status) { id eventType status attempts lastStatusCode lastError }
}
"""
REPLAY = "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id status attempts } }"


@dataclass
class Receiver:
    """A POS: records what it is sent and answers with the next status of `answers`."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> None:
        """Until `count` calls have arrived (at most 5 s)."""
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hooks")

    async def hook(request: Request) -> Response:
        state.received.append({"headers": dict(request.headers), "body": await request.body()})
        state.arrived.set()
        return Response(status_code=state.answers.pop(0) if state.answers else 200)

    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hooks", hook, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(5):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.01)
    yield state
    server.should_exit = True
    await task


async def given_a_webhook_and_a_ready_reservation(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> str:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 5})
    variables = {"url": receiver.url, "secret": SECRET}
    (await gql(http, api, SET_WEBHOOK, variables, api.token("ops"))).ok()
    held = await given_reservation(
        http,
        api,
        api.token("customer", sub="alice"),
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    pos = api.token("pos", store="S001")
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos)).ok()
    return str(held["id"])


async def deliveries(http: httpx.AsyncClient, api: Gateway, status: str) -> list[dict[str, Any]]:
    result = await gql(http, api, DELIVERIES, {"status": status}, api.token("ops"))
    return list(result.ok()["webhookDeliveries"])


async def test_the_ready_event_is_posted_signed(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    reservation_id = await given_a_webhook_and_a_ready_reservation(http, api, receiver)

    await receiver.wait_for(1)

    call = receiver.received[0]
    body, headers = call["body"], call["headers"]
    event = orjson.loads(body)
    assert event["type"] == "READY_FOR_PICKUP"
    assert event["reservation"]["id"] == reservation_id
    assert headers["x-ropos-event-type"] == "READY_FOR_PICKUP"
    assert headers["x-ropos-event-id"] == event["id"]
    timestamp = headers["x-ropos-timestamp"]
    expected = hmac.new(
        SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert headers["x-ropos-signature"] == f"sha256={expected}"
    assert int(timestamp) == int(api.clock.now().timestamp())
    # A wrong secret does not verify.
    forged = hmac.new(
        b"another secret", f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert headers["x-ropos-signature"] != f"sha256={forged}"


async def test_a_shortage_is_posted_with_where_the_units_went(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    await given_stores_with_stock(
        http, api, {("S001", "SKU-1"): 3, ("S001", "SKU-2"): 3, ("S002", "SKU-1"): 5}
    )
    variables = {"url": receiver.url, "secret": SECRET}
    (await gql(http, api, SET_WEBHOOK, variables, api.token("ops"))).ok()
    held = await given_reservation(
        http,
        api,
        api.token("customer", sub="alice"),
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
    )

    # The WMS counts no SKU-1 left at S001: that line moves to S002, the rest stays
    levels = [{"storeId": "S001", "sku": "SKU-1", "onHand": 0}]
    (await gql(http, api, SYNC_STOCK, {"levels": levels}, api.token("ops"))).ok()
    await receiver.wait_for(1)

    event = orjson.loads(receiver.received[0]["body"])
    assert (event["type"], event["reservation"]["id"]) == ("STOCK_SHORTAGE", held["id"])
    assert event["reservation"]["lines"] == [{"sku": "SKU-2", "quantity": 1}]
    assert event["detail"]["sku"] == "SKU-1"
    assert event["detail"]["movedToStoreId"] == "S002"
    assert receiver.received[0]["headers"]["x-ropos-event-type"] == "STOCK_SHORTAGE"


async def test_the_shoppers_arrival_is_posted_with_the_note(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    reservation_id = await given_a_webhook_and_a_ready_reservation(http, api, receiver)
    await receiver.wait_for(1)  # the ready event
    api.clock.advance(300)

    alice = api.token("customer", sub="alice")
    (await gql(http, api, CHECK_IN, {"id": reservation_id, "note": "car bay 4"}, alice)).ok()
    await receiver.wait_for(2)

    call = receiver.received[1]
    event = orjson.loads(call["body"])
    assert (event["type"], event["sequence"]) == ("CUSTOMER_ARRIVED", 3)
    assert call["headers"]["x-ropos-event-type"] == "CUSTOMER_ARRIVED"
    arrived = event["reservation"]
    assert (arrived["id"], arrived["status"]) == (reservation_id, "READY_FOR_PICKUP")
    assert (arrived["arrivedAt"], arrived["arrivalNote"]) == (
        "2026-03-02T09:05:00+00:00",
        "car bay 4",
    )


async def test_the_held_event_is_not_posted_and_stores_without_a_webhook_get_nothing(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    await given_a_webhook_and_a_ready_reservation(http, api, receiver)
    await given_reservation(
        http,
        api,
        api.token("customer", sub="bob"),
        storeId="S002",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)  # time for anything else to (wrongly) arrive

    assert [orjson.loads(c["body"])["type"] for c in receiver.received] == ["READY_FOR_PICKUP"]


async def test_a_500_is_retried_with_backoff(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    receiver.answers[:] = [500]
    await given_a_webhook_and_a_ready_reservation(http, api, receiver)
    await receiver.wait_for(1)
    pending = await wait_for_status(http, api, "PENDING", lambda d: d["lastStatusCode"] == 500)
    assert [(d["attempts"], d["lastStatusCode"]) for d in pending] == [(1, 500)]
    await asyncio.sleep(0.3)  # the deliverer runs every 0.1 s: nothing is retried before its time
    assert len(receiver.received) == 1

    api.clock.advance(10)  # past the first retry delay (1 to 2 s)

    await receiver.wait_for(2)
    assert orjson.loads(receiver.received[1]["body"]) == orjson.loads(receiver.received[0]["body"])
    delivered = await wait_for_status(http, api, "DELIVERED")
    assert [d["attempts"] for d in delivered] == [2]


async def wait_for_status(
    http: httpx.AsyncClient,
    api: Gateway,
    status: str,
    recorded: Callable[[dict[str, Any]], bool] = lambda d: True,
) -> list[dict[str, Any]]:
    """The deliveries in `status` once there are some (and `recorded` holds for all), within 5 s:
    a try's result is recorded just after the POS answers."""
    async with asyncio.timeout(5):
        while True:
            found = await deliveries(http, api, status)
            if found and all(recorded(d) for d in found):
                return found
            await asyncio.sleep(0.05)


async def test_n_failures_dead_letter_and_a_replay_delivers(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    receiver.answers[:] = [500, 503, 500]
    await given_a_webhook_and_a_ready_reservation(http, api, receiver)
    for tries, answered in ((1, 500), (2, 503)):
        await receiver.wait_for(tries)

        # A try is counted when it is claimed and its answer recorded after: wait for the answer.
        def recorded(d: dict[str, Any], n: int = tries, code: int = answered) -> bool:
            return bool(d["attempts"] == n and d["lastStatusCode"] == code)

        await wait_for_status(http, api, "PENDING", recorded)
        api.clock.advance(60)  # past the retry delay (at most 4 s after two tries)
    await receiver.wait_for(3)

    dead = await wait_for_status(http, api, "DEAD")
    assert [(d["eventType"], d["attempts"], d["lastStatusCode"]) for d in dead] == [
        ("READY_FOR_PICKUP", 3, 500)
    ]
    assert dead[0]["lastError"] == "HTTP 500"

    replayed = (await gql(http, api, REPLAY, {"id": dead[0]["id"]}, api.token("ops"))).ok()
    assert replayed["replayWebhookDelivery"]["status"] == "PENDING"

    await receiver.wait_for(4)
    delivered = await wait_for_status(http, api, "DELIVERED")
    assert [d["id"] for d in delivered] == [dead[0]["id"]]
    assert await deliveries(http, api, "DEAD") == []


async def test_only_dead_deliveries_are_replayed(
    http: httpx.AsyncClient, api: Gateway, receiver: Receiver
) -> None:
    await given_a_webhook_and_a_ready_reservation(http, api, receiver)
    delivered = await wait_for_status(http, api, "DELIVERED")

    result = await gql(http, api, REPLAY, {"id": delivered[0]["id"]}, api.token("ops"))

    assert result.codes == ["INVALID_TRANSITION"]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"url": "ftp://pos.example.com", "secret": SECRET}, "url"),
        ({"url": "https://pos.example.com/hooks", "secret": "short"}, "secret"),
        ({"url": "https://pos.example.com/hooks", "secret": None}, "secret"),
    ],
)
async def test_a_bad_webhook_is_refused(
    http: httpx.AsyncClient, api: Gateway, variables: dict[str, str | None], field: str
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 1})

    result = await gql(http, api, SET_WEBHOOK, variables, api.token("ops"))

    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == field
