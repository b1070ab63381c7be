"""The reservation policy: hold durations, per-customer limits and the checks on a policy itself."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import BadInput, LimitExceeded
from domain.policy import MAX_HOLD_SECONDS, MIN_HOLD_SECONDS, ReservationPolicy

TWO_HOURS = 2 * 3600
ONE_DAY = 24 * 3600


# --- defaults ---------------------------------------------------------------------------------


def test_default_policy_holds_two_hours_and_allows_two_hours_or_a_day() -> None:
    policy = ReservationPolicy()

    assert policy.default_hold_seconds == 7200
    assert policy.allowed_hold_seconds == (7200, 86400)


def test_default_policy_limits() -> None:
    policy = ReservationPolicy()

    assert policy.max_active_reservations_per_customer == 5
    assert policy.max_units_per_sku_per_customer == 10
    assert policy.expiry_warning_seconds == 900
    assert policy.max_stores_per_group == 3


def test_create_sorts_and_deduplicates_the_allowed_holds() -> None:
    policy = ReservationPolicy.create(
        allowed_hold_seconds=[ONE_DAY, 3600, ONE_DAY, TWO_HOURS], default_hold_seconds=3600
    )

    assert policy.allowed_hold_seconds == (3600, 7200, 86400)
    assert policy.default_hold_seconds == 3600


# --- hold_seconds_for -------------------------------------------------------------------------


def test_no_requested_hold_takes_the_default() -> None:
    assert ReservationPolicy().hold_seconds_for(None) == TWO_HOURS


def test_no_requested_hold_takes_a_non_first_default() -> None:
    policy = ReservationPolicy(default_hold_seconds=ONE_DAY)

    assert policy.hold_seconds_for(None) == ONE_DAY


@pytest.mark.parametrize("seconds", [TWO_HOURS, ONE_DAY])
def test_an_allowed_hold_is_granted_as_asked(seconds: int) -> None:
    assert ReservationPolicy().hold_seconds_for(seconds) == seconds


@pytest.mark.parametrize("seconds", [0, -7200, 3600, 7199, 7201, 2 * ONE_DAY])
def test_a_hold_not_in_the_allowed_list_is_refused_on_hold_seconds(seconds: int) -> None:
    with pytest.raises(BadInput) as raised:
        ReservationPolicy().hold_seconds_for(seconds)

    assert raised.value.code == "BAD_USER_INPUT"
    assert raised.value.details == {"field": "holdSeconds", "allowed": [7200, 86400]}
    assert str(seconds) in raised.value.message


# --- a policy that cannot work ------------------------------------------------------------------


def bad(field: str, **fields: Any) -> None:
    """The policy built from `fields` is refused, naming `field`."""
    with pytest.raises(BadInput) as raised:
        ReservationPolicy(**fields)
    assert raised.value.details["field"] == field


def test_a_default_hold_not_among_the_allowed_is_refused() -> None:
    bad("defaultHoldSeconds", default_hold_seconds=3600)


def test_an_empty_allowed_list_is_refused() -> None:
    bad("allowedHoldSeconds", allowed_hold_seconds=())


@pytest.mark.parametrize("seconds", [0, -1, MIN_HOLD_SECONDS - 1, MAX_HOLD_SECONDS + 1])
def test_an_allowed_hold_out_of_range_is_refused(seconds: int) -> None:
    bad("allowedHoldSeconds", allowed_hold_seconds=(TWO_HOURS, seconds))


def test_holds_at_the_range_limits_are_accepted() -> None:
    policy = ReservationPolicy(
        default_hold_seconds=MIN_HOLD_SECONDS,
        allowed_hold_seconds=(MIN_HOLD_SECONDS, MAX_HOLD_SECONDS),
        expiry_warning_seconds=0,
    )

    assert policy.allowed_hold_seconds == (60, 30 * 24 * 3600)


def test_more_than_twenty_allowed_holds_are_refused() -> None:
    allowed = tuple(3600 * hours for hours in range(1, 22))

    bad("allowedHoldSeconds", default_hold_seconds=3600, allowed_hold_seconds=allowed)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("max_active_reservations_per_customer", "maxActiveReservationsPerCustomer"),
        ("max_units_per_sku_per_customer", "maxUnitsPerSkuPerCustomer"),
        ("max_stores_per_group", "maxStoresPerGroup"),
    ],
)
@pytest.mark.parametrize("value", [0, -1, 1_000_001])
def test_a_limit_out_of_range_is_refused(name: str, field: str, value: int) -> None:
    bad(field, **{name: value})


@pytest.mark.parametrize(
    "name",
    [
        "max_active_reservations_per_customer",
        "max_units_per_sku_per_customer",
        "max_stores_per_group",
    ],
)
def test_a_limit_of_one_is_accepted(name: str) -> None:
    fields: dict[str, Any] = {name: 1}

    policy = ReservationPolicy(**fields)

    assert getattr(policy, name) == 1


@pytest.mark.parametrize("warning", [TWO_HOURS, TWO_HOURS + 1, ONE_DAY])
def test_an_expiry_warning_not_shorter_than_the_shortest_hold_is_refused(warning: int) -> None:
    bad("expiryWarningSeconds", expiry_warning_seconds=warning)


def test_a_negative_expiry_warning_is_refused() -> None:
    bad("expiryWarningSeconds", expiry_warning_seconds=-1)


def test_an_expiry_warning_just_under_the_shortest_hold_is_accepted() -> None:
    policy = ReservationPolicy(expiry_warning_seconds=TWO_HOURS - 1)

    assert policy.expiry_warning_seconds == 7199


# --- limits -----------------------------------------------------------------------------------


def test_units_within_the_per_sku_limit_pass() -> None:
    ReservationPolicy().check_units_requested({"A": 10, "B": 1})


def test_units_over_the_per_sku_limit_raise_limit_exceeded_naming_the_skus() -> None:
    policy = ReservationPolicy()

    with pytest.raises(LimitExceeded) as raised:
        policy.check_units_requested({"C": 11, "A": 10, "B": 50})

    assert raised.value.code == "LIMIT_EXCEEDED"
    assert raised.value.limit == "maxUnitsPerSkuPerCustomer"
    assert raised.value.details == {
        "limit": "maxUnitsPerSkuPerCustomer",
        "skus": ["B", "C"],
        "max": 10,
    }


def test_per_sku_limit_follows_the_policy() -> None:
    policy = ReservationPolicy(max_units_per_sku_per_customer=2)

    with pytest.raises(LimitExceeded) as raised:
        policy.check_units_requested({"A": 3})

    assert raised.value.details["max"] == 2
    assert raised.value.details["skus"] == ["A"]


def test_reservations_exceeded_names_the_active_reservations_limit() -> None:
    error = ReservationPolicy(max_active_reservations_per_customer=4).reservations_exceeded()

    assert isinstance(error, LimitExceeded)
    assert error.limit == "maxActiveReservationsPerCustomer"
    assert error.details == {"limit": "maxActiveReservationsPerCustomer", "max": 4}
    assert "at most 4 active reservations" in error.message
