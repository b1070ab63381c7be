"""The periodic gap sweep's next window for an account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.intake import ChannelAccount, SalesChannel
from services.intake.sweep import FIRST_LOOKBACK, MAX_SLICE, OVERLAP, SETTLE, window

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def account(**fields: object) -> ChannelAccount:
    return ChannelAccount(channel=SalesChannel.WOOCOMMERCE, account="acme", **fields)  # type: ignore[arg-type]


def test_the_next_window_overlaps_the_last_and_ends_before_the_settling_minutes() -> None:
    swept = NOW - timedelta(minutes=10)
    assert window(account(swept_until=swept), NOW) == (swept - OVERLAP, NOW - SETTLE)


def test_a_new_account_is_swept_from_its_creation_but_never_further_back_than_a_day() -> None:
    created = NOW - timedelta(hours=1)
    assert window(account(created_at=created), NOW) == (created, NOW - SETTLE)
    old = account(created_at=NOW - timedelta(days=30))
    assert window(old, NOW) == (NOW - FIRST_LOOKBACK, NOW - FIRST_LOOKBACK + MAX_SLICE)


def test_nothing_is_due_for_an_account_made_a_moment_ago() -> None:
    assert window(account(created_at=NOW - timedelta(seconds=30)), NOW) is None
