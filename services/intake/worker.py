"""The intake worker: a stored message read by its channel's adapter, validated by its account's
profile, and acted on (reserve, amend, cancel) through the same services the GraphQL API uses.

A message is claimed with a lease (a worker killed mid-message leaves it to another), and
finished in the same transaction as what it did: the reservation, the channel order's row and
the message's final status commit together, under the message's row lock, so an order is never
applied twice. A transient failure (a deadlock, the database busy or gone) is tried again with
backoff and jitter; the message is DEAD when the tries are used up. A business refusal (out of
stock, over a limit) ends it REJECTED with that code: counted apart from failures."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import math
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from domain.clock import Clock
from domain.errors import DomainError
from domain.intake import (
    ChannelAccount,
    ChannelAdapter,
    ChannelApi,
    ChannelApiRefused,
    ChannelApiUnavailable,
    ChannelOrder,
    Decision,
    Delivery,
    FetchBack,
    IntakeCount,
    IntakeLane,
    IntakeMessage,
    IntakeStatus,
    NotAnOrder,
    OrderEvent,
    PayloadRefused,
    RuleAction,
    SalesChannel,
)
from domain.intake_rules import AccountFacts, Verdict, profile, validate
from domain.kpis import ReserveOutcome, ReserveSource
from domain.retry import RetryPolicy
from services.intake import outcomes
from services.intake.acting import Outcome, act
from services.intake.edge import AccountCache
from services.kpis import AttemptCounts
from services.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

Adapters = Mapping[SalesChannel, ChannelAdapter]
Apis = Mapping[SalesChannel, ChannelApi]

# A claimed message is not due again for this long: time enough to act on one order.
LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 8
PART_PREFIX = "part:"


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    adapters: Adapters
    # The channels' APIs, to fetch back the orders thin webhooks name.
    apis: Apis = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(DEFAULT_MAX_ATTEMPTS))
    radius_km: float = 50.0
    batch_size: int = 50
    lease_seconds: float = LEASE_SECONDS
    # Orders acted on at once (each its own transaction); one order's messages go one by one.
    concurrency: int = 8
    # Where each pickup order's reserve attempt is counted with its outcome (the KPIs).
    attempts: AttemptCounts | None = None
    # Channel accounts as last read (the edge's cache: a change made through this process is
    # seen at once, one made through another replica within its ttl); None: read each claim.
    accounts: AccountCache | None = None


@dataclass(slots=True)
class _Batch:
    """What the messages of one claim need, read in the claim's transaction: their accounts and
    raw bodies, and each split parent's parts (parsed once for all its children)."""

    accounts: dict[tuple[SalesChannel, str], ChannelAccount | None] = field(default_factory=dict)
    bodies: dict[str, bytes | None] = field(default_factory=dict)
    parts: dict[str, list[Any]] = field(default_factory=dict)
    made: int = 0  # new messages, due at once: the parts of the split bodies


@dataclass(frozen=True, slots=True)
class _Read:
    """A message read into its order, ready to act on."""

    message: IntakeMessage
    account: ChannelAccount
    order: ChannelOrder
    decisions: tuple[Decision, ...]

    @property
    def external_id(self) -> str:
        return self.order.external_id


@dataclass(frozen=True, slots=True)
class _Thin:
    """A thin webhook's message: the order it names is fetched back before acting."""

    message: IntakeMessage
    account: ChannelAccount
    wanted: FetchBack

    @property
    def external_id(self) -> str:
        return self.wanted.external_id


