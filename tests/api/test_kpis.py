"""The KPIs over real HTTP: every reserve attempt counted with its outcome (GraphQL and the
intake), the lifecycle's durations and endings, overall, per store and per channel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from domain.intake import IntakeStatus, OrderEvent, SalesChannel
from services import reservations
from tests.api.conftest import Gateway, gql
from tests.api.given import DEFAULT_POLICY, given_stores_with_stock
from tests.api.test_intake_flow import an_order, finished, generic_body, given_account, post

pytestmark = pytest.mark.asyncio(loop_scope="session")

RESERVE = """
mutation($input: ReserveInput!) { reserve(input: $input) { id reservations { id storeId } } }
"""
READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { status } }"
CHECK_IN = "mutation($id: ID!) { checkIn(id: $id) { status } }"
COMPLETE = """
mutation($id: ID!) {
  completePickup(id: $id, payment: {amount: "10.00", currency: "GBP", method: "card", reference: "t-1"}) {
    status }
}
"""
CANCEL = "mutation($id: ID!) { cancelReservation(id: $id) { status } }"
SHORT = """
mutation($id: ID!) { reportShortPick(reservationId: $id, sku: "SKU-3", quantityFound: 0) { id } }
"""
STATUS = "query($id: ID!) { reservation(id: $id) { status } }"
POLICY = """
mutation($input: ReservationPolicyInput!) { updateReservationPolicy(input: $input) {
  readyTargetSeconds } }
"""
SUCCESS = """
  asked reserved outOfStock limitExceeded badInput technicalFailures businessRefusals
  rate rateWhereStockExisted technicalFailureRate target met
"""
DURATION = "count meanSeconds p50Seconds p90Seconds targetSeconds shareWithinTarget"
ENDINGS = """
  ended collected cancelled expired noShows endedAfterReady picked shortPicked
  expiryRate cancelRate noShowRate shortPickRate
"""
FIGURES = f"""
  reservationSuccess {{ {SUCCESS} }}
  timeToReady {{ {DURATION} }}
  pickupWait {{ {DURATION} meanWithinTarget }}
  readyToCollected {{ {DURATION} }}
  endings {{ {ENDINGS} }}
"""
KPIS = f"""
query($store: ID, $since: DateTime) {{
  kpis(storeId: $store, since: $since) {{
    storeId
    {FIGURES}
    perStore {{ storeId figures {{ {FIGURES} }} }}
    perChannel {{ channel figures {{ reservationSuccess {{ asked reserved }} }} }}
    targets {{ reservationSuccessRate pickupWaitSeconds stockAccuracy readySeconds }}
  }}
}}
"""


async def reserve(
    http: httpx.AsyncClient, api: Gateway, customer: str, **reserve_input: Any
) -> tuple[list[str], list[str]]:
    """The reservation ids made (none when refused), and the refusal's codes."""
    result = await gql(
        http, api, RESERVE, {"input": reserve_input}, api.token("customer", sub=customer)
    )
    if result.errors:
        return [], result.codes
    return [r["id"] for r in result.data["reserve"]["reservations"]], []


async def kpis(http: httpx.AsyncClient, api: Gateway, store: str | None = None) -> Any:
    variables = {"store": store, "since": "2026-03-01T00:00:00Z"}
    return (await gql(http, api, KPIS, variables, api.token("ops"))).ok()["kpis"]


