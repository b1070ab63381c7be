"""The order intake end to end, over HTTP: a channel's signed delivery at
`POST /intake/{channel}/{account}`, stored and answered, then read, validated and acted on by the
gateway's own intake worker, down to the reservation and the stock it locks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from adapters.db.tables import channel_accounts, intake_messages
from domain.intake import (
    ChannelAccount,
    ChannelOrder,
    Customer,
    IntakeMessage,
    IntakeStatus,
    Money,
    OrderEvent,
    OrderLine,
    OrderState,
    Pickup,
    RuleAction,
    SalesChannel,
    to_json,
)
from domain.intake_auth import sign_shopify, sign_woocommerce, standard_headers
from services.intake import accounts, ops
from services.intake.accounts import AccountChange
from tests.api.conftest import Gateway, gql, intake_stopped
from tests.api.given import given_stores_with_stock
from tests.api.test_subscriptions import bearer, subscribed, until_live
from tests.conftest import START

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3"  # base64 of 27 bytes
SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789"
STOCK = """
query($store: ID!, $sku: String!) { stockLevel(storeId: $store, sku: $sku) { onHand reserved } }
"""
GROUP = """
query($id: ID!) { reservation(id: $id) { id status storeId lines { sku quantity } } }
"""


async def given_account(api: Gateway, channel: SalesChannel, **change: Any) -> ChannelAccount:
    deps = api.app.state.runtime.deps
    fields: dict[str, Any] = {
        "secret": SECRET,
        "default_store_id": "S001",
        "locations": {"LOC-1": "S001", "LOC-2": "S002"},
    }
    fields.update(change)
    return await accounts.upsert_account(
        AccountChange(channel=channel, account="acme", **fields),
        uow=deps.uow,
        clock=deps.clock,
        cache=deps.intake_accounts,
    )


def an_order(
    external_id: str = "ORD-1",
    *,
    event: OrderEvent = OrderEvent.CREATE,
    lines: Mapping[str, int] | None = None,
    location: str | None = "LOC-1",
    pickup: bool = True,
    minute: int = 0,
) -> ChannelOrder:
    return ChannelOrder(
        channel=SalesChannel.GENERIC,
        account="acme",
        external_id=external_id,
        external_number=f"#{external_id}",
        event=event,
        placed_at=START - timedelta(hours=1),
        updated_at=START - timedelta(hours=1) + timedelta(minutes=minute),
        customer=Customer(id="C-7", email="shopper@example.com", guest=False),
        currency="EUR",
        total=Money(Decimal("20.00"), "EUR"),
        lines=tuple(
            OrderLine(sku=sku, quantity=q, name=sku, unit_price=Money(Decimal("10.00"), "EUR"))
            for sku, q in (lines or {"SKU-1": 2}).items()
        ),
        pickup=Pickup(requested=pickup, channel_location_id=location),
    )


def generic_body(order: ChannelOrder) -> bytes:
    return json.dumps(to_json(order)).encode()


async def post(
    http: httpx.AsyncClient,
    api: Gateway,
    body: bytes,
    *,
    channel: str = "generic",
    account: str = "acme",
    secret: str = SECRET,
    headers: Mapping[str, str] | None = None,
    msg_id: str | None = None,
) -> httpx.Response:
    sent = (
        dict(headers)
        if headers is not None
        else standard_headers(
            secret, msg_id or f"msg_{uuid.uuid4().hex}", int(api.clock.now().timestamp()), body
        )
    )
    sent.setdefault("content-type", "application/json")
    return await http.post(f"{api.url}/intake/{channel}/{account}", content=body, headers=sent)


async def finished(api: Gateway, message_id: str, seconds: float = 10.0) -> IntakeMessage:
    """The message once the gateway's worker has given it a final status."""
    deps = api.app.state.runtime.deps
    for _ in range(int(seconds / 0.05)):
        found = await ops.message(message_id, uow=deps.uow)
        if found is not None and found.status.final:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} not finished: {found}")


async def stock(http: httpx.AsyncClient, api: Gateway, store: str, sku: str) -> dict[str, int]:
    variables = {"store": store, "sku": sku}
    return dict((await gql(http, api, STOCK, variables, api.token("ops"))).ok()["stockLevel"])


