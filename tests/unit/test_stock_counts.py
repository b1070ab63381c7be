"""How a count (the WMS's, or an operator's) merges into a stock row, and when a row's low-stock
flag changes: rules of the stock rows, without a database."""

from __future__ import annotations

import pytest

from domain.stock import LevelUpdate, Recount, StockLevel, WatchedLevel, merge_count


def row(
    *,
    on_hand: int = 10,
    reserved: int = 3,
    wms_sequence: int | None = 5,
    low_stock_threshold: int | None = None,
) -> StockLevel:
    return StockLevel("S1", "A", on_hand, reserved, 1, wms_sequence, low_stock_threshold)


def test_an_absolute_count_sets_on_hand_and_keeps_what_ropos_reserved() -> None:
    merged = merge_count(row(), LevelUpdate("S1", "A", on_hand=7, sequence=6))

    assert merged == Recount(row(), row(on_hand=7, wms_sequence=6))
    assert merged.on_hand_change == -3
    assert merged.needs_write
    assert merged.tells_watchers


def test_a_delta_moves_on_hand_but_never_below_zero() -> None:
    down = merge_count(row(on_hand=2), LevelUpdate("S1", "A", delta=-5, sequence=6))
    up = merge_count(row(on_hand=2), LevelUpdate("S1", "A", delta=4, sequence=6))

    assert down is not None
    assert down.after.on_hand == 0
    assert up is not None
    assert up.after.on_hand == 6


@pytest.mark.parametrize("sequence", [5, 4, 0])
def test_a_count_no_newer_than_the_last_one_applied_is_stale(sequence: int) -> None:
    assert (
        merge_count(row(wms_sequence=5), LevelUpdate("S1", "A", on_hand=1, sequence=sequence))
        is None
    )


def test_a_count_without_a_sequence_always_applies_and_keeps_the_rows_sequence() -> None:
    merged = merge_count(row(wms_sequence=5), LevelUpdate("S1", "A", on_hand=1))

    assert merged is not None
    assert merged.after == row(on_hand=1, wms_sequence=5)


def test_safety_stock_and_threshold_change_only_when_the_count_gives_them() -> None:
    kept = merge_count(row(low_stock_threshold=4), LevelUpdate("S1", "A", on_hand=10, sequence=6))
    given = merge_count(
        row(low_stock_threshold=4),
        LevelUpdate("S1", "A", on_hand=10, sequence=6, safety_stock=0, low_stock_threshold=2),
    )

    assert kept is not None
    assert (kept.after.safety_stock, kept.after.low_stock_threshold) == (1, 4)
    assert given is not None
    assert (given.after.safety_stock, given.after.low_stock_threshold) == (0, 2)


def test_a_count_of_a_new_row_starts_from_nothing_reserved() -> None:
    merged = merge_count(None, LevelUpdate("S1", "A", on_hand=4, sequence=1))

    assert merged == Recount(None, StockLevel("S1", "A", 4, 0, 0, 1, None))
    assert merged.on_hand_change == 4
    assert merged.needs_write
    assert merged.tells_watchers


def test_a_new_row_counted_empty_moves_nothing_but_is_still_written_and_told() -> None:
    merged = merge_count(None, LevelUpdate("S1", "A", on_hand=0))

    assert merged is not None
    assert merged.on_hand_change == 0
    assert merged.needs_write
    assert merged.tells_watchers


def test_the_same_count_again_without_a_sequence_changes_nothing() -> None:
    merged = merge_count(row(), LevelUpdate("S1", "A", on_hand=10))

    assert merged is not None
    assert not merged.needs_write
    assert not merged.tells_watchers
    assert merged.on_hand_change == 0


def test_a_new_sequence_alone_is_written_but_tells_no_watcher() -> None:
    merged = merge_count(row(), LevelUpdate("S1", "A", on_hand=10, sequence=9))

    assert merged is not None
    assert merged.needs_write
    assert not merged.tells_watchers  # availability and threshold are as they were


def test_a_threshold_change_alone_tells_the_watchers() -> None:
    merged = merge_count(row(), LevelUpdate("S1", "A", on_hand=10, low_stock_threshold=20))

    assert merged is not None
    assert merged.tells_watchers


def test_a_count_below_what_is_reserved_leaves_the_row_short() -> None:
    merged = merge_count(row(reserved=3), LevelUpdate("S1", "A", on_hand=2, sequence=6))

    assert merged is not None
    assert merged.after.is_short
    assert merged.after.available == 0  # never shown below zero


# --- low stock ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_hand", "threshold", "alerted", "changes"),
    [
        (10, None, False, False),  # no threshold: never
        (10, 5, False, False),  # above it
        (5, 5, False, False),  # at it: not below
        (4, 5, False, True),  # fell below: flag and report
        (4, 5, True, False),  # still below: reported already
        (6, 5, True, True),  # recovered: clear, so the next fall is reported
        (5, 5, True, True),  # back at the threshold counts as recovered
    ],
)
def test_a_row_changes_its_low_stock_flag_only_when_it_crosses_the_threshold(
    on_hand: int, threshold: int | None, alerted: bool, changes: bool
) -> None:
    watched = WatchedLevel(StockLevel("S1", "A", on_hand, 0, 0, None, threshold), alerted)
    assert watched.alert_changes is changes