OrderReads = list[_Read | _Thin]


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one claim did: messages taken, and messages it made due (a split body's parts)."""

    taken: int
    made: int


AccountKey = tuple[SalesChannel, str]


@dataclass(slots=True)
class Claimed:
    """What one claim took, read and ready to act on: each order's messages in the order they
    were claimed (the orders whose first message is a cancel first). Messages that came to an
    outcome on reading (refused, ignored, split) are finished already and not in it."""

    sweep: Sweep
    orders: list[OrderReads]
    # Each claimed account's messages still due after the claim (its backlog beyond it).
    left: dict[AccountKey, int] = field(default_factory=dict)


async def claim(
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    config: IntakeConfig,
    batch_size: int | None = None,
    exclude: Collection[AccountKey] = (),
) -> Claimed:
    """Take up to `batch_size` (default the config's) of the messages that are due, fairly
    across accounts, none of the `exclude`d accounts', and read each into its order (CPU only:
    their bodies came with the claim)."""
    batch = _Batch()
    async with uow() as tx:
        now = clock.now()
        claim_ = await tx.intake.claim_due(
            now,
            now + timedelta(seconds=config.lease_seconds),
            batch_size or config.batch_size,
            exclude=exclude,
        )
        claimed, batch.bodies = claim_.messages, claim_.bodies
        for account_key in {(m.channel, m.account) for m in claimed}:
            batch.accounts[account_key] = await _account(tx, account_key, config)
        # A split body's parts read their parent's body (once for all of them).
        parents = {m.parent_id for m in claimed if m.order is None and m.parent_id is not None}
        if wanted := sorted(parents - batch.bodies.keys()):
            batch.bodies.update(await tx.intake.bodies(wanted))
        await tx.commit()
    by_order: dict[tuple[str, str, str], OrderReads] = {}
    for message in claimed:
        read = await _guarded(
            message,
            _prepare(message, batch, uow=uow, clock=clock, config=config),
            uow=uow,
            clock=clock,
            config=config,
        )
        if isinstance(read, _Read | _Thin):
            order_key = (message.channel.value, message.account, read.external_id)
            by_order.setdefault(order_key, []).append(read)
    orders = sorted(by_order.values(), key=lambda reads: not is_cancel(reads))
    taken = Counter((m.channel, m.account) for m in claimed)
    left = {key: max(0, due - taken[key]) for key, due in claim_.due.items()}
    return Claimed(Sweep(len(claimed), batch.made), orders, left)


async def _account(tx: UnitOfWork, key: AccountKey, config: IntakeConfig) -> ChannelAccount | None:
    """The channel account, from the config's cache when it has one (as the edge reads it)."""
    if config.accounts is None:
        return await tx.channel_accounts.get(*key)
    return await config.accounts.read_through(key, lambda: tx.channel_accounts.get(*key))


def is_cancel(reads: OrderReads) -> bool:
    """Whether an order's first claimed message is a cancel (it releases stock)."""
    return reads[0].message.lane is IntakeLane.CANCEL


def account_of(reads: OrderReads) -> AccountKey:
    message = reads[0].message
    return (message.channel, message.account)


async def act_on(
    reads: OrderReads, *, uow: UnitOfWorkFactory, clock: Clock, config: IntakeConfig
) -> None:
    """One order's claimed messages, one by one in the order they were claimed: a thin
    webhook's order fetched back first, then acted on (each message finished with what it
    did)."""
    for read in reads:
        if isinstance(read, _Thin):
            fetched = await _guarded(
                read.message,
                _fetch(read, uow=uow, clock=clock, config=config),
                uow=uow,
                clock=clock,
                config=config,
            )
            if not isinstance(fetched, _Read):
                continue
            read = fetched
        await _guarded(
            read.message,
            _act(read, uow=uow, clock=clock, config=config),
            uow=uow,
            clock=clock,
            config=config,
            dead=functools.partial(
                _count_attempt,
                read,
                ReserveOutcome.TECHNICAL,
                read.order.pickup.store_id,
                config,
                clock,
            ),
        )


async def process_due(
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    config: IntakeConfig,
    batch_size: int | None = None,
) -> Sweep:
    """One claim (of `batch_size`, default the config's), acted on in full before returning:
    different orders concurrently (`concurrency` at once), the orders whose first message is a
    cancel before the others, one order's messages one by one. (The gateway's worker keeps
    orders flowing through `Dispatch` instead: the same work, without rounds.)"""
    claimed = await claim(uow=uow, clock=clock, config=config, batch_size=batch_size)
    limit = asyncio.Semaphore(config.concurrency)

    async def one_order(reads: OrderReads) -> None:
        async with limit:
            await act_on(reads, uow=uow, clock=clock, config=config)

    # Cancels first, all of them, then the rest: the stock a cancel releases is there for the
    # orders claimed with it (acting on them at once would race the release).
    cancels = [reads for reads in claimed.orders if is_cancel(reads)]
    if cancels:
        await asyncio.gather(*(one_order(reads) for reads in cancels))
    await asyncio.gather(*(one_order(reads) for reads in claimed.orders if not is_cancel(reads)))
    return claimed.sweep


@dataclass(frozen=True, slots=True)
class ClaimTicket:
    """A claim Dispatch asks for: how many messages, which accounts to leave out, and what it
    knew when the claim began (arrivals during the claim ask for another)."""

    size: int
    exclude: frozenset[AccountKey]
    arrivals: int
    behind: frozenset[AccountKey]


class Dispatch:
    """Which claimed orders the worker starts, and when it claims more, so that orders flow
    without rounds: up to `concurrency` orders in flight, each account's in the order claimed.

    - Shares: while several accounts have orders here (or had, within `hold_seconds`), an
      account with a backlog (at least `concurrency` more of its messages were due than its
      last claim took) holds at most its weighted share of the slots (`concurrency` x its
      weight / the active accounts' weights, at least one). A flooding account drains at its share and the others'
      orders start at once, on a worker the flood does not saturate; an account without a
      backlog, or alone, may take any free slot.
    - A free slot goes to the account with the fewest orders in flight for its weight (ties:
      the one whose next order was claimed first).
    - An order that is not a cancel waits while a cancel claimed before it is queued or in
      flight (the stock a cancel releases is there for the orders claimed with it).
    - Claims: a batch when fewer than `concurrency` orders wait here and the last claim found
      all it asked for (more may be due); and when a message arrives for an account that can
      take more (its order must not wait for the next batch). An account with as many orders
      waiting here as it may hold is left out of claims: what it sends waits in the database,
      where every replica can take it, and is claimed as soon as its queue here is shorter.

    Time is the caller's monotonic clock."""

    def __init__(self, concurrency: int, batch_size: int, *, hold_seconds: float = 2.0) -> None:
        self.concurrency = concurrency
        self.batch_size = max(batch_size, concurrency)
        self._hold = hold_seconds
        self._queued: dict[AccountKey, deque[tuple[int, OrderReads]]] = {}
        self._running: Counter[AccountKey] = Counter()
        self._weights: dict[AccountKey, int] = {}
        self._seen: dict[AccountKey, float] = {}  # account -> when it last had an order here
        self._cancels = 0  # queued or in flight
        self._seq = itertools.count()
        self._more_due = True  # the last claim found all it asked for
        # Arrivals for an account that can take more: counted, so one during a claim (perhaps
        # after its snapshot) asks for another.
        self._arrivals = 0
        self._claimed_arrivals = 0
        # Accounts with messages waiting in the database that no claim took: left out of a
        # claim, or arrived while left out.
        self._behind: set[AccountKey] = set()
        # Each account's messages still due after the last claim that took some of them.
        self._left: dict[AccountKey, int] = {}
        self._active_memo: tuple[float, frozenset[AccountKey], int] | None = None

    @property
    def in_flight(self) -> int:
        return self._running.total()

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queued.values())

    def share(self, account: AccountKey, now: float) -> int:
        """The slots `account` may hold now."""
        active, weights = self._active(now)
        if len(active) <= 1:
            return self.concurrency
        if account not in active:
            weights += self._weights.get(account, 1)
        part = self.concurrency * self._weights.get(account, 1) / weights
        return max(1, min(self.concurrency, math.floor(part)))

    def _active(self, now: float) -> tuple[frozenset[AccountKey], int]:
        """The accounts sending now (orders here, or had within `hold_seconds`) and their
        weights' sum: worked out once per moment (a pick asks it of every account waiting)."""
        if self._active_memo is None or self._active_memo[0] != now:
            active = frozenset(
                key
                for key, seen in self._seen.items()
                if now < seen + self._hold or key in self._queued or key in self._running
            )
            weights = sum(self._weights.get(key, 1) for key in active)
            self._active_memo = (now, active, weights)
        return self._active_memo[1], self._active_memo[2]

    def arrived(self, account: AccountKey | None, now: float) -> None:
        """A message was stored (None: for an account not named, or by ops)."""
        if account is not None and account in self.excluded(now):
            self._behind.add(account)  # claimed once its queue here is below its share
        else:
            self._arrivals += 1

    def due(self) -> None:
        """Messages may be due that no claim asked for (the periodic look: retries come due,
        another process left some)."""
        self._more_due = True

    def limit(self, account: AccountKey, now: float) -> int:
        """The slots `account` may hold now: its share while it has a backlog of a round of
        the worker or more (a few messages a short claim left are not a flood)."""
        backlog = self._left.get(account, 0) >= self.concurrency
        return self.share(account, now) if backlog else self.concurrency

    def excluded(self, now: float) -> frozenset[AccountKey]:
        """The accounts left out of the next claim: those with as many orders waiting here as
        they may hold."""
        return frozenset(k for k, q in self._queued.items() if len(q) >= self.limit(k, now))

    def claim(self, now: float) -> ClaimTicket | None:
        """The claim to make now, or None: when a message arrived for an account that can take
        more, when an account left out of a claim (or whose arrival was) can take more again,
        or when few orders wait here and more may be due."""
        ticket = self.ticket(now)
        arrived = self._arrivals != self._claimed_arrivals
        caught_up = not self._behind <= ticket.exclude
        low = self._more_due and self.queued < self.concurrency
        return ticket if arrived or caught_up or low else None

    def ticket(self, now: float) -> ClaimTicket:
        """A claim of what this process can take now (`claim` says whether to make it)."""
        return ClaimTicket(
            size=max(self.concurrency, self.batch_size - self.queued),
            exclude=self.excluded(now),
            arrivals=self._arrivals,
            behind=frozenset(self._behind),
        )

    def claimed(self, claimed: Claimed, ticket: ClaimTicket, now: float) -> None:
        """What the claim of `ticket` took."""
        self._claimed_arrivals = ticket.arrivals
        self._active_memo = None
        sweep = claimed.sweep
        self._more_due = sweep.taken >= ticket.size or sweep.made > 0
        # Those it left out may have more waiting; those it was for are taken up.
        self._behind = (self._behind - (ticket.behind - ticket.exclude)) | ticket.exclude
        self._left.update(claimed.left)
        if len(self._left) > 10_000:  # accounts that are gone: forget those with no backlog
            self._left = {k: n for k, n in self._left.items() if n > 0}
        for reads in claimed.orders:
            account = account_of(reads)
            self._queued.setdefault(account, deque()).append((next(self._seq), reads))
            self._weights[account] = max(1, reads[0].account.weight)
            self._seen[account] = now
            if is_cancel(reads):
                self._cancels += 1

    def next(self, now: float) -> list[OrderReads]:
        """The orders to start now, taken off the queue and counted in flight."""
        started: list[OrderReads] = []
        while self.in_flight < self.concurrency:
            account = self._pick(now)
            if account is None:
                break
            _, reads = self._queued[account].popleft()
            if not self._queued[account]:
                del self._queued[account]
            self._running[account] += 1
            started.append(reads)
        return started

    def done(self, reads: OrderReads, now: float) -> None:
        self._active_memo = None
        account = account_of(reads)
        self._running[account] -= 1
        if self._running[account] <= 0:
            del self._running[account]
        self._seen[account] = now
        if is_cancel(reads):
            self._cancels -= 1
        if len(self._seen) > 10_000:  # accounts gone quiet long ago
            for key in [k for k, t in self._seen.items() if now >= t + self._hold]:
                del self._seen[key]

    def _pick(self, now: float) -> AccountKey | None:
        best: tuple[float, int] | None = None
        chosen = None
        for account, queue in self._queued.items():
            seq, reads = queue[0]
            if self._running[account] >= self.limit(account, now):
                continue
            if self._cancels > 0 and not is_cancel(reads):
                continue
            rank = (self._running[account] / self._weights.get(account, 1), seq)
            if best is None or rank < best:
                best, chosen = rank, account
        return chosen


