"""Gap detection: WooCommerce never retries a webhook it failed to deliver, and every channel
advises a backup for the ones that are lost. For each enabled account with API credentials, the
sweep asks the channel's API for the orders changed since its last sweep and feeds those ROPOS
has not applied into the same flow as a webhook would, as intake messages.

- What a webhook already brought is not fed again: an order ROPOS holds at the listed change
  (or a later one) is skipped, and a change the sweep fed once has a delivery key of its own
  (`sweep:{order id}:{change time}`), so sweeping a window twice feeds nothing twice.
- A window ends `SETTLE` before now (the webhooks of the last minutes are on their way) and
  starts `OVERLAP` before the previous one ended (a change committed late at the channel).
- The first sweep of an account starts at most `FIRST_LOOKBACK` back; a long window is swept in
  parts of `MAX_SLICE`, each marked as swept once fed, so a failure loses nothing done.
- A channel's API that fails stops that account's sweep until the next run (counted as a
  fetch-back error in its health); the other accounts go on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.clock import Clock
from domain.errors import BadInput, NotFound
from domain.intake import (
    ChannelAccount,
    ChannelApi,
    ChannelApiError,
    HeldOrder,
    IntakeCount,
    IntakeMessage,
    IntakeStatus,
    SalesChannel,
    Swept,
    lane_of,
)
from services.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

LEASE = "intake-sweep"
SETTLE = timedelta(minutes=2)
OVERLAP = timedelta(minutes=5)
FIRST_LOOKBACK = timedelta(hours=24)
MAX_SLICE = timedelta(hours=6)
MAX_RANGE = timedelta(days=31)
SWEEP_HEADER = "x-ropos-sweep"


@dataclass(frozen=True, slots=True)
class SweepResult:
    """One account's sweep of one window: orders the channel listed, fed to the intake, held
    already at that change, and fed by an earlier sweep."""

    channel: SalesChannel
    account: str
    since: datetime
    until: datetime
    found: int = 0
    fed: int = 0
    applied: int = 0
    fed_before: int = 0
    error: str | None = None


def _covered(held: HeldOrder | None, item: Swept) -> bool:
    """ROPOS applied this change of the order already (or a later one)."""
    if held is None or held.version_time is None or item.changed_at is None:
        return False
    return held.version_time >= item.changed_at


async def feed(
    account: ChannelAccount,
    since: datetime,
    until: datetime,
    *,
    api: ChannelApi,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> SweepResult:
    """Ask the channel for the orders changed in [since, until] and feed the unseen ones.
    Raises the API's error (nothing fed)."""
    listed = await api.changed(account, since, until)
    fed = applied = again = 0
    async with uow() as tx:
        now = clock.now()
        for item in listed:
            held = await tx.channel_orders.get(account.channel, account.account, item.external_id)
            if _covered(held, item):
                applied += 1
                continue
            changed = item.changed_at.isoformat() if item.changed_at else "unknown"
            message = IntakeMessage(
                id=str(uuid.uuid4()),
                channel=account.channel,
                account=account.account,
                status=IntakeStatus.RECEIVED,
                received_at=now,
                attempts=0,
                next_attempt_at=now,
                dedupe_key=f"sweep:{item.external_id}:{changed}"[:300],
                topic=item.topic,
                external_id=item.external_id,
                headers={SWEEP_HEADER: f"{since.isoformat()}/{until.isoformat()}"},
                lane=lane_of(item.topic),
            )
            if await tx.intake.add(message, item.body) is None:
                again += 1
            else:
                fed += 1
        await tx.commit()
    if fed:
        log.warning(
            "intake sweep fed missed orders",
            extra={"channel": account.channel.value, "account": account.account, "fed": fed},
        )
    return SweepResult(
        account.channel, account.account, since, until, len(listed), fed, applied, again
    )


