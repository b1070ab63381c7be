"""Commands: what a caller asks the system to do, validated before anything is touched."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from domain.errors import BadInput
from domain.geo import GeoPoint, validate_radius
from domain.reservations import Line

MAX_LINES = 100
MAX_UNITS_PER_LINE = 10_000
MAX_CODE_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 128
MAX_REASON_LENGTH = 500


def validate_code(value: str, field: str) -> str:
    """Store ids, SKUs, customer ids and channels: non-empty printable text, trimmed."""
    cleaned = value.strip()
    if not cleaned or len(cleaned) > MAX_CODE_LENGTH or not cleaned.isprintable():
        raise BadInput(
            f"{field} must be 1 to {MAX_CODE_LENGTH} printable characters, got {value!r}.",
            field=field,
        )
    return cleaned


MAX_REASON_LENGTH = 500


def validate_discard_reason(reason: str) -> str:
    """Why ops gave up on a dead letter: 1 to 500 characters, trimmed."""
    cleaned = reason.strip()
    if not 0 < len(cleaned) <= MAX_REASON_LENGTH:
        raise BadInput(f"Give a reason of 1 to {MAX_REASON_LENGTH} characters.", field="reason")
    return cleaned


@dataclass(frozen=True, slots=True)
class Reserve:
    customer_id: str
    lines: tuple[Line, ...]
    store_id: str | None = None
    near: GeoPoint | None = None
    radius_km: float | None = None
    hold_seconds: int | None = None
    idempotency_key: str | None = None
    channel: str | None = None

    @classmethod
    def build(
        cls,
        *,
        customer_id: str,
        lines: Iterable[tuple[str, int]],
        store_id: str | None = None,
        near: GeoPoint | None = None,
        radius_km: float | None = None,
        hold_seconds: int | None = None,
        idempotency_key: str | None = None,
        channel: str | None = None,
    ) -> Reserve:
        if (store_id is None) == (near is None):
            raise BadInput("Give exactly one of storeId or near.", field="storeId")
        if store_id is not None and radius_km is not None:
            raise BadInput("radiusKm goes with near, not with storeId.", field="radiusKm")
        merged: OrderedDict[str, int] = OrderedDict()
        raw = list(lines)
        if not raw:
            raise BadInput("A reservation needs at least one line.", field="lines")
        if len(raw) > MAX_LINES:
            raise BadInput(
                f"A reservation takes at most {MAX_LINES} lines, got {len(raw)}.", field="lines"
            )
        for sku, quantity in raw:
            sku = validate_code(sku, "sku")
            if (
                isinstance(quantity, bool)
                or not isinstance(quantity, int)
                or not (1 <= quantity <= MAX_UNITS_PER_LINE)
            ):
                raise BadInput(
                    f"Quantity of {sku} must be a whole number from 1 to {MAX_UNITS_PER_LINE}, "
                    f"got {quantity}.",
                    field="quantity",
                    sku=sku,
                )
            # The same SKU twice is one line with the units added up.
            merged[sku] = merged.get(sku, 0) + quantity
            if merged[sku] > MAX_UNITS_PER_LINE:
                raise BadInput(
                    f"Quantity of {sku} must be at most {MAX_UNITS_PER_LINE}.", field="quantity"
                )
        if idempotency_key is not None and not (
            0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH and idempotency_key.isprintable()
        ):
            raise BadInput(
                f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters.",
                field="idempotencyKey",
            )
        return cls(
            customer_id=validate_code(customer_id, "customerId"),
            lines=tuple(Line(sku, quantity) for sku, quantity in merged.items()),
            store_id=validate_code(store_id, "storeId") if store_id is not None else None,
            near=near,
            radius_km=validate_radius(radius_km) if near is not None else None,
            hold_seconds=hold_seconds,
            idempotency_key=idempotency_key,
            channel=validate_code(channel, "channel") if channel is not None else None,
        )

    @property
    def units(self) -> dict[str, int]:
        return {line.sku: line.quantity for line in self.lines}

    def fingerprint(self) -> str:
        """A digest of what makes two requests "the same" for an idempotency key."""
        request = {
            "storeId": self.store_id,
            "near": [self.near.lat, self.near.lon, self.radius_km] if self.near else None,
            "lines": sorted([line.sku, line.quantity] for line in self.lines),
            "holdSeconds": self.hold_seconds,
            "channel": self.channel,
        }
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def validate_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise BadInput(f"reason takes at most {MAX_REASON_LENGTH} characters.", field="reason")
    return reason or None