T = TypeVar("T")


async def _guarded(
    message: IntakeMessage,
    step: Awaitable[T],
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    config: IntakeConfig,
    dead: Callable[[], None] | None = None,
) -> T | None:
    """Run one step of a message; a technical failure is recorded (retry, or dead: then `dead`
    is called), never hidden as a business refusal."""
    try:
        result = await step
    except Exception as error:
        status = await _failed(message, error, uow=uow, clock=clock, config=config)
        if status is IntakeStatus.DEAD and dead is not None:
            dead()
        return None
    if isinstance(result, Outcome):
        _log_outcome(message, result)
    return result


def _log_outcome(message: IntakeMessage, outcome: Outcome) -> None:
    log.info(
        "intake message finished",
        extra={
            "message_id": message.id,
            "channel": message.channel.value,
            "account": message.account,
            "status": outcome.status.value,
            "error_code": outcome.error_code,
            "order_id": outcome.order.external_id if outcome.order else None,
            "group_id": outcome.group_id,
        },
    )


async def _prepare(
    message: IntakeMessage,
    batch: _Batch,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    config: IntakeConfig,
) -> _Read | _Thin | Outcome | None:
    """The message's order, or the outcome it came to without one (recorded)."""
    key = (message.channel, message.account)
    if key not in batch.accounts:
        async with uow() as tx:
            batch.accounts[key] = await tx.channel_accounts.get(*key)
    account = batch.accounts[key]
    if account is None:
        return await _finish_early(
            message,
            Outcome(
                IntakeStatus.REJECTED,
                error_code="UNKNOWN_ACCOUNT",
                error="The channel account no longer exists.",
            ),
            uow=uow,
            clock=clock,
        )
    read = await _read(message, account, batch, uow=uow, config=config)
    if isinstance(read, Outcome):
        return await _finish_early(message, read, uow=uow, clock=clock)
    if isinstance(read, FetchBack):
        return _Thin(message, account, read)
    order, decisions = read
    return _Read(message, account, order, decisions)


