"""How long to wait before trying again, for every queue that retries (POS webhooks, the WMS
feed, the order intake): exponential, capped, with jitter, and dead after a number of tries."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 3600.0


def retry_delay(
    attempts: int,
    rng: random.Random | None = None,
    *,
    first: float = FIRST_RETRY_SECONDS,
    cap: float = MAX_RETRY_SECONDS,
) -> float:
    """Seconds to wait after `attempts` failed tries: exponential, capped, with jitter (between
    half and all of it) so that many jobs failing together do not retry together."""
    ceiling = min(cap, first * 2.0 ** max(0, attempts - 1))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a job that failed `attempts` times runs again, or None when it is dead."""

    max_attempts: int
    first: float = FIRST_RETRY_SECONDS
    cap: float = MAX_RETRY_SECONDS

    def next_attempt(
        self, attempts: int, now: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        if attempts >= self.max_attempts:
            return None
        delay = retry_delay(attempts, rng, first=self.first, cap=self.cap)
        return now + timedelta(seconds=delay)
