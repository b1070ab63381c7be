"""The intake health's figures from rows: percentiles, failures by impact, rule rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.intake import Decision, IntakeCount, IntakeStatus, RuleAction, SalesChannel
from domain.intake_health import (
    Sampled,
    StatusCount,
    failures,
    health,
    rule_rates,
)
from domain.kpis import percentile

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        ([], 0.5, None),
        ([3.0], 0.99, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(n) for n in range(1, 101)], 0.99, 99.0),
        ([float(n) for n in range(1, 101)], 0.5, 50.0),
    ],
)
def test_nearest_rank_percentiles(
    values: list[float], share: float, expected: float | None
) -> None:
    assert percentile(values, share) == expected


def test_failures_are_merged_by_status_and_code_and_ranked_by_impact() -> None:
    ranked = failures(
        [
            StatusCount(IntakeStatus.ACCEPTED, None, 90, Decimal(9000)),  # not a failure
            StatusCount(IntakeStatus.REJECTED, "UNKNOWN_SKU", 3, Decimal(30)),
            StatusCount(IntakeStatus.DEAD, "FETCH_REFUSED", 1, Decimal(500)),
            StatusCount(IntakeStatus.REJECTED, "UNKNOWN_SKU", 2, Decimal(25)),
            StatusCount(IntakeStatus.DISCARDED, None, 1, Decimal(1)),
        ]
    )
    assert [(f.status, f.code, f.count, f.impact) for f in ranked] == [
        (IntakeStatus.DEAD, "FETCH_REFUSED", 1, Decimal(500)),
        (IntakeStatus.REJECTED, "UNKNOWN_SKU", 5, Decimal(55)),
        (IntakeStatus.DISCARDED, "UNKNOWN", 1, Decimal(1)),
    ]


def sampled(status: IntakeStatus, *decisions: Decision, seconds: float = 1.0) -> Sampled:
    return Sampled(
        status, T0, T0 + timedelta(seconds=seconds), T0 - timedelta(minutes=5), decisions
    )


def test_rule_rates_count_each_rule_once_per_order_and_shadow_apart() -> None:
    reject = Decision("sku.unknown", RuleAction.REJECT, "no such SKU", code="UNKNOWN_SKU")
    shadow = Decision("lines.too_many", RuleAction.SHADOW, "would REJECT", code="TOO_MANY_LINES")
    warn = Decision("customer.email", RuleAction.WARN, "odd email")
    rates = rule_rates(
        [
            sampled(IntakeStatus.REJECTED, reject, reject),
            sampled(IntakeStatus.ACCEPTED, shadow, warn),
            sampled(IntakeStatus.ACCEPTED),
            sampled(IntakeStatus.RECEIVED, reject),  # not validated yet: not counted
        ]
    )
    assert [(r.rule, r.rejected, r.would_reject) for r in rates] == [
        ("lines.too_many", 0, 1),
        ("sku.unknown", 1, 0),
    ]
    assert [r.rate for r in rates] == [pytest.approx(1 / 3), pytest.approx(1 / 3)]


def test_the_figures_of_one_account() -> None:
    found = health(
        SalesChannel.SHOPIFY,
        "acme",
        since=T0 - timedelta(days=1),
        until=T0 + timedelta(hours=1),
        now=T0 + timedelta(hours=1),
        received=3,
        statuses=[
            StatusCount(IntakeStatus.ACCEPTED, None, 2, Decimal(42)),
            StatusCount(IntakeStatus.RETRYING, "FETCH_UNAVAILABLE", 1, Decimal(1)),
        ],
        counts={IntakeCount.DUPLICATE: 4},
        backlog=1,
        oldest_waiting=T0,
        sample=[
            sampled(IntakeStatus.ACCEPTED, seconds=2),
            sampled(IntakeStatus.ACCEPTED, seconds=4),
            Sampled(IntakeStatus.RETRYING, T0, None, None, ()),
        ],
    )
    assert (
        found.orders,
        found.status(IntakeStatus.ACCEPTED),
        found.count(IntakeCount.DUPLICATE),
    ) == (
        3,
        2,
        4,
    )
    assert found.oldest_waiting_seconds == 3600
    assert (found.p50_seconds, found.p99_seconds) == (2.0, 4.0)
    assert found.lag_p50_seconds == 300.0
    assert found.failures == ()  # a retry is not a failure yet
