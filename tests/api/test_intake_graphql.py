"""The order intake's ops API over real HTTP: channel accounts (their secrets write-only), the
validation profile, and what ops do with intake messages made by POSTing signed deliveries to
/intake/{channel}/{account} and letting the gateway's intake worker take them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.intake import (
    ChannelOrder,
    Customer,
    Money,
    OrderEvent,
    OrderLine,
    Pickup,
    RuleAction,
    SalesChannel,
    to_json,
)
from domain.intake_auth import sign_shopify, standard_headers
from domain.intake_rules import DEFAULTS, RULES, profile
from tests.api.conftest import Gateway, Result, gql, intake_stopped, running_gateway
from tests.api.given import assert_refused, database_rows, given_stock, given_stores
from tests.conftest import START

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
SECRET = "whsec_" + "c2VjcmV0LW9mLXRoZS13ZWItc2hvcC0x"  # base64 of 24 bytes
NEW_SECRET = "the-web-shop-s-second-secret-2026"
API_TOKEN = "shpat_the-web-shop-s-api-token-0123"
WAIT_SECONDS = 10

# --- the operations ------------------------------------------------------------------------------

RULE_FIELDS = "rule description action defaultAction allowedActions overridden"
ACCOUNT_FIELDS = f"""
  channel account defaultStoreId
  locations {{ channelLocationId storeId }}
  products {{ channelProductId sku }}
  rules {{ {RULE_FIELDS} }}
  apiBaseUrl hasApiToken hasSecret previousSecretValidUntil assumePickup notificationUrl
  maxBacklog weight enabled authFailures intakeUrl createdAt updatedAt
"""
UPSERT_ACCOUNT = f"""
mutation($input: ChannelAccountInput!) {{ upsertChannelAccount(input: $input) {{ {ACCOUNT_FIELDS} }} }}
"""
CHANNEL_ACCOUNTS = f"""
query($channel: SalesChannel) {{ channelAccounts(channel: $channel) {{ {ACCOUNT_FIELDS} }} }}
"""
ACCOUNT_NAMES = """
query($channel: SalesChannel) { channelAccounts(channel: $channel) { channel account } }
"""
VALIDATION_PROFILE = f"""
query($channel: SalesChannel!, $account: String) {{
  validationProfile(channel: $channel, account: $account) {{ {RULE_FIELDS} }}
}}
"""
MONEY = "amount currency"
ORDER_FIELDS = f"""
  channel account externalId externalNumber event placedAt updatedAt status cancelled
  customer {{ id email guest }} currency presentmentCurrency total {{ {MONEY} }}
  lines {{ sku channelProductId lineId name quantity unitPrice {{ {MONEY} }} }}
  pickup {{ requested storeId channelLocationId }} customerLocation {{ lat lon }}
  state reservationGroupId lastMessageId
"""
MESSAGE_FIELDS = f"""
  id channel account topic eventId parentId receivedAt status attempts nextAttemptAt
  finishedAt lastError {{ code message }} decisions {{ rule action field message code }}
  order {{ {ORDER_FIELDS} }} reservationGroupId impact
"""
INTAKE_MESSAGE = f"""
query($id: ID!) {{ intakeMessage(id: $id) {{ {MESSAGE_FIELDS} children {{ id }} }} }}
"""
MESSAGE_STATUS = """
query($id: ID!) {
  intakeMessage(id: $id) {
    id status attempts lastError { code } decisions { rule action field code } reservationGroupId
  }
}
"""
INTAKE_MESSAGES = """
query($status: [IntakeStatus!], $channel: SalesChannel, $account: String, $first: Int! = 50,
      $orderBy: IntakeOrder! = RECEIVED_AT_DESC) {
  intakeMessages(status: $status, channel: $channel, account: $account, first: $first,
                 orderBy: $orderBy) { id status impact }
}
"""
WITH_CHILDREN = """
query($id: ID!) {
  intakeMessage(id: $id) {
    id status parentId decisions { rule action }
    children { id status parentId order { externalId } children { id } }
  }
}
"""
CHANNEL_ORDER = f"""
query($channel: SalesChannel!, $account: String!, $externalId: String!) {{
  channelOrder(channel: $channel, account: $account, externalId: $externalId) {{ {ORDER_FIELDS} }}
}}
"""
REQUEUED_FIELDS = """
  id status attempts nextAttemptAt finishedAt lastError { code } decisions { rule action message }
  order { externalId lines { sku quantity } }
