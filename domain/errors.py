"""Domain exceptions, named for what went wrong; each carries the API error code clients see."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DomainError(Exception):
    """A rule was broken. `code` is the GraphQL `extensions.code`; `details` go along with it."""

    code = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class BadInput(DomainError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, **details)


class NotFound(DomainError):
    code = "NOT_FOUND"


class OutOfStock(DomainError):
    code = "OUT_OF_STOCK"

    def __init__(self, skus: Iterable[str], message: str | None = None) -> None:
        self.skus = sorted(set(skus))
        super().__init__(
            message or f"Not enough stock to reserve: {', '.join(self.skus)}", skus=self.skus
        )


class LimitExceeded(DomainError):
    code = "LIMIT_EXCEEDED"

    def __init__(self, limit: str, message: str, **details: Any) -> None:
        self.limit = limit
        super().__init__(message, limit=limit, **details)


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"


class ReservationExpired(DomainError):
    code = "RESERVATION_EXPIRED"


class RateLimited(DomainError):
    code = "RATE_LIMITED"


class TooSlow(RateLimited):
    """A subscriber fell so far behind that its events no longer fit its buffer."""
