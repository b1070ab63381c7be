"""What the gateway logs while it serves a whole day's work, read line by line: each line of a
request carries that request's id, and no line holds a secret, a token, a pickup code or a
customer's contact details.

The gateway here is served as `ropos serve` serves it (uvicorn's own logging off, its access
lines through the root logger), and every record is captured twice: through the app's own
handler (JsonFormatter, as it ships), and through the same formatter without its last-line
redaction, so that a secret written at the source is found even where the belt would hide it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from adapters.db.engine import Database
from domain.intake import IntakeStatus
from domain.intake_auth import sign_shopify
from gateway import logs
from gateway.app import create_app
from gateway.settings import Settings
from tests.api.conftest import Gateway
from tests.api.given import given_stores_with_stock
from tests.api.test_hardening import bearer, close_code, receive, send, socket
from tests.api.test_intake_flow import finished
from tests.api.test_pos_webhooks import Receiver, receiver
from tests.clock import FakeClock
from tests.conftest import START
from tests.helpers import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

__all__ = ["receiver"]

JWT_SECRET = "log-hygiene-jwt-secret-0123456789abcdef"
QR_SECRET = "log-hygiene-qr-secret-0123456789abcdef"
CHANNEL_SECRET = "shpss_log-hygiene-channel-secret-0123456789"
WEBHOOK_SECRET = "log-hygiene-pos-webhook-secret"
# The shopper, as the shop's order carries them.
EMAIL = "Philippa.Quennell@Example.org"
PHONE = "+44 7700 900123"
FIRST_NAME = "Philippa"
LAST_NAME = "Quennell-Ashbourne"
LOCATION = "70881234567"

RESERVE = """
mutation($input: ReserveInput!) { reserve(input: $input) { reservations { id code } } }
"""
QR = "query($id: ID!) { reservation(id: $id) { pickupQrPayload } }"
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { id } }"
CHECK_IN = "mutation($id: ID!, $note: String) { checkIn(id: $id, note: $note) { id } }"
SCAN = "mutation($code: String!) { scanPickup(code: $code) { id } }"
COMPLETE = """
mutation($id: ID!, $payment: PaymentInput!) { completePickup(id: $id, payment: $payment) { id } }
"""
PAYMENT = {"amount": "19.90", "currency": "GBP", "method": "card", "reference": "till-1/0042"}
SET_WEBHOOK = """
mutation($url: String, $secret: String) {
  setStoreWebhook(storeId: "S001", url: $url, secret: $secret) { storeId }
}
"""
UPSERT_ACCOUNT = """
mutation($input: ChannelAccountInput!) { upsertChannelAccount(input: $input) { account } }
"""
PICKUP_EVENTS = 'subscription { pickupEvents(storeId: "S001") { id } }'


# --- the gateway, served as `ropos serve` serves it -----------------------------------------------


@asynccontextmanager
async def served_like_ropos_serve(app: Any) -> AsyncIterator[str]:
    """uvicorn with `log_config=None`, as gateway.cli starts it: its access lines and errors go
    through the root logger, to whatever handler the process set up."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started and not task.done():  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)
    if not server.started:
        task.result()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    settings = Settings(
        database_url=database_url,
        broker_url=os.environ.get("ROPOS_TEST_BROKER_URL", "memory://"),
        jwt_secret=JWT_SECRET,
        qr_secret=QR_SECRET,
        sweep_interval_seconds=0.1,
        relay_interval_seconds=0.2,
        webhook_interval_seconds=0.1,
        intake_interval_seconds=0.1,
        intake_sweep_interval_seconds=0,
    )
    clock = FakeClock(START)
    app = create_app(settings, clock=clock)
    async with served_like_ropos_serve(app) as url:
        yield Gateway(url, settings, clock, db, app)


@pytest.fixture
def gateway(served: Gateway, clean_db: Database) -> Gateway:
    served.clock.set(START)
    deps = served.app.state.runtime.deps
    served.app.state.runtime.db.forget_cached()
    deps.intake_accounts.clear()
    deps.intake_backlog.clear()
    deps.intake_counts.clear()
    return served


# --- the log, captured ----------------------------------------------------------------------------


@dataclass
class Log:
    shipped: io.StringIO
    at_source: io.StringIO

    def lines(self, stream: io.StringIO) -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    def leaks(self, secrets: dict[str, str]) -> list[tuple[str, str, str]]:
        """(which capture, what, the line) for every line that holds one of the secrets."""
        found = []
        for name, stream in (("shipped", self.shipped), ("at source", self.at_source)):
            for line in stream.getvalue().splitlines():
                lowered = line.lower()
                found += [
                    (name, what, line)
                    for what, value in secrets.items()
                    if value.lower() in lowered
                ]
        return found


