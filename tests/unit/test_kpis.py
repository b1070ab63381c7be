"""The KPI rules: what an attempt came to, and how the figures are made from counts."""

from __future__ import annotations

import pytest

from domain.errors import BadInput, Forbidden, LimitExceeded, NotFound, OutOfStock
from domain.kpis import (
    AttemptCount,
    DurationCell,
    DurationFacts,
    Durations,
    Endings,
    KpiFacts,
    ReservationSuccess,
    ReserveOutcome,
    figures,
    percentile,
    stores_and_channels,
)

Out = ReserveOutcome


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (OutOfStock(["SKU-1"]), Out.OUT_OF_STOCK),
        (LimitExceeded("maxUnitsPerSkuPerCustomer", "over"), Out.LIMIT_EXCEEDED),
        (BadInput("no lines", field="lines"), Out.BAD_INPUT),
        (NotFound("Unknown SKU: X"), Out.BAD_INPUT),
        (Forbidden("not yours"), Out.BAD_INPUT),
        (RuntimeError("connection reset"), Out.TECHNICAL),
        (TimeoutError(), Out.TECHNICAL),
    ],
)
def test_an_error_is_classified_and_a_fault_is_never_a_business_refusal(
    error: Exception, outcome: ReserveOutcome
) -> None:
    assert ReserveOutcome.of_error(error) is outcome


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("OUT_OF_STOCK", Out.OUT_OF_STOCK),
        ("LIMIT_EXCEEDED", Out.LIMIT_EXCEEDED),
        ("UNKNOWN_SKU", Out.BAD_INPUT),
        ("NO_PICKUP_STORE", Out.BAD_INPUT),
        ("TECHNICAL_FAILURE", Out.TECHNICAL),
        ("INTERNAL", Out.TECHNICAL),
        (None, Out.TECHNICAL),
    ],
)
def test_an_intake_code_is_classified(code: str | None, outcome: ReserveOutcome) -> None:
    assert ReserveOutcome.of_code(code) is outcome


def counts(**by_outcome: int) -> list[AttemptCount]:
    return [AttemptCount("S001", None, Out(name), n) for name, n in by_outcome.items()]


def test_the_success_rate_and_the_rate_where_stock_existed() -> None:
    success = ReservationSuccess.of(
        counts(reserved=90, out_of_stock=5, limit_exceeded=2, bad_input=2, technical=1)
    )
    assert (success.asked, success.reserved, success.business_refusals) == (100, 90, 9)
    assert success.rate == pytest.approx(0.90)
    assert success.rate_where_stock_existed == pytest.approx(90 / 95)
    assert success.technical_failure_rate == pytest.approx(0.01)


def test_no_attempt_gives_no_rate_not_a_made_up_one() -> None:
    success = ReservationSuccess.of([])
    assert (success.rate, success.rate_where_stock_existed, success.asked) == (None, None, 0)
    only_out = ReservationSuccess.of(counts(out_of_stock=3))
    assert only_out.rate == 0.0
    assert only_out.rate_where_stock_existed is None


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 0.5), percentile(values, 0.9), percentile(values, 1.0)) == (
        5.0,
        9.0,
        10.0,
    )
    assert percentile([], 0.5) is None


def test_durations_sum_their_cells_and_judge_the_target() -> None:
    cells = [DurationCell("S001", None, 2, 600.0, 2), DurationCell("S002", "app", 2, 7800.0, 1)]
    d = Durations.of(cells, [100.0, 500.0, 1800.0, 6000.0], target_seconds=1800)
    assert (d.count, d.mean_seconds, d.p50_seconds, d.p90_seconds) == (4, 2100.0, 500.0, 6000.0)
    assert d.share_within_target == 0.75
    assert d.mean_within_target is False
    empty = Durations.of([], [], target_seconds=1800)
    assert (empty.mean_seconds, empty.share_within_target, empty.mean_within_target) == (
        None,
        None,
        None,
    )


def test_endings_rates() -> None:
    e = Endings(
        collected=6,
        cancelled=2,
        expired=2,
        expired_after_ready=1,
        ended_after_ready=7,
        picked=8,
        short_picked=2,
    )
    assert e.ended == 10
    assert (e.expiry_rate, e.cancel_rate, e.no_show_rate, e.short_pick_rate) == (
        0.2,
        0.2,
        1 / 7,
        0.25,
    )
    assert Endings(0, 0, 0, 0, 0, 0, 0).no_show_rate is None


def test_figures_keep_only_the_scope_asked_for() -> None:
    facts = KpiFacts(
        attempts=(
            AttemptCount("S001", "web", Out.RESERVED, 3),
            AttemptCount("S002", "web", Out.OUT_OF_STOCK, 1),
            AttemptCount(None, "app", Out.OUT_OF_STOCK, 2),
        ),
        time_to_ready=DurationFacts(
            (DurationCell("S001", "web", 1, 60.0, 1), DurationCell("S002", "app", 1, 7200.0, 0)),
            (("S001", "web", 60.0), ("S002", "app", 7200.0)),
        ),
        endings={("S002", "web"): Endings(1, 0, 0, 0, 1, 0, 0)},
    )
    overall = figures(facts, ready_target_seconds=3600)
    assert (overall.success.asked, overall.time_to_ready.count) == (6, 2)
    assert overall.time_to_ready.share_within_target == 0.5
    s2 = figures(facts, ready_target_seconds=3600, keep=lambda store, channel: store == "S002")
    assert (s2.success.asked, s2.time_to_ready.p50_seconds, s2.endings.collected) == (1, 7200.0, 1)
    app = figures(facts, ready_target_seconds=3600, keep=lambda store, channel: channel == "app")
    assert (app.success.asked, app.success.rate) == (2, 0.0)
    assert stores_and_channels(facts) == (["S001", "S002"], ["app", "web"])