async def _act(
    read: _Read, *, uow: UnitOfWorkFactory, clock: Clock, config: IntakeConfig
) -> Outcome | None:
    account = read.account

    async def check(tx: UnitOfWork, received: ChannelOrder) -> Verdict:
        facts = await _facts(tx, account, received)
        return validate(received, facts, profile(account.channel, account.rules), clock.now())

    outcome = await act(
        read.message,
        read.order,
        read.decisions,
        account,
        check,
        uow=uow,
        clock=clock,
        radius_km=config.radius_km,
    )
    if outcome is not None and outcome.reserve_outcome is not None:
        _count_attempt(read, outcome.reserve_outcome, outcome.store_id, config, clock)
    return outcome


def _count_attempt(
    read: _Read,
    outcome: ReserveOutcome,
    store_id: str | None,
    config: IntakeConfig,
    clock: Clock,
) -> None:
    """Count the order's reserve attempt (the KPIs), once it came to a final outcome."""
    order = read.order
    if config.attempts is None or not order.pickup.requested or order.event is OrderEvent.CANCEL:
        return
    config.attempts.add(
        ReserveSource.INTAKE,
        outcome,
        clock.now(),
        store_id=store_id,
        channel=f"{order.channel.value}:{order.account}"[:64],
    )


async def _read(
    message: IntakeMessage,
    account: ChannelAccount,
    batch: _Batch,
    *,
    uow: UnitOfWorkFactory,
    config: IntakeConfig,
) -> Reading | FetchBack | Outcome:
    """The message's order: the one ops resubmitted, else its adapter's reading of the body (a
    body of several orders is split into messages of their own here), or the order a thin
    webhook names."""
    if message.order is not None:  # ops corrected it: it runs again from validation
        return message.order, message.decisions
    adapter = config.adapters.get(message.channel)
    if adapter is None:
        return Outcome(
            IntakeStatus.DEAD,
            error_code="NO_ADAPTER",
            error=f"No adapter reads {message.channel.value} payloads.",
        )
    payload = await _payload(message, adapter, batch, uow=uow)
    if isinstance(payload, Outcome):
        return payload
    if message.parent_id is None:
        parts = adapter.split(payload)
        if len(parts) != 1:
            batch.made += len(parts)
            return await _split(message, len(parts), uow=uow)
        payload = parts[0]
    delivery = Delivery(
        channel=message.channel,
        account=message.account,
        received_at=message.received_at,
        topic=message.topic,
        event_id=message.event_id,
        headers=message.headers,
    )
    return _parse(message, account, adapter, payload, delivery)