"""
REPLAY = f"mutation($id: ID!) {{ replayIntakeMessage(id: $id) {{ {REQUEUED_FIELDS} }} }}"
REPLAY_MANY = """
mutation($status: IntakeStatus!, $channel: SalesChannel, $account: String) {
  replayIntakeMessages(status: $status, channel: $channel, account: $account)
}
"""
DISCARD = f"""
mutation($id: ID!, $reason: String!) {{
  discardIntakeMessage(id: $id, reason: $reason) {{ {REQUEUED_FIELDS} }}
}}
"""
RESUBMIT = f"""
mutation($id: ID!, $order: ChannelOrderInput!) {{
  resubmitIntakeMessage(id: $id, order: $order) {{ {REQUEUED_FIELDS} }}
}}
"""

# --- steps ---------------------------------------------------------------------------------------


def ops(api: Gateway) -> str:
    return api.token("ops", sub="olga")


async def upsert(http: httpx.AsyncClient, api: Gateway, **fields: Any) -> Result:
    account = {"channel": "GENERIC", "account": "web-shop", **fields}
    return await gql(http, api, UPSERT_ACCOUNT, {"input": account}, ops(api))


async def given_world(http: httpx.AsyncClient, api: Gateway) -> None:
    """Stores S001 and S002, 10 of SKU-1 at S001, and the generic account web-shop sending to
    S001 by default."""
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 10})
    (await upsert(http, api, secret=SECRET, defaultStoreId="S001")).ok()


def an_order(external_id: str = "order-1", sku: str = "SKU-1", quantity: int = 2) -> ChannelOrder:
    price = Money(Decimal("9.99"), "GBP")
    return ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="web-shop",
        external_id=external_id,
        external_number="1001",
        event=OrderEvent.CREATE,
        placed_at=START - timedelta(hours=1),
        updated_at=START - timedelta(minutes=30),
        status="paid",
        customer=Customer(id="C-1", email="ann@example.com", guest=False),
        currency="GBP",
        presentment_currency="GBP",
        total=Money(price.amount * quantity, "GBP"),
        lines=(OrderLine(sku, quantity, "P-1", "Rain jacket", price, "line-1"),),
        pickup=Pickup(requested=True, store_id="S001"),
    )


async def deliver(
    http: httpx.AsyncClient,
    api: Gateway,
    body: bytes,
    *,
    secret: str = SECRET,
    path: str = "/intake/generic/web-shop",
    msg_id: str | None = None,
) -> httpx.Response:
    """POST a Standard Webhooks delivery, signed with `secret` now."""
    now = int(api.clock.now().timestamp())
    headers = standard_headers(secret, msg_id or f"msg_{uuid.uuid4().hex}", now, body)
    return await http.post(
        f"{api.url}{path}", content=body, headers={**headers, "content-type": "application/json"}
    )


async def delivered(
    http: httpx.AsyncClient, api: Gateway, order: ChannelOrder | Any, msg_id: str | None = None
) -> str:
    """The id of the message a delivery of `order` (or of a JSON body) became."""
    body = to_json(order) if isinstance(order, ChannelOrder) else order
    response = await deliver(http, api, json.dumps(body).encode(), msg_id=msg_id)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "RECEIVED"
    return str(response.json()["messageId"])


async def settled(http: httpx.AsyncClient, api: Gateway, message_id: str) -> dict[str, Any]:
    """The message once the intake worker has finished with it."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                found = (await gql(http, api, MESSAGE_STATUS, {"id": message_id}, ops(api))).ok()
                message = found["intakeMessage"]
                if message["status"] not in ("RECEIVED", "RETRYING"):
                    return dict(message)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"intake message {message_id} was not taken") from None


async def message(http: httpx.AsyncClient, api: Gateway, message_id: str) -> dict[str, Any]:
    found = (await gql(http, api, INTAKE_MESSAGE, {"id": message_id}, ops(api))).ok()
    return dict(found["intakeMessage"])


def rules_of(channel: SalesChannel, overrides: dict[str, RuleAction]) -> list[dict[str, Any]]:
    """What validationProfile shows: every rule in the order run, from the rules themselves."""
    order = list(RuleAction)
    defaults, actions = profile(channel), profile(channel, overrides)
    return [
        {
            "rule": name,
            "description": rule.description,
            "action": actions[name].value,
            "defaultAction": defaults[name].value,
            "allowedActions": [a.value for a in sorted(rule.actions, key=order.index)],
            "overridden": name in overrides,
        }
        for name, rule in RULES.items()
    ]


def order_input(order: ChannelOrder) -> dict[str, Any]:
    """The order as ChannelOrderInput: the canonical JSON without what the input does not take."""
    body = to_json(order)
    body["channel"] = order.channel.name
    del body["customer"]["otherEmails"]
    return body


