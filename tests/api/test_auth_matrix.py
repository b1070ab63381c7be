"""Who may call what, over real HTTP: every query and mutation of the contract against every kind
of caller, with the exact code of each refusal, and proof that a refused call changed nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from domain.access import MASKED_CUSTOMER_ID
from domain.intake import SalesChannel
from domain.intake_rules import profile
from tests.api.conftest import Gateway, gql
from tests.api.given import (
    DEFAULT_POLICY,
    database_rows,
    given_reservation,
    given_stores_with_stock,
    in_order,
    ops_view,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# --- the operations, as a client writes them ---------------------------------------------------

STORES = "query { stores { id } }"
AVAILABILITY = """
query { availability(skus: ["SKU-1"], near: {lat: 51.5152, lon: -0.1419}) {
  store { id } canServeAll lines { sku available } } }
"""
STOCK_LEVEL = """
query { stockLevel(storeId: "S001", sku: "SKU-1") { storeId sku onHand reserved available } }
"""
RESERVATION = "query($id: ID!) { reservation(id: $id) { id customerId storeId channel status } }"
MY_RESERVATIONS = "query { myReservations { id storeId status } }"
PICKUP_QUEUE = 'query { pickupQueue(storeId: "S001") { id customerId status } }'
RESERVATION_POLICY = """
query { reservationPolicy {
  defaultHoldSeconds allowedHoldSeconds maxActiveReservationsPerCustomer
  maxUnitsPerSkuPerCustomer expiryWarningSeconds maxStoresPerGroup } }
"""
RESERVE = """
mutation($input: ReserveInput!) {
  reserve(input: $input) { reservations { customerId storeId channel status lines { sku quantity } } }
}
"""
CANCEL = """
mutation($id: ID!) { cancelReservation(id: $id, reason: "changed my mind") { id status } }
"""
MARK_READY = "mutation($id: ID!) { markReadyForPickup(id: $id) { id status } }"
CHECK_IN = """
mutation($id: ID!) { checkIn(id: $id, note: "bay 4") { id status arrivedAt arrivalNote } }
"""
SCAN = "mutation($code: String!) { scanPickup(code: $code) { id status } }"
COMPLETE = """
mutation($id: ID!) {
  completePickup(id: $id, payment: {amount: "9.99", currency: "GBP", method: "card",
                                    reference: "pay-1"}) { id status }
}
"""
WEBHOOK_DELIVERIES = "query { webhookDeliveries { id status } }"
SET_WEBHOOK = """
mutation { setStoreWebhook(storeId: "S001", url: "https://pos.example.com/hooks",
                           secret: "a-secret-of-the-s001-pos") { storeId url } }
"""
REPLAY_WEBHOOK = 'mutation { replayWebhookDelivery(id: "no-such-delivery") { id status } }'
DISCARD_WEBHOOK = """
mutation { discardWebhookDelivery(id: "no-such-delivery", reason: "POS replaced") { id status } }
"""
UPSERT_STORES = "mutation($stores: [StoreInput!]!) { upsertStores(stores: $stores) { id name } }"
UPSERT_SKUS = "mutation($skus: [SkuInput!]!) { upsertSkus(skus: $skus) { code name } }"
SYNC_STOCK = "mutation($levels: [StockLevelInput!]!) { syncStock(levels: $levels) { applied } }"
UPDATE_POLICY = """
mutation($input: ReservationPolicyInput!) { updateReservationPolicy(input: $input) {
  defaultHoldSeconds allowedHoldSeconds maxActiveReservationsPerCustomer
  maxUnitsPerSkuPerCustomer expiryWarningSeconds maxStoresPerGroup } }
"""

KPIS = """
query { kpis(storeId: "S001") { storeId stockAccuracy { overall { lines ok rate } } } }
"""
STOCK_DISCREPANCIES = "query { stockDiscrepancies { id status } }"
RECONCILIATION_RUNS = "query { reconciliationRuns { id } }"
WMS_MOVEMENTS = "query { wmsMovements { id status } }"
REPORT_SHORT_PICK = """
mutation($id: ID!) {
  reportShortPick(reservationId: $id, sku: "SKU-1", quantityFound: 0) {
    id status cancelReason lines { sku quantity } resourcedFrom }
}
"""
RECONCILE_STOCK = "mutation { reconcileStock { id } }"
RESOLVE_DISCREPANCY = """
mutation { resolveStockDiscrepancy(id: "no-such-discrepancy", note: "counted again") { id status } }
"""
REPLAY_WMS_MOVEMENT = 'mutation { replayWmsMovement(id: "no-such-movement") { id status } }'
DISCARD_WMS_MOVEMENT = """
mutation { discardWmsMovement(id: "no-such-movement", reason: "WMS has it") { id status } }
"""
SET_THRESHOLDS = """
mutation { setLowStockThresholds(thresholds: [{storeId: "S001", sku: "SKU-1", threshold: 3}]) }
"""

CHANNEL_ACCOUNTS = "query { channelAccounts { channel account } }"
INTAKE_MESSAGE = 'query { intakeMessage(id: "no-such-message") { id status } }'
INTAKE_MESSAGES = "query { intakeMessages { id status } }"
CHANNEL_ORDER = """
query { channelOrder(channel: GENERIC, account: "web-shop", externalId: "order-1") { externalId } }
"""
VALIDATION_PROFILE = "query { validationProfile(channel: GENERIC) { rule action } }"
INTAKE_HEALTH = 'query { intakeHealth(channel: GENERIC, account: "web-shop") { account received } }'
INTAKE_HEALTH_BY_ACCOUNT = "query { intakeHealthByAccount { account received } }"
UPSERT_CHANNEL_ACCOUNT = """
mutation($input: ChannelAccountInput!) {
  upsertChannelAccount(input: $input) { channel account defaultStoreId hasSecret intakeUrl }
}
"""
REPLAY_INTAKE_MESSAGE = 'mutation { replayIntakeMessage(id: "no-such-message") { id status } }'
REPLAY_INTAKE_MESSAGES = "mutation { replayIntakeMessages(status: DEAD) }"
SWEEP_CHANNEL_ACCOUNT = """
mutation { sweepChannelAccount(channel: WOOCOMMERCE, account: "no-such-account",
  since: "2026-03-01T00:00:00Z") { fed } }
