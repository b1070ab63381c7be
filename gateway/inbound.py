"""HTTP endpoints for systems that do not speak GraphQL: the WMS pushes its stock levels here."""

from __future__ import annotations

import hmac
import logging
import re
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from domain.access import Role
from domain.errors import BadInput, DomainError
from domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from domain.wms import BatchStatus, parse_batch
from gateway.auth import actor_from_header
from gateway.rate_limits import limits_of
from gateway.runtime import runtime_of
from gateway.settings import Settings
from services.wms import inbox
from services.wms.inbox import BatchOutcome

log = logging.getLogger(__name__)

# A signed request older (or newer) than this is refused: a captured one cannot be replayed.
SIGNATURE_TOLERANCE_SECONDS = 300
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")


def _error(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **details}}, status)


def _authenticate(settings: Settings, request: Request, body: bytes, now: float) -> Response | None:
    """None when the caller may push stock levels; else the response that refuses it."""
    signed = request.headers.get(SIGNATURE_HEADER)
    if signed is not None:
        secret = settings.wms_inbound_secret
        if secret is None:
            return _error(401, "UNAUTHENTICATED", "Signed requests are not enabled here.")
        try:
            timestamp = int(request.headers.get(TIMESTAMP_HEADER, ""))
        except ValueError:
            return _error(401, "UNAUTHENTICATED", f"Send {TIMESTAMP_HEADER} in Unix seconds.")
        if abs(now - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
            return _error(401, "UNAUTHENTICATED", "The signature's timestamp is too old or new.")
        expected = signature(secret.get_secret_value(), timestamp, body)
        if not _SIGNATURE.fullmatch(signed) or not hmac.compare_digest(
            expected.encode(), signed.encode()
        ):
            return _error(401, "UNAUTHENTICATED", "The signature does not match the body.")
        return None
    deps = runtime_of(request).deps
    actor, problem = actor_from_header(
        settings, request.headers.get("authorization"), deps.clock.now()
    )
    if actor is None:
        return _error(
            401,
            "UNAUTHENTICATED",
            problem or "Send a wms token ('Authorization: Bearer <token>') or sign the body.",
        )
    if actor.role not in (Role.WMS, Role.OPS):
        return _error(403, "FORBIDDEN", "Only the WMS (or ops) may push stock levels.")
    return None


def stock_levels_endpoint(settings: Settings) -> Any:
    async def post_stock_levels(request: Request) -> Response:
        """POST /wms/stock-levels: a batch of absolute counts or deltas, stored before it is
        acknowledged. 200 applied (or a replay of a batch already applied), 202 stored and to
        be applied shortly, 4xx refused with a code and nothing applied."""
        # The address's rate limit first: over it, neither the token nor the body is looked at.
        limited = await limits_of(request).wms(request)
        if limited is not None:
            return limited
        deps = runtime_of(request).deps
        signed = SIGNATURE_HEADER in request.headers
        if not signed:
            # A token is checked before the body is read: nobody unknown gets to send megabytes.
            refused = _authenticate(settings, request, b"", time.time())
            if refused is not None:
                return refused
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.wms_inbound_max_bytes:
            return _error(413, "BAD_USER_INPUT", "The body is too large.")
        body = await _read_at_most(request, settings.wms_inbound_max_bytes)
        if body is None:
            return _error(413, "BAD_USER_INPUT", "The body is too large.")
        if signed:
            refused = _authenticate(settings, request, body, time.time())
            if refused is not None:
                return refused
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            return _error(400, "BAD_USER_INPUT", f"The body is not JSON: {error}.")
        try:
            batch = parse_batch(payload)
            unordered = [i for i, lv in enumerate(batch.levels) if lv.sequence is None]
            if unordered:
                raise BadInput(
                    f"levels[{unordered[0]}] needs its sequence (or countedAt): without one a "
                    "late or repeated count could overwrite a newer one.",
                    field=f"levels[{unordered[0]}].sequence",
                )
            outcome = await inbox.receive_batch(
                batch,
                payload,
                uow=deps.uow,
                clock=deps.clock,
                radius_km=deps.resource_radius_km,
            )
        except DomainError as error:
            return _error(400, error.code, error.message, **error.details)
        return JSONResponse(_answer(outcome), _STATUS_OF.get(outcome.status, 422))

    return post_stock_levels


# Applied (or a replay of a batch applied before): 200; stored, to be applied shortly: 202;
# refused whole (REJECTED): 422.
_STATUS_OF = {BatchStatus.APPLIED: 200, BatchStatus.RECEIVED: 202}


def _answer(outcome: BatchOutcome) -> dict[str, Any]:
    body: dict[str, Any] = {
        "batchId": outcome.batch_id,
        "status": outcome.status.value,
        "levels": outcome.levels,
        "applied": outcome.applied,
        "stale": outcome.stale,
        "duplicate": outcome.duplicate,
    }
    if outcome.error_code:
        body["error"] = {"code": outcome.error_code, "message": outcome.error}
    return body


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes (whatever Content-Length said)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
