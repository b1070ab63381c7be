"""The reservation policy: how long stock may be held and how much one customer may lock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.errors import BadInput, LimitExceeded

MIN_HOLD_SECONDS = 60
MAX_HOLD_SECONDS = 30 * 24 * 3600
MAX_ALLOWED_HOLDS = 20


@dataclass(frozen=True, slots=True)
class ReservationPolicy:
    default_hold_seconds: int = 2 * 3600
    allowed_hold_seconds: tuple[int, ...] = (2 * 3600, 24 * 3600)
    max_active_reservations_per_customer: int = 5
    max_units_per_sku_per_customer: int = 10
    expiry_warning_seconds: int = 15 * 60
    max_stores_per_group: int = 3
    # None: the hold's own expiry stands when the goods are ready; else the shopper gets this long
    # from the moment they are told the goods are waiting.
    pickup_window_seconds: int | None = None
    # Whether the till may collect a HELD reservation directly, without the ready step.
    allow_pickup_without_ready: bool = False
    # How soon after reserving the goods should be ready: the time-to-ready figure's target.
    ready_target_seconds: int = 2 * 3600

    def __post_init__(self) -> None:
        allowed = self.allowed_hold_seconds
        if not allowed:
            raise BadInput(
                "allowedHoldSeconds needs at least one duration.", field="allowedHoldSeconds"
            )
        if len(allowed) > MAX_ALLOWED_HOLDS:
            raise BadInput(
                f"allowedHoldSeconds takes at most {MAX_ALLOWED_HOLDS} durations.",
                field="allowedHoldSeconds",
            )
        for seconds in allowed:
            if not MIN_HOLD_SECONDS <= seconds <= MAX_HOLD_SECONDS:
                raise BadInput(
                    f"Each hold duration must be between {MIN_HOLD_SECONDS} and "
                    f"{MAX_HOLD_SECONDS} seconds, got {seconds}.",
                    field="allowedHoldSeconds",
                )
        if self.default_hold_seconds not in allowed:
            raise BadInput(
                f"defaultHoldSeconds ({self.default_hold_seconds}) must be one of "
                f"allowedHoldSeconds {list(allowed)}.",
                field="defaultHoldSeconds",
            )
        for name in (
            "max_active_reservations_per_customer",
            "max_units_per_sku_per_customer",
            "max_stores_per_group",
        ):
            value = getattr(self, name)
            if not 1 <= value <= 1_000_000:
                raise BadInput(
                    f"{_camel(name)} must be between 1 and 1000000, got {value}.",
                    field=_camel(name),
                )
        if self.pickup_window_seconds is not None and not (
            MIN_HOLD_SECONDS <= self.pickup_window_seconds <= MAX_HOLD_SECONDS
        ):
            raise BadInput(
                f"pickupWindowSeconds must be between {MIN_HOLD_SECONDS} and {MAX_HOLD_SECONDS}, "
                f"got {self.pickup_window_seconds}.",
                field="pickupWindowSeconds",
            )
        if not MIN_HOLD_SECONDS <= self.ready_target_seconds <= MAX_HOLD_SECONDS:
            raise BadInput(
                f"readyTargetSeconds must be between {MIN_HOLD_SECONDS} and {MAX_HOLD_SECONDS}, "
                f"got {self.ready_target_seconds}.",
                field="readyTargetSeconds",
            )
        if not 0 <= self.expiry_warning_seconds < min(allowed):
            raise BadInput(
                "expiryWarningSeconds must be at least 0 and shorter than the shortest hold "
                f"({min(allowed)} s), got {self.expiry_warning_seconds}.",
                field="expiryWarningSeconds",
            )

    @classmethod
    def create(cls, *, allowed_hold_seconds: Iterable[int], **fields: Any) -> ReservationPolicy:
        return cls(allowed_hold_seconds=tuple(sorted(set(allowed_hold_seconds))), **fields)

    def hold_seconds_for(self, requested: int | None) -> int:
        if requested is None:
            return self.default_hold_seconds
        if requested not in self.allowed_hold_seconds:
            raise BadInput(
                f"holdSeconds must be one of {list(self.allowed_hold_seconds)}, got {requested}.",
                field="holdSeconds",
                allowed=list(self.allowed_hold_seconds),
            )
        return requested

    def check_units_requested(self, units: dict[str, int]) -> None:
        """A single request that alone is over the per-SKU limit fails before touching stock."""
        over = sorted(
            sku for sku, quantity in units.items() if quantity > self.max_units_per_sku_per_customer
        )
        if over:
            raise self.units_exceeded(over)

    def units_exceeded(self, skus: list[str]) -> LimitExceeded:
        return LimitExceeded(
            "maxUnitsPerSkuPerCustomer",
            f"A customer may hold at most {self.max_units_per_sku_per_customer} units of each SKU; "
            f"this reservation would go over it for {', '.join(skus)}.",
            skus=skus,
            max=self.max_units_per_sku_per_customer,
        )

    def reservations_exceeded(self) -> LimitExceeded:
        return LimitExceeded(
            "maxActiveReservationsPerCustomer",
            f"A customer may have at most {self.max_active_reservations_per_customer} active "
            "reservations; collect or cancel one first.",
            max=self.max_active_reservations_per_customer,
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