"""
DISCARD_INTAKE_MESSAGE = """
mutation { discardIntakeMessage(id: "no-such-message", reason: "a test order") { id status } }
"""
RESUBMIT_INTAKE_MESSAGE = """
mutation($order: ChannelOrderInput!) {
  resubmitIntakeMessage(id: "no-such-message", order: $order) { id status }
}
"""

ROOT_FIELDS = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"

# --- the callers ---------------------------------------------------------------------------------
# The reservation under test is alice's, at S001, made through the "web" channel.

ANONYMOUS = "no-token"
GARBAGE = "garbage-token"
EXPIRED = "expired-token"
ALICE = "customer"
BOB = "other-customer"
STAFF = "staff-S001"
STAFF_ELSEWHERE = "staff-S002"
POS = "pos-S001"
POS_ELSEWHERE = "pos-S002"
OPS = "ops"
WMS = "wms"
CHANNEL = "channel-web"
OTHER_CHANNEL = "channel-app"

CALLERS = (
    ANONYMOUS,
    GARBAGE,
    EXPIRED,
    ALICE,
    BOB,
    STAFF,
    STAFF_ELSEWHERE,
    POS,
    POS_ELSEWHERE,
    OPS,
    WMS,
    CHANNEL,
    OTHER_CHANNEL,
)


def _expired_ops_token(api: Gateway) -> str:
    # Even the most powerful role is refused once its token has run out.
    token = api.token("ops", ttl=60)
    api.clock.advance(120)
    return token


TOKENS: dict[str, Callable[[Gateway], str | None]] = {
    ANONYMOUS: lambda api: None,
    GARBAGE: lambda api: "not-a-jwt",
    EXPIRED: _expired_ops_token,
    ALICE: lambda api: api.token("customer", sub="alice"),
    BOB: lambda api: api.token("customer", sub="bob"),
    STAFF: lambda api: api.token("staff", sub="sam", store="S001"),
    STAFF_ELSEWHERE: lambda api: api.token("staff", sub="sue", store="S002"),
    POS: lambda api: api.token("pos", sub="till-1", store="S001"),
    POS_ELSEWHERE: lambda api: api.token("pos", sub="till-2", store="S002"),
    OPS: lambda api: api.token("ops", sub="olga"),
    WMS: lambda api: api.token("wms", sub="wms"),
    CHANNEL: lambda api: api.token("channel", sub="webshop", channel="web"),
    OTHER_CHANNEL: lambda api: api.token("channel", sub="mobile", channel="app"),
}

# Whose reservation an allowed `reserve` makes, and through which channel. Customers reserve for
# themselves; everyone else names the customer (carol).
RESERVED_FOR: dict[str, tuple[str, str | None]] = {
    ALICE: ("alice", None),
    BOB: ("bob", None),
    STAFF: ("carol", None),
    OPS: ("carol", None),
    CHANNEL: ("carol", "web"),
    OTHER_CHANNEL: ("carol", "app"),
}

# --- the matrix ----------------------------------------------------------------------------------

OK = "OK"
UN = "UNAUTHENTICATED"
FB = "FORBIDDEN"
NF = "NOT_FOUND"  # the reservation is not the caller's to see: to them it does not exist
IT = "INVALID_TRANSITION"  # allowed, and refused by the lifecycle: the reservation is not ready
BI = "BAD_USER_INPUT"  # allowed, and refused by the request: here, no WMS to reconcile with

# fmt: off
MATRIX: dict[str, tuple[str, ...]] = {
    #                         no     junk   expired alice bob   staff  staff  pos    pos    ops   wms   chan   chan
    #                         token  token  token               S001   S002   S001   S002               web    app
    "stores":                  (OK,   OK,    OK,    OK,   OK,   OK,    OK,    OK,    OK,    OK,   OK,   OK,    OK),
    "availability":            (OK,   OK,    OK,    OK,   OK,   OK,    OK,    OK,    OK,    OK,   OK,   OK,    OK),
    "reservationPolicy":       (OK,   OK,    OK,    OK,   OK,   OK,    OK,    OK,    OK,    OK,   OK,   OK,    OK),
    "stockLevel":              (UN,   UN,    UN,    FB,   FB,   OK,    FB,    OK,    FB,    OK,   OK,   FB,    FB),
    "reservation":             (UN,   UN,    UN,    OK,   NF,   OK,    NF,    OK,    NF,    OK,   NF,   OK,    NF),
    "myReservations":          (UN,   UN,    UN,    OK,   OK,   FB,    FB,    FB,    FB,    FB,   FB,   FB,    FB),
    "pickupQueue":             (UN,   UN,    UN,    FB,   FB,   OK,    FB,    OK,    FB,    OK,   FB,   FB,    FB),
    "reserve":                 (UN,   UN,    UN,    OK,   OK,   OK,    FB,    FB,    FB,    OK,   FB,   OK,    OK),
    "cancelReservation":       (UN,   UN,    UN,    OK,   NF,   OK,    NF,    OK,    NF,    OK,   NF,   OK,    NF),
    "markReadyForPickup":      (UN,   UN,    UN,    FB,   NF,   OK,    NF,    OK,    NF,    FB,   NF,   FB,    NF),
    # only the shopper says they are here: the store, its channel and ops may see it, not do it
    "checkIn":                 (UN,   UN,    UN,    OK,   NF,   FB,    NF,    FB,    NF,    FB,   NF,   FB,    NF),
    "scanPickup":              (UN,   UN,    UN,    NF,   NF,   OK,    NF,    OK,    NF,    NF,   NF,   NF,    NF),
    "completePickup":          (UN,   UN,    UN,    FB,   NF,   IT,    NF,    IT,    NF,    FB,   NF,   FB,    NF),
    "upsertStores":            (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   OK,   FB,    FB),
    "upsertSkus":              (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   OK,   FB,    FB),
    "syncStock":               (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   OK,   FB,    FB),
    "updateReservationPolicy": (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "webhookDeliveries":       (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "setStoreWebhook":         (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    # ops may replay and discard; the id names no delivery, so ops are told it does not exist
    "replayWebhookDelivery":   (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "discardWebhookDelivery":  (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "kpis":                    (UN,   UN,    UN,    FB,   FB,   OK,    FB,    OK,    FB,    OK,   FB,   FB,    FB),
    "stockDiscrepancies":      (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "reconciliationRuns":      (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "wmsMovements":            (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "reportShortPick":         (UN,   UN,    UN,    FB,   NF,   OK,    NF,    OK,    NF,    FB,   NF,   FB,    NF),
    # ops may reconcile; the test gateway has no WMS, so ops are told there is nothing to ask
    "reconcileStock":          (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    BI,   FB,   FB,    FB),
    # ops may resolve and replay; the ids name nothing, so ops are told they do not exist
    "resolveStockDiscrepancy": (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "replayWmsMovement":       (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "discardWmsMovement":      (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "setLowStockThresholds":   (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   OK,   FB,    FB),
    # the order intake is ops' alone; the world has no channel account and no intake message
    "channelAccounts":         (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "intakeMessage":           (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "intakeMessages":          (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "channelOrder":            (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "intakeHealth":            (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "intakeHealthByAccount":   (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "validationProfile":       (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "upsertChannelAccount":    (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    # ops may replay, discard and resubmit; the id names no message, so ops are told so
    "replayIntakeMessage":     (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "sweepChannelAccount":     (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "replayIntakeMessages":    (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    OK,   FB,   FB,    FB),
    "discardIntakeMessage":    (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
    "resubmitIntakeMessage":   (UN,   UN,    UN,    FB,   FB,   FB,    FB,    FB,    FB,    NF,   FB,   FB,    FB),
}
# fmt: on

CASES = [
    pytest.param(operation, caller, expected, id=f"{operation}-{caller}-{expected}")
    for operation, row in MATRIX.items()
    for caller, expected in zip(CALLERS, row, strict=True)
]


# --- what each operation sends, returns, and changes ---------------------------------------------


@dataclass(frozen=True)
class World:
    """Stores S001 and S002 with SKU-1 (10 and 5 on hand) and alice's reservation of 1 unit."""

    reservation_id: str
    code: str


