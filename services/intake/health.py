"""The intake's health per source over a window (ops): one account's, or every account's at once,
the accounts whose failures weigh most first. See `domain.intake_health` for the figures."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.clock import Clock
from domain.errors import BadInput
from domain.intake import SalesChannel
from domain.intake_health import SAMPLE_LIMIT, IntakeHealth, health
from services.intake.accounts import check_code
from services.unit_of_work import UnitOfWorkFactory

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=366)


def _window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise BadInput(f"{name} needs a time zone (e.g. 2026-11-01T00:00:00Z).", field=name)
    end = until or now
    start = since or end - DEFAULT_WINDOW
    if start >= end:
        raise BadInput("since must be before until (and before now).", field="since")
    if end - start > MAX_WINDOW:
        raise BadInput("The window is at most 366 days.", field="since")
    return start, end


async def account_health(
    channel: SalesChannel,
    account: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> IntakeHealth:
    """One account's figures (zeros for an account nothing came from)."""
    account = check_code(account)
    found = await _healths((channel, account), since, until, uow=uow, clock=clock)
    return found[0]


async def every_account_health(
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> list[IntakeHealth]:
    """Every account's figures (those configured, and any that messages came from), the
    highest failure impact first."""
    found = await _healths(None, since, until, uow=uow, clock=clock)
    return sorted(found, key=lambda h: (-h.impact, h.channel.value, h.account))


async def _healths(
    source: tuple[SalesChannel, str] | None,
    since: datetime | None,
    until: datetime | None,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> list[IntakeHealth]:
    now = clock.now()
    start, end = _window(since, until, now)
    async with uow() as tx:
        statuses = await tx.intake.status_counts(start, end, source)
        received = await tx.intake.deliveries(start, end, source)
        counted = await tx.intake.counted(start, end, source)
        waiting = await tx.intake.waiting(source)
        if source is not None:
            keys = {(source[0].value, source[1])}
        else:
            keys = {(a.channel.value, a.account) for a in await tx.channel_accounts.list(None)}
            keys |= set(statuses) | set(received) | set(counted) | set(waiting)
        samples = {
            key: await tx.intake.sample((SalesChannel(key[0]), key[1]), start, end, SAMPLE_LIMIT)
            for key in keys
        }
    found = []
    for key in sorted(keys):
        backlog, oldest = waiting.get(key, (0, None))
        found.append(
            health(
                SalesChannel(key[0]),
                key[1],
                since=start,
                until=end,
                now=now,
                received=received.get(key, 0),
                statuses=statuses.get(key, []),
                counts=counted.get(key, {}),
                backlog=backlog,
                oldest_waiting=oldest,
                sample=samples[key],
            )
        )
    return found
