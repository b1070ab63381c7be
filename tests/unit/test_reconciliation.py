"""Reconciliation's judgement of one (store, SKU): skipped, agreed, repaired by its owner's figure
(on hand is the WMS's, reserved is ROPOS's), or left open for ops; without a database."""

from __future__ import annotations

import pytest

from domain.reconciliation import (
    SKIPPED,
    DiscrepancyKind,
    DiscrepancyStatus,
    Finding,
    RowFacts,
    Verdict,
    differing_skus,
    judge,
)
from domain.stock import LevelUpdate, StockLevel
from domain.wms import WmsLevel


def ours(on_hand: int = 10, reserved: int = 2, sequence: int | None = 5) -> StockLevel:
    return StockLevel("S1", "A", on_hand, reserved, 0, sequence)


def theirs(on_hand: int = 10, reserved: int = 2, sequence: int | None = 5) -> WmsLevel:
    return WmsLevel("S1", "A", on_hand, reserved, sequence)


def facts(
    mine: StockLevel | None,
    wms: WmsLevel | None,
    *,
    in_flight: bool = False,
    gone: bool = False,
    dead_movements: tuple[str, ...] = (),
    open_kinds: frozenset[DiscrepancyKind] = frozenset(),
) -> RowFacts:
    differs = (
        mine is None
        or wms is None
        or (mine.on_hand, mine.reserved)
        != (
            wms.on_hand,
            wms.reserved,
        )
    )
    return RowFacts(
        sku="A",
        ours=mine,
        theirs=wms,
        differs=differs,
        gone=gone,
        in_flight=in_flight,
        dead_movements=dead_movements,
        open_kinds=open_kinds,
    )


def test_a_row_that_agrees_is_compared_and_counts_as_accurate() -> None:
    assert judge("S1", facts(ours(), theirs())) == Verdict(compared=True, accurate=True)


def test_on_hand_that_differs_takes_the_wms_count_with_its_newer_sequence() -> None:
    verdict = judge("S1", facts(ours(on_hand=10, sequence=5), theirs(on_hand=8, sequence=7)))

    assert verdict == Verdict(
        compared=True,
        findings=(
            Finding(
                DiscrepancyKind.ON_HAND,
                10,
                8,
                DiscrepancyStatus.REPAIRED,
                "On hand set to the WMS's count.",
            ),
        ),
        take_count=LevelUpdate("S1", "A", on_hand=8, sequence=7),
        accurate=False,
    )


def test_a_wms_count_of_the_same_sequence_is_taken_without_moving_the_sequence() -> None:
    verdict = judge("S1", facts(ours(on_hand=10, sequence=5), theirs(on_hand=8, sequence=5)))

    assert verdict is not None
    assert verdict.take_count == LevelUpdate("S1", "A", on_hand=8, sequence=None)


def test_reserved_that_differs_sends_ropos_figure() -> None:
    verdict = judge("S1", facts(ours(reserved=2), theirs(reserved=5)))

    assert verdict is not None
    assert verdict.send_reserved == 2
    assert verdict.take_count is None
    assert [(f.kind, f.ropos_value, f.wms_value, f.status) for f in verdict.findings] == [
        (DiscrepancyKind.RESERVED, 2, 5, DiscrepancyStatus.REPAIRED)
    ]


def test_both_figures_differing_repairs_both() -> None:
    verdict = judge("S1", facts(ours(on_hand=10, reserved=2), theirs(on_hand=7, reserved=0)))

    assert verdict is not None
    assert [f.kind for f in verdict.findings] == [DiscrepancyKind.ON_HAND, DiscrepancyKind.RESERVED]
    assert verdict.take_count is not None
    assert verdict.send_reserved == 2


def test_a_row_only_the_wms_has_is_compared_as_zero_on_our_side() -> None:
    verdict = judge("S1", facts(None, theirs(on_hand=3, reserved=0, sequence=2)))

    assert verdict is not None
    assert verdict.take_count == LevelUpdate("S1", "A", on_hand=3, sequence=2)
    assert verdict.send_reserved is None


@pytest.mark.parametrize(
    ("in_flight", "gone"), [(True, False), (False, True)], ids=["movements on their way", "deleted"]
)
def test_a_row_still_moving_or_gone_is_skipped(in_flight: bool, gone: bool) -> None:
    verdict = judge("S1", facts(ours(on_hand=1), theirs(on_hand=9), in_flight=in_flight, gone=gone))

    assert verdict is SKIPPED


def test_a_row_holding_a_newer_count_than_the_one_read_is_skipped() -> None:
    assert judge("S1", facts(ours(on_hand=4, sequence=9), theirs(on_hand=6, sequence=8))) is SKIPPED


def test_dead_movements_on_a_row_that_differs_are_left_open_for_ops() -> None:
    verdict = judge(
        "S1",
        facts(ours(reserved=3), theirs(reserved=1), dead_movements=("m1", "m2")),
    )

    assert verdict is not None
    assert verdict.compared
    assert verdict.accurate is False
    assert verdict.take_count is None
    assert verdict.send_reserved is None
    (finding,) = verdict.findings
    assert (finding.kind, finding.status) == (
        DiscrepancyKind.DEAD_MOVEMENTS,
        DiscrepancyStatus.OPEN,
    )
    assert (finding.ropos_value, finding.wms_value) == (3, 1)
    assert "m1, m2" in finding.resolution


def test_dead_movements_on_a_row_that_agrees_need_nothing() -> None:
    assert judge("S1", facts(ours(), theirs(), dead_movements=("m1",))) is None


def test_stock_the_wms_does_not_know_is_left_open() -> None:
    verdict = judge("S1", facts(ours(on_hand=4, reserved=0), None))

    assert verdict is not None
    (finding,) = verdict.findings
    assert (finding.kind, finding.status, finding.ropos_value, finding.wms_value) == (
        DiscrepancyKind.MISSING_IN_WMS,
        DiscrepancyStatus.OPEN,
        4,
        None,
    )
    assert verdict.accurate is False


def test_an_empty_row_the_wms_does_not_know_needs_nothing() -> None:
    assert judge("S1", facts(ours(on_hand=0, reserved=0), None)) is None


def test_an_open_finding_reported_before_is_not_reported_again_but_the_row_counts() -> None:
    verdict = judge(
        "S1",
        facts(
            ours(on_hand=4, reserved=0),
            None,
            open_kinds=frozenset({DiscrepancyKind.MISSING_IN_WMS}),
        ),
    )

    assert verdict == Verdict(compared=True, accurate=False)


def test_a_repair_is_reported_even_when_an_open_one_of_its_kind_exists() -> None:
    verdict = judge(
        "S1",
        facts(ours(on_hand=10), theirs(on_hand=8), open_kinds=frozenset({DiscrepancyKind.ON_HAND})),
    )

    assert verdict is not None
    assert [f.kind for f in verdict.findings] == [DiscrepancyKind.ON_HAND]


def test_the_rows_worth_locking_are_those_that_differ_or_only_one_side_has() -> None:
    mine = {"A": ours(), "B": ours(on_hand=1), "C": ours()}
    wms = {"A": theirs(), "B": theirs(on_hand=2), "D": theirs()}

    assert differing_skus(mine, wms) == ["B", "C", "D"]