async def sweep_range(
    channel: SalesChannel,
    account_code: str,
    since: datetime,
    until: datetime | None,
    *,
    apis: Mapping[SalesChannel, ChannelApi],
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> SweepResult:
    """Ops: sweep one account over a range they choose, now (the periodic sweep's mark is left
    as it is). Raises BadInput or NotFound; when the channel's API fails, what was fed before
    stays and the result says why it stopped."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise BadInput(f"{name} needs a time zone (e.g. 2026-11-01T00:00:00Z).", field=name)
    end = until or clock.now()
    if since >= end or end - since > MAX_RANGE:
        raise BadInput("since must be before until, at most 31 days apart.", field="since")
    account, api = await _sweepable(channel, account_code, apis, uow=uow)
    total = SweepResult(channel, account_code, since, end)
    start = since
    while start < end:
        stop = min(end, start + MAX_SLICE)
        try:
            part = await feed(account, start, stop, api=api, uow=uow, clock=clock)
        except ChannelApiError as error:
            await _count_failure(account, error, uow=uow, clock=clock)
            return replace(total, error=error.message)
        total = _plus(total, part)
        start = stop
    return total


async def _count_failure(
    account: ChannelAccount, error: ChannelApiError, *, uow: UnitOfWorkFactory, clock: Clock
) -> None:
    log.warning(
        "intake sweep failed",
        extra={
            "channel": account.channel.value,
            "account": account.account,
            "error": error.message[:300],
        },
    )
    async with uow() as tx:
        await tx.intake.count(
            account.channel, account.account, IntakeCount.FETCH_ERROR, clock.now()
        )
        await tx.commit()


async def _sweepable(
    channel: SalesChannel,
    account_code: str,
    apis: Mapping[SalesChannel, ChannelApi],
    *,
    uow: UnitOfWorkFactory,
) -> tuple[ChannelAccount, ChannelApi]:
    async with uow() as tx:
        account = await tx.channel_accounts.get(channel, account_code)
    if account is None:
        raise NotFound(f"No channel account {channel.value}/{account_code}.")
    api = apis.get(channel)
    if api is None:
        raise BadInput(f"ROPOS has no client for {channel.value}'s API: nothing to sweep.")
    if not account.api_base_url or not account.api_token:
        raise BadInput(
            "The account has no API credentials (apiBaseUrl and apiToken) to sweep with.",
            field="account",
        )
    return account, api


def _plus(total: SweepResult, part: SweepResult) -> SweepResult:
    return SweepResult(
        total.channel,
        total.account,
        total.since,
        total.until,
        total.found + part.found,
        total.fed + part.fed,
        total.applied + part.applied,
        total.fed_before + part.fed_before,
    )


def window(account: ChannelAccount, now: datetime) -> tuple[datetime, datetime] | None:
    """The periodic sweep's next window for the account, or None when nothing is due."""
    until = now - SETTLE
    floor = now - FIRST_LOOKBACK
    start = account.swept_until - OVERLAP if account.swept_until else account.created_at or floor
    start = max(start, floor)
    until = min(until, start + MAX_SLICE)
    return (start, until) if start < until else None


async def sweep_due(
    *, apis: Mapping[SalesChannel, ChannelApi], uow: UnitOfWorkFactory, clock: Clock
) -> list[SweepResult]:
    """The periodic sweep: every enabled account with credentials and a client, each over its
    next window; its mark moves once the window is fed."""
    async with uow() as tx:
        accounts = await tx.channel_accounts.list(None)
    results = []
    for account in accounts:
        api = apis.get(account.channel)
        if api is None or not account.enabled:
            continue
        if not account.api_base_url or not account.api_token:
            continue
        results.append(await _sweep_one(account, api, uow=uow, clock=clock))
    return results


async def _sweep_one(
    account: ChannelAccount, api: ChannelApi, *, uow: UnitOfWorkFactory, clock: Clock
) -> SweepResult:
    span = window(account, clock.now())
    if span is None:
        return SweepResult(account.channel, account.account, clock.now(), clock.now())
    since, until = span
    try:
        result = await feed(account, since, until, api=api, uow=uow, clock=clock)
    except ChannelApiError as error:
        await _count_failure(account, error, uow=uow, clock=clock)
        return SweepResult(account.channel, account.account, since, until, error=error.message)
    async with uow() as tx:
        await tx.channel_accounts.mark_swept(account.channel, account.account, until)
        await tx.commit()
    return result
