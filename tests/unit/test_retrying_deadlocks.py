"""A transaction PostgreSQL failed to break a lock cycle is run again; other failures are not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.unit_of_work import DEADLOCK_ATTEMPTS, RetryableConflict, retrying_deadlocks

pytestmark = pytest.mark.asyncio(loop_scope="session")


def failing(times: int, what: str = "deadlock") -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise RetryableConflict(what)
        return "done"

    return attempt, calls


async def test_a_deadlocked_attempt_is_run_again_until_it_goes_through() -> None:
    attempt, calls = failing(DEADLOCK_ATTEMPTS - 1)
    assert await retrying_deadlocks(attempt) == "done"
    assert len(calls) == DEADLOCK_ATTEMPTS


async def test_it_gives_up_after_the_last_attempt() -> None:
    attempt, calls = failing(DEADLOCK_ATTEMPTS)
    with pytest.raises(RetryableConflict):
        await retrying_deadlocks(attempt)
    assert len(calls) == DEADLOCK_ATTEMPTS


async def test_other_conflicts_are_not_retried_here() -> None:
    attempt, calls = failing(1, what="pickup_code")
    with pytest.raises(RetryableConflict):
        await retrying_deadlocks(attempt)
    assert len(calls) == 1
