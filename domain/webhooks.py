"""POS webhooks: which events a store's POS is sent, how each request is signed, and how long to
wait before trying again."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from domain.access import MASKED_CUSTOMER_ID
from domain.errors import BadInput

# What a POS that keeps no socket open is told of (pickupEvents minus the expiry warning).
WEBHOOK_EVENT_TYPES = frozenset(
    {"READY_FOR_PICKUP", "CUSTOMER_ARRIVED", "COLLECTED", "CANCELLED", "EXPIRED", "STOCK_SHORTAGE"}
)

SIGNATURE_HEADER = "X-Ropos-Signature"
TIMESTAMP_HEADER = "X-Ropos-Timestamp"
MIN_SECRET_LENGTH = 16


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"
    DISCARDED = "DISCARDED"  # dead, and ops gave up on it (who, why and when are kept)


# How much a dead delivery matters, by its event: a shopper is waiting on the first two (told
# to come, or at the counter), the store acts on a shortage, the rest only tidy the POS's list.
IMPACT_OF_EVENT: Mapping[str, int] = {
    "CUSTOMER_ARRIVED": 100,
    "READY_FOR_PICKUP": 80,
    "STOCK_SHORTAGE": 40,
    "CANCELLED": 10,
    "EXPIRED": 10,
    "COLLECTED": 5,
}
DEFAULT_EVENT_IMPACT = 1


def hours_waited(since: datetime, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) / 3600


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over "<timestamp>.<body>": the receiver recomputes it with
    the shared secret and rejects old timestamps, so a captured request cannot be replayed."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def for_the_pos(payload: Mapping[str, object]) -> dict[str, object]:
    """The event as a store's POS is sent it: its reservation without the customer's id, as
    the POS sees it over GraphQL (domain.access.Actor.sees_customer)."""
    reservation = payload.get("reservation")
    if not isinstance(reservation, Mapping) or "customerId" not in reservation:
        return dict(payload)
    return {**payload, "reservation": {**reservation, "customerId": MASKED_CUSTOMER_ID}}


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    secret: str

    @classmethod
    def build(cls, url: str, secret: str) -> WebhookTarget:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("https", "http") or not parts.netloc or len(url) > 500:
            raise BadInput("url must be an http(s) URL of at most 500 characters.", field="url")
        if not MIN_SECRET_LENGTH <= len(secret) <= 200 or not secret.isprintable():
            raise BadInput(
                f"secret must be {MIN_SECRET_LENGTH} to 200 printable characters.", field="secret"
            )
        return cls(url.strip(), secret)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one store's webhook."""

    id: str
    event_id: str
    event_type: str
    store_id: str
    url: str
    payload: dict[str, object]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    discarded_at: datetime | None = None
    discarded_by: str | None = None
    discard_reason: str | None = None

    def impact(self, now: datetime) -> float:
        """How much a dead letter matters: its event's weight (IMPACT_OF_EVENT) times one plus
        the hours since it was queued, as the intake ranks its dead letters (the older, the
        more it matters, so old small ones do not starve)."""
        weight = IMPACT_OF_EVENT.get(self.event_type, DEFAULT_EVENT_IMPACT)
        return weight * (1 + hours_waited(self.created_at, now))
