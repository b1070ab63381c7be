"""Two-way WMS sync over real HTTP: the WMS emulator served by uvicorn, a gateway that sends it
every lock, release and consumption, and the WMS pushing its stock levels to the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from adapters.db.engine import Database
from adapters.wms.emulator import EmulatedWms, create_emulator
from domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from tests.api.conftest import Gateway, gql, running_gateway
from tests.api.given import (
    KINGS_CROSS,
    OXFORD_CIRCUS,
    database_rows,
    given_stock,
    given_stores,
)
from tests.helpers import serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

WMS_TOKEN = "wms-emulator-token-0123456789"
INBOUND_SECRET = "inbound-secret-0123456789abcdef"
WAIT_SECONDS = 10.0
# Far from both London stores: no store within the re-sourcing radius of it.
MANCHESTER = {
    "id": "S003",
    "name": "Manchester",
    "lat": 53.4808,
    "lon": -2.2426,
    "timezone": "Europe/London",
}


@dataclass
class Emulator:
    url: str
    app: Starlette

    @property
    def state(self) -> EmulatedWms:
        wms: EmulatedWms = self.app.state.wms
        return wms


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def emulator() -> AsyncIterator[Emulator]:
    app = create_emulator(token=WMS_TOKEN)
    async with serving(app) as url:
        yield Emulator(url, app)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str, db: Database, emulator: Emulator) -> AsyncIterator[Gateway]:
    """A gateway that sends the ledger to the emulator and takes signed stock batches."""
    async with running_gateway(
        database_url,
        db,
        wms_url=emulator.url,
        wms_token=WMS_TOKEN,
        wms_interval_seconds=0.05,
        wms_timeout_seconds=2.0,
        wms_max_attempts=3,
        wms_breaker_threshold=2,
        wms_breaker_cooldown_seconds=1.0,
        reconcile_interval_seconds=0,
        wms_inbound_secret=INBOUND_SECRET,
        wms_inbound_max_bytes=64 * 1024,
    ) as running:
        yield running


@pytest.fixture
def wms(emulator: Emulator, api: Gateway) -> EmulatedWms:
    """A fresh emulated WMS for each test, and a closed circuit toward it."""
    fresh = EmulatedWms(WMS_TOKEN)
    emulator.app.state.wms = fresh
    api.app.state.runtime.wms_feed.breaker.succeeded()
    return fresh


# --- steps ----------------------------------------------------------------------------------------

RESERVE = """
mutation($input: ReserveInput!) {
  reserve(input: $input) { id reservations { id storeId status lines { sku quantity } } }
}
"""
RESERVATION = """
query($id: ID!) {
  reservation(id: $id) {
    id groupId storeId status cancelReason resourcedFrom expiresAt lines { sku quantity }
  }
}
"""
STOCK = """
query($store: ID!, $sku: String!) {
  stockLevel(storeId: $store, sku: $sku) { onHand reserved available }
}
"""
MOVEMENTS = """
query($status: WmsMovementStatus) {
  wmsMovements(status: $status, first: 100) {
    id storeId sku sequence type quantity status attempts lastError
  }
}
"""


async def post_levels(
    http: httpx.AsyncClient,
    api: Gateway,
    body: dict[str, Any] | bytes,
    *,
    secret: str | None = INBOUND_SECRET,
    token: str | None = None,
    tamper: bool = False,
    age: int = 0,
    raw_signature: bytes | None = None,
    chunked: bool = False,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    # All bytes: httpx takes str or bytes headers, not both, and a raw signature may not be ASCII
    headers: dict[bytes, bytes] = {b"content-type": b"application/json"}
    if token is not None:
        headers[b"authorization"] = f"Bearer {token}".encode()
    elif secret is not None:
        now = int(time.time()) - age
        headers[TIMESTAMP_HEADER.encode()] = str(now).encode()
        headers[SIGNATURE_HEADER.encode()] = (
            raw_signature or signature(secret, now, raw + (b" " if tamper else b"")).encode()
        )
    if chunked:

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(raw), 4096):
                yield raw[start : start + 4096]

        return await http.post(f"{api.url}/wms/stock-levels", content=chunks(), headers=headers)
    return await http.post(f"{api.url}/wms/stock-levels", content=raw, headers=headers)


def batch(batch_id: str, *levels: dict[str, Any]) -> dict[str, Any]:
    return {"batchId": batch_id, "levels": list(levels)}


async def stock(http: httpx.AsyncClient, api: Gateway, store: str, sku: str) -> dict[str, int]:
    result = await gql(http, api, STOCK, {"store": store, "sku": sku}, api.token("ops"))
    return dict(result.ok()["stockLevel"])


async def reserve(
    http: httpx.AsyncClient, api: Gateway, customer: str, store: str, lines: dict[str, int]
) -> dict[str, Any]:
    variables = {
        "input": {
            "storeId": store,
            "lines": [{"sku": sku, "quantity": q} for sku, q in lines.items()],
        }
    }
    token = api.token("customer", sub=customer)
    (reservation,) = (await gql(http, api, RESERVE, variables, token)).ok()["reserve"][
        "reservations"
    ]
    return dict(reservation)


async def reservation(http: httpx.AsyncClient, api: Gateway, rid: str) -> dict[str, Any]:
    return dict(
        (await gql(http, api, RESERVATION, {"id": rid}, api.token("ops"))).ok()["reservation"]
    )


async def movements(http: httpx.AsyncClient, api: Gateway, status: str | None) -> list[Any]:
    result = await gql(http, api, MOVEMENTS, {"status": status}, api.token("ops"))
    return list(result.ok()["wmsMovements"])


def no_movement_pending(http: httpx.AsyncClient, api: Gateway) -> Callable[[], Any]:
    async def check() -> bool:
        return not await movements(http, api, "PENDING")

    return check


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                found = check()
                if asyncio.iscoroutine(found):
                    found = await found
                if found:
                    return found
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@contextlib.asynccontextmanager
async def listening(api: Gateway, channel: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every message published on the broker channel while the block runs."""
    received: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async with api.app.state.runtime.broadcast.subscribe(channel) as subscriber:
            ready.set()
            async for event in subscriber:
                received.append(json.loads(event.message))

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def stock_tables(rows: dict[str, Any]) -> dict[str, Any]:
    return {
        name: rows[name]
        for name in ("stock_levels", "stock_movements", "skus", "outbox", "reservations")
    }


