"""Gap detection over real HTTP: orders whose webhooks never came (WooCommerce never retries),
found by sweeping the channel's API through `ropos channel-emulator`, fed into the same flow and
reserved; what webhooks brought is not fed again, and a sweep run twice feeds nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from adapters.db.engine import Database
from domain.intake import IntakeStatus, SalesChannel
from services.intake import accounts, ops
from tests.api.conftest import ChannelEmulator, Gateway, gql, running_gateway
from tests.api.given import given_stores_with_stock
from tests.api.test_intake_fetch_back import (
    API_TOKEN,
    bigcommerce_order,
    send,
    settled,
)
from tests.api.test_intake_flow import given_account, stock

pytestmark = pytest.mark.asyncio(loop_scope="session")

WOO_TOKEN = "ck_0123456789abcdef:cs_fedcba9876543210"
SWEEP = """
mutation($channel: SalesChannel!, $account: String!, $since: DateTime!) {
  sweepChannelAccount(channel: $channel, account: $account, since: $since) {
    channel account found fed applied fedBefore error
  }
}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    """A gateway whose periodic sweep runs often (its window is by the test's clock)."""
    async with running_gateway(database_url, db, intake_sweep_interval_seconds=0.2) as running:
        yield running


@pytest.fixture
async def channel(api: Gateway, emulator: ChannelEmulator) -> ChannelEmulator:
    api.clock.set(datetime.now(UTC).replace(microsecond=0))
    api.app.state.runtime.channels.gate.clear()
    await emulator.admin("POST", "/admin/faults", {"mode": "none"})
    await emulator.admin("DELETE", "/admin/requests")
    for name, token in (("woocommerce", WOO_TOKEN), ("bigcommerce", API_TOKEN)):
        await emulator.admin("PUT", f"/admin/accounts/{name}/acme", {"token": token})
        for order_id in (await emulator.admin("GET", f"/admin/orders/{name}/acme"))["orderIds"]:
            await emulator.admin("DELETE", f"/admin/orders/{name}/acme/{order_id}")
    return emulator


def woo_order(order_id: int, modified: datetime, quantity: int = 1) -> dict[str, Any]:
    at = modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "id": order_id,
        "number": str(order_id),
        "status": "processing",
        "currency": "EUR",
        "date_created_gmt": at,
        "date_modified_gmt": at,
        "total": f"{10 * quantity}.00",
        "customer_id": 7,
        "billing": {"email": "shopper@example.com"},
        "line_items": [
            {"id": 1, "product_id": 301, "sku": "SKU-1", "quantity": quantity, "total": "10.00"}
        ],
        "shipping_lines": [],
    }


async def given_woo(
    http: httpx.AsyncClient, api: Gateway, emulator: ChannelEmulator, **change: Any
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 20})
    fields: dict[str, Any] = {
        "api_base_url": f"{emulator.url}/woocommerce/acme",
        "api_token": WOO_TOKEN,
        "assume_pickup": True,
    }
    fields.update(change)
    await given_account(api, SalesChannel.WOOCOMMERCE, **fields)


async def sweep(
    http: httpx.AsyncClient, api: Gateway, channel: SalesChannel, since: datetime
) -> dict[str, Any]:
    variables = {"channel": channel.name, "account": "acme", "since": since.isoformat()}
    result = await gql(http, api, SWEEP, variables, api.token("ops"))
    return dict(result.ok()["sweepChannelAccount"])


async def messages_of(api: Gateway, channel: SalesChannel) -> list[Any]:
    deps = api.app.state.runtime.deps
    found = await ops.messages(
        statuses=[],
        channel=channel,
        account="acme",
        first=100,
        by_impact=False,
        uow=deps.uow,
        clock=deps.clock,
    )
    return list(found)


