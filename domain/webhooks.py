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