# --- inbound --------------------------------------------------------------------------------------


async def test_a_snapshot_applies_once_and_older_or_repeated_counts_change_nothing(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)

    # A signed snapshot with the WMS's sequence numbers; SKU-NEW is new to ROPOS
    first = batch(
        "b-1",
        {"storeId": "S001", "sku": "SKU-1", "onHand": 10, "sequence": 5},
        {"storeId": "S001", "sku": "SKU-NEW", "onHand": 4, "sequence": 5, "safetyStock": 1},
    )
    response = await post_levels(http, api, first)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "batchId": "b-1",
        "status": "APPLIED",
        "levels": 2,
        "applied": 2,
        "stale": 0,
        "duplicate": False,
    }
    assert await stock(http, api, "S001", "SKU-1") == {"onHand": 10, "reserved": 0, "available": 10}
    assert await stock(http, api, "S001", "SKU-NEW") == {"onHand": 4, "reserved": 0, "available": 3}
    before = stock_tables(await database_rows(api.db))

    # The same batch again (the WMS retried after a timeout): the first answer, nothing twice
    again = await post_levels(http, api, first)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["applied"] == 2
    # An older count arriving late (sequence 3 after 5): ignored
    late = await post_levels(
        http, api, batch("b-0", {"storeId": "S001", "sku": "SKU-1", "onHand": 1, "sequence": 3})
    )
    assert late.status_code == 200
    assert (late.json()["applied"], late.json()["stale"]) == (0, 1)
    # The same sequence again under another batch id: ignored too
    same = await post_levels(
        http, api, batch("b-1b", {"storeId": "S001", "sku": "SKU-1", "onHand": 2, "sequence": 5})
    )
    assert same.json()["stale"] == 1
    assert stock_tables(await database_rows(api.db)) == before

    # A delta with a newer sequence applies to the count
    delta = await post_levels(
        http, api, batch("b-2", {"storeId": "S001", "sku": "SKU-1", "delta": -3, "sequence": 6})
    )
    assert delta.json()["applied"] == 1
    assert (await stock(http, api, "S001", "SKU-1"))["onHand"] == 7

    # A batch id reused for other levels is refused
    reused = await post_levels(
        http, api, batch("b-1", {"storeId": "S001", "sku": "SKU-1", "onHand": 99, "sequence": 9})
    )
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == "BAD_USER_INPUT"
    assert (await stock(http, api, "S001", "SKU-1"))["onHand"] == 7