async def message_count(api: Gateway) -> int:
    async with api.db.engine.connect() as conn:
        return int(
            (
                await conn.execute(sa.select(sa.func.count()).select_from(intake_messages))
            ).scalar_one()
        )


@pytest_asyncio.fixture(loop_scope="session")
async def shop(http: httpx.AsyncClient, api: Gateway) -> Gateway:
    await given_stores_with_stock(
        http, api, {("S001", "SKU-1"): 5, ("S001", "SKU-2"): 5, ("S002", "SKU-1"): 5}
    )
    await given_account(api, SalesChannel.GENERIC)
    return api


async def test_a_signed_order_is_stored_answered_then_reserved_at_the_mapped_store(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    response = await post(http, shop, generic_body(an_order(location="LOC-2")))
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "RECEIVED"
    message = await finished(shop, answer["messageId"])
    assert message.status is IntakeStatus.ACCEPTED, message
    assert message.order is not None
    assert message.order.pickup.store_id == "S002"
    assert message.reservation_group_id is not None
    assert await stock(http, shop, "S002", "SKU-1") == {"onHand": 5, "reserved": 2}
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 0}
    held = await ops.channel_order(
        SalesChannel.GENERIC, "acme", "ORD-1", uow=shop.app.state.runtime.deps.uow
    )
    assert held is not None
    assert (held.state, held.group_id) == (OrderState.RESERVED, message.reservation_group_id)


