"""The intake's health per source, over HTTP: deliveries of every kind to one account (accepted,
refused by a rule, would-be refused by a SHADOW rule, duplicated, badly signed, not JSON, over
the backlog), then `intakeHealth` and `intakeHealthByAccount` as ops read them."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from domain.intake import RuleAction, SalesChannel
from tests.api.conftest import Gateway, gql, intake_stopped
from tests.api.given import given_stores_with_stock
from tests.api.test_intake_flow import an_order, finished, generic_body, given_account, post

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIGURES = """
  channel account received orders accepted ignored rejected dead discarded waiting duplicates
  signatureFailures oversized backlogRefusals fetchErrors backlog oldestWaitingSeconds
  p50Seconds p99Seconds lagP50Seconds lagP99Seconds sample
  rejectRates { rule rejected wouldReject rate }
  failures { status code count impact }
"""
HEALTH = f"""
query($channel: SalesChannel!, $account: String!, $since: DateTime) {{
  intakeHealth(channel: $channel, account: $account, since: $since) {{ {FIGURES} }}
}}
"""
EVERY = f"query {{ intakeHealthByAccount {{ {FIGURES} }} }}"


async def health_of(http: httpx.AsyncClient, api: Gateway, account: str = "acme") -> Any:
    variables = {"channel": "GENERIC", "account": account}
    return (await gql(http, api, HEALTH, variables, api.token("ops"))).ok()["intakeHealth"]


async def test_every_kind_of_delivery_is_in_the_accounts_health(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5, ("S002", "SKU-1"): 5})
    await given_account(api, SalesChannel.GENERIC, rules={"sku.unknown": RuleAction.SHADOW})

    # Two accepted orders (one of them delivered twice), received 10 min after the channel's time
    api.clock.advance(600)
    first = await post(http, api, generic_body(an_order("ORD-1")), msg_id="msg-1")
    await finished(api, first.json()["messageId"])
    assert (
        await post(http, api, generic_body(an_order("ORD-1")), msg_id="msg-1")
    ).status_code == 200
    second = await post(http, api, generic_body(an_order("ORD-2")))
    await finished(api, second.json()["messageId"])
    # An unknown SKU: the SHADOW rule would have refused it, the reserve then does
    unknown = await post(http, api, generic_body(an_order("ORD-3", lines={"SKU-Z": 1})))
    await finished(api, unknown.json()["messageId"])
    # More than a customer may hold: refused by the business
    greedy = await post(http, api, generic_body(an_order("ORD-4", lines={"SKU-1": 50})))
    await finished(api, greedy.json()["messageId"])
    # A bad signature, and a body that is not JSON
    forged = await post(http, api, generic_body(an_order("ORD-5")), secret="whsec_" + "A" * 40)
    assert forged.status_code == 401
    assert (await post(http, api, b"{not json")).status_code == 400

    found = await health_of(http, api)

    assert {k: found[k] for k in ("channel", "account", "received", "orders")} == {
        "channel": "GENERIC",
        "account": "acme",
        "received": 5,  # stored deliveries: the duplicate and the forged one were not kept
        "orders": 5,
    }
    assert (found["accepted"], found["rejected"], found["dead"], found["waiting"]) == (2, 3, 0, 0)
    assert (found["duplicates"], found["signatureFailures"], found["backlogRefusals"]) == (1, 1, 0)
    assert (found["backlog"], found["oldestWaitingSeconds"]) == (0, None)
    assert found["sample"] == 5
    assert found["p50Seconds"] is not None
    assert found["p99Seconds"] >= found["p50Seconds"] >= 0
    # The generic orders are from an hour before START; received 10 minutes after START
    assert found["lagP50Seconds"] == pytest.approx(4200, abs=5)
    # The SHADOW rule would have refused one order of the four read (the malformed one never
    # reached the rules, but counts among those validated in the sample's final messages)
    (shadow,) = [r for r in found["rejectRates"] if r["rule"] == "sku.unknown"]
    assert (shadow["rejected"], shadow["wouldReject"]) == (0, 1)
    assert shadow["rate"] == pytest.approx(1 / 5)
    # Failures by impact (value + 1 each): the two orders of 20.00 (equal: by code), then the
    # body no one could read (worth nothing known)
    assert [(f["status"], f["code"], f["count"]) for f in found["failures"]] == [
        ("REJECTED", "LIMIT_EXCEEDED", 1),
        ("REJECTED", "UNKNOWN_SKU", 1),
        ("REJECTED", "MALFORMED", 1),
    ]


async def test_a_full_backlog_and_the_oldest_waiting_message_are_shown(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5})
    await given_account(api, SalesChannel.GENERIC, max_backlog=1)
    async with intake_stopped(api):
        assert (await post(http, api, generic_body(an_order("ORD-1")))).status_code == 202
        assert (await post(http, api, generic_body(an_order("ORD-2")))).status_code == 429
        api.clock.advance(90)

        found = await health_of(http, api)

    assert (found["received"], found["waiting"], found["backlog"]) == (1, 1, 1)
    assert found["backlogRefusals"] == 1
    assert found["oldestWaitingSeconds"] == pytest.approx(90)
    assert found["p50Seconds"] is None  # nothing finished yet


async def test_a_split_body_counts_as_one_delivery_of_several_orders(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5})
    await given_account(api, SalesChannel.GENERIC)
    orders = [json.loads(generic_body(an_order(f"ORD-{n}", lines={"SKU-1": 1}))) for n in (1, 2)]
    response = await post(http, api, json.dumps({"orders": orders}).encode())
    parent = await finished(api, response.json()["messageId"])
    assert parent.decisions[0].rule == "body.split"
    for _ in range(100):
        found = await health_of(http, api)
        if found["accepted"] == 2:
            break
        await asyncio.sleep(0.05)
    assert (found["received"], found["orders"], found["accepted"]) == (1, 2, 2)


async def test_every_account_at_once_the_one_failing_most_first(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5})
    await given_account(api, SalesChannel.GENERIC)
    await given_account(api, SalesChannel.SHOPIFY)  # configured, nothing came: all zeros
    refused = await post(http, api, generic_body(an_order("ORD-1", lines={"SKU-1": 9})))
    await finished(api, refused.json()["messageId"])

    every = (await gql(http, api, EVERY, token=api.token("ops"))).ok()["intakeHealthByAccount"]

    assert [(h["channel"], h["account"]) for h in every] == [
        ("GENERIC", "acme"),
        ("SHOPIFY", "acme"),
    ]
    assert every[0]["failures"][0]["code"] == "OUT_OF_STOCK"
    assert (every[1]["received"], every[1]["failures"]) == (0, [])


async def test_the_window_is_checked_and_only_ops_read_health(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    later = (api.clock.now() + timedelta(hours=1)).isoformat()
    variables = {"channel": "GENERIC", "account": "acme", "since": later}
    refused = await gql(http, api, HEALTH, variables, api.token("ops"))
    assert refused.codes == ["BAD_USER_INPUT"]
    shopper = await gql(http, api, EVERY, token=api.token("customer"))
    assert shopper.codes == ["FORBIDDEN"]
