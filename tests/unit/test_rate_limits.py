"""The rate-limit rule (domain.rate_limits: GCRA) with a fake time, the in-memory counts, who the
caller is (the client address behind trusted proxies only), and the settings ops set."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from adapters.rate_limits import MemoryRateLimiter, make_rate_limiter
from domain.access import Actor, Role
from domain.rate_limits import (
    ALLOWED,
    MICROS_PER_SECOND,
    Rate,
    Verdict,
    admit,
    micros,
    retry_after_seconds,
    verdict,
)
from gateway.rate_limits import SERVICE_ROLES, EdgeLimits, client_address
from gateway.settings import Settings
from tests.clock import FakeClock
from tests.conftest import START

SECOND = MICROS_PER_SECOND
T0 = micros(START)


class Bucket:
    """One key's TAT, run through the pure rule at times the test chooses."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.tat: int | None = None

    def at(self, now: int) -> int:
        """The wait (0: the request passed, and was counted)."""
        tat, wait = admit(self.tat, now, self.rate)
        if tat is not None:
            self.tat = tat
        return wait


# --- the rule -------------------------------------------------------------------------------------


def test_a_full_bucket_lets_the_burst_through_at_once_and_refuses_the_next() -> None:
    bucket = Bucket(Rate(per_second=2, burst=5))

    waits = [bucket.at(T0) for _ in range(6)]

    assert waits[:5] == [0] * 5
    assert waits[5] == SECOND // 2  # the next one passes one interval later


def test_once_spent_it_lets_one_through_per_interval() -> None:
    bucket = Bucket(Rate(per_second=4, burst=2))
    assert [bucket.at(T0), bucket.at(T0)] == [0, 0]

    passed = [bucket.at(T0 + ms * 1000) == 0 for ms in range(0, 1001, 50)]

    # Over one second at 4/s: at 250, 500, 750 and 1000 ms, and never in between.
    assert [ms for ms, ok in zip(range(0, 1001, 50), passed, strict=True) if ok] == [
        250,
        500,
        750,
        1000,
    ]


def test_an_idle_caller_gets_its_whole_burst_back_and_no_more() -> None:
    bucket = Bucket(Rate(per_second=1, burst=3))
    assert [bucket.at(T0) for _ in range(3)] == [0, 0, 0]

    later = T0 + 3600 * SECOND  # an hour idle: the bucket is full, not an hour's worth
    assert [bucket.at(later) == 0 for _ in range(4)] == [True, True, True, False]


def test_the_last_request_of_a_burst_passes_whatever_the_rate_rounds_to() -> None:
    # 3/s is 333,333 us: in floats, three intervals could add up to a hair over the burst.
    for per_second in (3, 7, 0.3, 1 / 3, 999):
        bucket = Bucket(Rate(per_second=per_second, burst=3))
        assert [bucket.at(T0) for _ in range(3)] == [0, 0, 0], per_second
        assert bucket.at(T0) > 0, per_second


def test_a_refused_request_consumes_nothing() -> None:
    bucket = Bucket(Rate(per_second=1, burst=1))
    assert bucket.at(T0) == 0

    refusals = [bucket.at(T0 + ms * 1000) for ms in range(0, 1000, 10)]

    assert all(wait > 0 for wait in refusals)
    assert bucket.at(T0 + SECOND) == 0  # as if none of the refused had been sent


def test_retry_after_is_when_the_next_request_would_pass_in_whole_seconds() -> None:
    bucket = Bucket(Rate(per_second=0.5, burst=1))  # one every 2 s
    assert bucket.at(T0) == 0

    assert verdict(bucket.at(T0)) == Verdict(False, 2)
    assert verdict(bucket.at(T0 + 1_500_000)) == Verdict(False, 1)  # 0.5 s rounds up to 1
    assert verdict(bucket.at(T0 + 2 * SECOND)) == ALLOWED


def test_retry_after_is_rounded_up_and_at_least_one_second() -> None:
    assert retry_after_seconds(1) == 1
    assert retry_after_seconds(SECOND) == 1
    assert retry_after_seconds(SECOND + 1) == 2
    assert retry_after_seconds(0) == 1  # never 0: "retry now" would be a busy loop
    assert verdict(0) == ALLOWED


def test_a_clock_that_went_back_leaves_at_most_one_burst_of_debt() -> None:
    bucket = Bucket(Rate(per_second=1, burst=2))
    assert [bucket.at(T0 + 3600 * SECOND) for _ in range(2)] == [0, 0]  # far in the future

    # Back to T0: the TAT is an hour ahead, but counts as an empty bucket, not an hour's debt.
    assert verdict(bucket.at(T0)) == Verdict(False, 1)
    assert bucket.at(T0 + SECOND) == 0


def test_a_rate_needs_a_burst_and_zero_is_off() -> None:
    with pytest.raises(ValueError, match="burst"):
        Rate(per_second=1, burst=0)
    assert not Rate(per_second=0, burst=0).enabled
    assert Rate(per_second=0.01, burst=1).enabled