async def test_a_wms_token_may_push_levels_instead_of_a_signature(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    response = await post_levels(
        http,
        api,
        batch("t-1", {"storeId": "S002", "sku": "SKU-1", "onHand": 3, "sequence": 1}),
        token=api.token("wms"),
    )
    assert response.status_code == 200, response.text
    assert (await stock(http, api, "S002", "SKU-1"))["onHand"] == 3


GOOD_LEVEL = {"storeId": "S001", "sku": "SKU-1", "onHand": 5, "sequence": 1}


@pytest.mark.parametrize(
    ("case", "body", "options", "status", "code"),
    [
        ("malformed JSON", b'{"batchId": "x", "levels": [', {}, 400, "BAD_USER_INPUT"),
        ("not an object", b"[1, 2]", {}, 400, "BAD_USER_INPUT"),
        (
            "negative on hand",
            batch("x", {**GOOD_LEVEL, "onHand": -1}),
            {},
            400,
            "BAD_USER_INPUT",
        ),
        (
            "both onHand and delta",
            batch("x", {**GOOD_LEVEL, "delta": 1}),
            {},
            400,
            "BAD_USER_INPUT",
        ),
        ("no levels", batch("x"), {}, 400, "BAD_USER_INPUT"),
        (
            "unknown store (with a good level beside it)",
            batch("x", GOOD_LEVEL, {**GOOD_LEVEL, "storeId": "S999"}),
            {},
            422,
            "NOT_FOUND",
        ),
        (
            "no sequence",
            batch("x", {k: v for k, v in GOOD_LEVEL.items() if k != "sequence"}),
            {},
            400,
            "BAD_USER_INPUT",
        ),
        ("too large", batch("x", *[GOOD_LEVEL] * 3000), {}, 413, "BAD_USER_INPUT"),
        (
            "too large, sent in chunks without a length",
            batch("x", *[GOOD_LEVEL] * 3000),
            {"chunked": True},
            413,
            "BAD_USER_INPUT",
        ),
        ("bad signature", batch("x", GOOD_LEVEL), {"tamper": True}, 401, "UNAUTHENTICATED"),
        ("old signature", batch("x", GOOD_LEVEL), {"age": 3600}, 401, "UNAUTHENTICATED"),
        (
            "a signature that is not hex",
            batch("x", GOOD_LEVEL),
            {"raw_signature": "sha256=\u00e9t\u00e9".encode("latin-1")},
            401,
            "UNAUTHENTICATED",
        ),
        ("wrong secret", batch("x", GOOD_LEVEL), {"secret": "nope" * 8}, 401, "UNAUTHENTICATED"),
        ("no credentials", batch("x", GOOD_LEVEL), {"secret": None}, 401, "UNAUTHENTICATED"),
    ],
)
async def test_bad_payloads_get_a_clear_error_and_nothing_applies(
    http: httpx.AsyncClient,
    api: Gateway,
    wms: EmulatedWms,
    case: str,
    body: dict[str, Any] | bytes,
    options: dict[str, Any],
    status: int,
    code: str,
) -> None:
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 2})
    before = stock_tables(await database_rows(api.db))

    response = await post_levels(http, api, body, **options)

    assert response.status_code == status, (case, response.text)
    error = response.json()["error"]
    assert error["code"] == code, case
    assert error["message"].strip(), case
    assert "Traceback" not in response.text
    assert stock_tables(await database_rows(api.db)) == before, case


