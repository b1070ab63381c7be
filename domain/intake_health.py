"""The intake's health per source (a channel account) over a window: what came in and what became
of it, what was refused or repeated before it was kept, how far behind the queue and the channel
it runs, and which rules refuse (or, in SHADOW, would refuse) how much of its traffic. Pure: the
figures are made from rows the repository reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.intake import Decision, IntakeCount, IntakeStatus, RuleAction, SalesChannel
from domain.kpis import percentile

# Percentiles, lags and rule rates are read from at most this many of the window's newest
# messages per account (the counts are exact whatever the window holds).
SAMPLE_LIMIT = 20_000
# Statuses a failure list shows: refused by a rule or the business, out of tries, given up on.
FAILED = (IntakeStatus.REJECTED, IntakeStatus.DEAD, IntakeStatus.DISCARDED)


@dataclass(frozen=True, slots=True)
class StatusCount:
    """Messages of one account in one status with one error code, and what they are worth."""

    status: IntakeStatus
    error_code: str | None
    count: int
    value: Decimal


@dataclass(frozen=True, slots=True)
class Sampled:
    """One finished or waiting message of the sample: its times and its decisions."""

    status: IntakeStatus
    received_at: datetime
    finished_at: datetime | None
    channel_at: datetime | None
    decisions: tuple[Decision, ...]


@dataclass(frozen=True, slots=True)
class RuleRate:
    """How often a rule refused an order (REJECT) or would have (SHADOW) in the sample."""

    rule: str
    rejected: int
    would_reject: int
    rate: float  # (rejected + would_reject) / orders validated in the sample


@dataclass(frozen=True, slots=True)
class Failure:
    """Failed messages with one status and code, and their impact (the orders' value, each
    counting at least 1): the list is ranked by it."""

    status: IntakeStatus
    code: str
    count: int
    impact: Decimal


@dataclass(frozen=True, slots=True)
class IntakeHealth:
    channel: SalesChannel
    account: str
    since: datetime
    until: datetime
    received: int  # deliveries stored (a body of several orders counts once)
    orders: int  # the messages that stand for one order each (a split body's parts)
    statuses: Mapping[IntakeStatus, int]
    counts: Mapping[IntakeCount, int]
    backlog: int  # waiting now, whenever received
    oldest_waiting_seconds: float | None
    p50_seconds: float | None  # receipt to final status
    p99_seconds: float | None
    lag_p50_seconds: float | None  # the channel's own time of the order to receipt
    lag_p99_seconds: float | None
    sample: int  # messages the percentiles and rule rates were read from
    rules: tuple[RuleRate, ...] = ()
    failures: tuple[Failure, ...] = field(default_factory=tuple)

    def status(self, status: IntakeStatus) -> int:
        return self.statuses.get(status, 0)

    def count(self, what: IntakeCount) -> int:
        return self.counts.get(what, 0)

    @property
    def impact(self) -> Decimal:
        return sum((f.impact for f in self.failures), Decimal(0))


def failures(counts: Iterable[StatusCount]) -> tuple[Failure, ...]:
    """The failed messages by (status, code), the highest impact first."""
    merged: dict[tuple[IntakeStatus, str], tuple[int, Decimal]] = {}
    for row in counts:
        if row.status not in FAILED:
            continue
        key = (row.status, row.error_code or "UNKNOWN")
        count, impact = merged.get(key, (0, Decimal(0)))
        merged[key] = (count + row.count, impact + row.value)
    found = [Failure(s, code, n, impact) for (s, code), (n, impact) in merged.items()]
    return tuple(sorted(found, key=lambda f: (-f.impact, -f.count, f.status.value, f.code)))


def rule_rates(sample: Iterable[Sampled]) -> tuple[RuleRate, ...]:
    """Per rule, the orders it refused and those it would have refused (SHADOW), over the
    sampled orders that reached the rules; the most refusing first."""
    rejected: Counter[str] = Counter()
    would: Counter[str] = Counter()
    validated = 0
    for message in sample:
        if not message.status.final:
            continue
        validated += 1
        rejected.update({d.rule for d in message.decisions if d.action is RuleAction.REJECT})
        would.update(
            {d.rule for d in message.decisions if d.action is RuleAction.SHADOW and d.code}
        )
    rules = set(rejected) | set(would)
    rates = [
        RuleRate(rule, rejected[rule], would[rule], (rejected[rule] + would[rule]) / validated)
        for rule in rules
    ]
    return tuple(sorted(rates, key=lambda r: (-(r.rejected + r.would_reject), r.rule)))


def health(
    channel: SalesChannel,
    account: str,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    received: int,
    statuses: Sequence[StatusCount],
    counts: Mapping[IntakeCount, int],
    backlog: int,
    oldest_waiting: datetime | None,
    sample: Sequence[Sampled],
) -> IntakeHealth:
    by_status: Counter[IntakeStatus] = Counter()
    for row in statuses:
        by_status[row.status] += row.count
    done = sorted(
        (m.finished_at - m.received_at).total_seconds()
        for m in sample
        if m.status.final and m.finished_at is not None
    )
    lags = sorted(
        max(0.0, (m.received_at - m.channel_at).total_seconds())
        for m in sample
        if m.channel_at is not None
    )
    return IntakeHealth(
        channel=channel,
        account=account,
        since=since,
        until=until,
        received=received,
        orders=sum(by_status.values()),
        statuses=dict(by_status),
        counts=dict(counts),
        backlog=backlog,
        oldest_waiting_seconds=(now - oldest_waiting).total_seconds() if oldest_waiting else None,
        p50_seconds=percentile(done, 0.5),
        p99_seconds=percentile(done, 0.99),
        lag_p50_seconds=percentile(lags, 0.5),
        lag_p99_seconds=percentile(lags, 0.99),
        sample=len(sample),
        rules=rule_rates(sample),
        failures=failures(statuses),
    )
