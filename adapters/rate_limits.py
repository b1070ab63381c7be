"""Where the rate limits' counts live: in this process on memory:// (the embedded mode, one
process), in Redis on redis:// so that every replica counts against the same budget.

Both keep one number per key (domain.rate_limits: the GCRA's TAT) and read "now" from the app's
clock, so tests move time instead of sleeping. Redis runs the rule as one Lua script per check
(atomic: two replicas never both spend a caller's last token), with keys that expire once the
bucket is full again. A Redis that cannot be reached does not take the service down: the check
fails open (the request passes), counted in `failed_open`, with a warning at most every
WARN_EVERY_SECONDS."""

from __future__ import annotations

import logging
import time
from typing import Protocol
from urllib.parse import urlsplit

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.broker import redact
from domain.clock import Clock
from domain.rate_limits import ALLOWED, Rate, Verdict, admit, micros, verdict

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "ropos:rate:"


class RateLimiter(Protocol):
    """Counts requests per key against a Rate; the gateway's edges ask it before any work."""

    @property
    def failed_open(self) -> int:
        """Checks that let the request pass because the counts could not be reached."""
        ...

    async def admit(self, key: str, rate: Rate) -> Verdict: ...

    def clear(self) -> None:
        """Forget every count (tests: each starts with full buckets)."""
        ...

    async def close(self) -> None: ...


def make_rate_limiter(url: str, clock: Clock) -> RateLimiter:
    """The limiter for the broker URL: memory:// counts in this process, redis:// (rediss://,
    unix://) in that Redis, on a connection pool of its own (a slow limit check must not queue
    behind the broker's publishing, nor the other way round)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryRateLimiter(clock)
    if scheme in ("redis", "rediss", "unix"):
        return RedisRateLimiter(url, clock)
    raise ValueError(f"unsupported broker URL {redact(url)!r} for rate limits")


class MemoryRateLimiter:
    """The counts in a dict of this process. A flood of distinct keys (made-up account names)
    cannot grow it without end: at MAX_KEYS the keys whose bucket is full again are dropped (the
    same as keeping them), and if that is not enough, all of them (callers start afresh)."""

    MAX_KEYS = 100_000

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}

    @property
    def failed_open(self) -> int:
        return 0  # nothing here can be unreachable

    async def admit(self, key: str, rate: Rate) -> Verdict:
        now = micros(self._clock.now())
        tat, wait = admit(self._tats.get(key), now, rate)
        if tat is not None:
            if key not in self._tats and len(self._tats) >= self.MAX_KEYS:
                self._make_room(now)
            self._tats[key] = tat
        return verdict(wait)

    def _make_room(self, now: int) -> None:
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        if len(self._tats) >= self.MAX_KEYS:
            log.warning("rate limit counts full: starting afresh", extra={"keys": len(self._tats)})
            self._tats.clear()

    def clear(self) -> None:
        self._tats.clear()

    async def close(self) -> None:
        return None


# KEYS[1]: the key. ARGV: now, the interval, the tolerance (whole microseconds; see
# domain.rate_limits.admit, which this mirrors line for line). Returns the microseconds to wait,
# 0 when the request passes (and its TAT is stored, expiring when the bucket is full again).
# '%.0f' writes the TAT as an exact integer: tostring() would keep only 14 digits of it.
_ADMIT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local stored = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local stepped_back = stored > now + tolerance
local tat = stored
if tat < now then tat = now end
if tat > now + tolerance then tat = now + tolerance end
local after = tat + interval
if after - now > tolerance then
  if stepped_back then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
  end
  return after - tolerance - now
end
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000))
return 0
"""


class RedisRateLimiter:
    """The counts in Redis, shared by every replica on it.

    Fails open: when Redis does not answer (down, refused, slower than `timeout` seconds), the
    request passes and `failed_open` counts it; for RETRY_SECONDS after a failure checks pass
    without trying (a Redis that times out must not add its timeout to every request), then
    the next one tries again. Keys start with `prefix`."""

    RETRY_SECONDS = 1.0
    WARN_EVERY_SECONDS = 10.0

    def __init__(
        self, url: str, clock: Clock, *, prefix: str = DEFAULT_PREFIX, timeout: float = 0.5
    ) -> None:
        self._clock = clock
        self._base = prefix
        self._prefix = prefix
        self._generation = 0
        # One immediate retry on a fresh connection covers a pooled one a Redis restart left
        # stale; redis-py's default (several, with backoff) would hold requests for seconds.
        self._client = aioredis.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
        )
        self._script = self._client.register_script(_ADMIT)
        self._failed_open = 0
        self._skip_until = 0.0  # time.monotonic(): real time, whatever the app's clock says
        self._next_warning = 0.0
        self._failing = False

    @property
    def failed_open(self) -> int:
        return self._failed_open

    async def admit(self, key: str, rate: Rate) -> Verdict:
        if self._skip_until and time.monotonic() < self._skip_until:
            self._failed_open += 1
            return ALLOWED
        now = micros(self._clock.now())
        try:
            wait = await self._script(
                keys=[self._prefix + key], args=[now, rate.interval, rate.tolerance]
            )
        except (RedisError, OSError) as error:
            self._failed(error)
            return ALLOWED
        if self._failing:
            self._failing, self._skip_until = False, 0.0
            log.info("rate limits are counted in Redis again")
        return verdict(int(wait))

    def _failed(self, error: Exception) -> None:
        self._failed_open += 1
        self._failing = True
        at = time.monotonic()
        self._skip_until = at + self.RETRY_SECONDS
        if at >= self._next_warning:
            self._next_warning = at + self.WARN_EVERY_SECONDS
            log.warning(
                "rate limits fail open: Redis does not answer",
                extra={"error": repr(error)[:300], "failed_open": self._failed_open},
            )

    def clear(self) -> None:
        # Keys of other replicas are theirs to forget: this process moves to fresh keys, and
        # the old ones expire on their own.
        self._generation += 1
        self._prefix = f"{self._base}{self._generation}:"

    async def close(self) -> None:
        await self._client.aclose()