Reading = tuple[ChannelOrder, tuple[Decision, ...]]


def _parse(
    message: IntakeMessage,
    account: ChannelAccount,
    adapter: ChannelAdapter,
    payload: Any,
    delivery: Delivery,
    *,
    notes: tuple[Decision, ...] = (),
) -> Reading | FetchBack | Outcome:
    """One order's payload through its adapter: the order and the decisions read on the way,
    the order a thin webhook names, or the outcome the payload comes to without an order."""
    try:
        parsed = adapter.parse(payload, delivery)
    except PayloadRefused as refused:
        return Outcome(
            IntakeStatus.REJECTED,
            decisions=(
                *notes,
                Decision(
                    "payload", RuleAction.REJECT, refused.message, refused.field, refused.code
                ),
            ),
            error_code=refused.code,
            error=refused.message,
        )
    if isinstance(parsed, NotAnOrder):
        return Outcome(
            IntakeStatus.IGNORED, decisions=notes, error_code="NOT_AN_ORDER", error=parsed.reason
        )
    if isinstance(parsed, FetchBack):
        return parsed
    if parsed.order.account != account.account or parsed.order.channel != account.channel:
        parsed = replace(
            parsed,
            order=replace(parsed.order, channel=account.channel, account=account.account),
        )
    # Ops' notes (a replay) stay first on the message, before what this reading decided.
    ops_notes = tuple(d for d in message.decisions if d.rule.startswith("ops."))
    return parsed.order, (*ops_notes, *notes, *parsed.decisions)


