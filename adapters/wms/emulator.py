"""A reference WMS for the demo and the tests: the protocol ROPOS speaks (movements in, levels out)
over a Starlette app with in-memory figures, plus admin endpoints that set its stock, make it fail
or slow, show what it received, and push its levels to ROPOS.

    POST /movements              ROPOS's movements, applied in order (Bearer token when set)
    GET  /stock-levels?storeId=  one store's figures (Bearer token when set)
    PUT  /admin/levels           set figures            } for tests and the demo only:
    POST /admin/outage           fail or slow ROPOS     } no authentication, never expose
    GET  /admin/movements        what was received      } them beyond a test or demo host
    GET  /admin/levels           every row              }
    GET  /admin/reservations     what each one holds    }
    POST /admin/push             send levels to ROPOS   }
    GET  /healthz
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.wms.protocol import movement_from_json, movement_to_json
from domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from domain.wms import MovementKind, MovementResult, Outcome, WmsMovement

MAX_MOVEMENTS_PER_CALL = 10_000
MAX_DELAY_SECONDS = 60.0


class BadRequest(Exception):
    """A body the emulator cannot read: answered 400 with this message."""


@dataclass
class StockRow:
    """The WMS's figures for one (store, SKU)."""

    on_hand: int = 0
    reserved: int = 0
    movement_sequence: int = 0  # the sequence of the last movement applied to this row
    revision: int = 0  # the WMS's revision counter when this row last changed


@dataclass(frozen=True)
class Received:
    """One movement as it arrived, and what the WMS made of it."""

    movement: dict[str, Any]
    outcome: Outcome
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"movement": self.movement, "outcome": self.outcome.value, "error": self.error}