async def until_status(http: httpx.AsyncClient, api: Gateway, rid: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = (await gql(http, api, STATUS, {"id": rid}, api.token("ops"))).ok()
        if seen["reservation"]["status"] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{rid} not {status}")


async def test_every_reserve_attempt_counts_with_its_outcome_and_the_lifecycle_is_measured(
    http: httpx.AsyncClient, api: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await given_stores_with_stock(
        http,
        api,
        {("S001", "SKU-1"): 10, ("S001", "SKU-2"): 1, ("S001", "SKU-3"): 1, ("S002", "SKU-1"): 5},
    )
    ops = api.token("ops")
    policy = {**DEFAULT_POLICY, "readyTargetSeconds": 2700}
    (await gql(http, api, POLICY, {"input": policy}, ops)).ok()

    # Three reserved (one asked again with its key: the same attempt), and one of each failure.
    at_s001 = {"storeId": "S001", "channel": "web"}
    two_lines = [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-3", "quantity": 1}]
    (r1,), _ = await reserve(http, api, "alice", **at_s001, lines=two_lines, idempotencyKey="k1")
    again, _ = await reserve(http, api, "alice", **at_s001, lines=two_lines, idempotencyKey="k1")
    assert again == [r1]
    (r2,), _ = await reserve(
        http, api, "bob", storeId="S001", lines=[{"sku": "SKU-1", "quantity": 1}]
    )
    (r3,), _ = await reserve(
        http, api, "frank", storeId="S002", channel="app", lines=[{"sku": "SKU-1", "quantity": 1}]
    )
    refusals: dict[str, dict[str, Any]] = {
        "OUT_OF_STOCK": {"lines": [{"sku": "SKU-2", "quantity": 5}]},
        "LIMIT_EXCEEDED": {"lines": [{"sku": "SKU-1", "quantity": 11}]},
        "NOT_FOUND": {"lines": [{"sku": "NOPE-1", "quantity": 1}]},
        "BAD_USER_INPUT": {"lines": [{"sku": "SKU-1", "quantity": 1}], "holdSeconds": 123},
    }
    for code, asked in refusals.items():
        assert await reserve(http, api, "carol", **at_s001, **asked) == ([], [code])

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(reservations, "reserve", broken)
        made = await reserve(http, api, "dave", **at_s001, lines=[{"sku": "SKU-1", "quantity": 1}])
        assert made == ([], ["INTERNAL"])
    # An unauthenticated or forbidden caller asked for nothing: not an attempt.
    refused = await gql(http, api, RESERVE, {"input": {**at_s001, "lines": []}})
    assert refused.codes == ["UNAUTHENTICATED"]

    # The lifecycle: r1 short on SKU-3, ready after 30 min, the shopper arrives at 60 and is
    # served at 72; r2 ready after 60 min and never collected (a no-show); r3 cancelled.
    pos = api.token("pos", sub="till-1", store="S001")
    (await gql(http, api, SHORT, {"id": r1}, pos)).ok()
    api.clock.advance(1800)
    (await gql(http, api, READY, {"id": r1}, pos)).ok()
    api.clock.advance(1800)
    (await gql(http, api, READY, {"id": r2}, pos)).ok()
    (await gql(http, api, CHECK_IN, {"id": r1}, api.token("customer", sub="alice"))).ok()
    api.clock.advance(720)
    (await gql(http, api, COMPLETE, {"id": r1}, pos)).ok()
    (await gql(http, api, CANCEL, {"id": r3}, api.token("customer", sub="frank"))).ok()
    api.clock.advance(7200)
    await until_status(http, api, r2, "EXPIRED")

    found = await kpis(http, api)
    assert found["reservationSuccess"] == {
        "asked": 8,
        "reserved": 3,
        "outOfStock": 1,
        "limitExceeded": 1,
        "badInput": 2,
        "technicalFailures": 1,
        "businessRefusals": 4,
        "rate": 3 / 8,
        "rateWhereStockExisted": 3 / 7,
        "technicalFailureRate": 1 / 8,
        "target": 0.985,
        "met": False,
    }
    assert found["timeToReady"] == {
        "count": 2,
        "meanSeconds": 2700.0,
        "p50Seconds": 1800.0,
        "p90Seconds": 3600.0,
        "targetSeconds": 2700.0,
        "shareWithinTarget": 0.5,
    }
    assert found["pickupWait"] == {
        "count": 1,
        "meanSeconds": 720.0,
        "p50Seconds": 720.0,
        "p90Seconds": 720.0,
        "targetSeconds": 1800.0,
        "shareWithinTarget": 1.0,
        "meanWithinTarget": True,
    }
    assert found["readyToCollected"]["count"] == 1
    assert found["readyToCollected"]["meanSeconds"] == 1800.0 + 720.0
    assert found["endings"] == {
        "ended": 3,
        "collected": 1,
        "cancelled": 1,
        "expired": 1,
        "noShows": 1,
        "endedAfterReady": 2,
        "picked": 2,
        "shortPicked": 1,
        "expiryRate": 1 / 3,
        "cancelRate": 1 / 3,
        "noShowRate": 0.5,
        "shortPickRate": 0.5,
    }
    assert found["targets"] == {
        "reservationSuccessRate": 0.985,
        "pickupWaitSeconds": 1800.0,
        "stockAccuracy": 0.992,
        "readySeconds": 2700.0,
    }
    per_store = {s["storeId"]: s["figures"] for s in found["perStore"]}
    assert set(per_store) == {"S001", "S002"}
    assert per_store["S001"]["reservationSuccess"]["asked"] == 7
    assert per_store["S001"]["reservationSuccess"]["reserved"] == 2
    assert per_store["S002"]["reservationSuccess"]["asked"] == 1
    assert per_store["S002"]["endings"]["cancelled"] == 1
    assert per_store["S002"]["timeToReady"]["count"] == 0
    per_channel = {c["channel"]: c["figures"]["reservationSuccess"] for c in found["perChannel"]}
    assert per_channel == {
        "web": {"asked": 6, "reserved": 1},
        "app": {"asked": 1, "reserved": 1},
        None: {"asked": 1, "reserved": 1},
    }

    one_store = await kpis(http, api, "S002")
    assert one_store["storeId"] == "S002"
    assert one_store["reservationSuccess"]["asked"] == 1
    assert [s["storeId"] for s in one_store["perStore"]] == ["S002"]
    assert one_store["endings"]["cancelled"] == 1
    assert one_store["endings"]["collected"] == 0


async def test_the_intakes_reserve_attempts_count_by_channel_account(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 5, ("S001", "SKU-2"): 1})
    await given_account(api, SalesChannel.GENERIC)
    orders = {
        IntakeStatus.ACCEPTED: an_order("ORD-1", lines={"SKU-1": 2}),
        IntakeStatus.REJECTED: an_order("ORD-2", lines={"SKU-2": 3}),
    }
    for status, order in orders.items():
        response = await post(http, api, generic_body(order))
        assert (await finished(api, response.json()["messageId"])).status is status
    # The same order again (a redelivery under a new id) reserves nothing new: not an attempt.
    response = await post(http, api, generic_body(orders[IntakeStatus.ACCEPTED]))
    await finished(api, response.json()["messageId"])
    # Nor is a cancel, or an order not for pickup.
    for order in (
        an_order("ORD-3", pickup=False),
        an_order("ORD-2", minute=5, event=OrderEvent.CANCEL),
    ):
        await finished(api, (await post(http, api, generic_body(order))).json()["messageId"])

    found = await kpis(http, api)
    success = found["reservationSuccess"]
    assert (success["asked"], success["reserved"], success["outOfStock"]) == (2, 1, 1)
    per_channel = {c["channel"]: c["figures"]["reservationSuccess"] for c in found["perChannel"]}
    assert per_channel == {"generic:acme": {"asked": 2, "reserved": 1}}
    assert [s["storeId"] for s in found["perStore"]] == ["S001"]