def test_times_are_exact_microseconds() -> None:
    assert micros(START + timedelta(microseconds=1)) - micros(START) == 1
    assert micros(START) == int(START.timestamp()) * SECOND


@given(
    per_second=st.sampled_from([0.5, 1.0, 3.0, 10.0, 250.0]),
    burst=st.integers(1, 20),
    gaps=st.lists(st.integers(0, 3 * SECOND), min_size=1, max_size=200),
)
def test_no_window_passes_more_than_the_burst_plus_the_rate(
    per_second: float, burst: int, gaps: list[int]
) -> None:
    rate = Rate(per_second, burst)
    bucket = Bucket(rate)
    now, passed = T0, []
    for gap in gaps:
        now += gap
        if bucket.at(now) == 0:
            passed.append(now)
    for i, start in enumerate(passed):
        for j in range(i, len(passed)):
            window = passed[j] - start
            assert j - i + 1 <= burst + window // rate.interval


@given(
    per_second=st.sampled_from([0.5, 1.0, 3.0, 10.0]),
    burst=st.integers(1, 10),
    gaps=st.lists(st.integers(0, 2 * SECOND), min_size=1, max_size=50),
)
def test_a_refused_caller_that_waits_the_wait_is_served(
    per_second: float, burst: int, gaps: list[int]
) -> None:
    bucket = Bucket(Rate(per_second, burst))
    now = T0
    for gap in gaps:
        now += gap
        wait = bucket.at(now)
        if wait:
            assert admit(bucket.tat, now + wait - 1, bucket.rate)[1] > 0  # not a moment sooner
            assert bucket.at(now + wait) == 0
            now += wait


# --- the counts in memory -------------------------------------------------------------------------


async def test_memory_counts_each_key_apart_on_the_apps_clock() -> None:
    clock = FakeClock(START)
    limiter = MemoryRateLimiter(clock)
    rate = Rate(per_second=1, burst=2)

    alice = [await limiter.admit("graphql:customer:alice", rate) for _ in range(3)]
    bob = await limiter.admit("graphql:customer:bob", rate)

    assert alice == [ALLOWED, ALLOWED, Verdict(False, 1)]
    assert bob == ALLOWED
    clock.advance(1)
    assert await limiter.admit("graphql:customer:alice", rate) == ALLOWED
    assert limiter.failed_open == 0


async def test_memory_counts_stay_bounded_under_a_flood_of_keys() -> None:
    clock = FakeClock(START)
    limiter = MemoryRateLimiter(clock)
    limiter.MAX_KEYS = 100
    rate = Rate(per_second=1, burst=1)
    assert await limiter.admit("spent", rate) == ALLOWED
    for n in range(99):
        await limiter.admit(f"made-up-{n}", rate)

    clock.advance(0.5)  # none is full again yet: room is made by starting afresh
    await limiter.admit("one-too-many", rate)
    assert len(limiter._tats) == 1

    for n in range(99):
        await limiter.admit(f"again-{n}", rate)
    clock.advance(5)  # all full again: dropping them changes nothing
    await limiter.admit("after", rate)
    assert set(limiter._tats) == {"after"}


async def test_clear_starts_every_caller_afresh() -> None:
    limiter = MemoryRateLimiter(FakeClock(START))
    rate = Rate(per_second=1, burst=1)
    await limiter.admit("k", rate)
    assert not (await limiter.admit("k", rate)).allowed

    limiter.clear()

    assert await limiter.admit("k", rate) == ALLOWED


def test_the_broker_url_says_where_the_counts_live() -> None:
    clock = FakeClock(START)
    assert isinstance(make_rate_limiter("memory://", clock), MemoryRateLimiter)
    assert type(make_rate_limiter("redis://127.0.0.1:6399/0", clock)).__name__ == (
        "RedisRateLimiter"
    )
    with pytest.raises(ValueError, match="unsupported"):
        make_rate_limiter("kafka://x", clock)


# --- who the caller is ----------------------------------------------------------------------------

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


def test_without_trusted_proxies_the_peer_is_the_caller_whatever_it_forwards() -> None:
    assert client_address("198.51.100.7", ["203.0.113.1"], []) == "198.51.100.7"


def test_x_forwarded_for_counts_only_when_the_peer_is_a_trusted_proxy() -> None:
    assert client_address("198.51.100.7", ["203.0.113.1"], PROXIES) == "198.51.100.7"
    assert client_address("10.1.2.3", ["203.0.113.1"], PROXIES) == "203.0.113.1"
    assert client_address("10.1.2.3", [], PROXIES) == "10.1.2.3"