@pytest.fixture
def log() -> Iterator[Log]:
    """Every record of every logger at INFO and above (ROPOS_LOG_LEVEL's default), through the
    app's handler and through the same formatter without its redaction."""
    captured = Log(io.StringIO(), io.StringIO())
    handlers = [
        logs.handler(captured.shipped),
        logs.handler(captured.at_source, redacting=False),
    ]
    root = logging.getLogger()
    uvicorns = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access", "uvicorn.error")]
    saved = [(logger.level, logger.propagate, logger.handlers[:]) for logger in uvicorns]
    root_level = root.level
    root.setLevel(logging.INFO)
    # As under `ropos serve`: the other tests' servers gave uvicorn's loggers handlers of their
    # own (uvicorn's default log config) and stopped them propagating.
    for logger in uvicorns:
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        logger.handlers[:] = []
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield captured
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(root_level)
        for logger, (level, propagate, kept) in zip(uvicorns, saved, strict=True):
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers[:] = kept


# --- the day's work -------------------------------------------------------------------------------


def shopify_order() -> bytes:
    """A Shopify orders/create webhook: a pickup at a mapped location, from a known customer with
    their e-mail, phone and name in every place Shopify puts them."""
    person = {"first_name": FIRST_NAME, "last_name": LAST_NAME, "phone": PHONE}
    order = {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "name": "#1001",
        "order_number": 1001,
        "created_at": "2026-03-02T08:30:00+00:00",
        "updated_at": "2026-03-02T08:31:00+00:00",
        "cancelled_at": None,
        "financial_status": "paid",
        "currency": "GBP",
        "email": EMAIL,
        "contact_email": EMAIL.lower(),
        "phone": PHONE,
        "customer": {
            "id": 115310627314723954,
            "admin_graphql_api_id": "gid://shopify/Customer/115310627314723954",
            "email": EMAIL,
            **person,
        },
        "billing_address": {
            **person,
            "name": f"{FIRST_NAME} {LAST_NAME}",
            "address1": "1 Oxford Street",
            "city": "London",
            "country_code": "GB",
        },
        "shipping_address": None,
        "shipping_lines": [],
        "location_id": int(LOCATION),
        "total_price": "19.90",
        "line_items": [
            {
                "id": 866550311766439020,
                "admin_graphql_api_id": "gid://shopify/LineItem/866550311766439020",
                "name": "Stoneware Mug",
                "sku": "SKU-1",
                "quantity": 2,
                "current_quantity": 2,
                "price": "9.95",
                "requires_shipping": True,
            }
        ],
    }
    return json.dumps(order).encode()


def shopify_headers(body: bytes, secret: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "X-Shopify-Hmac-Sha256": sign_shopify(secret, body),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Event-Id": uuid.uuid4().hex,
        "X-Shopify-Shop-Domain": "acme.myshopify.com",
    }


async def ok(
    http: httpx.AsyncClient,
    api: Gateway,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> tuple[Any, str]:
    """The data of a call that must succeed, and the request id the gateway answered with."""
    response = await http.post(
        f"{api.url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {token}"} if token else {},
    )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"], response.headers["x-request-id"]


