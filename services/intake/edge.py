"""The intake's edge: a delivery authenticated, stored (raw body and the headers that matter)
and committed before it is answered, or refused with nothing stored but a count.

Nothing here parses an order: that is the worker's job, after the answer. The body is only
checked to be JSON (a body that is not is stored as REJECTED, MALFORMED, so ops see it)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import orjson

from domain.clock import Clock
from domain.intake import (
    ChannelAccount,
    Decision,
    IntakeCount,
    IntakeMessage,
    IntakeStatus,
    RuleAction,
    SalesChannel,
    backlog_retry_after,
    lane_of,
)
from domain.intake_auth import AuthFailure, Verified, verify
from services.tallies import Tally
from services.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# Headers kept with the message: what the worker and ops need to know of the delivery. Never a
# signature or a token.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "x-shopify-topic",
    "x-shopify-event-id",
    "x-shopify-webhook-id",
    "x-shopify-api-version",
    "x-shopify-shop-domain",
    "x-shopify-triggered-at",
    "x-wc-webhook-topic",
    "x-wc-webhook-resource",
    "x-wc-webhook-event",
    "x-wc-webhook-id",
    "x-wc-webhook-delivery-id",
    "x-wc-webhook-source",
    "webhook-id",
    "webhook-timestamp",
    "x-adobe-event-code",
    "x-adobe-event-id",
    "x-ropos-topic",
)


class Answer(StrEnum):
    RECEIVED = "RECEIVED"
    DUPLICATE = "DUPLICATE"
    MALFORMED = "MALFORMED"


@dataclass(frozen=True, slots=True)
class Receipt:
    answer: Answer
    message_id: str | None = None
    reason: str | None = None


class AccountCache:
    """Channel accounts as last read, for the edge (every delivery needs its account's secrets):
    kept `ttl_seconds`. A change made through this process is seen at once (`upsert_account`
    clears it); one made through another replica within `ttl_seconds`."""

    def __init__(self, ttl_seconds: float = 1.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._found: dict[tuple[SalesChannel, str], tuple[float, ChannelAccount | None]] = {}

    def get(self, key: tuple[SalesChannel, str]) -> tuple[bool, ChannelAccount | None]:
        """(known, account); known is False when it must be read."""
        found = self._found.get(key)
        if found is None or time.monotonic() - found[0] >= self.ttl_seconds:
            return False, None
        return True, found[1]

    def put(self, key: tuple[SalesChannel, str], account: ChannelAccount | None) -> None:
        if len(self._found) >= 10_000:
            self._found.clear()  # unknown account names must not grow it without end
        self._found[key] = (time.monotonic(), account)

    def clear(self) -> None:
        self._found.clear()

    async def read_through(
        self,
        key: tuple[SalesChannel, str],
        read: Callable[[], Awaitable[ChannelAccount | None]],
    ) -> ChannelAccount | None:
        """The account as last read, else `read()` (and kept)."""
        known, found = self.get(key)
        if not known:
            found = await read()
            self.put(key, found)
        return found


@dataclass(slots=True)
class _Backlog:
    waiting: int
    drained_per_second: float
    read_at: float  # time.monotonic()
    stored_since: int = 0


class BacklogGauge:
    """Each account's backlog as the edge last counted it (its waiting messages, and how fast
    it drained over the last RATE_WINDOW_SECONDS), counted again at most every
    `refresh_seconds`, by one delivery at a time: while it counts, the account's other
    deliveries go on the last count (a flood must not run the same count hundreds of times at
    once). In between, what this process stored is added, so a burst runs past the bound by at
    most what the other replicas stored meanwhile."""

    RATE_WINDOW_SECONDS = 10.0
    # Messages finishing now were received within this long (an index bound, not a rule).
    HORIZON_SECONDS = 3600.0

    def __init__(self, refresh_seconds: float = 1.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._seen: dict[tuple[SalesChannel, str], _Backlog] = {}
        self._counting: dict[tuple[SalesChannel, str], asyncio.Future[_Backlog]] = {}

    async def retry_after(
        self, account: ChannelAccount, *, uow: UnitOfWorkFactory, clock: Clock
    ) -> int | None:
        """None while the account's backlog has room; else the seconds to answer in
        `Retry-After` (domain.intake.backlog_retry_after)."""
        key = (account.channel, account.account)
        seen = self._seen.get(key)
        if seen is None or time.monotonic() - seen.read_at >= self.refresh_seconds:
            counting = self._counting.get(key)
            if counting is None:
                seen = await self._count(key, uow=uow, clock=clock)
            elif seen is None:  # nothing to go on yet: wait for the count under way
                seen = await asyncio.shield(counting)
        return backlog_retry_after(
            seen.waiting + seen.stored_since, account.max_backlog, seen.drained_per_second
        )

    async def _count(
        self, key: tuple[SalesChannel, str], *, uow: UnitOfWorkFactory, clock: Clock
    ) -> _Backlog:
        counting = self._counting[key] = asyncio.get_running_loop().create_future()
        try:
            now = clock.now()
            async with uow() as tx:
                waiting, finished = await tx.intake.backlog(
                    key[0],
                    key[1],
                    since=now - timedelta(seconds=self.RATE_WINDOW_SECONDS),
                    horizon=now - timedelta(seconds=self.HORIZON_SECONDS),
                )
            if len(self._seen) >= 10_000:
                self._seen.clear()
            seen = self._seen[key] = _Backlog(
                waiting, finished / self.RATE_WINDOW_SECONDS, time.monotonic()
            )
            counting.set_result(seen)
            return seen
        except asyncio.CancelledError:
            counting.cancel()
            raise
        except Exception as error:
            counting.set_exception(error)
            counting.exception()  # retrieved: those waiting get it, nobody else must
            raise
        finally:
            del self._counting[key]

    def stored(self, account: ChannelAccount) -> None:
        seen = self._seen.get((account.channel, account.account))
        if seen is not None:
            seen.stored_since += 1

    def clear(self) -> None:
        self._seen.clear()


async def load_account(
    channel_name: str,
    account: str,
    *,
    uow: UnitOfWorkFactory,
    cache: AccountCache | None = None,
) -> ChannelAccount | None:
    """The enabled account the path names, or None (unknown channel or account, or disabled)."""
    try:
        channel = SalesChannel(channel_name)
    except ValueError:
        return None

    async def read() -> ChannelAccount | None:
        async with uow() as tx:
            return await tx.channel_accounts.get(channel, account)

    found = await (cache.read_through((channel, account), read) if cache is not None else read())
    return found if found is not None and found.enabled else None


def authenticate(
    account: ChannelAccount, headers: Mapping[str, str], body: bytes, clock: Clock
) -> Verified:
    """The channel's own signature with the account's secrets (raises AuthFailure)."""
    now = clock.now()
    return verify(
        account.channel,
        headers,
        body,
        account.secrets(now),
        now=now.timestamp(),
        notification_url=account.notification_url,
    )


# What an order is worth, read from its raw payload (adapters.channels.value.value_hint).
ValueHint = Callable[[SalesChannel, object], Decimal | None]


class EdgeCounts(Tally[tuple[SalesChannel, str, IntakeCount, datetime]]):
    """What the edge refused or repeated without keeping a message (signature failures, bodies
    too large, duplicates, 429s), summed per (account, what, minute) in memory and written each
    interval (services.tallies): a flood of 429s or forged deliveries must not queue on one
    row's lock, or hold the pool the worker needs."""

    WHAT = "intake counts"

    def add(self, account: ChannelAccount, what: IntakeCount, at: datetime, n: int = 1) -> None:
        self.add_key(
            (account.channel, account.account, what, at.replace(second=0, microsecond=0)), n
        )

    async def write(
        self,
        tx: UnitOfWork,
        items: list[tuple[tuple[SalesChannel, str, IntakeCount, datetime], int]],
    ) -> None:
        for (channel, account, what, minute), n in items:
            await tx.channel_accounts.count_refusal(channel, account, what, n)
            await tx.intake.count(channel, account, what, minute, n)

    def written(self, taken: Counter[tuple[SalesChannel, str, IntakeCount, datetime]]) -> None:
        refused = Counter[str]()
        for (channel, account, what, _), n in taken.items():
            if what is not IntakeCount.DUPLICATE:
                refused[f"{channel.value}/{account} {what.value}"] += n
        if refused:
            log.warning("intake deliveries refused", extra={"refused": dict(refused)})