NEW_STORE = {
    "id": "S003",
    "name": "Canary Wharf",
    "lat": 51.5054,
    "lon": -0.0235,
    "timezone": "Europe/London",
}
NEW_POLICY = {
    "defaultHoldSeconds": 3600,
    "allowedHoldSeconds": [3600, 7200],
    "maxActiveReservationsPerCustomer": 3,
    "maxUnitsPerSkuPerCustomer": 4,
    "expiryWarningSeconds": 600,
    "maxStoresPerGroup": 2,
}
RESERVE_ONE = {"storeId": "S001", "lines": [{"sku": "SKU-1", "quantity": 1}]}
NEW_CHANNEL_ACCOUNT = {
    "channel": "GENERIC",
    "account": "web-shop",
    "secret": "a-secret-of-the-web-shop-intake",
    "defaultStoreId": "S001",
}
CORRECTED_ORDER = {
    "channel": "GENERIC",
    "account": "web-shop",
    "externalId": "order-1",
    "event": "CREATE",
    "lines": [{"sku": "SKU-1", "quantity": 1}],
    "pickup": {"requested": True, "storeId": "S001"},
}


def _seen_as(caller: str, customer: str) -> str:
    """A reservation's customerId as the caller sees it: masked for the store's staff and POS."""
    store_callers = (STAFF, STAFF_ELSEWHERE, POS, POS_ELSEWHERE)
    return MASKED_CUSTOMER_ID if caller in store_callers else customer


