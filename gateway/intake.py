"""POST /intake/{channel}/{account}: the one entry for every sales channel's orders.

The answers: 202 `{"messageId", "status": "RECEIVED"}` once the body is stored; 200 with the
first message's id and `"status": "DUPLICATE"` for a delivery seen before; 400 for a body that
is not JSON (stored as REJECTED, MALFORMED); 401 for a bad or missing signature (counted, body
not kept); 404 for an unknown channel or account (or a disabled one); 413 for a body over
ROPOS_INTAKE_MAX_BYTES; 503 when the database cannot store it. Nothing is acknowledged that is
not stored."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.channels.value import value_hint
from domain.access import Role
from domain.intake import ChannelAccount, IntakeCount
from domain.intake_auth import AuthFailure, Verified
from gateway.auth import actor_from_header
from gateway.rate_limits import limits_of
from gateway.runtime import Runtime, runtime_of
from gateway.settings import Settings
from services.intake import edge
from services.intake.edge import Answer

log = logging.getLogger(__name__)


def _error(http_status: int, code: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **details}}, http_status)


def _unavailable(error: Exception) -> JSONResponse:
    log.error("intake edge could not reach the database", extra={"error": repr(error)[:300]})
    return _error(503, "UNAVAILABLE", "The intake cannot store deliveries right now; send again.")


def _backlog_full(account: ChannelAccount, retry_after: int) -> JSONResponse:
    """The account's backlog is full: nothing stored, the channel sends again later. Only this
    account is refused; the others' deliveries go on. (Logged in sums, by EdgeCounts.)"""
    response = _error(
        429,
        "RATE_LIMITED",
        f"The account's backlog is full ({account.max_backlog:,} messages wait); send again in "
        f"{retry_after} s.",
        retryAfterSeconds=retry_after,
        maxBacklog=account.max_backlog,
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def intake_endpoint(settings: Settings) -> Any:
    async def post_intake(request: Request) -> Response:
        # The account path's rate limit first: over it, nothing is looked up, read or stored.
        limited = await limits_of(request).intake(request)
        if limited is not None:
            return limited
        runtime = runtime_of(request)
        deps = runtime.deps
        channel_name = request.path_params["channel"]
        account_code = request.path_params["account"]
        try:
            account = await edge.load_account(
                channel_name, account_code, uow=deps.uow, cache=deps.intake_accounts
            )
        except Exception as error:
            return _unavailable(error)
        if account is None:
            return _error(
                404, "NOT_FOUND", f"No enabled channel account {channel_name}/{account_code}."
            )
        checked = await _authenticated(settings, request, account, runtime)
        if isinstance(checked, Response):
            return checked
        body, verified = checked
        try:
            wait = await deps.intake_backlog.retry_after(
                account, uow=deps.single or deps.uow, clock=deps.clock
            )
        except Exception as error:
            return _unavailable(error)
        if wait is not None:
            return _count(runtime, account, IntakeCount.BACKLOG_FULL, _backlog_full(account, wait))
        try:
            receipt = await edge.receive(
                account,
                request.headers,
                body,
                verified,
                uow=deps.single or deps.uow,
                clock=deps.clock,
                value_hint=value_hint,
            )
        except Exception as error:
            return _unavailable(error)
        if receipt.answer is Answer.DUPLICATE:
            deps.intake_counts.add(account, IntakeCount.DUPLICATE, deps.clock.now())
            return JSONResponse({"messageId": receipt.message_id, "status": "DUPLICATE"}, 200)
        if receipt.answer is Answer.MALFORMED:
            return _error(
                400,
                "BAD_USER_INPUT",
                receipt.reason or "The body is not JSON.",
                messageId=receipt.message_id,
                status="REJECTED",
            )
        deps.intake_backlog.stored(account)
        deps.wake_intake(account)
        return JSONResponse({"messageId": receipt.message_id, "status": "RECEIVED"}, 202)

    return post_intake


async def _authenticated(
    settings: Settings, request: Request, account: ChannelAccount, runtime: Runtime
) -> tuple[bytes, Verified | None] | Response:
    """The body and what verified it, or the refusal: a channel token is checked before the body
    is read, a signature right after (before anything parses it)."""
    by_token = request.headers.get("authorization") is not None
    if by_token:
        refused = _token_refusal(settings, request, account, runtime)
        if refused is not None:
            return _count(runtime, account, IntakeCount.SIGNATURE_FAILURE, refused)
    body = await _read_body(request, settings.intake_max_bytes)
    if body is None:
        too_large = _error(
            413, "BAD_USER_INPUT", f"The body is over {settings.intake_max_bytes} bytes."
        )
        return _count(runtime, account, IntakeCount.OVERSIZED, too_large)
    if by_token:
        return body, None
    try:
        return body, edge.authenticate(account, request.headers, body, runtime.deps.clock)
    except AuthFailure as failure:
        log.warning(
            "intake delivery refused",
            extra={
                "channel": account.channel.value,
                "account": account.account,
                "reason": failure.reason,
            },
        )
        refused = _error(401, "UNAUTHENTICATED", str(failure), reason=failure.reason)
        return _count(runtime, account, IntakeCount.SIGNATURE_FAILURE, refused)


def _token_refusal(
    settings: Settings, request: Request, account: ChannelAccount, runtime: Runtime
) -> Response | None:
    """A connector's `channel` token of this channel (or of this very account) may send in
    place of a signature; checked before the body is read."""
    actor, problem = actor_from_header(
        settings, request.headers.get("authorization"), runtime.deps.clock.now()
    )
    if actor is None:
        return _error(401, "UNAUTHENTICATED", problem or "Send a channel token.")
    wanted = {account.channel.value, f"{account.channel.value}:{account.account}"}
    if actor.role is not Role.CHANNEL or actor.channel not in wanted:
        return _error(
            401,
            "UNAUTHENTICATED",
            f"Only a channel token of {account.channel.value} may send here.",
        )
    return None


def _count(
    runtime: Runtime, account: ChannelAccount, what: IntakeCount, response: Response
) -> Response:
    """Count a refused delivery in the account's health (in memory, written within a second:
    a flood of refusals costs no database work per delivery)."""
    runtime.deps.intake_counts.add(account, what, runtime.deps.clock.now())
    return response


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes (whatever Content-Length said)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