async def receive(
    account: ChannelAccount,
    headers: Mapping[str, str],
    body: bytes,
    verified: Verified | None,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    value_hint: ValueHint | None = None,
) -> Receipt:
    """Store an authenticated delivery. `verified` is None when a channel token authenticated it
    (a connector), which carries no event id of its own but may send `webhook-id`. One INSERT
    does it (`uow` may commit each statement on its own): a duplicate inserts nothing, and the
    first delivery it repeats is then read as committed. `value_hint` reads what the order is
    worth from the payload (the worker takes an account's orders highest value first)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    now = clock.now()
    ping = account.channel is SalesChannel.WOOCOMMERCE and _WC_PING.fullmatch(body) is not None
    try:
        payload = orjson.loads(body) if not ping else None
        problem = None
    except orjson.JSONDecodeError as error:
        payload, problem = None, f"The body is not JSON: {error}."
    event_id = _event_id(verified, lowered, payload)
    topic = (verified.topic if verified else None) or lowered.get("x-ropos-topic")
    dedupe_key = f"event:{event_id}" if event_id else f"body:{hashlib.sha256(body).hexdigest()}"
    message = IntakeMessage(
        id=str(uuid.uuid4()),
        channel=account.channel,
        account=account.account,
        status=_status(problem, ping=ping),
        received_at=now,
        attempts=0,
        next_attempt_at=now,
        dedupe_key=dedupe_key[:300],
        topic=topic[:100] if topic else None,
        event_id=event_id[:200] if event_id else None,
        finished_at=now if problem is not None or ping else None,
        error_code="MALFORMED" if problem is not None else ("PING" if ping else None),
        error=problem or ("WooCommerce's webhook ping: nothing to do." if ping else None),
        decisions=()
        if problem is None
        else (Decision("body.json", RuleAction.REJECT, problem, None, "MALFORMED"),),
        headers={k: lowered[k][:500] for k in KEPT_HEADERS if k in lowered},
        lane=lane_of(topic),
        order_value=value_hint(account.channel, payload) if value_hint and payload else None,
    )
    async with uow() as tx:
        stored = await tx.intake.add(message, body)
        if stored is None:
            first = await tx.intake.find_delivery(account.channel, account.account, dedupe_key)
        await tx.commit()
    if stored is None:
        assert first is not None
        return Receipt(Answer.DUPLICATE, first.id)
    log.info(
        "intake message received",
        extra={
            "message_id": message.id,
            "channel": account.channel.value,
            "account": account.account,
            "topic": message.topic,
            "bytes": len(body),
        },
    )
    if problem is not None:
        return Receipt(Answer.MALFORMED, message.id, problem)
    return Receipt(Answer.RECEIVED, message.id)


# WooCommerce pings a new webhook with a form-encoded `webhook_id=<id>`, not JSON.
_WC_PING = re.compile(rb"webhook_id=\d{1,20}")


def _status(problem: str | None, *, ping: bool) -> IntakeStatus:
    if problem is not None:
        return IntakeStatus.REJECTED
    return IntakeStatus.IGNORED if ping else IntakeStatus.RECEIVED


def _event_id(verified: Verified | None, headers: Mapping[str, str], payload: object) -> str | None:
    """The delivery's stable id: the signature's (Shopify's event id, Standard Webhooks' id),
    else Square's `event_id` in the body, else none (WooCommerce: the body's digest decides)."""
    if verified is not None and verified.event_id:
        return verified.event_id
    if headers.get("webhook-id"):
        return headers["webhook-id"]
    if isinstance(payload, dict):
        found = payload.get("event_id")
        if isinstance(found, str) and found.strip():
            return found.strip()
    return None


__all__ = ["Answer", "AuthFailure", "Receipt", "authenticate", "load_account", "receive"]
