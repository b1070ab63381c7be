"""Ops' dead letters of POS webhooks and WMS movements, over HTTP: ranked by impact (the
default order unchanged), discarded with who, why and when, only when dead, only by ops; a
refused discard changes nothing, and the metrics' gauges keep counting the dead alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from adapters.db.metrics import read_figures
from adapters.db.tables import webhook_deliveries, wms_outbound
from services import retention
from tests.api.conftest import Gateway, gql
from tests.api.given import database_rows, given_stores_with_stock
from tests.conftest import START

pytestmark = pytest.mark.asyncio(loop_scope="session")

DELIVERIES = """
query($status: WebhookDeliveryStatus!, $orderBy: WebhookDeliveryOrder) {
  webhookDeliveries(status: $status, orderBy: $orderBy) { id eventType status impact }
}
"""
MOVEMENTS = """
query($status: WmsMovementStatus, $orderBy: WmsMovementOrder) {
  wmsMovements(status: $status, orderBy: $orderBy) { id type quantity status impact }
}
"""
DISCARD_DELIVERY = """
mutation($id: ID!, $reason: String!) {
  discardWebhookDelivery(id: $id, reason: $reason) {
    id status discardedAt discardedBy discardReason
  }
}
"""
DISCARD_MOVEMENT = """
mutation($id: ID!, $reason: String!) {
  discardWmsMovement(id: $id, reason: $reason) {
    id status discardedAt discardedBy discardReason
  }
}
"""
REPLAY_DELIVERY = "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id status } }"
REPLAY_MOVEMENT = "mutation($id: ID!) { replayWmsMovement(id: $id) { id status } }"

# (id, event type, hours before START it was queued, status): impact = weight * (1 + hours)
DEAD_DELIVERIES = [
    ("d-ready", "READY_FOR_PICKUP", 0, "DEAD"),  # 80 * 1 = 80
    ("d-arrived", "CUSTOMER_ARRIVED", 1, "DEAD"),  # 100 * 2 = 200
    ("d-collected", "COLLECTED", 10, "DEAD"),  # 5 * 11 = 55
    ("d-expired", "EXPIRED", 30, "DEAD"),  # 10 * 31 = 310: an old small one does not starve
    ("d-delivered", "READY_FOR_PICKUP", 2, "DELIVERED"),
]
# (id, kind, quantity, hours before START it happened, status): impact = units * weight * (1 + h)
DEAD_MOVEMENTS = [
    ("m-release", "RELEASE", 10, 0, "DEAD"),  # 10 * 1 * 1 = 10
    ("m-lock", "LOCK", 2, 1, "DEAD"),  # 2 * 3 * 2 = 12
    ("m-set", "SET_RESERVED", 0, 2, "DEAD"),  # 1 * 2 * 3 = 6 (no units still counts one)
    ("m-consume", "CONSUME", 1, 5, "DEAD"),  # 1 * 3 * 6 = 18
    ("m-delivered", "LOCK", 4, 3, "DELIVERED"),
]


@pytest_asyncio.fixture(loop_scope="session")
async def dead_letters(http: httpx.AsyncClient, api: Gateway) -> None:
    """Stores S001 and S002, and the dead letters above as the workers would have left them."""
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 10})
    async with api.db.engine.begin() as conn:
        await conn.execute(
            webhook_deliveries.insert(),
            [
                {
                    "id": i,
                    "event_id": f"event-{i}",
                    "event_type": event,
                    "store_id": "S001",
                    "url": "https://pos.example.com/hooks",
                    "payload": {"type": event},
                    "status": status,
                    "attempts": 8,
                    "next_attempt_at": START - timedelta(hours=hours),
                    "last_status_code": 500,
                    "last_error": "HTTP 500",
                    "created_at": START - timedelta(hours=hours),
                    "delivered_at": START if status == "DELIVERED" else None,
                }
                for i, event, hours, status in DEAD_DELIVERIES
            ],
        )
        await conn.execute(
            wms_outbound.insert(),
            [
                {
                    "id": i,
                    "store_id": "S001",
                    "sku": "SKU-1",
                    "sequence": n + 1,
                    "kind": kind,
                    "quantity": quantity,
                    "occurred_at": START - timedelta(hours=hours),
                    "status": status,
                    "attempts": 20,
                    "next_attempt_at": START,
                    "last_error": "HTTP 503",
                    "created_at": START - timedelta(hours=hours),
                    "delivered_at": START if status == "DELIVERED" else None,
                }
                for n, (i, kind, quantity, hours, status) in enumerate(DEAD_MOVEMENTS)
            ],
        )


async def ops(http: httpx.AsyncClient, api: Gateway, query: str, **variables: Any) -> Any:
    return (await gql(http, api, query, variables, api.token("ops", sub="carol"))).ok()


# --- impact --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("dead_letters")
async def test_dead_deliveries_rank_by_impact_and_stay_newest_first_by_default(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    default = (await ops(http, api, DELIVERIES, status="DEAD"))["webhookDeliveries"]
    ranked = (await ops(http, api, DELIVERIES, status="DEAD", orderBy="IMPACT_DESC"))[
        "webhookDeliveries"
    ]

    assert [d["id"] for d in default] == ["d-ready", "d-arrived", "d-collected", "d-expired"]
    assert [(d["id"], d["impact"]) for d in ranked] == [
        ("d-expired", pytest.approx(310)),
        ("d-arrived", pytest.approx(200)),
        ("d-ready", pytest.approx(80)),
        ("d-collected", pytest.approx(55)),
    ]


@pytest.mark.usefixtures("dead_letters")
async def test_impact_grows_with_the_wait_and_the_ranking_follows(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Ten hours on, the shoppers waiting weigh more than the old expiry.
    api.clock.advance(10 * 3600)

    ranked = (await ops(http, api, DELIVERIES, status="DEAD", orderBy="IMPACT_DESC"))[
        "webhookDeliveries"
    ]

    assert [(d["id"], d["impact"]) for d in ranked] == [
        ("d-arrived", pytest.approx(1200)),
        ("d-ready", pytest.approx(880)),
        ("d-expired", pytest.approx(410)),
        ("d-collected", pytest.approx(105)),
    ]


@pytest.mark.usefixtures("dead_letters")
async def test_dead_movements_rank_by_units_kind_and_age(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    default = (await ops(http, api, MOVEMENTS))["wmsMovements"]
    ranked = (await ops(http, api, MOVEMENTS, orderBy="IMPACT_DESC"))["wmsMovements"]

    assert [m["id"] for m in default] == ["m-release", "m-lock", "m-set", "m-consume"]
    assert [(m["id"], m["impact"]) for m in ranked] == [
        ("m-consume", pytest.approx(18)),
        ("m-lock", pytest.approx(12)),
        ("m-release", pytest.approx(10)),
        ("m-set", pytest.approx(6)),
    ]


# --- discard -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("dead_letters")
async def test_a_discarded_delivery_keeps_who_why_and_when_and_leaves_the_dead_letters(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    api.clock.advance(5 * 60)

    found = await ops(http, api, DISCARD_DELIVERY, id="d-arrived", reason="  shopper collected  ")

    assert found["discardWebhookDelivery"] == {
        "id": "d-arrived",
        "status": "DISCARDED",
        "discardedAt": (START + timedelta(minutes=5)).isoformat(),
        "discardedBy": "carol",
        "discardReason": "shopper collected",
    }
    dead = (await ops(http, api, DELIVERIES, status="DEAD"))["webhookDeliveries"]
    assert "d-arrived" not in [d["id"] for d in dead]
    discarded = (await ops(http, api, DELIVERIES, status="DISCARDED"))["webhookDeliveries"]
    assert [d["id"] for d in discarded] == ["d-arrived"]
    # Never sent again: a discarded delivery is not replayed.
    replay = await gql(http, api, REPLAY_DELIVERY, {"id": "d-arrived"}, api.token("ops"))
    assert replay.codes == ["INVALID_TRANSITION"]
    # The gauges count the dead alone.
    assert (await read_figures(api.db)).webhooks == {"PENDING": 0, "DEAD": 3}


@pytest.mark.usefixtures("dead_letters")
async def test_a_discarded_movement_keeps_who_why_and_when_and_is_never_sent(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    found = await ops(http, api, DISCARD_MOVEMENT, id="m-lock", reason="WMS has it already")

    assert found["discardWmsMovement"] == {
        "id": "m-lock",
        "status": "DISCARDED",
        "discardedAt": START.isoformat(),
        "discardedBy": "carol",
        "discardReason": "WMS has it already",
    }
    dead = (await ops(http, api, MOVEMENTS))["wmsMovements"]
    assert "m-lock" not in [m["id"] for m in dead]
    replay = await gql(http, api, REPLAY_MOVEMENT, {"id": "m-lock"}, api.token("ops"))
    assert replay.codes == ["INVALID_TRANSITION"]
    assert (await read_figures(api.db)).wms_movements == {"PENDING": 0, "DEAD": 3}


REFUSED_DISCARDS = [
    pytest.param(DISCARD_DELIVERY, "d-delivered", "done", "INVALID_TRANSITION", id="delivered"),
    pytest.param(DISCARD_DELIVERY, "no-such", "gone", "NOT_FOUND", id="unknown-delivery"),
    pytest.param(DISCARD_DELIVERY, "d-ready", "   ", "BAD_USER_INPUT", id="blank-reason"),
    pytest.param(DISCARD_DELIVERY, "d-ready", "x" * 501, "BAD_USER_INPUT", id="long-reason"),
    pytest.param(DISCARD_MOVEMENT, "m-delivered", "done", "INVALID_TRANSITION", id="taken"),
    pytest.param(DISCARD_MOVEMENT, "no-such", "gone", "NOT_FOUND", id="unknown-movement"),
    pytest.param(DISCARD_MOVEMENT, "m-lock", "", "BAD_USER_INPUT", id="empty-reason"),
]


@pytest.mark.usefixtures("dead_letters")
@pytest.mark.parametrize(("mutation", "target", "reason", "code"), REFUSED_DISCARDS)
async def test_a_refused_discard_says_why_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway, mutation: str, target: str, reason: str, code: str
) -> None:
    before = await database_rows(api.db)

    result = await gql(http, api, mutation, {"id": target, "reason": reason}, api.token("ops"))

    assert result.codes == [code]
    assert await database_rows(api.db) == before


# --- who may ---------------------------------------------------------------------------------------

NOT_OPS: list[tuple[str, Callable[[Gateway], str | None], str]] = [
    ("no token", lambda api: None, "UNAUTHENTICATED"),
    ("customer", lambda api: api.token("customer", sub="alice"), "FORBIDDEN"),
    ("staff of the store", lambda api: api.token("staff", store="S001"), "FORBIDDEN"),
    ("pos of the store", lambda api: api.token("pos", store="S001"), "FORBIDDEN"),
    ("wms", lambda api: api.token("wms"), "FORBIDDEN"),
    ("channel", lambda api: api.token("channel", channel="web"), "FORBIDDEN"),
]
OPS_ONLY = [
    pytest.param(DISCARD_DELIVERY, {"id": "d-ready", "reason": "no"}, id="discardWebhookDelivery"),
    pytest.param(DISCARD_MOVEMENT, {"id": "m-lock", "reason": "no"}, id="discardWmsMovement"),
    pytest.param(DELIVERIES, {"status": "DEAD", "orderBy": "IMPACT_DESC"}, id="deliveries"),
    pytest.param(MOVEMENTS, {"orderBy": "IMPACT_DESC"}, id="movements"),
]


@pytest.mark.usefixtures("dead_letters")
@pytest.mark.parametrize(("operation", "variables"), OPS_ONLY)
async def test_only_ops_see_and_discard_dead_letters(
    http: httpx.AsyncClient, api: Gateway, operation: str, variables: dict[str, Any]
) -> None:
    before = await database_rows(api.db)

    for caller, token, code in NOT_OPS:
        result = await gql(http, api, operation, variables, token(api))

        assert (caller, result.codes, result.data) == (caller, [code], None)
    assert await database_rows(api.db) == before
    # And ops may.
    assert (await gql(http, api, operation, variables, api.token("ops"))).errors == []


async def test_discarded_rows_go_with_the_retention_period_and_dead_ones_stay(
    http: httpx.AsyncClient, api: Gateway, dead_letters: None
) -> None:
    await ops(http, api, DISCARD_DELIVERY, id="d-ready", reason="stale")
    await ops(http, api, DISCARD_MOVEMENT, id="m-release", reason="stale")
    api.clock.advance(31 * 86_400)

    await retention.sweep(uow=api.app.state.runtime.deps.uow, clock=api.clock, days=30)

    async with api.db.read() as conn:
        deliveries = set((await conn.execute(sa.select(webhook_deliveries.c.id))).scalars().all())
        movements = set((await conn.execute(sa.select(wms_outbound.c.id))).scalars().all())
    # The discarded and the delivered went; every dead one waits for someone to act.
    assert deliveries == {"d-arrived", "d-collected", "d-expired"}
    assert movements == {"m-lock", "m-set", "m-consume"}