def _reserve_input(world: World, caller: str) -> dict[str, Any]:
    if caller in (ALICE, BOB):
        return {"input": RESERVE_ONE}
    return {"input": {**RESERVE_ONE, "customerId": "carol"}}


def _reserved(world: World, caller: str) -> dict[str, Any]:
    customer, channel = RESERVED_FOR[caller]
    line = {"sku": "SKU-1", "quantity": 1}
    reservation = {
        "customerId": _seen_as(caller, customer),
        "storeId": "S001",
        "channel": channel,
        "status": "HELD",
        "lines": [line],
    }
    return {"reserve": {"reservations": [reservation]}}


def _after_reserve(view: dict[str, Any], caller: str) -> None:
    customer, channel = RESERVED_FOR[caller]
    view["stockLevel"] = {"onHand": 10, "reserved": 2, "available": 8}
    line = {"sku": "SKU-1", "quantity": 1}
    view["pickupQueue"].append(
        {"customerId": customer, "channel": channel, "status": "HELD", "lines": [line]}
    )


def _after_cancel(view: dict[str, Any], caller: str) -> None:
    view["stockLevel"] = {"onHand": 10, "reserved": 0, "available": 10}
    view["pickupQueue"] = []


def _after_ready(view: dict[str, Any], caller: str) -> None:
    view["pickupQueue"][0]["status"] = "READY_FOR_PICKUP"


def _after_upsert_stores(view: dict[str, Any], caller: str) -> None:
    view["stores"].append(NEW_STORE)


def _after_sync(view: dict[str, Any], caller: str) -> None:
    view["stockLevel"] = {"onHand": 7, "reserved": 1, "available": 6}


def _after_policy(view: dict[str, Any], caller: str) -> None:
    view["reservationPolicy"] = NEW_POLICY


def _after_short_pick(view: dict[str, Any], caller: str) -> None:
    # The unit was not on the shelf: it leaves on hand and reserved at S001, and alice's
    # reservation there ends; the unit is held at S002 instead, which is not in this view.
    view["stockLevel"] = {"onHand": 9, "reserved": 0, "available": 9}
    view["pickupQueue"] = []


RESERVE_TABLES = frozenset(
    {
        "reservations",
        "reservation_lines",
        "customer_holds",
        "customer_sku_holds",
        "stock_levels",
        "stock_movements",
        "outbox",
    }
)
CANCEL_TABLES = frozenset(
    {
        "reservations",
        "customer_holds",
        "customer_sku_holds",
        "stock_levels",
        "stock_movements",
        "outbox",
    }
)

# alice's holds end as they began: one reservation ends, its replacement at S002 takes its place
# with the same unit, so her counts of reservations and units do not change.
SHORT_PICK_TABLES = frozenset(
    {
        "reservations",
        "reservation_lines",
        "stock_levels",
        "stock_movements",
        "outbox",
        "accuracy_samples",
    }
)


@dataclass(frozen=True)
class Operation:
    document: str
    # The root field's data for an allowed caller.
    data: Callable[[World, str], Any]
    variables: Callable[[World, str], dict[str, Any]] = lambda world, caller: {}
    # A nullable root field is null on refusal; a non-null one takes all of `data` with it.
    nullable: bool = False
    # For mutations: how ops' view changes, and which tables, when the caller is allowed.
    effect: Callable[[dict[str, Any], str], None] | None = None
    tables: frozenset[str] = field(default_factory=frozenset)