async def _fetch(
    thin: _Thin, *, uow: UnitOfWorkFactory, clock: Clock, config: IntakeConfig
) -> _Read | Outcome | None:
    """The fetch-back stage: the order a thin webhook names, from the channel's API, read by
    the channel's adapter as if it had come in whole. A channel that cannot answer now raises
    (the message is retried, after the channel's Retry-After if it gave one); one that refuses
    dead-letters the message with the channel's answer."""
    message, wanted = thin.message, thin.wanted
    api = config.apis.get(message.channel)
    adapter = config.adapters[message.channel]
    if api is None:
        outcome = Outcome(
            IntakeStatus.DEAD,
            error_code="FETCH_REFUSED",
            error=f"No client fetches {message.channel.value} orders back.",
        )
        return await _finish_early(message, outcome, uow=uow, clock=clock)
    try:
        payload = await api.fetch(thin.account, wanted)
    except ChannelApiRefused as refused:
        outcome = Outcome(
            IntakeStatus.DEAD,
            decisions=(Decision("fetch.back", RuleAction.REJECT, refused.message, code="FETCH"),),
            error_code="FETCH_REFUSED",
            error=refused.message,
        )
        return await _finish_early(
            message, outcome, uow=uow, clock=clock, count=IntakeCount.FETCH_ERROR
        )
    note = Decision(
        "fetch.back",
        RuleAction.REPAIR,
        f"The {wanted.topic} webhook names order {wanted.external_id} only: read it from "
        f"{message.channel.value}'s API.",
    )
    delivery = Delivery(
        channel=message.channel,
        account=message.account,
        received_at=message.received_at,
        topic=wanted.topic,
        event_id=message.event_id,
        headers=message.headers,
    )
    read = _parse(message, thin.account, adapter, payload, delivery, notes=(note,))
    if isinstance(read, FetchBack):
        read = Outcome(
            IntakeStatus.DEAD,
            decisions=(note,),
            error_code="FETCH_REFUSED",
            error="The channel's API answered with another thin notification, not the order.",
        )
    if isinstance(read, Outcome):
        return await _finish_early(message, read, uow=uow, clock=clock)
    order, decisions = read
    if order.external_id != wanted.external_id:
        outcome = Outcome(
            IntakeStatus.DEAD,
            decisions=decisions,
            error_code="FETCH_REFUSED",
            error=f"Asked for order {wanted.external_id}, the channel's API gave "
            f"{order.external_id}.",
        )
        return await _finish_early(message, outcome, uow=uow, clock=clock)
    return _Read(message, thin.account, order, decisions)


async def _payload(
    message: IntakeMessage, adapter: ChannelAdapter, batch: _Batch, *, uow: UnitOfWorkFactory
) -> Any:
    """The JSON this message stands for: its body, or its part of its parent's body."""
    source = message.parent_id if message.parent_id is not None else message.id
    if source not in batch.bodies:
        async with uow() as tx:
            batch.bodies[source] = await tx.intake.body(source)
    body = batch.bodies[source]
    if message.parent_id is not None and message.dedupe_key.startswith(PART_PREFIX):
        if source not in batch.parts:
            batch.parts[source] = adapter.split(_loads(body or b"null"))
        index = int(message.dedupe_key.rsplit(":", 1)[1])
        return batch.parts[source][index]
    try:
        return _loads(body or b"")
    except ValueError as error:
        return Outcome(
            IntakeStatus.REJECTED,
            error_code="MALFORMED",
            error=f"The body is not JSON: {error}.",
        )


def _loads(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal)