async def test_a_days_work_logs_no_secret_and_every_request_line_has_its_request_id(
    http: httpx.AsyncClient, gateway: Gateway, receiver: Receiver, log: Log
) -> None:
    api = gateway
    ops = api.token("ops")
    alice = api.token("customer", sub="alice")
    pos = api.token("pos", sub="till-1", store="S001")
    forged = api.token("ops").rsplit(".", 1)[0] + ".bm90LXRoZS1zaWduYXR1cmUtMDEyMzQ1Njc4OQ"

    # The world: stores, stock, the store's POS webhook (its first delivery fails), a Shopify
    # account with its secret and its location
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 10})
    receiver.answers.append(500)
    await ok(http, api, SET_WEBHOOK, {"url": receiver.url, "secret": WEBHOOK_SECRET}, ops)
    account = {
        "channel": "SHOPIFY",
        "account": "acme",
        "secret": CHANNEL_SECRET,
        "locations": [{"channelLocationId": LOCATION, "storeId": "S001"}],
    }
    await ok(http, api, UPSERT_ACCOUNT, {"input": account}, ops)

    # The store's POS listens; a socket with a bad token is refused
    async with socket(api) as terminal:
        await send(terminal, {"type": "connection_init", "payload": bearer(pos)})
        assert (await receive(terminal))["type"] == "connection_ack"
        await send(terminal, {"id": "1", "type": "subscribe", "payload": {"query": PICKUP_EVENTS}})
        async with socket(api) as intruder:
            await send(intruder, {"type": "connection_init", "payload": bearer(forged)})
            assert await close_code(intruder) == 4403

        # A shopper reserves, shows her QR code, is marked ready, checks in, and collects
        reserve = {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 1}]}
        data, _ = await ok(http, api, RESERVE, {"input": reserve}, alice)
        (held,) = data["reserve"]["reservations"]
        data, _ = await ok(http, api, QR, {"id": held["id"]}, alice)
        qr_payload = data["reservation"]["pickupQrPayload"]
        qr_png = await http.get(
            f"{api.url}/reservations/{held['id']}/qr.png",
            headers={"authorization": f"Bearer {alice}"},
        )
        assert qr_png.status_code == 200
        _, ready_request = await ok(http, api, MARK_READY, {"id": held["id"]}, pos)
        await ok(http, api, CHECK_IN, {"id": held["id"], "note": "bay 4"}, alice)
        await ok(http, api, SCAN, {"code": qr_payload}, pos)
        await ok(http, api, SCAN, {"code": held["code"].lower()}, pos)
        await ok(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos)

    # Tokens that are refused: garbage, a forged signature, one sent as Basic
    for header in (f"Bearer {forged}", "Bearer not-a-token", f"Basic {alice}"):
        refused = await http.post(
            f"{api.url}/graphql",
            json={"query": "query { myReservations { id } }"},
            headers={"authorization": header},
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    refused_png = await http.get(
        f"{api.url}/reservations/{held['id']}/qr.png", headers={"authorization": f"Bearer {forged}"}
    )
    assert refused_png.status_code == 401

    # The shop delivers an order, signed; then one with a bad signature, and one with a bad token
    body = shopify_order()
    delivered = await http.post(
        f"{api.url}/intake/shopify/acme",
        content=body,
        headers=shopify_headers(body, CHANNEL_SECRET),
    )
    assert delivered.status_code == 202, delivered.text
    message = await finished(api, delivered.json()["messageId"])
    assert message.status is IntakeStatus.ACCEPTED, (message.error_code, message.error)
    forged_delivery = shopify_headers(body, "not-the-channel-secret-0123456789")
    assert (
        await http.post(f"{api.url}/intake/shopify/acme", content=body, headers=forged_delivery)
    ).status_code == 401
    with_token = {**shopify_headers(body, CHANNEL_SECRET), "authorization": f"Bearer {forged}"}
    assert (
        await http.post(f"{api.url}/intake/shopify/acme", content=body, headers=with_token)
    ).status_code == 401

    # The POS webhook is retried and delivered
    api.clock.advance(5)
    await receiver.wait_for(2)

    # Then: no line holds any of it
    secrets = {
        "the ops token": ops,
        "the customer's token": alice,
        "the POS token": pos,
        "the forged token": forged,
        "the signature of the forged token": forged.rsplit(".", 1)[1],
        "the JWT secret": JWT_SECRET,
        "the QR secret": QR_SECRET,
        "the channel secret": CHANNEL_SECRET,
        "the POS webhook secret": WEBHOOK_SECRET,
        "the delivery's signature": shopify_headers(body, CHANNEL_SECRET)["X-Shopify-Hmac-Sha256"],
        "the QR payload": qr_payload,
        "the QR payload's signature": qr_payload.rsplit(".", 1)[-1],
        "the pickup code": held["code"],
        "the customer's e-mail": EMAIL,
        "the customer's phone": PHONE,
        "the customer's phone, digits": PHONE.replace(" ", "").removeprefix("+"),
        "the customer's first name": FIRST_NAME,
        "the customer's last name": LAST_NAME,
    }
    assert log.leaks(secrets) == []

    # and the work was logged, each line of a request with that request's id
    lines = log.lines(log.shipped)
    events = {line["event"] for line in lines}
    assert {"reserved", "ready", "arrived", "collected", "intake message received"} <= events
    assert any(line["logger"] == "uvicorn.access" for line in lines)
    (ready,) = [line for line in lines if line["event"] == "ready"]
    assert ready["request_id"] == ready_request
    assert (ready["reservation_id"], ready["store_id"]) == (held["id"], "S001")
    (retry,) = [line for line in lines if line["event"] == "webhook retry scheduled"]
    assert (retry["reservation_id"], retry["store_id"]) == (held["id"], "S001")
    received = [line for line in lines if line["event"] == "intake message received"]
    assert received
    assert all(len(line.get("request_id", "")) == 32 for line in received)
    # (the POS's own server, the receiver, logs its access lines too: not ours)
    access = [
        line
        for line in lines
        if line["logger"] == "uvicorn.access" and "/hooks" not in line["event"]
    ]
    assert access
    assert [line["event"] for line in access if not line.get("request_id")] == []


async def test_the_capture_finds_a_secret_written_at_the_source(log: Log) -> None:
    # What the test above relies on: a secret a call site writes is found, in the line as
    # shipped when it is not shaped like a token, and in the line at the source whatever it is.
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLTAxMjM0NTY3ODk"
    logging.getLogger("tests.source").warning(
        "oops", extra={"contact": EMAIL, "headers": {"authorization": f"Bearer {token}"}}
    )

    leaks = log.leaks({"e-mail": EMAIL, "token": token})

    assert ("shipped", "e-mail") in {(where, what) for where, what, _ in leaks}
    assert ("at source", "token") in {(where, what) for where, what, _ in leaks}
    assert ("shipped", "token") not in {(where, what) for where, what, _ in leaks}