async def test_the_same_delivery_again_is_a_duplicate_and_changes_nothing(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    body = generic_body(an_order())
    first = await post(http, shop, body, msg_id="msg_same")
    await finished(shop, first.json()["messageId"])
    again = await post(http, shop, body, msg_id="msg_same")
    assert again.status_code == 200
    assert again.json() == {"messageId": first.json()["messageId"], "status": "DUPLICATE"}
    assert await message_count(shop) == 1
    # The same order under another delivery id: one reservation still (idempotency key).
    other = await post(http, shop, body, msg_id="msg_other")
    assert other.status_code == 202
    second = await finished(shop, other.json()["messageId"])
    assert second.status is IntakeStatus.IGNORED
    assert second.error_code == "NO_CHANGE"
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 2}


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("wrong-secret", "BAD_SIGNATURE"),
        ("no-signature", "MISSING_SIGNATURE"),
        ("stale", "STALE_TIMESTAMP"),
        ("body-changed", "BAD_SIGNATURE"),
    ],
)
async def test_a_bad_or_missing_signature_is_refused_and_only_counted(
    http: httpx.AsyncClient, shop: Gateway, tamper: str, reason: str
) -> None:
    body = generic_body(an_order())
    now = int(shop.clock.now().timestamp())
    headers = standard_headers(SECRET, "msg_1", now, body)
    if tamper == "wrong-secret":
        headers = standard_headers(
            "whsec_" + "b3RoZXItc2VjcmV0LWtleS0wMTIzNDU2", "msg_1", now, body
        )
    elif tamper == "no-signature":
        headers = {}
    elif tamper == "stale":
        headers = standard_headers(SECRET, "msg_1", now - 600, body)
    else:
        body = body.replace(b'"quantity": 2', b'"quantity": 9')
    response = await post(http, shop, body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["reason"] == reason
    assert await message_count(shop) == 0
    await shop.app.state.runtime.deps.intake_counts.flush()  # counted within a second
    async with shop.db.engine.connect() as conn:
        failures = (await conn.execute(sa.select(channel_accounts.c.auth_failures))).scalar_one()
    assert failures == 1


async def test_unknown_channels_and_accounts_are_not_found(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    body = generic_body(an_order())
    assert (await post(http, shop, body, channel="ebay")).status_code == 404
    assert (await post(http, shop, body, account="nobody")).status_code == 404
    await given_account(shop, SalesChannel.GENERIC, enabled=False)
    assert (await post(http, shop, body)).status_code == 404
    assert await message_count(shop) == 0


async def test_a_body_that_is_not_json_is_kept_as_rejected_and_answered_400(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    response = await post(http, shop, b"<order>not json</order>")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BAD_USER_INPUT"
    message = await finished(shop, error["messageId"])
    assert (message.status, message.error_code) == (IntakeStatus.REJECTED, "MALFORMED")


async def test_a_body_over_the_limit_is_refused_before_it_is_stored(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    body = b'{"pad": "' + b"x" * (shop.settings.intake_max_bytes + 10) + b'"}'
    response = await post(http, shop, body)
    assert response.status_code == 413
    assert await message_count(shop) == 0


async def test_a_cancel_releases_what_the_order_holds(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    created = await post(http, shop, generic_body(an_order()))
    await finished(shop, created.json()["messageId"])
    cancel = an_order(event=OrderEvent.CANCEL, minute=5)
    response = await post(http, shop, generic_body(cancel))
    message = await finished(shop, response.json()["messageId"])
    assert message.status is IntakeStatus.ACCEPTED
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 0}
    # A create that arrives late (older than the cancel) changes nothing.
    late = await post(http, shop, generic_body(an_order(minute=1)), msg_id="msg_late")
    stale = await finished(shop, late.json()["messageId"])
    assert (stale.status, stale.error_code) == (IntakeStatus.IGNORED, "STALE")
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 0}


async def test_an_update_that_changes_the_lines_amends_in_one_transaction(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    created = await post(http, shop, generic_body(an_order()))
    first = await finished(shop, created.json()["messageId"])
    amended = an_order(event=OrderEvent.UPDATE, lines={"SKU-1": 1, "SKU-2": 3}, minute=5)
    response = await post(http, shop, generic_body(amended))
    second = await finished(shop, response.json()["messageId"])
    assert second.status is IntakeStatus.ACCEPTED, second
    assert second.reservation_group_id != first.reservation_group_id
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 1}
    assert await stock(http, shop, "S001", "SKU-2") == {"onHand": 5, "reserved": 3}
    # More than the store has: refused, and what the order held stays held.
    too_much = an_order(event=OrderEvent.UPDATE, lines={"SKU-1": 1, "SKU-2": 6}, minute=9)
    response = await post(http, shop, generic_body(too_much))
    third = await finished(shop, response.json()["messageId"])
    assert (third.status, third.error_code) == (IntakeStatus.REJECTED, "OUT_OF_STOCK")
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 1}
    assert await stock(http, shop, "S001", "SKU-2") == {"onHand": 5, "reserved": 3}
    # An older update than the one applied is stale.
    old = an_order(event=OrderEvent.UPDATE, lines={"SKU-1": 4}, minute=2)
    response = await post(http, shop, generic_body(old))
    fourth = await finished(shop, response.json()["messageId"])
    assert (fourth.status, fourth.error_code) == (IntakeStatus.IGNORED, "STALE")
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 1}


async def test_business_refusals_end_rejected_with_their_code(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    cases = {
        "UNKNOWN_SKU": an_order("ORD-U", lines={"NOPE-1": 1}),
        "OUT_OF_STOCK": an_order("ORD-O", lines={"SKU-2": 6}),
        "LIMIT_EXCEEDED": an_order("ORD-L", lines={"SKU-2": 11}),
    }
    for code, order in cases.items():
        response = await post(http, shop, generic_body(order))
        message = await finished(shop, response.json()["messageId"])
        assert (message.status, message.error_code) == (IntakeStatus.REJECTED, code), message
    assert await stock(http, shop, "S001", "SKU-2") == {"onHand": 5, "reserved": 0}


async def test_an_order_not_for_pickup_is_kept_and_ignored(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    response = await post(http, shop, generic_body(an_order(pickup=False)))
    message = await finished(shop, response.json()["messageId"])
    assert (message.status, message.error_code) == (IntakeStatus.IGNORED, "NOT_PICKUP")
    assert message.order is not None
    assert message.order.external_id == "ORD-1"
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 0}


async def test_a_body_of_several_orders_goes_on_as_one_message_per_order(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    body = json.dumps(
        {"orders": [to_json(an_order("ORD-A")), to_json(an_order("ORD-B", location="LOC-2"))]}
    ).encode()
    response = await post(http, shop, body)
    parent = await finished(shop, response.json()["messageId"])
    assert parent.status is IntakeStatus.ACCEPTED
    deps = shop.app.state.runtime.deps
    async with deps.uow() as tx:
        children = await tx.intake.children(parent.id)
    assert len(children) == 2
    done = [await finished(shop, child.id) for child in children]
    assert [m.status for m in done] == [IntakeStatus.ACCEPTED, IntakeStatus.ACCEPTED]
    assert sorted(m.order.external_id for m in done if m.order) == ["ORD-A", "ORD-B"]
    assert {m.parent_id for m in done} == {parent.id}
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 2}
    assert await stock(http, shop, "S002", "SKU-1") == {"onHand": 5, "reserved": 2}


async def test_a_rotated_secret_verifies_beside_the_new_one_for_its_grace(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    new_secret = "whsec_" + "bmV3LXNpZ25pbmcta2V5LTAxMjM0NTY3ODk="
    await given_account(shop, SalesChannel.GENERIC, secret=new_secret, secret_grace_seconds=600)
    old = await post(http, shop, generic_body(an_order("ORD-OLD")), secret=SECRET)
    new = await post(http, shop, generic_body(an_order("ORD-NEW")), secret=new_secret)
    assert (old.status_code, new.status_code) == (202, 202)
    shop.clock.advance(601)
    late = await post(http, shop, generic_body(an_order("ORD-LATE")), secret=SECRET)
    assert late.status_code == 401


async def test_a_connector_may_send_with_a_channel_token_of_that_channel(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    body = generic_body(an_order())
    good = shop.token("channel", channel="generic")
    other = shop.token("channel", channel="shopify")
    refused = await post(http, shop, body, headers={"authorization": f"Bearer {other}"})
    assert refused.status_code == 401
    accepted = await post(http, shop, body, headers={"authorization": f"Bearer {good}"})
    assert accepted.status_code == 202
    message = await finished(shop, accepted.json()["messageId"])
    assert message.status is IntakeStatus.ACCEPTED


async def test_a_rejected_order_fixed_by_ops_runs_again_from_validation(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    response = await post(http, shop, generic_body(an_order(lines={"SKU-X": 1})))
    rejected = await finished(shop, response.json()["messageId"])
    assert rejected.error_code == "UNKNOWN_SKU"
    assert rejected.order is not None
    deps = shop.app.state.runtime.deps
    fixed = rejected.order.with_lines((OrderLine(sku="SKU-2", quantity=1, name="fixed by ops"),))
    await ops.resubmit(rejected.id, fixed, "ops-1", uow=deps.uow, clock=deps.clock)
    shop.app.state.runtime.intake.wake()
    again = await finished(shop, rejected.id)
    assert again.status is IntakeStatus.ACCEPTED, again
    assert await stock(http, shop, "S001", "SKU-2") == {"onHand": 5, "reserved": 1}
    assert [d.rule for d in again.decisions][:1] == ["ops.resubmit"]


async def test_a_replayed_message_reads_its_raw_body_again(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    response = await post(http, shop, generic_body(an_order(lines={"SKU-2": 8})))
    first = await finished(shop, response.json()["messageId"])
    assert first.error_code == "OUT_OF_STOCK"
    deps = shop.app.state.runtime.deps
    await given_stores_with_stock(http, shop, {("S001", "SKU-2"): 60})
    await ops.replay(first.id, "ops-1", uow=deps.uow, clock=deps.clock)
    again = await finished(shop, first.id)
    assert again.status is IntakeStatus.ACCEPTED
    assert await stock(http, shop, "S001", "SKU-2") == {"onHand": 60, "reserved": 8}


async def test_a_rule_set_to_shadow_records_what_it_would_have_done(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    await given_account(shop, SalesChannel.GENERIC, rules={"sku.unknown": RuleAction.SHADOW})
    response = await post(http, shop, generic_body(an_order(lines={"SKU-1": 1, "SKU-Z": 1})))
    message = await finished(shop, response.json()["messageId"])
    shadow = [d for d in message.decisions if d.rule == "sku.unknown"]
    assert shadow
    assert shadow[0].action is RuleAction.SHADOW
    # Not refused by the rule: the reserve itself then finds the SKU unknown.
    assert (message.status, message.error_code) == (IntakeStatus.REJECTED, "UNKNOWN_SKU")


async def test_a_shopify_webhook_signed_as_shopify_signs(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    await given_account(shop, SalesChannel.SHOPIFY, secret=SHOPIFY_SECRET, assume_pickup=True)
    body = json.dumps(
        {
            "id": 5678901234567890123,
            "admin_graphql_api_id": "gid://shopify/Order/5678901234567890123",
            "name": "#1001",
            "created_at": "2026-03-02T08:00:00+00:00",
            "updated_at": "2026-03-02T08:00:00+00:00",
            "currency": "EUR",
            "presentment_currency": "EUR",
            "total_price": "20.00",
            "email": "shopper@example.com",
            "customer": None,
            "location_id": None,
            "line_items": [
                {"id": 1, "sku": "SKU-1", "quantity": 2, "price": "10.00", "title": "Sku one"}
            ],
            "shipping_lines": [],
        }
    ).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign_shopify(SHOPIFY_SECRET, body),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Event-Id": "evt-1",
    }
    response = await post(http, shop, body, channel="shopify", headers=headers)
    assert response.status_code == 202
    message = await finished(shop, response.json()["messageId"])
    assert message.status is IntakeStatus.ACCEPTED, message
    assert message.order is not None
    assert message.order.external_id == "5678901234567890123"
    headers["X-Shopify-Hmac-Sha256"] = sign_shopify("another-secret-0123456789", body)
    headers["X-Shopify-Event-Id"] = "evt-2"
    assert (await post(http, shop, body, channel="shopify", headers=headers)).status_code == 401


async def test_woocommerces_form_encoded_ping_is_kept_and_ignored(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    secret = "wc-secret-0123456789abcdef"
    await given_account(shop, SalesChannel.WOOCOMMERCE, secret=secret)
    body = b"webhook_id=42"
    headers = {
        "X-WC-Webhook-Signature": sign_woocommerce(secret, body),
        "content-type": "application/x-www-form-urlencoded",
    }
    response = await post(http, shop, body, channel="woocommerce", headers=headers)
    assert response.status_code == 202
    message = await finished(shop, response.json()["messageId"])
    assert (message.status, message.error_code) == (IntakeStatus.IGNORED, "PING")


INTAKE_EVENTS = """
subscription($channel: SalesChannel, $account: String) {
  intakeEvents(channel: $channel, account: $account) {
    id messageId channel account status errorCode externalId reservationGroupId
  }
}
"""


async def test_ops_see_each_outcome_live(http: httpx.AsyncClient, shop: Gateway) -> None:
    variables = {"channel": "GENERIC", "account": "acme"}
    init = bearer(shop.token("ops"))
    warm = iter(range(1000))

    async def poke() -> None:
        await post(http, shop, generic_body(an_order(f"WARM-{next(warm)}", pickup=False)))

    def is_warm(event: dict[str, Any]) -> bool:
        return str(event["externalId"] or "").startswith("WARM-")

    async with subscribed(shop, INTAKE_EVENTS, variables, init_payload=init, skip=is_warm) as live:
        await until_live(live, poke)
        accepted = await post(http, shop, generic_body(an_order()))
        refused = await post(http, shop, generic_body(an_order("ORD-2", lines={"SKU-2": 6})))
        # Two orders: the worker may finish them in either order.
        events = {e["messageId"]: e for e in (await live.next(), await live.next())}
    first, second = events[accepted.json()["messageId"]], events[refused.json()["messageId"]]
    assert (first["status"], first["externalId"]) == ("ACCEPTED", "ORD-1")
    assert first["reservationGroupId"] is not None
    assert (second["status"], second["errorCode"]) == ("REJECTED", "OUT_OF_STOCK")


async def test_only_ops_may_watch_the_intake(shop: Gateway) -> None:
    init = bearer(shop.token("pos", store="S001"))
    async with subscribed(shop, INTAKE_EVENTS, {}, init_payload=init) as live:
        errors = await live.refused()
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_full_backlog_answers_429_stores_nothing_and_refuses_no_other_account(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    deps = shop.app.state.runtime.deps
    await given_account(shop, SalesChannel.GENERIC, max_backlog=2)
    await accounts.upsert_account(
        AccountChange(channel=SalesChannel.GENERIC, account="beta", secret=SECRET),
        uow=deps.uow,
        clock=deps.clock,
        cache=deps.intake_accounts,
    )
    async with intake_stopped(shop):  # what is stored stays waiting
        waiting = [await post(http, shop, generic_body(an_order(f"ORD-{n}"))) for n in (1, 2)]
        assert [r.status_code for r in waiting] == [202, 202]

        refused = await post(http, shop, generic_body(an_order("ORD-3")))

        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "60"  # nothing drained lately: a minute
        assert refused.json()["error"] | {"message": None} == {
            "code": "RATE_LIMITED",
            "message": None,
            "retryAfterSeconds": 60,
            "maxBacklog": 2,
        }
        async with shop.db.read() as conn:
            stored = (
                await conn.execute(
                    sa.select(intake_messages.c.external_id, intake_messages.c.account).order_by(
                        intake_messages.c.received_at
                    )
                )
            ).all()
        assert [tuple(r) for r in stored] == [(None, "acme"), (None, "acme")]  # ORD-3 not kept
        # Another account of the same channel is not refused.
        other = await post(http, shop, generic_body(an_order("B-1")), account="beta")
        assert other.status_code == 202

    # Once the worker has drained the backlog, the account is taken again.
    for response in waiting:
        await finished(shop, response.json()["messageId"])
    for _ in range(60):  # the edge counts the backlog again within a second
        again = await post(http, shop, generic_body(an_order("ORD-3")))
        if again.status_code != 429:
            break
        await asyncio.sleep(0.05)
    assert again.status_code == 202


async def test_the_edge_keeps_what_an_order_is_worth_for_the_worker_to_take_it_by_value(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    async with intake_stopped(shop):
        response = await post(http, shop, generic_body(an_order()))
        assert response.status_code == 202
        stored = await ops.message(
            response.json()["messageId"], uow=shop.app.state.runtime.deps.uow
        )
        assert stored is not None
        assert (stored.status, stored.order_value) == (IntakeStatus.RECEIVED, Decimal("20.0000"))
    done = await finished(shop, response.json()["messageId"])
    assert (done.status, done.order_value) == (IntakeStatus.ACCEPTED, Decimal("20.0000"))


async def test_in_a_backlog_a_cancel_overtakes_the_creates_and_its_stock_serves_them(
    http: httpx.AsyncClient, shop: Gateway
) -> None:
    held = await post(http, shop, generic_body(an_order("ORD-E", lines={"SKU-1": 4})))
    assert (await finished(shop, held.json()["messageId"])).status is IntakeStatus.ACCEPTED
    async with intake_stopped(shop):  # a backlog: two creates, then the cancel of ORD-E
        creates = [
            await post(http, shop, generic_body(an_order(code, lines={"SKU-1": 2})))
            for code in ("ORD-A", "ORD-B")
        ]
        body = generic_body(an_order("ORD-E", event=OrderEvent.CANCEL, minute=5))
        signed = standard_headers(SECRET, "msg-cancel", int(shop.clock.now().timestamp()), body)
        cancel = await post(
            http, shop, body, headers={**signed, "x-ropos-topic": "order.cancelled"}
        )
        assert [r.status_code for r in (*creates, cancel)] == [202, 202, 202]
    # Only 1 unit is free until ORD-E's 4 go back: the creates can only pass after the cancel
    done = [await finished(shop, r.json()["messageId"]) for r in (cancel, *creates)]
    assert [m.status for m in done] == [IntakeStatus.ACCEPTED] * 3, done
    assert await stock(http, shop, "S001", "SKU-1") == {"onHand": 5, "reserved": 4}