class EmulatedWms:
    """The emulator's state and rules. Every method runs without awaiting, so one request's
    changes never interleave with another's."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.rows: dict[tuple[str, str], StockRow] = {}
        self.revision = 0  # bumped on every change of any row
        self.applied_ids: set[str] = set()
        # What each reservation holds here, per (store, SKU), as its movements said.
        self.reservations: dict[str, dict[tuple[str, str], int]] = {}
        self.log: list[Received] = []
        self.outage_status: int | None = None  # answered to every ROPOS call while set
        self.delay_seconds = 0.0  # how long every ROPOS call waits before it is handled

    def authorized(self, header: str | None) -> bool:
        if self.token is None:
            return True
        expected = f"Bearer {self.token}".encode()
        return hmac.compare_digest((header or "").encode(), expected)

    def row(self, store_id: str, sku: str) -> StockRow:
        return self.rows.setdefault((store_id, sku), StockRow())

    def _changed(self, row: StockRow) -> None:
        self.revision += 1
        row.revision = self.revision

    def apply(self, movement: WmsMovement) -> MovementResult:
        """Apply one movement: once per id, in sequence order per (store, SKU), figures never
        below zero (clamped, still APPLIED: the WMS keeps counting, ROPOS reconciles)."""
        result = self._judge(movement)
        self.log.append(Received(movement_to_json(movement), result.outcome, result.error))
        return result

    def _judge(self, movement: WmsMovement) -> MovementResult:
        if movement.id in self.applied_ids:
            return MovementResult(movement.id, Outcome.DUPLICATE)
        known = self.rows.get((movement.store_id, movement.sku))
        last = known.movement_sequence if known else 0
        if movement.sequence <= last:
            return MovementResult(
                movement.id,
                Outcome.REJECTED,
                f"stale sequence {movement.sequence}, last applied {last}",
            )
        if movement.quantity < 0:
            return MovementResult(
                movement.id, Outcome.REJECTED, f"negative quantity {movement.quantity}"
            )
        row = self.row(movement.store_id, movement.sku)
        q = movement.quantity
        match movement.kind:
            case MovementKind.LOCK:
                row.reserved += q
            case MovementKind.RELEASE:
                row.reserved = max(0, row.reserved - q)
            case MovementKind.CONSUME | MovementKind.SHORT_PICK:
                row.on_hand = max(0, row.on_hand - q)
                row.reserved = max(0, row.reserved - q)
            case MovementKind.SET_RESERVED:
                row.reserved = q
        if movement.reservation_id is not None and movement.kind is not MovementKind.SET_RESERVED:
            held = self.reservations.setdefault(movement.reservation_id, {})
            key = (movement.store_id, movement.sku)
            change = q if movement.kind is MovementKind.LOCK else -q
            held[key] = max(0, held.get(key, 0) + change)
            if not held[key]:
                del held[key]
            if not held:
                del self.reservations[movement.reservation_id]
        row.movement_sequence = movement.sequence
        self.applied_ids.add(movement.id)
        self._changed(row)
        return MovementResult(movement.id, Outcome.APPLIED)

    def set_level(self, store_id: str, sku: str, on_hand: int, reserved: int | None = None) -> None:
        row = self.row(store_id, sku)
        row.on_hand = on_hand
        if reserved is not None:
            row.reserved = reserved
        self._changed(row)

    def levels(self, store_id: str | None = None) -> list[tuple[str, str, StockRow]]:
        """Rows of one store (or of all), in (store, SKU) order."""
        return [
            (store, sku, row)
            for (store, sku), row in sorted(self.rows.items())
            if store_id is None or store == store_id
        ]


def _level_json(store_id: str, sku: str, row: StockRow) -> dict[str, Any]:
    return {
        "storeId": store_id,
        "sku": sku,
        "onHand": row.on_hand,
        "reserved": row.reserved,
        "sequence": row.revision,
    }


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("The body must be JSON.") from None
    if not isinstance(body, Mapping):
        raise BadRequest("The body must be a JSON object.")
    return body


def _whole(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"{field} must be a whole number, 0 or more.")
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{field} must be a non-empty string.")
    return value


def _movements(body: Mapping[str, Any]) -> list[WmsMovement]:
    raw = body.get("movements")
    if not isinstance(raw, list) or len(raw) > MAX_MOVEMENTS_PER_CALL:
        raise BadRequest(f"movements must be a list of at most {MAX_MOVEMENTS_PER_CALL}.")
    movements = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise BadRequest(f"movements[{i}] must be an object.")
        try:
            movements.append(movement_from_json(item))
        except (KeyError, TypeError, ValueError) as error:
            raise BadRequest(f"movements[{i}] is not a movement: {error!r}.") from None
    return movements


async def _ropos_call(request: Request) -> tuple[EmulatedWms, Response | None]:
    """The checks in front of every call ROPOS makes: the delay, the token, the outage. The body
    is read first: a slow WMS has the whole request, and may act on it after ROPOS gave up."""
    wms: EmulatedWms = request.app.state.wms
    await request.body()  # kept by the request for the handler
    if wms.delay_seconds:
        await asyncio.sleep(wms.delay_seconds)
    if not wms.authorized(request.headers.get("authorization")):
        return wms, JSONResponse(
            {"error": "Send 'Authorization: Bearer <token>'."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if wms.outage_status is not None:
        return wms, _error("The WMS is unavailable (emulated outage).", wms.outage_status)
    return wms, None


async def post_movements(request: Request) -> Response:
    wms, refusal = await _ropos_call(request)
    if refusal is not None:
        return refusal
    try:
        movements = _movements(await _json_object(request))
    except BadRequest as error:
        return _error(str(error), 400)
    results = [wms.apply(m) for m in movements]
    return JSONResponse(
        {"results": [{"id": r.id, "outcome": r.outcome.value, "error": r.error} for r in results]}
    )


async def get_stock_levels(request: Request) -> Response:
    wms, refusal = await _ropos_call(request)
    if refusal is not None:
        return refusal
    store_id = request.query_params.get("storeId")
    if not store_id:
        return _error("Name the store: ?storeId=...", 400)
    return JSONResponse({"levels": [_level_json(*level) for level in wms.levels(store_id)]})


# --- admin: for tests and the demo ----------------------------------------------------------------


async def put_admin_levels(request: Request) -> Response:
    """Set on hand (and reserved, when given) of rows, all or none."""
    wms: EmulatedWms = request.app.state.wms
    try:
        raw = (await _json_object(request)).get("levels")
        if not isinstance(raw, list):
            raise BadRequest("levels must be a list.")
        updates = []
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise BadRequest(f"levels[{i}] must be an object.")
            updates.append(
                (
                    _text(item.get("storeId"), f"levels[{i}].storeId"),
                    _text(item.get("sku"), f"levels[{i}].sku"),
                    _whole(item.get("onHand"), f"levels[{i}].onHand"),
                    None
                    if item.get("reserved") is None
                    else _whole(item["reserved"], f"levels[{i}].reserved"),
                )
            )
    except BadRequest as error:
        return _error(str(error), 400)
    for store_id, sku, on_hand, reserved in updates:
        wms.set_level(store_id, sku, on_hand, reserved)
    return _admin_levels(wms)


async def get_admin_levels(request: Request) -> Response:
    return _admin_levels(request.app.state.wms)


def _admin_levels(wms: EmulatedWms) -> Response:
    return JSONResponse(
        {
            "revision": wms.revision,
            "levels": [
                {**_level_json(store, sku, row), "movementSequence": row.movement_sequence}
                for store, sku, row in wms.levels()
            ],
        }
    )


async def post_admin_outage(request: Request) -> Response:
    """The body is the whole state of the trouble: `status` (a 4xx/5xx, or null for none) and
    `delaySeconds` (default 0). `{"status": null}` ends both."""
    wms: EmulatedWms = request.app.state.wms
    try:
        body = await _json_object(request)
        status = body.get("status")
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
        ):
            raise BadRequest("status must be an HTTP error status (400 to 599) or null.")
        delay = body.get("delaySeconds", 0)
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not 0 <= delay <= MAX_DELAY_SECONDS
        ):
            raise BadRequest(f"delaySeconds must be a number from 0 to {MAX_DELAY_SECONDS:g}.")
    except BadRequest as error:
        return _error(str(error), 400)
    wms.outage_status = status
    wms.delay_seconds = float(delay)
    return JSONResponse({"status": wms.outage_status, "delaySeconds": wms.delay_seconds})


async def get_admin_reservations(request: Request) -> Response:
    """What each reservation holds at the WMS: `{"<id>": [{"storeId", "sku", "quantity"}]}`."""
    wms: EmulatedWms = request.app.state.wms
    return JSONResponse(
        {
            rid: [{"storeId": s, "sku": k, "quantity": q} for (s, k), q in sorted(held.items())]
            for rid, held in sorted(wms.reservations.items())
        }
    )


async def get_admin_movements(request: Request) -> Response:
    wms: EmulatedWms = request.app.state.wms
    return JSONResponse([received.to_json() for received in wms.log])


async def post_admin_push(request: Request) -> Response:
    """Send the levels (of one store, or all) to ROPOS's `POST /wms/stock-levels` as one absolute
    snapshot, signed as ROPOS expects. Answers `{"batchId", "status", "body"}`: what ROPOS said."""
    wms: EmulatedWms = request.app.state.wms
    try:
        body = await _json_object(request)
        url = _text(body.get("url"), "url")
        if not url.startswith(("http://", "https://")):
            raise BadRequest("url must be an http(s) URL.")
        secret = _text(body.get("secret"), "secret")
        store_id = body.get("storeId")
        if store_id is not None:
            store_id = _text(store_id, "storeId")
        batch_id = body.get("batchId") or f"wms-{uuid.uuid4().hex}"
        batch_id = _text(batch_id, "batchId")
    except BadRequest as error:
        return _error(str(error), 400)
    levels = [
        {"storeId": store, "sku": sku, "onHand": row.on_hand, "sequence": row.revision}
        for store, sku, row in wms.levels(store_id)
    ]
    if not levels:
        return _error("The WMS has no levels to push.", 409)
    payload = json.dumps({"batchId": batch_id, "levels": levels}, separators=(",", ":")).encode()
    timestamp = int(time.time())
    client: httpx.AsyncClient = request.app.state.http
    try:
        response = await client.post(
            url,
            content=payload,
            headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: signature(secret, timestamp, payload),
            },
        )
    except httpx.HTTPError as error:
        return _error(f"ROPOS could not be reached ({type(error).__name__}).", 502)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    return JSONResponse({"batchId": batch_id, "status": response.status_code, "body": answer})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_emulator(token: str | None = None) -> Starlette:
    """The emulator app; its state is `app.state.wms` (an `EmulatedWms`), which a test may read,
    change or replace with a fresh one between tests."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False) as http:
            app.state.http = http
            yield

    app = Starlette(
        routes=[
            Route("/movements", post_movements, methods=["POST"]),
            Route("/stock-levels", get_stock_levels, methods=["GET"]),
            Route("/admin/levels", put_admin_levels, methods=["PUT"]),
            Route("/admin/levels", get_admin_levels, methods=["GET"]),
            Route("/admin/outage", post_admin_outage, methods=["POST"]),
            Route("/admin/movements", get_admin_movements, methods=["GET"]),
            Route("/admin/reservations", get_admin_reservations, methods=["GET"]),
            Route("/admin/push", post_admin_push, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.wms = EmulatedWms(token)
    return app