def test_the_right_most_untrusted_entry_is_the_client_and_what_it_wrote_is_ignored() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1" to look like someone else; our proxies appended
    # the address they saw (203.0.113.9), then each other's.
    forwarded = ["1.1.1.1, 203.0.113.9, 10.0.0.5"]
    assert client_address("10.0.0.6", forwarded, PROXIES) == "203.0.113.9"
    # Several headers are one list, in order.
    assert client_address("10.0.0.6", ["1.1.1.1", "203.0.113.9 , 10.0.0.5"], PROXIES) == (
        "203.0.113.9"
    )
    assert client_address("fd00::1", ["2001:db8::7"], PROXIES) == "2001:db8::7"


def test_an_entry_that_is_no_address_stops_at_the_last_trusted_hop() -> None:
    assert client_address("10.0.0.6", ["203.0.113.9, garbage, 10.0.0.5"], PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.6", ["garbage"], PROXIES) == "10.0.0.6"


def test_an_ipv4_peer_on_a_dual_stack_socket_is_the_same_address() -> None:
    assert client_address("::ffff:10.0.0.6", ["203.0.113.9"], PROXIES) == "203.0.113.9"
    assert client_address("10.0.0.6", ["::ffff:203.0.113.9"], PROXIES) == "203.0.113.9"


def test_when_every_hop_is_ours_the_left_most_is_the_caller() -> None:
    assert client_address("10.0.0.6", ["10.9.9.9, 10.0.0.5"], PROXIES) == "10.9.9.9"


def test_a_token_names_the_caller_and_its_role_picks_the_limit() -> None:
    settings = Settings(
        rate_limit_graphql_per_second=1,
        rate_limit_graphql_service_per_second=2,
        rate_limit_graphql_anonymous_per_second=3,
    )
    limits = EdgeLimits(settings, MemoryRateLimiter(FakeClock(START)), FakeClock(START))
    for role in Role:
        actor = Actor(
            role=role,
            subject="s-1",
            store_id="S001" if role in (Role.STAFF, Role.POS) else None,
            channel="shopify" if role is Role.CHANNEL else None,
        )
        key, rate = limits.caller(_conn("198.51.100.7"), actor)
        assert key == f"{role.value}:s-1"
        assert rate.per_second == (2 if role in SERVICE_ROLES else 1), role
    key, rate = limits.caller(_conn("198.51.100.7"), None)
    assert (key, rate.per_second) == ("addr:198.51.100.7", 3)
    assert {Role.OPS, Role.POS, Role.WMS, Role.CHANNEL} == SERVICE_ROLES


def test_a_token_that_does_not_verify_is_no_caller() -> None:
    clock = FakeClock(START)
    limits = EdgeLimits(Settings(), MemoryRateLimiter(clock), clock)
    assert limits.actor("Bearer not-a-token") is None
    assert limits.actor(None) is None


async def test_a_limit_of_zero_is_never_counted() -> None:
    class Refusing(MemoryRateLimiter):
        async def admit(self, key: str, rate: Rate) -> Verdict:
            raise AssertionError("an off limit must not be counted")

    clock = FakeClock(START)
    limits = EdgeLimits(Settings(rate_limit_graphql_anonymous_per_second=0), Refusing(clock), clock)
    for _ in range(100):
        assert await limits.check("graphql", "addr:x", limits.anonymous) == ALLOWED


def _conn(host: str, *forwarded: str) -> HTTPConnection:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return HTTPConnection({"type": "http", "client": (host, 40000), "headers": headers})


def test_the_address_is_read_off_the_connection_behind_the_trusted_proxies() -> None:
    clock = FakeClock(START)
    limits = EdgeLimits(Settings(trusted_proxies=["10.0.0.0/8"]), MemoryRateLimiter(clock), clock)
    assert limits.address(_conn("10.0.0.6", "1.1.1.1", "203.0.113.9, 10.0.0.5")) == "203.0.113.9"
    assert limits.address(_conn("198.51.100.7", "203.0.113.9")) == "198.51.100.7"


# --- the settings ---------------------------------------------------------------------------------


def test_every_limit_is_on_by_default() -> None:
    settings = Settings()
    figures = [
        settings.rate_limit_graphql_per_second,
        settings.rate_limit_graphql_service_per_second,
        settings.rate_limit_graphql_anonymous_per_second,
        settings.rate_limit_intake_per_second,
        settings.rate_limit_wms_per_second,
    ]
    assert all(figure > 0 for figure in figures)
    # People get less than systems; anonymous callers the least.
    assert settings.rate_limit_graphql_anonymous_per_second <= (
        settings.rate_limit_graphql_per_second
    )
    assert settings.rate_limit_graphql_per_second < settings.rate_limit_graphql_service_per_second


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(trusted_proxies=["10.0.0.0/8", " 192.0.2.1 ", "::1"]).trusted_proxies == [
        "10.0.0.0/8",
        "192.0.2.1",
        "::1",
    ]
    with pytest.raises(ValidationError, match="ROPOS_TRUSTED_PROXIES"):
        Settings(trusted_proxies=["proxy.internal"])