async def all_final(api: Gateway, channel: SalesChannel, count: int) -> list[Any]:
    for _ in range(200):
        found = await messages_of(api, channel)
        if len(found) == count and all(m.status.final for m in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {count} final messages: {await messages_of(api, channel)}")


async def test_a_sweep_feeds_exactly_the_orders_whose_webhooks_never_came(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_woo(http, api, channel)
    now = api.clock.now()
    for n in (1, 2, 3, 4):
        order = woo_order(1000 + n, now - timedelta(minutes=30 - n))
        await channel.admin("PUT", f"/admin/orders/woocommerce/acme/{1000 + n}", order)
    # Orders 1001 and 1003 came by webhook; 1002 and 1004's webhooks were lost
    for n in (1, 3):
        sent = await send(channel, api, SalesChannel.WOOCOMMERCE, str(1000 + n), "order.created")
        assert (await settled(api, sent["body"]["messageId"])).status is IntakeStatus.ACCEPTED

    swept = await sweep(http, api, SalesChannel.WOOCOMMERCE, now - timedelta(hours=1))

    assert swept == {
        "channel": "WOOCOMMERCE",
        "account": "acme",
        "found": 4,
        "fed": 2,
        "applied": 2,
        "fedBefore": 0,
        "error": None,
    }
    found = await all_final(api, SalesChannel.WOOCOMMERCE, 4)
    fed = [m for m in found if m.dedupe_key.startswith("sweep:")]
    assert sorted(m.order.external_id for m in fed) == ["1002", "1004"]
    assert {m.status for m in fed} == {IntakeStatus.ACCEPTED}
    assert (await stock(http, api, "S001", "SKU-1"))["reserved"] == 4

    # The same window again: all four are applied now, nothing is fed twice
    again = await sweep(http, api, SalesChannel.WOOCOMMERCE, now - timedelta(hours=1))
    assert (again["found"], again["fed"], again["applied"]) == (4, 0, 4)
    assert len(await messages_of(api, SalesChannel.WOOCOMMERCE)) == 4


async def test_a_change_fed_once_is_not_fed_again_even_before_it_is_applied(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_woo(http, api, channel, enabled=True)
    now = api.clock.now()
    order = woo_order(2001, now - timedelta(minutes=10), quantity=500)  # more than is held
    await channel.admin("PUT", "/admin/orders/woocommerce/acme/2001", order)
    first = await sweep(http, api, SalesChannel.WOOCOMMERCE, now - timedelta(hours=1))
    assert first["fed"] == 1
    (refused,) = await all_final(api, SalesChannel.WOOCOMMERCE, 1)
    assert refused.status is IntakeStatus.REJECTED  # never applied: not held

    second = await sweep(http, api, SalesChannel.WOOCOMMERCE, now - timedelta(hours=1))
    assert (second["fed"], second["fedBefore"]) == (0, 1)


async def test_a_bigcommerce_sweep_fetches_what_it_finds_back(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 10})
    base = f"{channel.url}/bigcommerce/acme"
    await given_account(api, SalesChannel.BIGCOMMERCE, api_base_url=base, api_token=API_TOKEN)
    await channel.admin("PUT", "/admin/orders/bigcommerce/acme/218", bigcommerce_order(218))

    swept = await sweep(
        http, api, SalesChannel.BIGCOMMERCE, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    )

    assert (swept["found"], swept["fed"]) == (1, 1)
    (message,) = await all_final(api, SalesChannel.BIGCOMMERCE, 1)
    assert message.status is IntakeStatus.ACCEPTED, message
    assert message.decisions[0].rule == "fetch.back"
    assert (await stock(http, api, "S002", "SKU-1"))["reserved"] == 3


async def test_the_periodic_sweep_runs_by_itself_and_moves_its_mark(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_woo(http, api, channel)
    created = api.clock.now()
    await channel.admin(
        "PUT",
        "/admin/orders/woocommerce/acme/3001",
        woo_order(3001, created + timedelta(minutes=3)),
    )
    api.clock.advance(600)  # the order's change has settled: the next run sweeps it

    (message,) = await all_final(api, SalesChannel.WOOCOMMERCE, 1)
    assert message.status is IntakeStatus.ACCEPTED
    deps = api.app.state.runtime.deps
    (account,) = await accounts.list_accounts(SalesChannel.WOOCOMMERCE, uow=deps.uow)
    assert account.swept_until is not None
    assert account.swept_until >= created + timedelta(minutes=3)


async def test_a_failing_api_stops_the_sweep_and_counts_in_health(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_woo(http, api, channel)
    await channel.admin("POST", "/admin/faults", {"mode": "down", "status": 502})

    swept = await sweep(http, api, SalesChannel.WOOCOMMERCE, api.clock.now() - timedelta(hours=1))

    assert swept["fed"] == 0
    assert swept["error"] is not None
    assert "502" in swept["error"]
    health = """query { intakeHealth(channel: WOOCOMMERCE, account: "acme") { fetchErrors } }"""
    found = (await gql(http, api, health, token=api.token("ops"))).ok()
    assert found["intakeHealth"]["fetchErrors"] >= 1


async def test_a_sweep_is_refused_without_credentials_or_a_sane_range(
    http: httpx.AsyncClient, api: Gateway, channel: ChannelEmulator
) -> None:
    await given_woo(http, api, channel, api_base_url=None, api_token=None)
    since = api.clock.now() - timedelta(hours=1)
    variables = {"channel": "WOOCOMMERCE", "account": "acme", "since": since.isoformat()}
    refused = await gql(http, api, SWEEP, variables, api.token("ops"))
    assert refused.codes == ["BAD_USER_INPUT"]
    unknown = await gql(http, api, SWEEP, variables | {"account": "nobody"}, api.token("ops"))
    assert unknown.codes == ["NOT_FOUND"]
    later = variables | {"since": (api.clock.now() + timedelta(hours=1)).isoformat()}
    assert (await gql(http, api, SWEEP, later, api.token("ops"))).codes == ["BAD_USER_INPUT"]