def _decisions(message: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    return [(d["rule"], d["action"], d["field"], d["code"]) for d in message["decisions"]]


START_ISO = START.isoformat()

# --- channel accounts ----------------------------------------------------------------------------


async def test_an_account_is_stored_as_ops_give_it_and_its_secrets_never_come_back(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given two stores
    await given_stores(http, api)

    # When ops create a generic account with everything an account has
    created = await upsert(
        http,
        api,
        secret=SECRET,
        defaultStoreId="S001",
        locations=[
            {"channelLocationId": "LOC-2", "storeId": "S002"},
            {"channelLocationId": "LOC-1", "storeId": "S001"},
        ],
        products=[{"channelProductId": "P-1", "sku": "SKU-1"}],
        rules=[{"rule": "sku.unknown", "action": "WARN"}],
        apiBaseUrl="https://shop.example.com/api",
        apiToken=API_TOKEN,
        assumePickup=True,
        notificationUrl="https://ropos.example.com/intake/generic/web-shop",
        maxBacklog=500,
        weight=3,
        enabled=True,
    )
    listed = await gql(http, api, CHANNEL_ACCOUNTS, {}, ops(api))

    # Then it is stored as given, with its effective rules, and shown the same in the list
    expected = {
        "channel": "GENERIC",
        "account": "web-shop",
        "defaultStoreId": "S001",
        "locations": [
            {"channelLocationId": "LOC-1", "storeId": "S001"},
            {"channelLocationId": "LOC-2", "storeId": "S002"},
        ],
        "products": [{"channelProductId": "P-1", "sku": "SKU-1"}],
        "rules": rules_of(SalesChannel.GENERIC, {"sku.unknown": RuleAction.WARN}),
        "apiBaseUrl": "https://shop.example.com/api",
        "hasApiToken": True,
        "hasSecret": True,
        "previousSecretValidUntil": None,
        "assumePickup": True,
        "notificationUrl": "https://ropos.example.com/intake/generic/web-shop",
        "maxBacklog": 500,
        "weight": 3,
        "enabled": True,
        "authFailures": 0,
        "intakeUrl": "/intake/generic/web-shop",
        "createdAt": START_ISO,
        "updatedAt": START_ISO,
    }
    assert created.ok() == {"upsertChannelAccount": expected}
    assert listed.ok() == {"channelAccounts": [expected]}
    # and neither the secret nor the API token is anywhere in what ops got back
    for result in (created, listed):
        text = json.dumps(result.body)
        assert SECRET not in text
        assert SECRET.removeprefix("whsec_") not in text
        assert API_TOKEN not in text


async def test_a_change_keeps_what_it_does_not_name(http: httpx.AsyncClient, api: Gateway) -> None:
    # Given an account with a secret, a store, a map and a rule override
    await given_stores(http, api)
    (
        await upsert(
            http,
            api,
            secret=SECRET,
            defaultStoreId="S001",
            products=[{"channelProductId": "P-1", "sku": "SKU-1"}],
            rules=[{"rule": "sku.unknown", "action": "WARN"}],
        )
    ).ok()

    # When ops change only its weight, and then clear its rule overrides
    api.clock.advance(60)
    weighed = (await upsert(http, api, weight=5)).ok()["upsertChannelAccount"]
    cleared = (await upsert(http, api, rules=[])).ok()["upsertChannelAccount"]

    # Then everything else stays as it was
    assert weighed["weight"] == 5
    assert weighed["hasSecret"] is True
    assert weighed["previousSecretValidUntil"] is None
    assert weighed["defaultStoreId"] == "S001"
    assert weighed["products"] == [{"channelProductId": "P-1", "sku": "SKU-1"}]
    assert weighed["rules"] == rules_of(SalesChannel.GENERIC, {"sku.unknown": RuleAction.WARN})
    assert weighed["createdAt"] == START_ISO
    assert weighed["updatedAt"] == (START + timedelta(seconds=60)).isoformat()
    assert cleared["rules"] == rules_of(SalesChannel.GENERIC, {})
    assert cleared["weight"] == 5


async def test_a_new_secret_keeps_the_previous_one_verifying_for_its_grace(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given an account with its first secret: there is no previous one
    await given_world(http, api)
    first = await gql(http, api, CHANNEL_ACCOUNTS, {}, ops(api))
    assert first.ok()["channelAccounts"][0]["previousSecretValidUntil"] is None

    # When ops rotate it with an hour's grace
    rotated = (await upsert(http, api, secret=NEW_SECRET, secretGraceSeconds=3600)).ok()

    # Then the previous secret verifies for that hour, the new one too, and afterwards only the
    # new one does; neither secret is ever shown
    until = START + timedelta(hours=1)
    assert rotated["upsertChannelAccount"]["previousSecretValidUntil"] == until.isoformat()
    assert rotated["upsertChannelAccount"]["hasSecret"] is True
    body = json.dumps(to_json(an_order())).encode()
    assert (await deliver(http, api, body, secret=SECRET)).status_code == 202
    api.clock.set(until + timedelta(seconds=1))
    late = await deliver(http, api, body, secret=SECRET)
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "UNAUTHENTICATED"
    assert (await deliver(http, api, body, secret=NEW_SECRET)).status_code == 202
    text = json.dumps(rotated) + json.dumps(first.body)
    assert SECRET not in text
    assert NEW_SECRET not in text
    # and the refused delivery is counted in the account's health
    listed = (await gql(http, api, CHANNEL_ACCOUNTS, {}, ops(api))).ok()["channelAccounts"]
    assert listed[0]["authFailures"] == 1


BAD_ACCOUNTS = [
    pytest.param(
        {"account": "web shop!"},
        {"code": "BAD_USER_INPUT", "field": "account"},
        id="bad-account-code",
    ),
    pytest.param(
        {"account": "x" * 41},
        {"code": "BAD_USER_INPUT", "field": "account"},
        id="account-code-too-long",
    ),
    pytest.param(
        {"secret": "too-short"},
        {"code": "BAD_USER_INPUT", "field": "secret"},
        id="short-secret",
    ),
    pytest.param(
        {"secret": NEW_SECRET, "secretGraceSeconds": -1},
        {"code": "BAD_USER_INPUT", "field": "secretGraceSeconds"},
        id="negative-grace",
    ),
    pytest.param(
        {"defaultStoreId": "S999"},
        {"code": "NOT_FOUND", "storeIds": ["S999"]},
        id="unknown-default-store",
    ),
    pytest.param(
        {"locations": [{"channelLocationId": "LOC-9", "storeId": "S998"}]},
        {"code": "NOT_FOUND", "storeIds": ["S998"]},
        id="unknown-location-store",
    ),
    pytest.param(
        {
            "locations": [
                {"channelLocationId": "LOC-1", "storeId": "S001"},
                {"channelLocationId": "LOC-1", "storeId": "S002"},
            ]
        },
        {"code": "BAD_USER_INPUT", "field": "locations"},
        id="location-mapped-twice",
    ),
    pytest.param(
        {"rules": [{"rule": "no.such_rule", "action": "WARN"}]},
        {"code": "BAD_USER_INPUT", "field": "rule", "rule": "no.such_rule"},
        id="unknown-rule",
    ),
    pytest.param(
        {"rules": [{"rule": "lines.empty", "action": "REPAIR"}]},
        {
            "code": "BAD_USER_INPUT",
            "field": "action",
            "rule": "lines.empty",
            "allowed": sorted(RULES["lines.empty"].actions),
        },
        id="action-the-rule-does-not-allow",
    ),
    pytest.param(
        {"weight": 0},
        {"code": "BAD_USER_INPUT", "field": "weight"},
        id="weight-out-of-range",
    ),
    pytest.param(
        {"apiBaseUrl": "ftp://shop.example.com"},
        {"code": "BAD_USER_INPUT", "field": "apiBaseUrl"},
        id="api-url-not-http",
    ),
]


@pytest.mark.parametrize(("fields", "extensions"), BAD_ACCOUNTS)
async def test_a_bad_account_is_refused_and_nothing_is_stored(
    http: httpx.AsyncClient, api: Gateway, fields: dict[str, Any], extensions: dict[str, Any]
) -> None:
    # Given the stores and an existing account
    await given_world(http, api)
    rows_before = await database_rows(api.db)

    # When ops create or change an account with one bad field
    result = await upsert(http, api, **fields)

    # Then it is refused with the field (or the stores) named, and nothing changed
    assert_refused(result, extensions, field="upsertChannelAccount")
    assert await database_rows(api.db) == rows_before


async def test_accounts_are_listed_by_channel_and_code(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given accounts of two channels, created out of order
    await given_stores(http, api)
    for channel, account in (("SHOPIFY", "eu-store"), ("GENERIC", "web-shop"), ("GENERIC", "erp")):
        (await upsert(http, api, channel=channel, account=account)).ok()

    # When ops list them, of one channel and of all
    generic = await gql(http, api, ACCOUNT_NAMES, {"channel": "GENERIC"}, ops(api))
    every = await gql(http, api, ACCOUNT_NAMES, {}, ops(api))
    square = await gql(http, api, ACCOUNT_NAMES, {"channel": "SQUARE"}, ops(api))

    # Then each list holds exactly those, by channel and code
    assert generic.ok() == {
        "channelAccounts": [
            {"channel": "GENERIC", "account": "erp"},
            {"channel": "GENERIC", "account": "web-shop"},
        ]
    }
    assert every.ok() == {
        "channelAccounts": [
            {"channel": "GENERIC", "account": "erp"},
            {"channel": "GENERIC", "account": "web-shop"},
            {"channel": "SHOPIFY", "account": "eu-store"},
        ]
    }
    assert square.ok() == {"channelAccounts": []}


async def test_the_validation_profile_of_a_channel_and_of_an_account(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a generic account that overrides two rules: one to SHADOW, and one the generic
    # channel sets apart from the rule's own default back to WARN
    await given_stores(http, api)
    channel_rule, channel_default = next(iter(DEFAULTS[SalesChannel.GENERIC].items()))
    overrides = {"sku.unknown": RuleAction.SHADOW, channel_rule: RuleAction.WARN}
    rules = [{"rule": name, "action": action.value} for name, action in overrides.items()]
    (await upsert(http, api, rules=rules)).ok()

    # When ops ask for the generic channel's defaults, the account's profile, and the profile of
    # an account that does not exist
    defaults = await gql(http, api, VALIDATION_PROFILE, {"channel": "GENERIC"}, ops(api))
    shopify = await gql(http, api, VALIDATION_PROFILE, {"channel": "SHOPIFY"}, ops(api))
    account = await gql(
        http, api, VALIDATION_PROFILE, {"channel": "GENERIC", "account": "web-shop"}, ops(api)
    )
    missing = await gql(
        http, api, VALIDATION_PROFILE, {"channel": "GENERIC", "account": "nobody"}, ops(api)
    )

    # Then the defaults are the channel's, the account's profile has its overrides on top, and an
    # unknown account is not found
    assert defaults.ok() == {"validationProfile": rules_of(SalesChannel.GENERIC, {})}
    assert shopify.ok() == {"validationProfile": rules_of(SalesChannel.SHOPIFY, {})}
    assert account.ok() == {"validationProfile": rules_of(SalesChannel.GENERIC, overrides)}
    # the channel's own default shows beside the account's action
    (relaxed,) = (r for r in account.data["validationProfile"] if r["rule"] == channel_rule)
    assert (relaxed["action"], relaxed["defaultAction"], relaxed["overridden"]) == (
        "WARN",
        channel_default.value,
        True,
    )
    assert missing.codes == ["NOT_FOUND"]
    assert missing.data is None


# --- intake messages -----------------------------------------------------------------------------


async def test_an_accepted_order_shows_in_its_message_and_as_the_order_ropos_holds(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given the world, and an order for 2 of SKU-1 at S001 delivered by the generic channel
    await given_world(http, api)
    message_id = await delivered(http, api, an_order(), msg_id="msg_order-1")

    # When the worker has taken it and ops look at the message and the order
    assert (await settled(http, api, message_id))["status"] == "ACCEPTED"
    found = await message(http, api, message_id)
    held = await gql(
        http,
        api,
        CHANNEL_ORDER,
        {"channel": "GENERIC", "account": "web-shop", "externalId": "order-1"},
        ops(api),
    )

    # Then the message says what came and what became of it: accepted, reserved, nothing left
    # to try, its value (19.98) + 1 as its impact at the moment it came
    group_id = found["reservationGroupId"]
    assert group_id
    canonical = {
        "channel": "GENERIC",
        "account": "web-shop",
        "externalId": "order-1",
        "externalNumber": "1001",
        "event": "CREATE",
        "placedAt": (START - timedelta(hours=1)).isoformat(),
        "updatedAt": (START - timedelta(minutes=30)).isoformat(),
        "status": "paid",
        "cancelled": False,
        "customer": {"id": "C-1", "email": "ann@example.com", "guest": False},
        "currency": "GBP",
        "presentmentCurrency": "GBP",
        "total": {"amount": "19.98", "currency": "GBP"},
        "lines": [
            {
                "sku": "SKU-1",
                "channelProductId": "P-1",
                "lineId": "line-1",
                "name": "Rain jacket",
                "quantity": 2,
                "unitPrice": {"amount": "9.99", "currency": "GBP"},
            }
        ],
        "pickup": {"requested": True, "storeId": "S001", "channelLocationId": None},
        "customerLocation": None,
    }
    assert found == {
        "id": message_id,
        "channel": "GENERIC",
        "account": "web-shop",
        "topic": None,
        "eventId": "msg_order-1",
        "parentId": None,
        "receivedAt": START_ISO,
        "status": "ACCEPTED",
        "attempts": 1,
        "nextAttemptAt": None,
        "finishedAt": START_ISO,
        "lastError": None,
        "decisions": [],
        "order": {**canonical, "state": None, "reservationGroupId": None, "lastMessageId": None},
        "reservationGroupId": group_id,
        "impact": 20.98,
        "children": [],
    }
    # and the order ROPOS holds is that order (without the customer's email, which the flow
    # no longer needs), reserved by that group, from that message
    assert held.ok() == {
        "channelOrder": {
            **canonical,
            "customer": {"id": "C-1", "email": None, "guest": False},
            "state": "RESERVED",
            "reservationGroupId": group_id,
            "lastMessageId": message_id,
        }
    }


async def test_what_does_not_exist_is_null(http: httpx.AsyncClient, api: Gateway) -> None:
    # Given the world, with no message and no order
    await given_world(http, api)

    # When ops ask for a message and an order nobody sent
    found = await gql(http, api, INTAKE_MESSAGE, {"id": str(uuid.uuid4())}, ops(api))
    held = await gql(
        http,
        api,
        CHANNEL_ORDER,
        {"channel": "GENERIC", "account": "web-shop", "externalId": "nope"},
        ops(api),
    )

    # Then both are null, without an error
    assert found.ok() == {"intakeMessage": None}
    assert held.ok() == {"channelOrder": None}


async def test_a_rejected_message_runs_again_when_replayed(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given an order for a SKU the catalogue does not have: rejected
    await given_world(http, api)
    message_id = await delivered(http, api, an_order(sku="SKU-2"))
    rejected = await settled(http, api, message_id)
    assert rejected["status"] == "REJECTED"
    assert rejected["lastError"] == {"code": "UNKNOWN_SKU"}
    assert _decisions(rejected) == [("sku.unknown", "REJECT", "lines[0].sku", "UNKNOWN_SKU")]
    assert rejected["reservationGroupId"] is None
    assert "SKU-2" in (await message(http, api, message_id))["lastError"]["message"]

    # When the SKU is stocked and ops replay the message
    await given_stock(http, api, {("S001", "SKU-2"): 5})
    replayed = await gql(http, api, REPLAY, {"id": message_id}, ops(api))

    # Then it is waiting again, due now, with fresh attempts and who replayed it
    assert replayed.ok() == {
        "replayIntakeMessage": {
            "id": message_id,
            "status": "RECEIVED",
            "attempts": 0,
            "nextAttemptAt": START_ISO,
            "finishedAt": None,
            "lastError": None,
            "decisions": [
                {"rule": "ops.replay", "action": "REPAIR", "message": "Replayed by olga."}
            ],
            "order": None,
        }
    }
    # and the worker reads it from its body again: this time it is accepted and reserved
    accepted = await settled(http, api, message_id)
    assert accepted["status"] == "ACCEPTED"
    assert accepted["lastError"] is None
    assert accepted["reservationGroupId"]


async def test_a_message_that_was_acted_on_is_not_replayed(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given an accepted message
    await given_world(http, api)
    message_id = await delivered(http, api, an_order())
    assert (await settled(http, api, message_id))["status"] == "ACCEPTED"
    rows_before = await database_rows(api.db)

    # When ops replay it, and replay every accepted message
    one = await gql(http, api, REPLAY, {"id": message_id}, ops(api))
    many = await gql(http, api, REPLAY_MANY, {"status": "ACCEPTED"}, ops(api))
    unknown = await gql(http, api, REPLAY, {"id": str(uuid.uuid4())}, ops(api))

    # Then each is refused and nothing changed: an order is never applied twice
    assert_refused(one, {"code": "INVALID_TRANSITION"}, field="replayIntakeMessage")
    assert_refused(
        many, {"code": "BAD_USER_INPUT", "field": "status"}, field="replayIntakeMessages"
    )
    assert_refused(unknown, {"code": "NOT_FOUND"}, field="replayIntakeMessage")
    assert await database_rows(api.db) == rows_before


async def test_every_message_in_a_status_is_replayed_at_once(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given two rejected messages (unknown SKUs) and an accepted one
    await given_world(http, api)
    rejected = [
        await delivered(http, api, an_order("order-1", sku="SKU-2")),
        await delivered(http, api, an_order("order-2", sku="SKU-3")),
    ]
    accepted = await delivered(http, api, an_order("order-3"))
    for message_id in rejected:
        assert (await settled(http, api, message_id))["status"] == "REJECTED"
    assert (await settled(http, api, accepted))["status"] == "ACCEPTED"

    # When ops replay the rejected messages of another account, then of this one
    none = await gql(http, api, REPLAY_MANY, {"status": "REJECTED", "account": "erp"}, ops(api))
    both = await gql(
        http,
        api,
        REPLAY_MANY,
        {"status": "REJECTED", "channel": "GENERIC", "account": "web-shop"},
        ops(api),
    )

    # Then none of the other account's, and both of this one's, run again (and are rejected
    # again: the SKUs are still unknown); the accepted one is left alone
    assert none.ok() == {"replayIntakeMessages": 0}
    assert both.ok() == {"replayIntakeMessages": 2}
    for message_id in rejected:
        again = await settled(http, api, message_id)
        assert (again["status"], again["attempts"]) == ("REJECTED", 1)
    assert (await settled(http, api, accepted))["status"] == "ACCEPTED"


async def test_a_rejected_message_is_corrected_and_resubmitted(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given an order whose line names a SKU that does not exist: rejected
    await given_world(http, api)
    wrong = an_order(sku="SKU-TYPO")
    message_id = await delivered(http, api, wrong)
    assert (await settled(http, api, message_id))["status"] == "REJECTED"

    # When ops resubmit it with the SKU corrected
    corrected = wrong.with_lines((replace(wrong.lines[0], sku="SKU-1"),))
    result = await gql(
        http, api, RESUBMIT, {"id": message_id, "order": order_input(corrected)}, ops(api)
    )

    # Then it waits again with the corrected order and who corrected it
    assert result.ok() == {
        "resubmitIntakeMessage": {
            "id": message_id,
            "status": "RECEIVED",
            "attempts": 0,
            "nextAttemptAt": START_ISO,
            "finishedAt": None,
            "lastError": None,
            "decisions": [
                {
                    "rule": "ops.resubmit",
                    "action": "REPAIR",
                    "message": "Corrected and resubmitted by olga.",
                }
            ],
            "order": {"externalId": "order-1", "lines": [{"sku": "SKU-1", "quantity": 2}]},
        }
    }
    # and the worker runs it from validation: accepted, and 2 of SKU-1 reserved for the order
    accepted = await settled(http, api, message_id)
    assert accepted["status"] == "ACCEPTED"
    held = await gql(
        http,
        api,
        CHANNEL_ORDER,
        {"channel": "GENERIC", "account": "web-shop", "externalId": "order-1"},
        ops(api),
    )
    order = held.ok()["channelOrder"]
    assert (order["state"], order["lastMessageId"]) == ("RESERVED", message_id)
    assert order["reservationGroupId"] == accepted["reservationGroupId"]
    assert order["lines"][0]["sku"] == "SKU-1"


def _changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The input with the value at a dotted path replaced."""
    changed: dict[str, Any] = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    target: Any = changed
    for name in parents:
        target = target[int(name)] if name.isdigit() else target[name]
    target[last] = value
    return changed


BAD_CORRECTIONS = [
    pytest.param("externalId", "order-2", "order.externalId", id="another-order"),
    pytest.param("account", "erp", "order", id="another-account"),
    pytest.param("channel", "SHOPIFY", "order", id="another-channel"),
    pytest.param("externalId", "", "order.externalId", id="empty-external-id"),
    pytest.param("total.currency", "pounds", "order.total.currency", id="bad-currency"),
    pytest.param("lines.0.unitPrice.amount", "NaN", "order.lines[0].unitPrice.amount", id="nan"),
    pytest.param("placedAt", "2026-03-02T08:00:00", "order.placedAt", id="no-time-zone"),
    pytest.param(
        "customerLocation", {"lat": 91, "lon": 0}, "order.customerLocation.lat", id="lat-91"
    ),
    pytest.param("lines", [{"sku": "SKU-1", "quantity": 1}] * 1001, "order.lines", id="lines"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_CORRECTIONS)
async def test_a_correction_that_is_not_of_the_message_s_order_is_refused(
    http: httpx.AsyncClient, api: Gateway, path: str, value: Any, field: str
) -> None:
    # Given a rejected message
    await given_world(http, api)
    wrong = an_order(sku="SKU-TYPO")
    message_id = await delivered(http, api, wrong)
    assert (await settled(http, api, message_id))["status"] == "REJECTED"
    rows_before = await database_rows(api.db)

    # When ops resubmit it with a correction that is bad or changes what the order is
    corrected = _changed(order_input(wrong), path, value)
    result = await gql(http, api, RESUBMIT, {"id": message_id, "order": corrected}, ops(api))

    # Then it is refused with the field named, and nothing changed
    assert_refused(
        result, {"code": "BAD_USER_INPUT", "field": field}, field="resubmitIntakeMessage"
    )
    assert await database_rows(api.db) == rows_before


async def test_a_message_is_discarded_with_a_reason_once(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a rejected message
    await given_world(http, api)
    message_id = await delivered(http, api, an_order(sku="SKU-TEST"))
    rejected = await settled(http, api, message_id)
    assert _decisions(rejected) == [("sku.unknown", "REJECT", "lines[0].sku", "UNKNOWN_SKU")]
    rows_before = await database_rows(api.db)

    # When ops discard it without a reason
    api.clock.advance(90)
    blank = await gql(http, api, DISCARD, {"id": message_id, "reason": "  "}, ops(api))

    # Then the reason is required, and nothing changed
    assert_refused(
        blank, {"code": "BAD_USER_INPUT", "field": "reason"}, field="discardIntakeMessage"
    )
    assert await database_rows(api.db) == rows_before

    # When they discard it with a reason
    discarded = await gql(
        http, api, DISCARD, {"id": message_id, "reason": "a test order"}, ops(api)
    )

    # Then it is over: the discard is recorded, with who and why, after what the rules decided
    assert discarded.ok() == {
        "discardIntakeMessage": {
            "id": message_id,
            "status": "DISCARDED",
            "attempts": 1,
            "nextAttemptAt": None,
            "finishedAt": (START + timedelta(seconds=90)).isoformat(),
            "lastError": {"code": "UNKNOWN_SKU"},
            "decisions": [
                {
                    "rule": "sku.unknown",
                    "action": "REJECT",
                    "message": discarded.data["discardIntakeMessage"]["decisions"][0]["message"],
                },
                {
                    "rule": "ops.discard",
                    "action": "REJECT",
                    "message": "Discarded by olga: a test order",
                },
            ],
            "order": {"externalId": "order-1", "lines": [{"sku": "SKU-TEST", "quantity": 2}]},
        }
    }
    rows_after = await database_rows(api.db)

    # When they discard it again, or a message that does not exist
    again = await gql(http, api, DISCARD, {"id": message_id, "reason": "again"}, ops(api))
    unknown = await gql(http, api, DISCARD, {"id": str(uuid.uuid4()), "reason": "x"}, ops(api))

    # Then a discarded message cannot be discarded again, a missing one is not found, and
    # nothing changed
    assert_refused(again, {"code": "INVALID_TRANSITION"}, field="discardIntakeMessage")
    assert_refused(unknown, {"code": "NOT_FOUND"}, field="discardIntakeMessage")
    assert await database_rows(api.db) == rows_after


async def test_a_delivery_of_several_orders_is_split_into_one_message_each(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a generic delivery holding two orders
    await given_world(http, api)
    body = {"orders": [to_json(an_order("order-1", quantity=1)), to_json(an_order("order-2"))]}
    parent_id = await delivered(http, api, body)

    # When the worker has taken the delivery and both of its orders
    assert (await settled(http, api, parent_id))["status"] == "ACCEPTED"
    first = await gql(http, api, WITH_CHILDREN, {"id": parent_id}, ops(api))
    children = first.ok()["intakeMessage"]["children"]
    assert len(children) == 2
    for child in children:
        assert (await settled(http, api, child["id"]))["status"] == "ACCEPTED"
    found = (await gql(http, api, WITH_CHILDREN, {"id": parent_id}, ops(api))).ok()

    # Then the delivery says it was split, and each order is a message of its own, traceable to
    # it, with no parts of its own
    assert found == {
        "intakeMessage": {
            "id": parent_id,
            "status": "ACCEPTED",
            "parentId": None,
            "decisions": [{"rule": "body.split", "action": "REPAIR"}],
            "children": [
                {
                    "id": children[0]["id"],
                    "status": "ACCEPTED",
                    "parentId": parent_id,
                    "order": {"externalId": "order-1"},
                    "children": [],
                },
                {
                    "id": children[1]["id"],
                    "status": "ACCEPTED",
                    "parentId": parent_id,
                    "order": {"externalId": "order-2"},
                    "children": [],
                },
            ],
        }
    }


async def test_messages_are_listed_by_status_channel_and_account_newest_or_weightiest_first(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given three messages a minute apart: a rejected order of 1 unit, an accepted one of 2, a
    # rejected one of 3 (values 9.99, 19.98 and 29.97)
    await given_world(http, api)
    ids = []
    for external_id, sku, quantity in (
        ("o-1", "SKU-X", 1),
        ("o-2", "SKU-1", 2),
        ("o-3", "SKU-Y", 3),
    ):
        ids.append(await delivered(http, api, an_order(external_id, sku, quantity)))
        await settled(http, api, ids[-1])
        api.clock.advance(60)
    small, accepted, large = ids

    async def listed(**variables: Any) -> list[tuple[str, str]]:
        result = await gql(http, api, INTAKE_MESSAGES, variables, ops(api))
        return [(m["id"], m["status"]) for m in result.ok()["intakeMessages"]]

    # When ops list them in different ways
    # Then each list holds exactly the messages asked for, in the order asked for
    assert await listed() == [(large, "REJECTED"), (accepted, "ACCEPTED"), (small, "REJECTED")]
    assert await listed(status=["REJECTED"]) == [(large, "REJECTED"), (small, "REJECTED")]
    assert await listed(status=["REJECTED", "ACCEPTED"], first=2) == [
        (large, "REJECTED"),
        (accepted, "ACCEPTED"),
    ]
    assert await listed(status=["DEAD"]) == []
    assert await listed(channel="GENERIC", account="web-shop", first=1) == [(large, "REJECTED")]
    assert await listed(channel="SHOPIFY") == []
    assert await listed(account="erp") == []
    # the weightiest first: the value of the order, plus one, for each hour it has waited
    assert await listed(status=["REJECTED"], orderBy="IMPACT_DESC") == [
        (large, "REJECTED"),
        (small, "REJECTED"),
    ]
    weights = await gql(http, api, INTAKE_MESSAGES, {"orderBy": "IMPACT_DESC"}, ops(api))
    impacts = {m["id"]: m["impact"] for m in weights.ok()["intakeMessages"]}
    # now is 3 minutes after the first came: 1 + 3/60 hours for it
    assert impacts[small] == pytest.approx((9.99 + 1) * (1 + 3 / 60))
    assert impacts[large] == pytest.approx((29.97 + 1) * (1 + 1 / 60))


@pytest.mark.parametrize("first", [0, 501])
async def test_a_list_of_messages_takes_1_to_500(
    http: httpx.AsyncClient, api: Gateway, first: int
) -> None:
    # Given the world
    await given_world(http, api)

    # When ops ask for too few or too many messages
    result = await gql(http, api, INTAKE_MESSAGES, {"first": first}, ops(api))

    # Then they are told how many they may ask for
    assert_refused(result, {"code": "BAD_USER_INPUT", "field": "first"}, field="intakeMessages")


async def test_a_shopify_delivery_that_is_not_an_order_is_ignored(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a Shopify account
    await given_stores(http, api)
    shopify_secret = "shpss_the-eu-store-s-webhook-secret"
    (await upsert(http, api, channel="SHOPIFY", account="eu-store", secret=shopify_secret)).ok()

    # When Shopify sends an inventory level update, signed its own way
    body = (
        FIXTURES / "shopify" / "webhook_inventory_levels_update_docs_sample_2024-04.json"
    ).read_bytes()
    response = await http.post(
        f"{api.url}/intake/shopify/eu-store",
        content=body,
        headers={
            "content-type": "application/json",
            "x-shopify-hmac-sha256": sign_shopify(shopify_secret, body),
            "x-shopify-topic": "inventory_levels/update",
            "x-shopify-event-id": "evt-1",
        },
    )
    assert response.status_code == 202, response.text
    message_id = response.json()["messageId"]

    # Then the message is stored under the Shopify account and ends IGNORED: nothing to act on
    assert (await settled(http, api, message_id))["status"] == "IGNORED"
    found = await message(http, api, message_id)
    assert (found["channel"], found["account"], found["topic"], found["eventId"]) == (
        "SHOPIFY",
        "eu-store",
        "inventory_levels/update",
        "evt-1",
    )
    assert found["lastError"]["code"] == "NOT_AN_ORDER"
    assert found["order"] is None
    assert found["nextAttemptAt"] is None
    listed = await gql(http, api, INTAKE_MESSAGES, {"channel": "SHOPIFY"}, ops(api))
    assert [m["id"] for m in listed.ok()["intakeMessages"]] == [message_id]


@pytest.fixture
async def slow(api: Gateway, database_url: str) -> AsyncIterator[Gateway]:
    """A gateway whose intake worker sweeps once a minute, alone on the database (the module's
    gateway's worker stopped meanwhile): only being woken explains a message taken in seconds."""
    async with (
        intake_stopped(api),
        running_gateway(database_url, api.db, intake_interval_seconds=60) as gateway,
    ):
        yield gateway


async def test_a_replay_and_a_resubmit_are_taken_at_once_not_at_the_next_sweep(
    http: httpx.AsyncClient, slow: Gateway
) -> None:
    await given_world(http, slow)
    first = await delivered(http, slow, an_order("order-1", sku="SKU-2"))
    second = await delivered(http, slow, an_order("order-2", sku="SKU-2"))
    assert (await settled(http, slow, first))["status"] == "REJECTED"  # the edge woke it
    assert (await settled(http, slow, second))["status"] == "REJECTED"
    await given_stock(http, slow, {("S001", "SKU-2"): 5})

    (await gql(http, slow, REPLAY, {"id": first}, ops(slow))).ok()
    assert (await settled(http, slow, first))["status"] == "ACCEPTED"

    corrected = order_input(an_order("order-2", sku="SKU-1"))
    (await gql(http, slow, RESUBMIT, {"id": second, "order": corrected}, ops(slow))).ok()
    assert (await settled(http, slow, second))["status"] == "ACCEPTED"


async def test_the_weightiest_ranking_is_the_impact_the_messages_show(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a small order refused 100 hours ago and a larger one refused now
    await given_world(http, api)
    old_small = await delivered(http, api, an_order("o-old", "SKU-X", 1))
    await settled(http, api, old_small)
    api.clock.advance(100 * 3600)
    new_large = await delivered(http, api, an_order("o-new", "SKU-Y", 3))
    await settled(http, api, new_large)

    ranked = await gql(http, api, INTAKE_MESSAGES, {"orderBy": "IMPACT_DESC"}, ops(api))

    # Then the long wait outweighs the larger value, as the impact each shows says
    listed = [(m["id"], m["impact"]) for m in ranked.ok()["intakeMessages"]]
    assert [message_id for message_id, _ in listed] == [old_small, new_large]
    assert listed[0][1] == pytest.approx((9.99 + 1) * (1 + 100))
    assert listed[1][1] == pytest.approx(29.97 + 1)