async def test_a_customer_token_may_not_push_levels(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    response = await post_levels(
        http, api, batch("c-1", GOOD_LEVEL), token=api.token("customer", sub="alice")
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


async def test_shrink_below_reserved_moves_the_newest_reservations_or_cancels_them(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 5, ("S002", "SKU-1"): 1})
    alice = await reserve(http, api, "alice", "S001", {"SKU-1": 2})
    api.clock.advance(60)
    bob = await reserve(http, api, "bob", "S001", {"SKU-1": 1})
    api.clock.advance(60)
    carol = await reserve(http, api, "carol", "S001", {"SKU-1": 2})

    async with (
        listening(api, f"reservation:{carol['id']}") as carols_app,
        listening(api, "store:S001") as pos,
    ):
        # The WMS counts 2 where 5 are reserved: 3 units must go, newest first
        response = await post_levels(
            http,
            api,
            batch("shrink", {"storeId": "S001", "sku": "SKU-1", "onHand": 2, "sequence": 1}),
        )
        assert response.status_code == 200, response.text
        await eventually(
            lambda: (
                [e for e in carols_app if e["type"] == "CANCELLED"]
                and [e for e in pos if e["reservation"]["id"] == bob["id"]]
            ),
            "the shortage events",
        )

    # Carol (newest, 2 units): King's Cross has only 1, so her reservation is cancelled
    cancelled = await reservation(http, api, carol["id"])
    assert (cancelled["status"], cancelled["cancelReason"]) == ("CANCELLED", "STOCK_SHORTAGE")
    assert cancelled["lines"] == [{"sku": "SKU-1", "quantity": 2}]  # kept for the record
    (event,) = [e for e in carols_app if e["type"] == "CANCELLED"]
    assert event["detail"]["movedToReservationId"] is None
    assert event["detail"]["reason"] == "SHORTAGE"
    # Bob (1 unit) moves to King's Cross: a new reservation of his group, same expiry
    moved = await reservation(http, api, bob["id"])
    assert (moved["status"], moved["cancelReason"]) == ("CANCELLED", "STOCK_SHORTAGE")
    (bob_event,) = [
        e for e in pos if e["reservation"]["id"] == bob["id"] and e["type"] == "CANCELLED"
    ]
    new_id = bob_event["detail"]["movedToReservationId"]
    assert bob_event["detail"]["movedToStoreId"] == "S002"
    replacement = await reservation(http, api, new_id)
    assert replacement["storeId"] == "S002"
    assert replacement["status"] == "HELD"
    assert replacement["resourcedFrom"] == bob["id"]
    assert replacement["groupId"] == moved["groupId"]
    assert replacement["expiresAt"] == moved["expiresAt"]
    # Alice (oldest) keeps hers; what is reserved fits what is there
    assert (await reservation(http, api, alice["id"]))["status"] == "HELD"
    assert await stock(http, api, "S001", "SKU-1") == {"onHand": 2, "reserved": 2, "available": 0}
    assert await stock(http, api, "S002", "SKU-1") == {"onHand": 1, "reserved": 1, "available": 0}
    # Bob's app sees where his unit went (his reservation's channel)
    customer = api.token("customer", sub="bob")
    mine = await gql(http, api, "query { myReservations { storeId status } }", token=customer)
    assert sorted((r["storeId"], r["status"]) for r in mine.ok()["myReservations"]) == [
        ("S001", "CANCELLED"),
        ("S002", "HELD"),
    ]


async def test_a_shortage_of_one_line_shrinks_the_reservation_and_keeps_the_rest(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api, OXFORD_CIRCUS, KINGS_CROSS, MANCHESTER)
    await given_stock(http, api, {("S003", "SKU-1"): 3, ("S003", "SKU-2"): 3})
    dave = await reserve(http, api, "dave", "S003", {"SKU-1": 2, "SKU-2": 1})

    async with listening(api, f"reservation:{dave['id']}") as daves_app:
        response = await post_levels(
            http, api, batch("m-1", {"storeId": "S003", "sku": "SKU-1", "onHand": 1, "sequence": 1})
        )
        assert response.status_code == 200
        event = await eventually(
            lambda: [e for e in daves_app if e["type"] == "STOCK_SHORTAGE"], "STOCK_SHORTAGE"
        )

    # No store near Manchester has SKU-1: the line is let go, the rest of the order stays
    after = await reservation(http, api, dave["id"])
    assert after["status"] == "HELD"
    assert after["lines"] == [{"sku": "SKU-2", "quantity": 1}]
    assert event[0]["detail"] == {
        "sku": "SKU-1",
        "quantity": 2,
        "reason": "SHORTAGE",
        "movedToReservationId": None,
        "movedToStoreId": None,
    }
    assert event[0]["reservation"]["lines"] == [{"sku": "SKU-2", "quantity": 1}]
    assert await stock(http, api, "S003", "SKU-1") == {"onHand": 1, "reserved": 0, "available": 1}


# --- outbound -------------------------------------------------------------------------------------


async def test_after_a_wms_outage_every_lock_and_release_arrives_once_in_order(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    levels = {("S001", "SKU-1"): 20, ("S001", "SKU-2"): 20, ("S002", "SKU-1"): 20}
    await given_stock(http, api, levels)
    for (store, sku), on_hand in levels.items():
        wms.set_level(store, sku, on_hand)

    # The WMS goes down while shoppers reserve, cancel and collect
    wms.outage_status = 503
    ops = api.token("ops")
    made = [
        await reserve(http, api, f"c{i}", store, {sku: 1 + i % 2})
        for i, (store, sku) in enumerate(
            [("S001", "SKU-1"), ("S001", "SKU-2"), ("S002", "SKU-1"), ("S001", "SKU-1")]
        )
    ]
    cancel = "mutation($id: ID!) { cancelReservation(id: $id) { status } }"
    (await gql(http, api, cancel, {"id": made[0]["id"]}, ops)).ok()
    staff = api.token("staff", store="S001")
    ready = "mutation($id: ID!) { markReadyForPickup(id: $id) { status } }"
    (await gql(http, api, ready, {"id": made[1]["id"]}, staff)).ok()
    complete = """mutation($id: ID!) { completePickup(id: $id, payment: {amount: "5.00",
      currency: "GBP", method: "card", reference: "p-1"}) { status } }"""
    (await gql(http, api, complete, {"id": made[1]["id"]}, staff)).ok()

    # Nothing gets through; retried after its backoff, the feed stops once the circuit opens
    breaker = api.app.state.runtime.wms_feed.breaker

    def circuit_open() -> bool:
        if breaker.state(api.clock.now()) == "OPEN":
            return True
        api.clock.advance(5)  # the failed movements' retry comes due
        return False

    await eventually(circuit_open, "an open circuit")
    calls = len(wms.log)
    await asyncio.sleep(0.3)
    assert len(wms.log) == calls, "calls went on while the circuit was open"
    assert not [r for r in wms.log if r.outcome == "APPLIED"]
    assert len(await movements(http, api, "PENDING")) == 6  # 4 locks, 1 release, 1 consume

    # The WMS is back; once the cool-down is over everything arrives
    wms.outage_status = None
    api.clock.advance(120)

    async def all_delivered() -> bool:
        return not await movements(http, api, "PENDING")

    await eventually(all_delivered, "every movement delivered")
    applied = [r.movement for r in wms.log if r.outcome == "APPLIED"]
    assert len(applied) == 6
    assert len({m["id"] for m in applied}) == 6  # each exactly once
    assert not [r for r in wms.log if r.outcome == "REJECTED"]
    per_row: dict[tuple[str, str], list[int]] = defaultdict(list)
    for m in applied:
        per_row[(m["storeId"], m["sku"])].append(m["sequence"])
    for row, sequences in per_row.items():
        assert sequences == list(range(1, len(sequences) + 1)), row  # in order, no gap
    kinds = [(m["storeId"], m["sku"], m["type"]) for m in applied]
    assert kinds.index(("S001", "SKU-1", "RELEASE")) > kinds.index(("S001", "SKU-1", "LOCK"))
    # The WMS's figures are ROPOS's figures, down to what each reservation holds there
    active = made[2:]  # the first was cancelled, the second collected
    assert wms.reservations == {
        r["id"]: {(r["storeId"], line["sku"]): line["quantity"] for line in r["lines"]}
        for r in active
    }
    for store, sku in levels:
        ours = await stock(http, api, store, sku)
        theirs = wms.rows[(store, sku)]
        assert (theirs.on_hand, theirs.reserved) == (ours["onHand"], ours["reserved"]), (store, sku)


async def test_a_movement_out_of_attempts_is_dead_and_ops_can_replay_it(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 5})
    wms.outage_status = 500
    await reserve(http, api, "alice", "S001", {"SKU-1": 2})

    async def dead() -> list[Any]:
        api.clock.advance(600)  # past any backoff and cool-down: the next attempt is due
        return await movements(http, api, "DEAD")

    (movement,) = await eventually(dead, "the movement to die")
    assert movement["attempts"] == 3
    assert movement["type"] == "LOCK"
    assert "500" in movement["lastError"]
    assert not wms.rows.get(("S001", "SKU-1"))

    # Replaying a pending or unknown one is refused; the dead one goes round again
    replay = "mutation($id: ID!) { replayWmsMovement(id: $id) { status sequence } }"
    unknown = await gql(http, api, replay, {"id": "nope"}, api.token("ops"))
    assert unknown.codes == ["NOT_FOUND"]
    wms.outage_status = None
    replayed = (await gql(http, api, replay, {"id": movement["id"]}, api.token("ops"))).ok()
    assert replayed["replayWmsMovement"]["status"] == "PENDING"
    api.clock.advance(600)
    await eventually(lambda: wms.rows.get(("S001", "SKU-1")), "the replayed movement")
    assert wms.rows[("S001", "SKU-1")].reserved == 2
    await eventually(
        lambda: movements(http, api, "DELIVERED"), "the replayed movement marked delivered"
    )
    again = await gql(http, api, replay, {"id": movement["id"]}, api.token("ops"))
    assert again.codes == ["INVALID_TRANSITION"]


# --- reconciliation, short picks, accuracy, low stock --------------------------------------------

RECONCILE = """
mutation { reconcileStock(storeIds: ["S001"]) { stores compared skipped repaired open error } }
"""
DISCREPANCIES = """
query($status: DiscrepancyStatus) {
  stockDiscrepancies(status: $status) { id sku kind roposValue wmsValue status }
}
"""
KPIS = """
query($store: ID) {
  kpis(storeId: $store) {
    stockAccuracy {
      overall { lines ok rate } pick { lines ok rate } reconciliation { lines ok rate }
      perStore { storeId overall { lines ok } }
    }
  }
}
"""


async def test_reconciliation_repairs_a_seeded_drift_and_leaves_the_rest_to_ops(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    await given_stock(
        http, api, {("S001", "SKU-1"): 10, ("S001", "SKU-2"): 5, ("S001", "SKU-3"): 7}
    )
    wms.set_level("S001", "SKU-1", 10)
    wms.set_level("S001", "SKU-2", 5)
    await reserve(http, api, "alice", "S001", {"SKU-1": 2})
    await eventually(lambda: wms.rows[("S001", "SKU-1")].reserved == 2, "the lock at the WMS")
    await eventually(no_movement_pending(http, api), "the lock marked delivered")

    # Drift: the WMS lost 2 of SKU-2 (ROPOS was not told), believes 5 of SKU-1 are reserved,
    # knows nothing of SKU-3, and has 6 of SKU-4 that ROPOS never heard of
    wms.set_level("S001", "SKU-2", 3)
    wms.set_level("S001", "SKU-1", 10, reserved=5)
    wms.set_level("S001", "SKU-4", 6)
    ops = api.token("ops")
    api.clock.advance(1)  # the movements above were delivered before this run reads the WMS

    run = (await gql(http, api, RECONCILE, token=ops)).ok()["reconcileStock"]

    assert run == {
        "stores": 1,
        "compared": 4,
        "skipped": 0,
        "repaired": 3,
        "open": 1,
        "error": None,
    }
    # On hand is the WMS's: taken. Reserved is ROPOS's: sent.
    assert (await stock(http, api, "S001", "SKU-2"))["onHand"] == 3
    assert (await stock(http, api, "S001", "SKU-4"))["onHand"] == 6
    await eventually(lambda: wms.rows[("S001", "SKU-1")].reserved == 2, "reserved repaired")
    await eventually(no_movement_pending(http, api), "the repair marked delivered")
    found = (await gql(http, api, DISCREPANCIES, {"status": None}, ops)).ok()
    assert sorted(
        (d["sku"], d["kind"], d["roposValue"], d["wmsValue"], d["status"])
        for d in found["stockDiscrepancies"]
    ) == [
        ("SKU-1", "RESERVED", 2, 5, "REPAIRED"),
        ("SKU-2", "ON_HAND", 5, 3, "REPAIRED"),
        ("SKU-3", "MISSING_IN_WMS", 7, None, "OPEN"),
        ("SKU-4", "ON_HAND", 0, 6, "REPAIRED"),
    ]
    # The reserved line of SKU-1 did not match: it counts against accuracy
    kpis = (await gql(http, api, KPIS, {"store": "S001"}, ops)).ok()["kpis"]["stockAccuracy"]
    assert kpis["reconciliation"] == {"lines": 1, "ok": 0, "rate": 0.0}

    # A second run finds the repaired rows in step, and does not report SKU-3 twice
    api.clock.advance(1)
    again = (await gql(http, api, RECONCILE, token=ops)).ok()["reconcileStock"]
    assert (again["repaired"], again["open"]) == (0, 0)
    kpis = (await gql(http, api, KPIS, {"store": "S001"}, ops)).ok()["kpis"]["stockAccuracy"]
    assert kpis["reconciliation"] == {"lines": 2, "ok": 1, "rate": 0.5}

    # Ops close the open one with a note; closing it twice is refused
    (open_one,) = (await gql(http, api, DISCREPANCIES, {"status": "OPEN"}, ops)).ok()[
        "stockDiscrepancies"
    ]
    resolve = """mutation($id: ID!) {
      resolveStockDiscrepancy(id: $id, note: "counted: display stock") { status } }"""
    done = (await gql(http, api, resolve, {"id": open_one["id"]}, ops)).ok()
    assert done["resolveStockDiscrepancy"]["status"] == "RESOLVED"
    twice = await gql(http, api, resolve, {"id": open_one["id"]}, ops)
    assert twice.codes == ["INVALID_TRANSITION"]


async def test_reconciliation_while_the_wms_is_down_repairs_nothing_and_says_why(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 10})
    wms.outage_status = 503
    run = (await gql(http, api, RECONCILE, token=api.token("ops"))).ok()["reconcileStock"]
    assert run["stores"] == 0
    assert run["repaired"] == 0
    assert "did not answer" in run["error"]
    assert (await stock(http, api, "S001", "SKU-1"))["onHand"] == 10


SHORT_PICK = """
mutation($id: ID!, $sku: String!, $found: Int!) {
  reportShortPick(reservationId: $id, sku: $sku, quantityFound: $found) {
    id status lines { sku quantity }
  }
}
"""


async def test_a_short_pick_moves_the_missing_units_and_counts_against_accuracy(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 5, ("S001", "SKU-2"): 5, ("S002", "SKU-1"): 5})
    alice = await reserve(http, api, "alice", "S001", {"SKU-1": 3, "SKU-2": 1})
    staff = api.token("staff", store="S001")

    # Found 3 or more of 3 reserved is no short pick; another store's staff cannot see it
    too_many = await gql(
        http, api, SHORT_PICK, {"id": alice["id"], "sku": "SKU-1", "found": 3}, staff
    )
    assert too_many.codes == ["BAD_USER_INPUT"]
    other = api.token("staff", store="S002")
    assert (
        await gql(http, api, SHORT_PICK, {"id": alice["id"], "sku": "SKU-1", "found": 1}, other)
    ).codes == ["NOT_FOUND"]

    async with listening(api, f"reservation:{alice['id']}") as alices_app:
        result = await gql(
            http, api, SHORT_PICK, {"id": alice["id"], "sku": "SKU-1", "found": 1}, staff
        )
        assert result.ok()["reportShortPick"] == {
            "id": alice["id"],
            "status": "HELD",
            "lines": [{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-2", "quantity": 1}],
        }
        (event,) = await eventually(
            lambda: [e for e in alices_app if e["type"] == "STOCK_SHORTAGE"], "her event"
        )
    assert event["detail"]["reason"] == "SHORT_PICK"
    assert event["detail"]["quantity"] == 2
    assert event["detail"]["movedToStoreId"] == "S002"
    # The 2 missing units left S001 (not on the shelf) and are held at King's Cross
    assert await stock(http, api, "S001", "SKU-1") == {"onHand": 3, "reserved": 1, "available": 2}
    assert await stock(http, api, "S002", "SKU-1") == {"onHand": 5, "reserved": 2, "available": 3}
    # The WMS hears of both: the short pick at S001 and the lock at S002
    await eventually(
        lambda: (
            {(r.movement["storeId"], r.movement["type"]) for r in wms.log}
            >= {("S001", "SHORT_PICK"), ("S002", "LOCK")}
        ),
        "the movements at the WMS",
    )

    # Picked: SKU-2 was found in full, SKU-1 was not -> 1 of 2 lines at pick time
    ready = "mutation($id: ID!) { markReadyForPickup(id: $id) { status } }"
    (await gql(http, api, ready, {"id": alice["id"]}, staff)).ok()
    kpis = (await gql(http, api, KPIS, {"store": "S001"}, staff)).ok()["kpis"]["stockAccuracy"]
    assert kpis["pick"] == {"lines": 2, "ok": 1, "rate": 0.5}
    assert kpis["perStore"] == [{"storeId": "S001", "overall": {"lines": 2, "ok": 1}}]
    # Staff see only their store's figures; every store's are for ops
    assert (await gql(http, api, KPIS, {"store": None}, staff)).codes == ["FORBIDDEN"]
    everyone = (await gql(http, api, KPIS, {"store": None}, api.token("ops"))).ok()
    assert everyone["kpis"]["stockAccuracy"]["overall"] == {"lines": 2, "ok": 1, "rate": 0.5}


async def test_low_stock_goes_out_once_when_available_falls_below_the_threshold(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 6})
    set_thresholds = """mutation { setLowStockThresholds(thresholds: [
      {storeId: "S001", sku: "SKU-1", threshold: 5}]) }"""
    assert (await gql(http, api, set_thresholds, token=api.token("ops"))).ok() == {
        "setLowStockThresholds": 1
    }

    async with listening(api, "stock:S001") as updates:
        await reserve(http, api, "alice", "S001", {"SKU-1": 2})  # 4 left: below 5
        low = await eventually(
            lambda: [u for u in updates if u["type"] == "LOW_STOCK"], "the LOW_STOCK event"
        )
        await reserve(http, api, "bob", "S001", {"SKU-1": 1})  # 3 left: still low, no repeat
        await eventually(
            lambda: [u for u in updates if u.get("reason") == "CREATED" and u["available"] == 3],
            "bob's stock update",
        )
        await asyncio.sleep(0.5)
    assert [(u["sku"], u["available"], u["threshold"]) for u in low] == [("SKU-1", 4, 5)]
    assert len([u for u in updates if u["type"] == "LOW_STOCK"]) == 1


async def test_a_row_with_dead_movements_is_left_to_ops_and_replaying_them_sets_it_right(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    await given_stock(http, api, {("S001", "SKU-1"): 5})
    wms.set_level("S001", "SKU-1", 5)
    wms.outage_status = 500
    await reserve(http, api, "alice", "S001", {"SKU-1": 2})

    async def dead() -> list[Any]:
        api.clock.advance(600)
        return await movements(http, api, "DEAD")

    (movement,) = await eventually(dead, "the movement to die")
    wms.outage_status = None
    api.clock.advance(1)
    ops = api.token("ops")

    # The WMS believes 0 reserved, ROPOS 2; but a lock never reached the WMS: no clear owner
    run = (await gql(http, api, RECONCILE, token=ops)).ok()["reconcileStock"]
    assert (run["repaired"], run["open"]) == (0, 1)
    found = (await gql(http, api, DISCREPANCIES, {"status": "OPEN"}, ops)).ok()
    assert [(d["sku"], d["kind"]) for d in found["stockDiscrepancies"]] == [
        ("SKU-1", "DEAD_MOVEMENTS")
    ]
    assert wms.rows[("S001", "SKU-1")].reserved == 0  # nothing was pushed over it

    # Ops replay the dead lock: the WMS gets it once, and the next run finds both in step
    replay = "mutation($id: ID!) { replayWmsMovement(id: $id) { status } }"
    (await gql(http, api, replay, {"id": movement["id"]}, ops)).ok()
    # Past the breaker's cool-down: the movement may have died a moment after the last advance
    api.clock.advance(600)
    await eventually(no_movement_pending(http, api), "the replay delivered")
    api.clock.advance(1)
    again = (await gql(http, api, RECONCILE, token=ops)).ok()["reconcileStock"]
    assert (again["repaired"], again["open"]) == (0, 0)
    assert wms.rows[("S001", "SKU-1")].reserved == 2


async def test_reconciliation_takes_the_wms_count_even_when_its_sequence_is_not_newer(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    # The WMS counted 10 (its revision 1); then an operator set 50 by hand in ROPOS
    wms.set_level("S001", "SKU-1", 10)
    pushed = await post_levels(
        http,
        api,
        batch("w-1", {"storeId": "S001", "sku": "SKU-1", "onHand": 10, "sequence": 1}),
    )
    assert pushed.status_code == 200
    await given_stock(http, api, {("S001", "SKU-1"): 50})
    api.clock.advance(1)

    run = (await gql(http, api, RECONCILE, token=api.token("ops"))).ok()["reconcileStock"]

    assert run["repaired"] == 1
    assert (await stock(http, api, "S001", "SKU-1"))["onHand"] == 10


async def test_only_one_reconciliation_runs_at_a_time(
    http: httpx.AsyncClient, api: Gateway, wms: EmulatedWms
) -> None:
    await given_stores(http, api)
    async with api.app.state.runtime.deps.uow() as tx:
        await tx.leases.acquire("reconciliation", "another-process", api.clock.now(), 60)
        await tx.commit()
    busy = await gql(http, api, RECONCILE, token=api.token("ops"))
    assert busy.codes == ["RATE_LIMITED"]
    assert "running" in busy.errors[0]["message"]
