"""The rate-limit counts in Redis (adapters.rate_limits): the Lua script gives the verdicts the
domain rule gives, atomically across replicas, with keys that expire; a Redis that does not
answer fails open, warns once in a while and counts it. Each test starts its own redis-server on
a free port (tests/integration/test_broker.py's), so that it can stop it."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis import asyncio as aioredis

from adapters.rate_limits import (
    DEFAULT_PREFIX,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from domain.rate_limits import ALLOWED, Rate, Verdict, admit, micros
from tests.clock import FakeClock
from tests.conftest import START
from tests.helpers import free_port
from tests.integration.test_broker import RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH: the Redis rate-limit tests start their own")
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def verdicts(limiter: RateLimiter, clock: FakeClock) -> list[Verdict]:
    """One scenario: a burst and past it, the steady rate, an idle spell, a clock set back."""
    rate = Rate(per_second=2, burst=3)
    seen = [await limiter.admit("graphql:customer:alice", rate) for _ in range(5)]
    clock.advance(0.5)
    seen += [await limiter.admit("graphql:customer:alice", rate) for _ in range(2)]
    seen.append(await limiter.admit("graphql:customer:bob", rate))
    clock.advance(3600)
    seen += [await limiter.admit("graphql:customer:alice", rate) for _ in range(4)]
    clock.advance(-7200)  # another replica's clock, or a test's, behind
    seen += [await limiter.admit("graphql:customer:alice", rate) for _ in range(2)]
    clock.advance(0.5)
    seen.append(await limiter.admit("graphql:customer:alice", rate))
    return seen


EXPECTED = [
    *[ALLOWED] * 3,
    Verdict(False, 1),
    Verdict(False, 1),
    ALLOWED,  # half a second: one more
    Verdict(False, 1),
    ALLOWED,  # another key
    *[ALLOWED] * 3,  # idle: the whole burst back, no more
    Verdict(False, 1),
    Verdict(False, 1),  # the clock went back: an empty bucket, not an hour's debt
    Verdict(False, 1),
    ALLOWED,  # and it refills from there
]


async def test_memory_gives_the_scenario_s_verdicts() -> None:
    clock = FakeClock(START)
    assert await verdicts(MemoryRateLimiter(clock), clock) == EXPECTED


async def test_redis_gives_the_same_verdicts_as_the_domain_rule(redis_server: RedisServer) -> None:
    clock = FakeClock(START)
    limiter = RedisRateLimiter(redis_server.url, clock)
    try:
        assert await verdicts(limiter, clock) == EXPECTED
        assert limiter.failed_open == 0
    finally:
        await limiter.close()


async def test_redis_keeps_the_exact_tat_and_forgets_the_key_when_the_bucket_is_full(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(START)
    limiter = RedisRateLimiter(redis_server.url, clock)
    client = aioredis.Redis.from_url(redis_server.url)
    rate = Rate(per_second=3, burst=4)  # 333,333 us: no float would add that up exactly
    try:
        tat = None
        for _ in range(4):
            assert await limiter.admit("k", rate) == ALLOWED
            tat, _ = admit(tat, micros(START), rate)
        stored = await client.get(f"{DEFAULT_PREFIX}k")
        assert stored is not None
        assert int(stored) == tat
        ttl = await client.pttl(f"{DEFAULT_PREFIX}k")
        assert 0 < ttl <= 1334  # until the bucket is full again (4 x 333.333 ms), no longer
    finally:
        await client.aclose()
        await limiter.close()


async def test_replicas_on_one_redis_share_a_budget_atomically(redis_server: RedisServer) -> None:
    clock = FakeClock(START)
    replicas = [RedisRateLimiter(redis_server.url, clock) for _ in range(3)]
    rate = Rate(per_second=1, burst=10)
    try:
        answers = await asyncio.gather(
            *(replicas[n % 3].admit("graphql:pos:till-1", rate) for n in range(60))
        )
        assert sum(answer.allowed for answer in answers) == 10  # no token spent twice
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_redis_that_does_not_answer_fails_open_counted_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(START)
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", clock)  # nothing there
    limiter.RETRY_SECONDS = 0  # try Redis on every check: each is a real failure
    rate = Rate(per_second=1, burst=1)
    try:
        with caplog.at_level(logging.WARNING, logger="adapters.rate_limits"):
            answers = [await limiter.admit("k", rate) for _ in range(5)]

        assert answers == [ALLOWED] * 5  # over the burst of 1, all through
        assert limiter.failed_open == 5
        warnings = [r for r in caplog.records if "fail open" in r.getMessage()]
        assert len(warnings) == 1  # not one a request
    finally:
        await limiter.close()


async def test_after_a_failure_checks_pass_without_trying_for_a_moment(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(START)
    limiter = RedisRateLimiter(redis_server.url, clock)
    limiter.RETRY_SECONDS = 3600  # "a moment" that outlasts a slow restart on a busy machine
    rate = Rate(per_second=1, burst=1)
    try:
        assert await limiter.admit("k", rate) == ALLOWED
        assert not (await limiter.admit("k", rate)).allowed
        await redis_server.stop()

        assert await limiter.admit("k", rate) == ALLOWED  # failed: open
        await redis_server.start()
        # Redis is back, but within RETRY_SECONDS nobody waits on it: still open, counted.
        assert await limiter.admit("k", rate) == ALLOWED
        assert limiter.failed_open == 2

        limiter._skip_until = 0.0  # the moment has passed
        assert await limiter.admit("k", rate) == ALLOWED  # a fresh Redis: a full bucket
        assert not (await limiter.admit("k", rate)).allowed  # counted in Redis again
        assert limiter.failed_open == 2
    finally:
        await limiter.close()


async def test_clear_moves_this_process_to_fresh_keys(redis_server: RedisServer) -> None:
    clock = FakeClock(START)
    limiter = RedisRateLimiter(redis_server.url, clock)
    rate = Rate(per_second=1, burst=1)
    try:
        await limiter.admit("k", rate)
        assert not (await limiter.admit("k", rate)).allowed

        limiter.clear()

        assert await limiter.admit("k", rate) == ALLOWED
    finally:
        await limiter.close()