async def _split(message: IntakeMessage, count: int, *, uow: UnitOfWorkFactory) -> Outcome:
    """One message per order of a body that holds several, each traceable to this one."""
    if count == 0:
        return Outcome(
            IntakeStatus.IGNORED, error_code="NO_ORDERS", error="The body holds no orders."
        )
    async with uow() as tx:
        for index in range(count):
            await tx.intake.add(
                IntakeMessage(
                    id=str(uuid.uuid4()),
                    channel=message.channel,
                    account=message.account,
                    status=IntakeStatus.RECEIVED,
                    received_at=message.received_at,
                    attempts=0,
                    next_attempt_at=message.received_at,
                    dedupe_key=f"{PART_PREFIX}{message.id}:{index:05d}",
                    topic=message.topic,
                    event_id=message.event_id,
                    parent_id=message.id,
                    headers=message.headers,
                    lane=message.lane,
                ),
                None,
            )
        await tx.commit()
    return Outcome(
        IntakeStatus.ACCEPTED,
        decisions=(
            Decision(
                "body.split",
                RuleAction.REPAIR,
                f"The body holds {count} orders; each goes on as its own message.",
            ),
        ),
    )


async def _facts(tx: UnitOfWork, account: ChannelAccount, order: ChannelOrder) -> AccountFacts:
    """What the rules need to know of the account and the catalog for this order."""
    skus = {line.sku.strip() for line in order.lines if line.sku and line.sku.strip()}
    skus |= {
        account.products[p]
        for line in order.lines
        if (p := line.channel_product_id) and p in account.products
    }
    stores = set(account.locations.values())
    if order.pickup.store_id:
        stores.add(order.pickup.store_id)
    if account.default_store_id:
        stores.add(account.default_store_id)
    known_skus, known_stores = await tx.catalog.known(skus, stores)
    return AccountFacts(
        products=account.products,
        locations=account.locations,
        default_store_id=account.default_store_id,
        assume_pickup=account.assume_pickup,
        known_skus=frozenset(known_skus),
        known_stores=frozenset(known_stores) if stores else None,
    )


async def _finish_early(
    message: IntakeMessage,
    outcome: Outcome,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    count: IntakeCount | None = None,
) -> Outcome | None:
    """Record an outcome reached before acting (nothing else to commit with it), and `count`
    it in the account's health."""
    async with uow() as tx:
        current = await tx.intake.get(message.id, for_update=True)
        if current is None or current.status.final:
            return None  # another worker finished it meanwhile (our lease ran out)
        if count is not None:
            await tx.intake.count(message.channel, message.account, count, clock.now())
        await outcomes.finish(
            tx,
            current,
            outcome.status,
            clock.now(),
            decisions=outcome.decisions,
            order=outcome.order,
            error_code=outcome.error_code,
            error=outcome.error,
        )
        await tx.commit()
    return outcome


async def _failed(
    message: IntakeMessage,
    error: Exception,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    config: IntakeConfig,
) -> IntakeStatus | None:
    """Record a technical failure: RETRYING, or DEAD when the tries are used up (the status
    recorded; None when none could be)."""
    now = clock.now()
    next_attempt = config.retry.next_attempt(message.attempts, now)
    status = IntakeStatus.DEAD if next_attempt is None else IntakeStatus.RETRYING
    expected = isinstance(error, DomainError | ChannelApiUnavailable)
    if isinstance(error, ChannelApiUnavailable):
        code = "FETCH_RATE_LIMITED" if error.retry_after is not None else "FETCH_UNAVAILABLE"
        if next_attempt is not None and error.retry_after is not None:
            # Not before the channel (or the account's own rate) lets the call through.
            next_attempt = max(next_attempt, now + timedelta(seconds=error.retry_after))
        text = error.message[:1000]
    else:
        code = error.code if isinstance(error, DomainError) else "TECHNICAL_FAILURE"
        text = f"{type(error).__name__}: {error}"[:1000]
    log.warning(
        "intake message failed",
        exc_info=not expected,
        extra={
            "message_id": message.id,
            "attempts": message.attempts,
            "status": status.value,
            "retry_at": next_attempt.isoformat() if next_attempt else None,
        },
    )
    try:
        async with uow() as tx:
            current = await tx.intake.get(message.id, for_update=True)
            if current is None or current.status.final:
                return None
            if isinstance(error, ChannelApiUnavailable):
                await tx.intake.count(
                    message.channel, message.account, IntakeCount.FETCH_ERROR, now
                )
            await outcomes.finish(
                tx,
                current,
                status,
                now,
                decisions=current.decisions,
                error_code=code,
                error=text,
                next_attempt_at=next_attempt,
            )
            await tx.commit()
    except Exception:
        # The database itself is gone: the lease runs out and the message is taken again.
        log.exception("could not record an intake failure", extra={"message_id": message.id})
        return None
    return status