OPERATIONS: dict[str, Operation] = {
    "stores": Operation(STORES, lambda w, c: {"stores": [{"id": "S001"}, {"id": "S002"}]}),
    "availability": Operation(
        AVAILABILITY,
        lambda w, c: {
            "availability": [
                {
                    "store": {"id": "S001"},
                    "canServeAll": True,
                    "lines": [{"sku": "SKU-1", "available": 9}],
                },
                {
                    "store": {"id": "S002"},
                    "canServeAll": True,
                    "lines": [{"sku": "SKU-1", "available": 5}],
                },
            ]
        },
    ),
    "reservationPolicy": Operation(
        RESERVATION_POLICY, lambda w, c: {"reservationPolicy": DEFAULT_POLICY}
    ),
    "stockLevel": Operation(
        STOCK_LEVEL,
        lambda w, c: {
            "stockLevel": {
                "storeId": "S001",
                "sku": "SKU-1",
                "onHand": 10,
                "reserved": 1,
                "available": 9,
            }
        },
        nullable=True,
    ),
    "reservation": Operation(
        RESERVATION,
        lambda w, c: {
            "reservation": {
                "id": w.reservation_id,
                "customerId": _seen_as(c, "alice"),
                "storeId": "S001",
                "channel": "web",
                "status": "HELD",
            }
        },
        variables=lambda w, c: {"id": w.reservation_id},
        nullable=True,
    ),
    "myReservations": Operation(
        MY_RESERVATIONS,
        # Bob is allowed to ask, and sees none of alice's.
        lambda w, c: {
            "myReservations": (
                [{"id": w.reservation_id, "storeId": "S001", "status": "HELD"}]
                if c == ALICE
                else []
            )
        },
    ),
    "pickupQueue": Operation(
        PICKUP_QUEUE,
        lambda w, c: {
            "pickupQueue": [
                {"id": w.reservation_id, "customerId": _seen_as(c, "alice"), "status": "HELD"}
            ]
        },
    ),
    "reserve": Operation(
        RESERVE, _reserved, _reserve_input, effect=_after_reserve, tables=RESERVE_TABLES
    ),
    "cancelReservation": Operation(
        CANCEL,
        lambda w, c: {"cancelReservation": {"id": w.reservation_id, "status": "CANCELLED"}},
        lambda w, c: {"id": w.reservation_id},
        effect=_after_cancel,
        tables=CANCEL_TABLES,
    ),
    "markReadyForPickup": Operation(
        MARK_READY,
        lambda w, c: {"markReadyForPickup": {"id": w.reservation_id, "status": "READY_FOR_PICKUP"}},
        lambda w, c: {"id": w.reservation_id},
        effect=_after_ready,
        tables=frozenset({"reservations", "outbox", "accuracy_samples"}),
    ),
    "checkIn": Operation(
        CHECK_IN,
        lambda w, c: {
            "checkIn": {
                "id": w.reservation_id,
                "status": "HELD",
                "arrivedAt": "2026-03-02T09:00:00+00:00",
                "arrivalNote": "bay 4",
            }
        },
        lambda w, c: {"id": w.reservation_id},
        # Ops' view shows no arrival; the reservation's row and its event are where it shows.
        effect=lambda view, caller: None,
        tables=frozenset({"reservations", "outbox"}),
    ),
    "scanPickup": Operation(
        SCAN,
        lambda w, c: {"scanPickup": {"id": w.reservation_id, "status": "HELD"}},
        lambda w, c: {"code": w.code.lower()},
        # Finding the reservation changes nothing.
        effect=lambda view, caller: None,
    ),
    "completePickup": Operation(
        COMPLETE,
        lambda w, c: {},  # never reached: HELD needs the ready step first (see IT above)
        lambda w, c: {"id": w.reservation_id},
        effect=lambda view, caller: None,
    ),
    "webhookDeliveries": Operation(WEBHOOK_DELIVERIES, lambda w, c: {"webhookDeliveries": []}),
    "setStoreWebhook": Operation(
        SET_WEBHOOK,
        lambda w, c: {
            "setStoreWebhook": {"storeId": "S001", "url": "https://pos.example.com/hooks"}
        },
        # The webhook is not part of what ops' view shows; the stores table is where it shows.
        effect=lambda view, caller: None,
        tables=frozenset({"stores"}),
    ),
    "replayWebhookDelivery": Operation(
        REPLAY_WEBHOOK, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "discardWebhookDelivery": Operation(
        DISCARD_WEBHOOK, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "upsertStores": Operation(
        UPSERT_STORES,
        lambda w, c: {"upsertStores": [{"id": "S003", "name": "Canary Wharf"}]},
        lambda w, c: {"stores": [NEW_STORE]},
        effect=_after_upsert_stores,
        tables=frozenset({"stores"}),
    ),
    "upsertSkus": Operation(
        UPSERT_SKUS,
        lambda w, c: {"upsertSkus": [{"code": "SKU-NEW", "name": "Rain jacket"}]},
        lambda w, c: {"skus": [{"code": "SKU-NEW", "name": "Rain jacket", "unitPrice": "59.90"}]},
        # No query lists SKUs: the catalogue table is where it shows.
        effect=lambda view, caller: None,
        tables=frozenset({"skus"}),
    ),
    "syncStock": Operation(
        SYNC_STOCK,
        lambda w, c: {"syncStock": {"applied": 1}},
        lambda w, c: {"levels": [{"storeId": "S001", "sku": "SKU-1", "onHand": 7}]},
        effect=_after_sync,
        tables=frozenset({"stock_levels", "stock_movements", "outbox"}),
    ),
    "updateReservationPolicy": Operation(
        UPDATE_POLICY,
        lambda w, c: {"updateReservationPolicy": NEW_POLICY},
        lambda w, c: {"input": NEW_POLICY},
        effect=_after_policy,
        tables=frozenset({"reservation_policy"}),
    ),
    "kpis": Operation(
        KPIS,
        # Nothing has been picked or reconciled in the world: no line checked, so no rate.
        lambda w, c: {
            "kpis": {
                "storeId": "S001",
                "stockAccuracy": {"overall": {"lines": 0, "ok": 0, "rate": None}},
            }
        },
    ),
    "stockDiscrepancies": Operation(STOCK_DISCREPANCIES, lambda w, c: {"stockDiscrepancies": []}),
    "reconciliationRuns": Operation(RECONCILIATION_RUNS, lambda w, c: {"reconciliationRuns": []}),
    "wmsMovements": Operation(WMS_MOVEMENTS, lambda w, c: {"wmsMovements": []}),
    "reportShortPick": Operation(
        REPORT_SHORT_PICK,
        # The only line is short: the reservation ends, keeping its line for the record, and the
        # unit moves to S002 as a new reservation (resourced from this one).
        lambda w, c: {
            "reportShortPick": {
                "id": w.reservation_id,
                "status": "CANCELLED",
                "cancelReason": "STOCK_SHORTAGE",
                "lines": [{"sku": "SKU-1", "quantity": 1}],
                "resourcedFrom": None,
            }
        },
        lambda w, c: {"id": w.reservation_id},
        effect=_after_short_pick,
        tables=SHORT_PICK_TABLES,
    ),
    "reconcileStock": Operation(
        RECONCILE_STOCK,
        lambda w, c: {},  # never reached: no WMS is configured (see BI above)
        effect=lambda view, caller: None,
    ),
    "resolveStockDiscrepancy": Operation(
        RESOLVE_DISCREPANCY, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "replayWmsMovement": Operation(
        REPLAY_WMS_MOVEMENT, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "discardWmsMovement": Operation(
        DISCARD_WMS_MOVEMENT, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "setLowStockThresholds": Operation(
        SET_THRESHOLDS,
        lambda w, c: {"setLowStockThresholds": 1},
        # Thresholds are not part of what ops' view shows; the stock row and its event are.
        effect=lambda view, caller: None,
        tables=frozenset({"stock_levels", "outbox"}),
    ),
    "channelAccounts": Operation(CHANNEL_ACCOUNTS, lambda w, c: {"channelAccounts": []}),
    "intakeMessage": Operation(INTAKE_MESSAGE, lambda w, c: {"intakeMessage": None}, nullable=True),
    "intakeMessages": Operation(INTAKE_MESSAGES, lambda w, c: {"intakeMessages": []}),
    "channelOrder": Operation(CHANNEL_ORDER, lambda w, c: {"channelOrder": None}, nullable=True),
    "intakeHealth": Operation(
        INTAKE_HEALTH, lambda w, c: {"intakeHealth": {"account": "web-shop", "received": 0}}
    ),
    "intakeHealthByAccount": Operation(
        INTAKE_HEALTH_BY_ACCOUNT, lambda w, c: {"intakeHealthByAccount": []}
    ),
    "validationProfile": Operation(
        VALIDATION_PROFILE,
        # The generic channel's defaults: every rule, in the order they run.
        lambda w, c: {
            "validationProfile": [
                {"rule": name, "action": action.value}
                for name, action in profile(SalesChannel.GENERIC).items()
            ]
        },
    ),
    "upsertChannelAccount": Operation(
        UPSERT_CHANNEL_ACCOUNT,
        lambda w, c: {
            "upsertChannelAccount": {
                "channel": "GENERIC",
                "account": "web-shop",
                "defaultStoreId": "S001",
                "hasSecret": True,
                "intakeUrl": "/intake/generic/web-shop",
            }
        },
        lambda w, c: {"input": NEW_CHANNEL_ACCOUNT},
        # Channel accounts are not part of what ops' view shows; their table is where it shows.
        effect=lambda view, caller: None,
        tables=frozenset({"channel_accounts"}),
    ),
    "replayIntakeMessage": Operation(
        REPLAY_INTAKE_MESSAGE, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "sweepChannelAccount": Operation(
        SWEEP_CHANNEL_ACCOUNT, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "replayIntakeMessages": Operation(
        REPLAY_INTAKE_MESSAGES,
        # No message is dead: none to replay.
        lambda w, c: {"replayIntakeMessages": 0},
        effect=lambda view, caller: None,
    ),
    "discardIntakeMessage": Operation(
        DISCARD_INTAKE_MESSAGE, lambda w, c: {}, effect=lambda view, caller: None
    ),
    "resubmitIntakeMessage": Operation(
        RESUBMIT_INTAKE_MESSAGE,
        lambda w, c: {},
        lambda w, c: {"order": CORRECTED_ORDER},
        effect=lambda view, caller: None,
    ),
}


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


@pytest_asyncio.fixture(loop_scope="session")
async def world(http: httpx.AsyncClient, api: Gateway) -> World:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10, ("S002", "SKU-1"): 5})
    reservation = await given_reservation(
        http,
        api,
        api.token("customer", sub="alice"),
        storeId="S001",
        lines=[{"sku": "SKU-1", "quantity": 1}],
        channel="web",
    )
    return World(reservation["id"], reservation["code"])


# --- the tests -----------------------------------------------------------------------------------


async def test_the_matrix_has_a_row_for_every_query_and_mutation_the_gateway_serves(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given the operations the running gateway serves
    served = (await gql(http, api, ROOT_FIELDS)).ok()["__schema"]
    names = {f["name"] for root in ("queryType", "mutationType") for f in served[root]["fields"]}

    # Then each has a row of the matrix (a new one needs its row before it ships), and each row
    # says something of every caller
    assert sorted(names - set(MATRIX)) == [], "operations without a row in the auth matrix"
    assert set(MATRIX) == set(OPERATIONS)
    assert all(len(row) == len(CALLERS) for row in MATRIX.values())


@pytest.mark.parametrize(("operation", "caller", "expected"), CASES)
async def test_who_may_call_what(
    http: httpx.AsyncClient,
    api: Gateway,
    world: World,
    operation: str,
    caller: str,
    expected: str,
) -> None:
    # Given the world and the caller's token; for a mutation, also ops' view of the world and
    # every row of the database
    op = OPERATIONS[operation]
    if op.effect is not None:  # a mutation
        view_before = await ops_view(http, api)
        rows_before = await database_rows(api.db)
    token = TOKENS[caller](api)

    # When the caller calls the operation
    result = await gql(http, api, op.document, op.variables(world, caller), token)

    # Then an allowed caller gets exactly the data (and a mutation exactly its change); a refused
    # caller gets the code and no data, and a refused mutation changes nothing at all
    assert result.status == 200
    if expected == OK:
        assert result.ok() == op.data(world, caller)
    else:
        assert result.codes == [expected]
        assert result.data == ({operation: None} if op.nullable else None)
        assert result.errors[0]["path"] == [operation]
        assert result.errors[0]["message"].strip()
        assert "Traceback" not in str(result.body)
    if op.effect is not None:
        expected_view = copy.deepcopy(view_before)
        if expected == OK:
            op.effect(expected_view, caller)
        assert await ops_view(http, api) == in_order(expected_view)
        changed = changed_tables(rows_before, await database_rows(api.db))
        assert changed == (op.tables if expected == OK else set())


AUTH_MESSAGES = [
    pytest.param(ANONYMOUS, "Sign in: send 'Authorization: Bearer <token>'.", id="no-token"),
    pytest.param(GARBAGE, "Your token is not valid (Not enough segments).", id="garbage"),
    pytest.param(EXPIRED, "Your token has expired; get a new one.", id="expired"),
]


@pytest.mark.parametrize(("caller", "message"), AUTH_MESSAGES)
async def test_an_unauthenticated_caller_is_told_what_to_do(
    http: httpx.AsyncClient, api: Gateway, world: World, caller: str, message: str
) -> None:
    # Given a caller without a usable token
    token = TOKENS[caller](api)

    # When they ask for something that needs a caller
    result = await gql(http, api, MY_RESERVATIONS, token=token)

    # Then the message says what is wrong and what to do
    assert result.codes == ["UNAUTHENTICATED"]
    assert result.errors[0]["message"] == message


async def test_a_token_is_accepted_until_it_expires(
    http: httpx.AsyncClient, api: Gateway, world: World
) -> None:
    # Given an ops token issued for 60 s
    token = api.token("ops", ttl=60)

    # When it is used just before it runs out, and again after
    api.clock.advance(59)
    before = await gql(http, api, STOCK_LEVEL, token=token)
    api.clock.advance(61)
    after = await gql(http, api, STOCK_LEVEL, token=token)

    # Then it works at first and is refused once expired
    assert before.ok()["stockLevel"]["onHand"] == 10
    assert after.codes == ["UNAUTHENTICATED"]


def _forged(api: Gateway, *, key: str | None = None, **claims: Any) -> str:
    now = api.clock.now()
    base: dict[str, Any] = {
        "sub": "mallory",
        "role": "ops",
        "iss": api.settings.jwt_issuer,
        "aud": api.settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    base.update(claims)
    present = {k: v for k, v in base.items() if v is not None}
    # Everything else as the gateway would issue it, so that each token has only its own defect.
    kid = {"kid": api.settings.signing_kid}
    return jwt.encode(present, key or api.settings.jwt_key, algorithm="HS256", headers=kid)


UNTRUSTED_TOKENS = [
    pytest.param(
        lambda api: _forged(api, key="another-secret-that-is-long-enough-0123456789"),
        id="signed-with-another-secret",
    ),
    pytest.param(lambda api: _forged(api, iss="someone-else"), id="another-issuer"),
    pytest.param(lambda api: _forged(api, aud="someone-else"), id="another-audience"),
    pytest.param(lambda api: _forged(api, aud=None), id="no-audience"),
    pytest.param(lambda api: _forged(api, role="admin"), id="unknown-role"),
    pytest.param(lambda api: _forged(api, role="staff"), id="staff-without-a-store"),
    pytest.param(lambda api: _forged(api, role="channel"), id="channel-without-a-channel"),
    pytest.param(lambda api: _forged(api, exp=None), id="no-expiry"),
    pytest.param(lambda api: _forged(api, sub=None), id="no-subject"),
]


@pytest.mark.parametrize("make_token", UNTRUSTED_TOKENS)
async def test_a_token_the_gateway_cannot_trust_is_unauthenticated(
    http: httpx.AsyncClient,
    api: Gateway,
    world: World,
    make_token: Callable[[Gateway], str],
) -> None:
    # Given a token that looks like a JWT but is not one the gateway issued, or is incomplete
    token = make_token(api)
    rows_before = await database_rows(api.db)

    # When it is used to read stock and to change it
    read = await gql(http, api, STOCK_LEVEL, token=token)
    write = await gql(
        http, api, SYNC_STOCK, OPERATIONS["syncStock"].variables(world, OPS), token=token
    )

    # Then both are refused as unauthenticated, and nothing changed
    assert read.codes == ["UNAUTHENTICATED"]
    assert read.data == {"stockLevel": None}
    assert write.codes == ["UNAUTHENTICATED"]
    assert write.data is None
    assert await database_rows(api.db) == rows_before


async def test_a_bearer_token_sent_with_another_scheme_is_unauthenticated(
    http: httpx.AsyncClient, api: Gateway, world: World
) -> None:
    # Given a valid ops token, sent as if it were Basic auth
    headers = {"authorization": f"Basic {api.token('ops')}"}

    # When it is used
    response = await http.post(f"{api.url}/graphql", json={"query": STOCK_LEVEL}, headers=headers)

    # Then the caller is told how to send it
    body = response.json()
    assert body["data"] == {"stockLevel": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"] == "Send the token as 'Authorization: Bearer <token>'."


HIDDEN_FROM = [BOB, STAFF_ELSEWHERE, POS_ELSEWHERE, WMS, OTHER_CHANNEL]


@pytest.mark.parametrize("operation", ["reservation", "cancelReservation", "checkIn"])
@pytest.mark.parametrize("caller", HIDDEN_FROM)
async def test_a_reservation_one_may_not_see_looks_exactly_like_one_that_does_not_exist(
    http: httpx.AsyncClient, api: Gateway, world: World, operation: str, caller: str
) -> None:
    # Given alice's reservation and an id nobody has
    op = OPERATIONS[operation]
    token = TOKENS[caller](api)
    missing_id = "00000000-0000-4000-8000-000000000000"
    rows_before = await database_rows(api.db)

    # When the caller asks for both
    hidden = await gql(http, api, op.document, {"id": world.reservation_id}, token)
    missing = await gql(http, api, op.document, {"id": missing_id}, token)

    # Then the two answers are the same, but for the id the caller gave, and nothing changed
    assert hidden.codes == ["NOT_FOUND"]
    assert hidden.body == {
        "data": missing.data,
        "errors": [
            {
                **error,
                "message": error["message"].replace(missing_id, world.reservation_id),
            }
            for error in missing.errors
        ],
    }
    assert await database_rows(api.db) == rows_before


RESERVE_ON_SOMEONE_ELSES_BEHALF = [
    pytest.param(
        ALICE,
        {**RESERVE_ONE, "customerId": "bob"},
        "A customer can only reserve for themselves.",
        id="customer-for-another-customer",
    ),
    pytest.param(
        CHANNEL,
        {**RESERVE_ONE, "customerId": "carol", "channel": "app"},
        "A channel token can only reserve for its own channel.",
        id="channel-for-another-channel",
    ),
    pytest.param(
        STAFF,
        {**RESERVE_ONE, "storeId": "S002", "customerId": "carol"},
        "Store staff can only reserve at their own store (storeId).",
        id="staff-at-another-store",
    ),
    pytest.param(
        STAFF,
        {
            "lines": RESERVE_ONE["lines"],
            "near": {"lat": 51.5152, "lon": -0.1419},
            "customerId": "carol",
        },
        "Store staff can only reserve at their own store (storeId).",
        id="staff-near-a-point",
    ),
]


@pytest.mark.parametrize(("caller", "reserve_input", "message"), RESERVE_ON_SOMEONE_ELSES_BEHALF)
async def test_reserving_for_someone_one_does_not_act_for_is_forbidden(
    http: httpx.AsyncClient,
    api: Gateway,
    world: World,
    caller: str,
    reserve_input: dict[str, Any],
    message: str,
) -> None:
    # Given the world as ops see it
    view_before = await ops_view(http, api)
    rows_before = await database_rows(api.db)

    # When the caller reserves for a customer, channel or store that is not theirs
    result = await gql(http, api, RESERVE, {"input": reserve_input}, TOKENS[caller](api))

    # Then it is forbidden, and nothing was locked
    assert result.codes == ["FORBIDDEN"]
    assert result.data is None
    assert result.errors[0]["message"] == message
    assert await ops_view(http, api) == view_before
    assert await database_rows(api.db) == rows_before
