"""The WMS protocol end to end: the emulator served by uvicorn on a loopback port, spoken to through
`HttpWms` as ROPOS speaks to a real WMS; and the client against replies that break the protocol."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.wms.emulator import EmulatedWms, create_emulator
from adapters.wms.http import HttpWms
from adapters.wms.protocol import movement_to_json
from domain.stock import LevelUpdate
from domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from domain.wms import (
    MovementKind,
    MovementResult,
    Outcome,
    WmsLevel,
    WmsMovement,
    WmsUnavailable,
    parse_batch,
)
from tests.helpers import free_port, serving

OCCURRED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOKEN = "wms-token-0123456789"
PUSH_SECRET = "push-secret-0123456789"
WAIT_SECONDS = 5.0  # a request on loopback is handled within this


@dataclass
class Emulator:
    url: str
    app: Starlette


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def emulator() -> AsyncIterator[Emulator]:
    app = create_emulator()
    async with serving(app) as url:
        yield Emulator(url, app)


@pytest.fixture
def wms(emulator: Emulator) -> EmulatedWms:
    """The emulator's state, fresh for each test."""
    emulator.app.state.wms = EmulatedWms()
    state: EmulatedWms = emulator.app.state.wms
    return state


@pytest_asyncio.fixture(loop_scope="session")
async def client(emulator: Emulator, wms: EmulatedWms) -> AsyncIterator[HttpWms]:
    """ROPOS's side: the HTTP client, against the fresh emulator."""
    client = HttpWms(emulator.url, timeout_seconds=WAIT_SECONDS)
    yield client
    await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def admin(emulator: Emulator, wms: EmulatedWms) -> AsyncIterator[httpx.AsyncClient]:
    """A test's or a demo's side: plain HTTP to the emulator's admin endpoints."""
    async with httpx.AsyncClient(base_url=emulator.url, timeout=WAIT_SECONDS) as admin:
        yield admin


# --- helpers --------------------------------------------------------------------------------------


def movement(
    kind: MovementKind,
    quantity: int,
    sequence: int,
    *,
    id: str | None = None,
    store: str = "S001",
    sku: str = "SKU1",
) -> WmsMovement:
    return WmsMovement(
        id=id or f"{store}-{sku}-{sequence}",
        store_id=store,
        sku=sku,
        sequence=sequence,
        kind=kind,
        quantity=quantity,
        reservation_id="R1",
        occurred_at=OCCURRED_AT,
    )


async def given_levels(admin: httpx.AsyncClient, *levels: dict[str, Any]) -> None:
    response = await admin.put("/admin/levels", json={"levels": list(levels)})
    assert response.status_code == 200, response.text


async def given_outage(
    admin: httpx.AsyncClient, status: int | None, delay_seconds: float = 0.0
) -> None:
    response = await admin.post(
        "/admin/outage", json={"status": status, "delaySeconds": delay_seconds}
    )
    assert response.json() == {"status": status, "delaySeconds": delay_seconds}


async def received(admin: httpx.AsyncClient) -> list[tuple[str, str, str | None]]:
    """The emulator's log as (movement id, outcome, error)."""
    response = await admin.get("/admin/movements")
    return [(r["movement"]["id"], r["outcome"], r["error"]) for r in response.json()]


