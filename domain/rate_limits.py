"""Rate limits per caller: the generic cell rate algorithm (GCRA), a token bucket kept as ONE
number per key, its theoretical arrival time (TAT): when the bucket would be full again.

A limit is a steady rate and a burst: from a full bucket `burst` requests pass at once, then one
every 1/rate seconds. A request passes when, after it, the TAT runs no further than `burst`
intervals ahead of now; a refused one consumes nothing and is told when the next request would
pass. One number per key is what makes it cheap to share: in Redis it is one GET and one SET in
a script, with the key expiring once the bucket is full again (a missing key is a full bucket).

Times are whole microseconds since the Unix epoch, so the arithmetic is exact (a float TAT would
drift by a rounding at every request and refuse the last request of a burst now and then), and
the same in Python and in Redis's Lua (whose numbers are doubles: exact up to 2**53 us, some
285 years)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MICROS_PER_SECOND = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(when: datetime) -> int:
    """`when` in whole microseconds since the Unix epoch (exact: no float on the way)."""
    return (when - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class Rate:
    """A limit: `per_second` requests per second once the burst is spent, `burst` at once from
    a full bucket. A `per_second` of 0 (or less) is no limit."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second > 0 and self.burst < 1:
            raise ValueError("a rate limit's burst must be at least 1")

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    @property
    def interval(self) -> int:
        """Microseconds between two requests at the steady rate (at least 1)."""
        return max(1, round(MICROS_PER_SECOND / self.per_second))

    @property
    def tolerance(self) -> int:
        """How far ahead of now the TAT may run after a request: a whole burst of intervals."""
        return self.interval * self.burst


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request passes; when it does not, the whole seconds (at least 1) until the
    next one would, for `Retry-After`."""

    allowed: bool
    retry_after: int = 0


ALLOWED = Verdict(True)


def admit(tat: int | None, now: int, rate: Rate) -> tuple[int | None, int]:
    """One request at `now` against a key whose TAT is `tat` (None: never seen, or forgotten:
    a full bucket). Returns (the TAT to store, or None to leave the key as it is; the
    microseconds to wait, 0 when the request passes).

    A TAT further ahead than a whole burst can only come from a clock that went back (another
    replica's, or a test's): it is taken, and stored, as an empty bucket, never as a debt longer
    than one burst's worth, so a clock step cannot lock a caller out."""
    stepped_back = tat is not None and tat > now + rate.tolerance
    start = now if tat is None else min(max(tat, now), now + rate.tolerance)
    after = start + rate.interval
    if after - now > rate.tolerance:
        return (start if stepped_back else None), after - rate.tolerance - now
    return after, 0


def retry_after_seconds(wait: int) -> int:
    """The microseconds until the next request would pass, as whole seconds for `Retry-After`:
    rounded up (a client that waits that long is served), and at least 1."""
    return max(1, -(-wait // MICROS_PER_SECOND))


def verdict(wait: int) -> Verdict:
    """The verdict of `admit`'s wait."""
    return ALLOWED if wait <= 0 else Verdict(False, retry_after_seconds(wait))
