"""The handoff at the store, over real HTTP: ready, the shopper's check-in, scan (QR or receipt
code), payment."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from domain.access import MASKED_CUSTOMER_ID
from tests.api.conftest import Gateway, gql
from tests.api.given import (
    DEFAULT_POLICY,
    assert_refused,
    database_rows,
    given_reservation,
    given_stores_with_stock,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

MARK_READY = """
mutation($id: ID!) { markReadyForPickup(id: $id) { id status readyAt expiresAt secondsRemaining } }
"""
SCAN = (
    "mutation($code: String!) { scanPickup(code: $code) { id code status lines { sku quantity } } }"
)
COMPLETE = """
mutation($id: ID!, $payment: PaymentInput!) {
  completePickup(id: $id, payment: $payment) { id status collectedAt }
}
"""
CANCEL = 'mutation($id: ID!) { cancelReservation(id: $id, reason: "out of stock") { status } }'
QR = "query($id: ID!) { reservation(id: $id) { pickupQrPayload pickupQrSvg } }"
STOCK = '{ stockLevel(storeId: "S001", sku: "SKU-1") { onHand reserved available } }'
POLICY = """
mutation($input: ReservationPolicyInput!) {
  updateReservationPolicy(input: $input) { pickupWindowSeconds allowPickupWithoutReady }
}
"""
PAYMENT = {"amount": "19.90", "currency": "gbp", "method": "card", "reference": "till-1/0042"}
CHECK_IN = """
mutation($id: ID!, $note: String) {
  checkIn(id: $id, note: $note) { id status arrivedAt arrivalNote waitingSeconds }
}
"""
ARRIVAL = "query($id: ID!) { reservation(id: $id) { status arrivedAt arrivalNote waitingSeconds } }"
MY_ARRIVALS = "query { myReservations { id arrivedAt arrivalNote } }"
QUEUE = """
query { pickupQueue(storeId: "S001") { id customerId status arrivedAt arrivalNote waitingSeconds } }
"""


async def given_held(http: httpx.AsyncClient, api: Gateway, quantity: int = 2) -> dict[str, Any]:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 5})
    return await given_reservation(
        http,
        api,
        api.token("customer", sub="alice"),
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": quantity}],
    )


async def stock(http: httpx.AsyncClient, api: Gateway) -> Any:
    return (await gql(http, api, STOCK, token=api.token("ops"))).ok()["stockLevel"]


async def set_policy(http: httpx.AsyncClient, api: Gateway, **changes: Any) -> None:
    policy = {**DEFAULT_POLICY, **changes}
    (await gql(http, api, POLICY, {"input": policy}, api.token("ops"))).ok()


def pos(api: Gateway, store: str = "S001") -> str:
    return api.token("pos", sub=f"till-{store}", store=store)


def alice(api: Gateway) -> str:
    return api.token("customer", sub="alice")


async def queue(http: httpx.AsyncClient, api: Gateway) -> Any:
    return (await gql(http, api, QUEUE, token=pos(api))).ok()["pickupQueue"]


async def test_pos_marks_a_reservation_ready(http: httpx.AsyncClient, api: Gateway) -> None:
    held = await given_held(http, api)
    api.clock.advance(600)

    ready = (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()

    reservation = ready["markReadyForPickup"]
    assert reservation["status"] == "READY_FOR_PICKUP"
    assert reservation["readyAt"].startswith("2026-03-02T09:10:00")
    assert reservation["expiresAt"].startswith("2026-03-02T11:00:00")  # the hold's own expiry
    assert reservation["secondsRemaining"] == 6600


async def test_a_pickup_window_restarts_the_clock_when_ready(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await set_policy(http, api, pickupWindowSeconds=3600)
    held = await given_held(http, api)
    api.clock.advance(6000)  # 20 minutes of the 2 h hold left

    ready = (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()

    assert ready["markReadyForPickup"]["expiresAt"].startswith("2026-03-02T11:40:00")
    assert ready["markReadyForPickup"]["secondsRemaining"] == 3600


async def test_marking_ready_twice_is_an_invalid_transition(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()

    again = await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))

    assert again.codes == ["INVALID_TRANSITION"]


async def test_the_qr_payload_is_for_the_shopper_and_the_store_only(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)

    mine = (await gql(http, api, QR, {"id": held["id"]}, api.token("customer", sub="alice"))).ok()
    store = (await gql(http, api, QR, {"id": held["id"]}, pos(api))).ok()
    ops = (await gql(http, api, QR, {"id": held["id"]}, api.token("ops"))).ok()

    payload = mine["reservation"]["pickupQrPayload"]
    assert payload.startswith("ROPOS1.")
    assert held["id"] in payload
    assert store["reservation"]["pickupQrPayload"] == payload
    assert mine["reservation"]["pickupQrSvg"].lstrip().startswith("<svg")
    assert ops["reservation"] == {"pickupQrPayload": None, "pickupQrSvg": None}


async def test_the_qr_code_as_png(http: httpx.AsyncClient, api: Gateway) -> None:
    held = await given_held(http, api)
    url = f"{api.url}/reservations/{held['id']}/qr.png"

    mine = await http.get(
        url, headers={"authorization": f"Bearer {api.token('customer', sub='alice')}"}
    )
    bobs = await http.get(
        url, headers={"authorization": f"Bearer {api.token('customer', sub='bob')}"}
    )
    nobody = await http.get(url)

    assert mine.status_code == 200
    assert mine.headers["content-type"] == "image/png"
    assert mine.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert (bobs.status_code, nobody.status_code) == (404, 401)


async def test_scan_by_qr_payload_or_by_receipt_code_in_any_case(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    alice = api.token("customer", sub="alice")
    payload = (await gql(http, api, QR, {"id": held["id"]}, alice)).ok()["reservation"][
        "pickupQrPayload"
    ]
    spaced = " ".join(held["code"].lower())

    by_qr = (await gql(http, api, SCAN, {"code": payload}, pos(api))).ok()["scanPickup"]
    by_code = (await gql(http, api, SCAN, {"code": spaced}, pos(api))).ok()["scanPickup"]

    expected = {
        "id": held["id"],
        "code": held["code"],
        "status": "HELD",
        "lines": [{"sku": "SKU-1", "quantity": 2}],
    }
    assert by_qr == by_code == expected


async def test_a_forged_or_altered_qr_is_refused(http: httpx.AsyncClient, api: Gateway) -> None:
    held = await given_held(http, api)
    alice = api.token("customer", sub="alice")
    payload = (await gql(http, api, QR, {"id": held["id"]}, alice)).ok()["reservation"][
        "pickupQrPayload"
    ]
    prefix, reservation_id, code, signature = payload.split(".")
    altered_signature = (
        f"{prefix}.{reservation_id}.{code}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    )
    made_up = f"{prefix}.{reservation_id}.{code}.{'x' * len(signature)}"

    for forged in (altered_signature, made_up):
        result = await gql(http, api, SCAN, {"code": forged}, pos(api))
        assert result.codes == ["BAD_USER_INPUT"], forged


async def test_another_stores_pos_does_not_find_it(http: httpx.AsyncClient, api: Gateway) -> None:
    held = await given_held(http, api)

    result = await gql(http, api, SCAN, {"code": held["code"]}, pos(api, "S002"))

    assert result.codes == ["NOT_FOUND"]
    assert "S001" not in result.errors[0]["message"]


async def test_scanning_an_expired_cancelled_or_collected_reservation_says_which(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, CANCEL, {"id": held["id"]}, api.token("customer", sub="alice"))).ok()

    cancelled = await gql(http, api, SCAN, {"code": held["code"]}, pos(api))

    assert cancelled.codes == ["INVALID_TRANSITION"]
    assert cancelled.errors[0]["extensions"]["status"] == "CANCELLED"
    assert "out of stock" in cancelled.errors[0]["message"]

    other = await given_reservation(
        http,
        api,
        api.token("customer", sub="alice"),
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    api.clock.advance(7200)
    expired = await gql(http, api, SCAN, {"code": other["code"]}, pos(api))
    assert expired.codes == ["RESERVATION_EXPIRED"]


async def test_complete_pickup_consumes_the_units_and_ends_the_lock(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()
    assert await stock(http, api) == {"onHand": 10, "reserved": 2, "available": 8}

    done = (await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))).ok()

    assert done["completePickup"]["status"] == "COLLECTED"
    assert done["completePickup"]["collectedAt"].startswith("2026-03-02T09:00:00")
    assert await stock(http, api) == {"onHand": 8, "reserved": 0, "available": 8}
    collected = await gql(http, api, SCAN, {"code": held["code"]}, pos(api))
    assert collected.codes == ["INVALID_TRANSITION"]
    assert collected.errors[0]["extensions"]["status"] == "COLLECTED"


async def test_a_retried_payment_completes_once_and_returns_the_same_result(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()
    first = (await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))).ok()
    api.clock.advance(30)  # the POS timed out and sends the same payment again

    again = (await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))).ok()

    assert again == first
    assert await stock(http, api) == {"onHand": 8, "reserved": 0, "available": 8}


async def test_a_second_different_completion_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()
    (await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))).ok()

    other = {**PAYMENT, "reference": "till-1/0043"}
    result = await gql(http, api, COMPLETE, {"id": held["id"], "payment": other}, pos(api))

    assert result.codes == ["INVALID_TRANSITION"]
    assert "till-1/0042" in result.errors[0]["message"]
    assert await stock(http, api) == {"onHand": 8, "reserved": 0, "available": 8}


async def test_completion_after_expiry_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()
    api.clock.advance(7200)

    result = await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))

    assert result.codes == ["RESERVATION_EXPIRED"]
    assert (await stock(http, api))["onHand"] == 10


async def test_a_held_reservation_needs_the_ready_step_unless_the_policy_allows_it(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)

    refused = await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))
    assert refused.codes == ["INVALID_TRANSITION"]

    await set_policy(http, api, allowPickupWithoutReady=True)
    done = (await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))).ok()
    assert done["completePickup"]["status"] == "COLLECTED"
    assert await stock(http, api) == {"onHand": 8, "reserved": 0, "available": 8}


@pytest.mark.parametrize(
    ("payment", "field"),
    [
        ({**PAYMENT, "amount": "-1"}, "amount"),
        ({**PAYMENT, "amount": "1.234"}, "amount"),
        ({**PAYMENT, "currency": "pounds"}, "currency"),
        ({**PAYMENT, "method": ""}, "method"),
        ({**PAYMENT, "reference": " "}, "reference"),
    ],
)
async def test_a_bad_payment_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway, payment: dict[str, str], field: str
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()

    result = await gql(http, api, COMPLETE, {"id": held["id"], "payment": payment}, pos(api))

    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == field
    assert await stock(http, api) == {"onHand": 10, "reserved": 2, "available": 8}


# --- the shopper's arrival --------------------------------------------------------------------


async def test_a_customer_checks_in_with_a_note_for_the_store(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given alice's reservation, 25 minutes after she made it
    held = await given_held(http, api)
    api.clock.advance(1500)

    # When she says she is at the store
    variables = {"id": held["id"], "note": "  car bay 4, blue Fiat "}
    arrived = (await gql(http, api, CHECK_IN, variables, alice(api))).ok()["checkIn"]

    # Then the reservation is still HELD, with the arrival and the note; she sees it in her list
    assert arrived == {
        "id": held["id"],
        "status": "HELD",
        "arrivedAt": "2026-03-02T09:25:00+00:00",
        "arrivalNote": "car bay 4, blue Fiat",
        "waitingSeconds": 0,
    }
    mine = (await gql(http, api, MY_ARRIVALS, token=alice(api))).ok()["myReservations"]
    assert mine == [
        {
            "id": held["id"],
            "arrivedAt": "2026-03-02T09:25:00+00:00",
            "arrivalNote": "car bay 4, blue Fiat",
        }
    ]


async def test_the_pickup_queue_shows_how_long_the_shopper_has_waited(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given alice's reservation and bob's, and alice checked in
    held = await given_held(http, api)
    bob = await given_reservation(
        http,
        api,
        api.token("customer", sub="bob"),
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
    )
    (await gql(http, api, CHECK_IN, {"id": held["id"], "note": "bay 4"}, alice(api))).ok()

    # When the store looks at its queue now, 3 minutes later, and after the handoff
    at_once = await queue(http, api)
    api.clock.advance(180)
    later = await queue(http, api)
    (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()
    api.clock.advance(60)
    (await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))).ok()
    api.clock.advance(600)
    collected = (await gql(http, api, ARRIVAL, {"id": held["id"]}, pos(api))).ok()["reservation"]

    # Then alice's entry counts the wait by the server's clock, bob's has none, and once collected
    # the wait stays what it was at the handoff
    arrival = {"arrivedAt": "2026-03-02T09:00:00+00:00", "arrivalNote": "bay 4"}
    not_arrived = {"arrivedAt": None, "arrivalNote": None, "waitingSeconds": None}
    by_id = {entry["id"]: entry for entry in at_once}
    # (the store's POS sees who by the arrival, not by the customer's id: masked)
    assert by_id[held["id"]] == {
        "id": held["id"],
        "customerId": MASKED_CUSTOMER_ID,
        "status": "HELD",
        **arrival,
        "waitingSeconds": 0,
    }
    assert by_id[bob["id"]] == {
        "id": bob["id"],
        "customerId": MASKED_CUSTOMER_ID,
        "status": "HELD",
        **not_arrived,
    }
    assert {e["id"]: e["waitingSeconds"] for e in later} == {held["id"]: 180, bob["id"]: None}
    assert collected == {"status": "COLLECTED", **arrival, "waitingSeconds": 240}


async def test_checking_in_twice_is_an_invalid_transition_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    held = await given_held(http, api)
    (await gql(http, api, CHECK_IN, {"id": held["id"], "note": "bay 4"}, alice(api))).ok()
    api.clock.advance(60)
    rows_before = await database_rows(api.db)

    again = await gql(http, api, CHECK_IN, {"id": held["id"], "note": "bay 7"}, alice(api))

    assert_refused(
        again,
        {"code": "INVALID_TRANSITION", "reservationId": held["id"], "status": "HELD"},
        field="checkIn",
        message="checked in already",
    )
    assert await database_rows(api.db) == rows_before
    seen = (await gql(http, api, ARRIVAL, {"id": held["id"]}, alice(api))).ok()["reservation"]
    assert (seen["arrivedAt"], seen["arrivalNote"]) == ("2026-03-02T09:00:00+00:00", "bay 4")


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(lambda api: api.token("customer", sub="bob"), id="another-customer"),
        pytest.param(lambda api: pos(api, "S002"), id="another-stores-pos"),
    ],
)
async def test_someone_elses_reservation_is_not_found_and_nothing_changes(
    http: httpx.AsyncClient, api: Gateway, caller: Any
) -> None:
    held = await given_held(http, api)
    rows_before = await database_rows(api.db)

    result = await gql(http, api, CHECK_IN, {"id": held["id"]}, caller(api))

    assert_refused(result, {"code": "NOT_FOUND"}, field="checkIn")
    assert await database_rows(api.db) == rows_before


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(lambda api: pos(api), id="its-stores-pos"),
        pytest.param(lambda api: api.token("staff", store="S001"), id="its-stores-staff"),
        pytest.param(lambda api: api.token("ops"), id="ops"),
    ],
)
async def test_only_the_shopper_checks_in_and_the_store_cannot_do_it_for_them(
    http: httpx.AsyncClient, api: Gateway, caller: Any
) -> None:
    held = await given_held(http, api)
    rows_before = await database_rows(api.db)

    result = await gql(http, api, CHECK_IN, {"id": held["id"]}, caller(api))

    assert_refused(result, {"code": "FORBIDDEN"}, field="checkIn")
    assert await database_rows(api.db) == rows_before


async def until_expired(http: httpx.AsyncClient, api: Gateway, reservation_id: str) -> None:
    """The sweeper has expired the reservation (it runs every 0.1 s; at most 2 s)."""
    deadline = time.monotonic() + 2.0
    while True:
        seen = await gql(http, api, ARRIVAL, {"id": reservation_id}, alice(api))
        if seen.ok()["reservation"]["status"] == "EXPIRED":
            return
        assert time.monotonic() < deadline, "not expired within 2 s of expiresAt"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("ending", ["CANCELLED", "COLLECTED", "EXPIRED"])
async def test_a_reservation_that_has_ended_is_not_checked_in(
    http: httpx.AsyncClient, api: Gateway, ending: str
) -> None:
    held = await given_held(http, api)
    if ending == "CANCELLED":
        (await gql(http, api, CANCEL, {"id": held["id"]}, alice(api))).ok()
    elif ending == "COLLECTED":
        (await gql(http, api, MARK_READY, {"id": held["id"]}, pos(api))).ok()
        (await gql(http, api, COMPLETE, {"id": held["id"], "payment": PAYMENT}, pos(api))).ok()
    else:
        api.clock.advance(7200)
        await until_expired(http, api, held["id"])
    rows_before = await database_rows(api.db)

    result = await gql(http, api, CHECK_IN, {"id": held["id"], "note": "bay 4"}, alice(api))

    assert_refused(
        result,
        {"code": "INVALID_TRANSITION", "reservationId": held["id"], "status": ending},
        field="checkIn",
        message="only an active reservation is checked in",
    )
    assert await database_rows(api.db) == rows_before


@pytest.mark.parametrize(
    "note", ["x" * 201, "bay 4\nblue Fiat", "\u0007"], ids=["too-long", "two-lines", "control"]
)
async def test_a_bad_note_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway, note: str
) -> None:
    held = await given_held(http, api)
    rows_before = await database_rows(api.db)

    result = await gql(http, api, CHECK_IN, {"id": held["id"], "note": note}, alice(api))

    assert_refused(result, {"code": "BAD_USER_INPUT", "field": "note"}, field="checkIn")
    assert await database_rows(api.db) == rows_before