async def admin_levels(admin: httpx.AsyncClient) -> Any:
    return (await admin.get("/admin/levels")).json()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait for a real server to get somewhere, for at most WAIT_SECONDS."""
    for _ in range(int(WAIT_SECONDS / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the server never got there")


# --- movements ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "on_hand", "reserved"),
    [
        (MovementKind.LOCK, 10, 7),
        (MovementKind.RELEASE, 10, 1),
        (MovementKind.CONSUME, 7, 1),
        (MovementKind.SHORT_PICK, 7, 1),
        (MovementKind.SET_RESERVED, 10, 3),
    ],
)
async def test_each_kind_of_movement_changes_the_figures_as_the_protocol_says(
    client: HttpWms, admin: httpx.AsyncClient, kind: MovementKind, on_hand: int, reserved: int
) -> None:
    await given_levels(admin, {"storeId": "S001", "sku": "SKU1", "onHand": 10, "reserved": 4})

    results = await client.send([movement(kind, 3, 1)])

    assert results == [MovementResult("S001-SKU1-1", Outcome.APPLIED)]
    assert await client.levels("S001") == [WmsLevel("S001", "SKU1", on_hand, reserved, 2)]
    assert await received(admin) == [("S001-SKU1-1", "APPLIED", None)]


async def test_figures_never_go_below_zero_and_the_movement_still_applies(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    await given_levels(admin, {"storeId": "S001", "sku": "SKU1", "onHand": 3, "reserved": 2})

    results = await client.send(
        [movement(MovementKind.RELEASE, 5, 1), movement(MovementKind.CONSUME, 4, 2)]
    )

    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    assert await client.levels("S001") == [WmsLevel("S001", "SKU1", 0, 0, 3)]


async def test_a_movement_for_an_unknown_row_creates_it_at_zero(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    results = await client.send([movement(MovementKind.LOCK, 2, 1, store="S009", sku="NEW")])

    assert results == [MovementResult("S009-NEW-1", Outcome.APPLIED)]
    assert await client.levels("S009") == [WmsLevel("S009", "NEW", 0, 2, 1)]


async def test_movements_of_one_call_apply_in_the_order_sent(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    await given_levels(admin, {"storeId": "S001", "sku": "SKU1", "onHand": 10})

    await client.send(
        [
            movement(MovementKind.LOCK, 3, 1),
            movement(MovementKind.RELEASE, 1, 2),
            movement(MovementKind.SET_RESERVED, 5, 3),
            movement(MovementKind.CONSUME, 1, 4),
        ]
    )

    assert await client.levels("S001") == [WmsLevel("S001", "SKU1", 9, 4, 5)]
    assert [id for id, _, _ in await received(admin)] == [
        "S001-SKU1-1",
        "S001-SKU1-2",
        "S001-SKU1-3",
        "S001-SKU1-4",
    ]


async def test_a_movement_id_applies_once_and_a_resend_is_a_duplicate(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    await given_levels(admin, {"storeId": "S001", "sku": "SKU1", "onHand": 10})
    lock = movement(MovementKind.LOCK, 3, 1)
    await client.send([lock])
    before = await admin_levels(admin)

    again = await client.send([lock])
    twice_in_one_call = await client.send([lock, lock])

    assert again == [MovementResult(lock.id, Outcome.DUPLICATE)]
    assert twice_in_one_call == [MovementResult(lock.id, Outcome.DUPLICATE)] * 2
    assert await admin_levels(admin) == before
    assert before["levels"][0]["reserved"] == 3
    assert [outcome for _, outcome, _ in await received(admin)] == [
        "APPLIED",
        "DUPLICATE",
        "DUPLICATE",
        "DUPLICATE",
    ]


async def test_a_new_id_twice_in_one_call_applies_the_first_only(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    lock = movement(MovementKind.LOCK, 3, 1)

    results = await client.send([lock, lock])

    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.DUPLICATE]
    assert await client.levels("S001") == [WmsLevel("S001", "SKU1", 0, 3, 1)]


@pytest.mark.parametrize("stale_sequence", [1, 2])
async def test_a_movement_no_newer_than_the_last_applied_is_rejected_and_changes_nothing(
    client: HttpWms, admin: httpx.AsyncClient, stale_sequence: int
) -> None:
    await given_levels(admin, {"storeId": "S001", "sku": "SKU1", "onHand": 10})
    await client.send([movement(MovementKind.LOCK, 3, 2)])
    before = await admin_levels(admin)

    results = await client.send([movement(MovementKind.LOCK, 1, stale_sequence, id="late")])

    assert results == [
        MovementResult("late", Outcome.REJECTED, f"stale sequence {stale_sequence}, last applied 2")
    ]
    assert await admin_levels(admin) == before
    # Not applied, so not remembered as applied either: it is refused again, for the same reason.
    assert (await client.send([movement(MovementKind.LOCK, 1, stale_sequence, id="late")]))[
        0
    ].outcome is Outcome.REJECTED


async def test_sequences_are_counted_per_store_and_sku(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    await client.send([movement(MovementKind.LOCK, 1, 5, sku="A")])

    results = await client.send(
        [
            movement(MovementKind.LOCK, 1, 1, sku="B"),
            movement(MovementKind.LOCK, 1, 1, store="S002"),
        ]
    )

    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]


async def test_a_malformed_body_is_answered_400_and_changes_nothing(
    emulator: Emulator, admin: httpx.AsyncClient
) -> None:
    good = movement_to_json(movement(MovementKind.LOCK, 1, 1))
    bad_bodies: list[Any] = [
        {"movements": [good, {"id": "no-rest"}]},
        {"movements": [good, {**good, "id": "x", "type": "STEAL"}]},
        {"movements": "all of them"},
        ["not", "an", "object"],
    ]

    for body in bad_bodies:
        response = await admin.post("/movements", json=body)
        assert response.status_code == 400
        assert isinstance(response.json()["error"], str)
    response = await admin.post("/movements", content=b"{not json")

    assert response.status_code == 400
    assert await received(admin) == []
    assert (await admin_levels(admin))["levels"] == []


async def test_a_call_without_movements_asks_nothing_of_the_wms(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    await given_outage(admin, 503)  # were it called, it would fail

    assert await client.send([]) == []


# --- levels ---------------------------------------------------------------------------------------


async def test_levels_are_a_stores_rows_with_the_revision_each_last_changed_at(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    await given_levels(
        admin,
        {"storeId": "S001", "sku": "B", "onHand": 5, "reserved": 1},
        {"storeId": "S001", "sku": "A", "onHand": 7},
        {"storeId": "S002", "sku": "A", "onHand": 9},
    )
    await client.send([movement(MovementKind.LOCK, 2, 1, sku="B")])

    assert await client.levels("S001") == [
        WmsLevel("S001", "A", 7, 0, 2),
        WmsLevel("S001", "B", 5, 3, 4),
    ]
    assert await client.levels("S002") == [WmsLevel("S002", "A", 9, 0, 3)]
    assert await client.levels("S404") == []


async def test_the_admin_view_shows_every_row_and_the_last_movement_sequence(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    await given_levels(admin, {"storeId": "S002", "sku": "A", "onHand": 9})
    await client.send([movement(MovementKind.LOCK, 2, 7, store="S001", sku="B")])

    assert await admin_levels(admin) == {
        "revision": 2,
        "levels": [
            {
                "storeId": "S001",
                "sku": "B",
                "onHand": 0,
                "reserved": 2,
                "sequence": 2,
                "movementSequence": 7,
            },
            {
                "storeId": "S002",
                "sku": "A",
                "onHand": 9,
                "reserved": 0,
                "sequence": 1,
                "movementSequence": 0,
            },
        ],
    }


async def test_setting_levels_checks_every_row_before_changing_any(
    admin: httpx.AsyncClient,
) -> None:
    response = await admin.put(
        "/admin/levels",
        json={
            "levels": [
                {"storeId": "S001", "sku": "A", "onHand": 5},
                {"storeId": "S001", "sku": "B", "onHand": -1},
            ]
        },
    )

    assert response.status_code == 400
    assert "levels[1].onHand" in response.json()["error"]
    assert (await admin_levels(admin))["levels"] == []


async def test_stock_levels_need_a_store(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/stock-levels")

    assert response.status_code == 400


# --- the token ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_with_a_token_configured_calls_without_it_are_refused_and_change_nothing(
    token: str | None,
) -> None:
    app = create_emulator(token=TOKEN)
    async with serving(app) as url:
        wrong = HttpWms(url, token=token)
        right = HttpWms(url, token=TOKEN)
        try:
            with pytest.raises(WmsUnavailable) as refused:
                await wrong.send([movement(MovementKind.LOCK, 1, 1)])
            with pytest.raises(WmsUnavailable):
                await wrong.levels("S001")
            wms: EmulatedWms = app.state.wms
            assert wms.log == []
            assert wms.rows == {}

            assert await right.send([movement(MovementKind.LOCK, 1, 1)]) == [
                MovementResult("S001-SKU1-1", Outcome.APPLIED)
            ]
        finally:
            await wrong.close()
            await right.close()
    assert "401" in str(refused.value)
    assert TOKEN not in str(refused.value)
    assert "wrong-token" not in str(refused.value)


# --- outages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 500, 429, 400])
async def test_during_an_outage_calls_fail_with_the_status_and_nothing_applies(
    client: HttpWms, admin: httpx.AsyncClient, status: int
) -> None:
    await given_levels(admin, {"storeId": "S001", "sku": "SKU1", "onHand": 10})
    before = await admin_levels(admin)
    await given_outage(admin, status)

    with pytest.raises(WmsUnavailable) as failed:
        await client.send([movement(MovementKind.LOCK, 1, 1)])
    with pytest.raises(WmsUnavailable):
        await client.levels("S001")

    assert str(status) in str(failed.value)
    assert await received(admin) == []
    assert await admin_levels(admin) == before


async def test_after_an_outage_the_same_movements_apply(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    lock = movement(MovementKind.LOCK, 2, 1)
    await given_outage(admin, 503)
    with pytest.raises(WmsUnavailable):
        await client.send([lock])

    await given_outage(admin, None)

    assert await client.send([lock]) == [MovementResult(lock.id, Outcome.APPLIED)]


async def test_a_wms_slower_than_the_timeout_is_unavailable_and_a_resend_is_a_duplicate(
    emulator: Emulator, admin: httpx.AsyncClient
) -> None:
    impatient = HttpWms(emulator.url, timeout_seconds=0.2)
    lock = movement(MovementKind.LOCK, 2, 1)
    await given_outage(admin, None, delay_seconds=1.0)
    try:
        with pytest.raises(WmsUnavailable) as slow:
            await impatient.send([lock])
        assert "in time" in str(slow.value)

        # The WMS got it all the same, and applies it late: the resend must not count twice.
        async def applied() -> bool:
            return await received(admin) == [(lock.id, "APPLIED", None)]

        await eventually(applied)
        await given_outage(admin, None)
        assert await impatient.send([lock]) == [MovementResult(lock.id, Outcome.DUPLICATE)]
    finally:
        await impatient.close()


async def test_a_wms_that_is_not_listening_is_unavailable() -> None:
    client = HttpWms(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(WmsUnavailable, match="could not be reached"):
            await client.send([movement(MovementKind.LOCK, 1, 1)])
        with pytest.raises(WmsUnavailable, match="could not be reached"):
            await client.levels("S001")
    finally:
        await client.close()


# --- pushing levels to ROPOS ----------------------------------------------------------------------


async def test_a_push_sends_its_levels_as_one_signed_absolute_snapshot(
    client: HttpWms, admin: httpx.AsyncClient
) -> None:
    got: list[tuple[dict[str, str], bytes]] = []

    async def stock_levels(request: Request) -> Response:
        got.append((dict(request.headers), await request.body()))
        return JSONResponse({"accepted": True}, status_code=202)

    ropos = Starlette(routes=[Route("/wms/stock-levels", stock_levels, methods=["POST"])])
    await given_levels(
        admin,
        {"storeId": "S001", "sku": "A", "onHand": 7},
        {"storeId": "S002", "sku": "A", "onHand": 9},
    )
    await client.send([movement(MovementKind.LOCK, 2, 1, sku="A")])

    async with serving(ropos) as ropos_url:
        response = await admin.post(
            "/admin/push",
            json={
                "url": f"{ropos_url}/wms/stock-levels",
                "secret": PUSH_SECRET,
                "storeId": "S001",
                "batchId": "b-1",
            },
        )

    assert response.json() == {"batchId": "b-1", "status": 202, "body": {"accepted": True}}
    [(headers, body)] = got
    timestamp = int(headers[TIMESTAMP_HEADER.lower()])
    assert headers[SIGNATURE_HEADER.lower()] == signature(PUSH_SECRET, timestamp, body)
    batch = parse_batch(json.loads(body))
    assert batch.batch_id == "b-1"
    assert batch.levels == (LevelUpdate("S001", "A", on_hand=7, sequence=3),)


async def test_a_push_to_nowhere_says_ropos_could_not_be_reached(
    admin: httpx.AsyncClient,
) -> None:
    await given_levels(admin, {"storeId": "S001", "sku": "A", "onHand": 7})

    response = await admin.post(
        "/admin/push",
        json={"url": f"http://127.0.0.1:{free_port()}/wms/stock-levels", "secret": PUSH_SECRET},
    )

    assert response.status_code == 502


async def test_the_emulator_says_it_is_healthy(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/healthz")

    assert (response.status_code, response.text) == (200, "ok")


# --- the client against replies that break the protocol -------------------------------------------


def replying(
    status: int, body: Any = None, *, content: bytes | None = None
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handle), requests


async def test_the_client_posts_the_movements_with_token_and_idempotency_key() -> None:
    sent = [
        movement(MovementKind.LOCK, 1, 1, id="m1"),
        movement(MovementKind.RELEASE, 1, 2, id="m2"),
    ]
    transport, requests = replying(
        200, {"results": [{"id": "m2", "outcome": "DUPLICATE"}, {"id": "m1", "outcome": "APPLIED"}]}
    )
    client = HttpWms("https://wms.example.com/api/", token=TOKEN, transport=transport)

    results = await client.send(sent)
    await client.send(sent)
    await client.close()

    assert results == [
        MovementResult("m2", Outcome.DUPLICATE),
        MovementResult("m1", Outcome.APPLIED),
    ]
    first, again = requests
    assert (first.method, str(first.url)) == ("POST", "https://wms.example.com/api/movements")
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["idempotency-key"] == hashlib.sha256(b"m1\nm2").hexdigest()
    assert again.headers["idempotency-key"] == first.headers["idempotency-key"]
    assert json.loads(first.content) == {"movements": [movement_to_json(m) for m in sent]}


async def test_the_client_without_a_token_sends_no_authorization() -> None:
    transport, requests = replying(200, {"levels": []})
    client = HttpWms("https://wms.example.com", transport=transport)

    assert await client.levels("S 1") == []
    await client.close()

    [request] = requests
    assert "authorization" not in request.headers
    assert str(request.url) == "https://wms.example.com/stock-levels?storeId=S+1"


@pytest.mark.parametrize(
    ("status", "body", "content"),
    [
        (200, None, b"<html>not json</html>"),
        (200, ["a", "list"], None),
        (200, {"outcomes": []}, None),
        (200, {"results": [{"id": "m1", "outcome": "APPLIED"}]}, None),  # m2 has no result
        (
            200,
            {"results": [{"id": "m1", "outcome": "OK"}, {"id": "m2", "outcome": "APPLIED"}]},
            None,
        ),
        (200, {"results": [{"outcome": "APPLIED"}]}, None),
        (200, {"results": [{"id": "m1", "outcome": "APPLIED", "error": 7}]}, None),
        (202, {"results": []}, None),
        (301, None, b""),
        (401, {"error": "bad token"}, None),
        (429, None, b""),
        (502, None, b""),
    ],
)
async def test_a_reply_that_is_not_the_protocol_is_unavailable(
    status: int, body: Any, content: bytes | None
) -> None:
    transport, _ = replying(status, body, content=content)
    client = HttpWms("https://wms.example.com", token=TOKEN, transport=transport)

    with pytest.raises(WmsUnavailable) as failed:
        await client.send(
            [movement(MovementKind.LOCK, 1, 1, id="m1"), movement(MovementKind.LOCK, 1, 2, id="m2")]
        )
    await client.close()

    assert TOKEN not in str(failed.value)
    if status != 200:
        assert str(status) in str(failed.value)


@pytest.mark.parametrize(
    "level",
    [
        {"storeId": "S002", "sku": "A", "onHand": 1, "reserved": 0},
        {"storeId": "S001", "sku": "A", "onHand": "1", "reserved": 0},
        {"storeId": "S001", "sku": "A", "onHand": 1},
        {"storeId": "S001", "sku": "A", "onHand": 1, "reserved": 0, "sequence": True},
        {"storeId": "S001", "onHand": 1, "reserved": 0},
    ],
)
async def test_levels_that_are_not_the_protocol_are_unavailable(level: dict[str, Any]) -> None:
    transport, _ = replying(200, {"levels": [level]})
    client = HttpWms("https://wms.example.com", transport=transport)

    with pytest.raises(WmsUnavailable):
        await client.levels("S001")
    await client.close()


async def test_results_for_movements_not_sent_are_left_out() -> None:
    transport, _ = replying(
        200,
        {
            "results": [
                {"id": "m1", "outcome": "REJECTED", "error": "stale sequence 1, last applied 4"},
                {"id": "someone-else", "outcome": "APPLIED"},
            ]
        },
    )
    client = HttpWms("https://wms.example.com", transport=transport)

    results = await client.send([movement(MovementKind.LOCK, 1, 1, id="m1")])
    await client.close()

    assert results == [
        MovementResult("m1", Outcome.REJECTED, "stale sequence 1, last applied 4"),
    ]
