"""The reservation and its lifecycle: which transitions are legal and what each one records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from domain import errors
from domain.events import (
    ReservationCancelled,
    ReservationCollected,
    ReservationCreated,
    ReservationCustomerArrived,
    ReservationEvent,
    ReservationExpired,
    ReservationExpiringSoon,
    ReservationReadyForPickup,
    ReservationShortened,
    Resourced,
    Shortage,
)


class Status(StrEnum):
    HELD = "HELD"
    READY_FOR_PICKUP = "READY_FOR_PICKUP"
    COLLECTED = "COLLECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({Status.HELD, Status.READY_FOR_PICKUP})

# The lifecycle (ARCHITECTURE.md has the diagram); any other move is refused.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.HELD: frozenset({Status.READY_FOR_PICKUP, Status.CANCELLED, Status.EXPIRED}),
    Status.READY_FOR_PICKUP: frozenset({Status.COLLECTED, Status.CANCELLED, Status.EXPIRED}),
    Status.COLLECTED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}


class MovementReason(StrEnum):
    """Why a stock movement happened; recorded in the ledger."""

    RESERVE = "RESERVE"
    CANCEL = "CANCEL"
    EXPIRE = "EXPIRE"
    COLLECT = "COLLECT"
    SYNC = "SYNC"  # the WMS's count
    RESOURCE = "RESOURCE"  # units locked at another store for a reservation that ran short
    SHORTAGE = "SHORTAGE"  # units released because the store has fewer than were reserved
    SHORT_PICK = "SHORT_PICK"  # reserved units staff did not find: they leave on hand too
    RECONCILE = "RECONCILE"  # on hand corrected to the WMS's figure by reconciliation


STOCK_SHORTAGE = "STOCK_SHORTAGE"
MAX_ARRIVAL_NOTE_LENGTH = 200


def seconds_left(status: Status, expires_at: datetime, now: datetime) -> int:
    """Whole seconds of the hold left (the shopper's countdown); 0 once it is over or final."""
    if not status.is_active:
        return 0
    return max(0, int((expires_at - now).total_seconds()))


def seconds_waiting(
    arrived_at: datetime | None, ended_at: datetime | None, now: datetime
) -> int | None:
    """Whole seconds the shopper has waited at the store since checking in, until now or until
    the reservation ended; None when they have not checked in."""
    if arrived_at is None:
        return None
    return max(0, int(((ended_at or now) - arrived_at).total_seconds()))


def validate_arrival_note(note: str | None) -> str | None:
    """What the shopper tells the store as they arrive (a car bay, "at the side door"): shown on
    the store's screens as it is, so one printable line, or nothing."""
    if note is None:
        return None
    note = note.strip()
    if len(note) > MAX_ARRIVAL_NOTE_LENGTH or not note.isprintable():
        raise errors.BadInput(
            f"note takes at most {MAX_ARRIVAL_NOTE_LENGTH} printable characters on one line.",
            field="note",
        )
    return note or None


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReservationState:
    """A reservation as it was at one moment: what its events carry."""

    id: str
    group_id: str
    code: str
    customer_id: str
    store_id: str
    channel: str | None
    status: Status
    lines: tuple[Line, ...]
    hold_seconds: int
    created_at: datetime
    expires_at: datetime
    ready_at: datetime | None
    collected_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None
    cancel_reason: str | None
    resourced_from: str | None
    arrived_at: datetime | None
    arrival_note: str | None
    version: int

    @property
    def is_active(self) -> bool:
        return self.status.is_active


@dataclass(eq=False)
class Reservation:
    """Units of one or more SKUs locked at one store for one customer until `expires_at`."""

    id: str
    group_id: str
    code: str
    customer_id: str
    store_id: str
    channel: str | None
    status: Status
    lines: tuple[Line, ...]
    hold_seconds: int
    created_at: datetime
    expires_at: datetime
    ready_at: datetime | None = None
    collected_at: datetime | None = None
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None
    cancel_reason: str | None = None
    # The expiry the EXPIRING_SOON warning was sent for (a pickup window moves the expiry).
    warned_for: datetime | None = None
    # The reservation whose units this one took over when that store ran short.
    resourced_from: str | None = None
    # When the shopper said they are at the store, and what they told it.
    arrived_at: datetime | None = None
    arrival_note: str | None = None
    version: int = 1
    events: list[ReservationEvent] = field(default_factory=list, repr=False)

    @classmethod
    def hold(
        cls,
        *,
        id: str,
        group_id: str,
        code: str,
        customer_id: str,
        store_id: str,
        channel: str | None,
        lines: Iterable[Line],
        hold_seconds: int,
        now: datetime,
        expires_at: datetime | None = None,
        resourced_from: str | None = None,
        detail: Resourced | None = None,
    ) -> Reservation:
        reservation = cls(
            id=id,
            group_id=group_id,
            code=code,
            customer_id=customer_id,
            store_id=store_id,
            channel=channel,
            status=Status.HELD,
            lines=tuple(sorted(lines, key=lambda line: line.sku)),
            hold_seconds=hold_seconds,
            created_at=now,
            expires_at=expires_at or now + timedelta(seconds=hold_seconds),
            resourced_from=resourced_from,
        )
        reservation._record(ReservationCreated, now, detail)
        return reservation

    @property
    def is_active(self) -> bool:
        return self.status.is_active

    def is_due(self, now: datetime) -> bool:
        return self.is_active and now >= self.expires_at

    def seconds_remaining(self, now: datetime) -> int:
        return seconds_left(self.status, self.expires_at, now)

    def units(self) -> dict[str, int]:
        return {line.sku: line.quantity for line in self.lines}

    def mark_ready(self, now: datetime, pickup_window_seconds: int | None = None) -> None:
        """Picked and waiting at the store. With a pickup window, the shopper gets that long from
        now, however much of the hold is left."""
        self._ensure_not_due(now, "marked ready")
        self._move(Status.READY_FOR_PICKUP, now)
        self.ready_at = now
        if pickup_window_seconds is not None:
            self.expires_at = now + timedelta(seconds=pickup_window_seconds)
        self._record(ReservationReadyForPickup, now)

    def check_in(self, now: datetime, note: str | None = None) -> None:
        """The shopper is at the store ("I'm here"), once, while the reservation is active: the
        store is told, and the wait until the handoff starts. The status does not change."""
        note = validate_arrival_note(note)
        if not self.is_active:
            raise errors.InvalidTransition(
                f"Reservation {self.id} is {self.status}; only an active reservation is checked "
                "in.",
                reservationId=self.id,
                status=str(self.status),
            )
        self._ensure_not_due(now, "checked in")
        if self.arrived_at is not None:
            raise errors.InvalidTransition(
                f"Reservation {self.id} is checked in already (at {self.arrived_at.isoformat()}).",
                reservationId=self.id,
                status=str(self.status),
            )
        self.arrived_at = now
        self.arrival_note = note
        self.version += 1
        self._record(ReservationCustomerArrived, now)

    def collect(self, now: datetime, *, without_ready_step: bool = False) -> None:
        """Paid and handed over. From READY_FOR_PICKUP, or from HELD where the policy allows a
        pickup without the ready step."""
        self._ensure_not_due(now, "collected")
        if self.status is Status.HELD and not without_ready_step:
            raise errors.InvalidTransition(
                f"Reservation {self.id} is HELD: mark it ready for pickup before collecting it.",
                reservationId=self.id,
                status=str(self.status),
            )
        self._move(Status.COLLECTED, now, also_from=Status.HELD if without_ready_step else None)
        self.collected_at = now
        self._record(ReservationCollected, now)

    def cancel(self, now: datetime, reason: str | None = None) -> None:
        self._ensure_not_due(now, "cancelled")
        self._move(Status.CANCELLED, now)
        self.cancelled_at = now
        self.cancel_reason = reason
        self._record(ReservationCancelled, now)

    def expire(self, now: datetime) -> None:
        if not self.is_due(now):
            raise errors.InvalidTransition(
                f"Reservation {self.id} is {self.status} and not due until "
                f"{self.expires_at.isoformat()}; it cannot expire yet."
            )
        self._move(Status.EXPIRED, now)
        self.expired_at = now
        self._record(ReservationExpired, now)

    def shorten(
        self,
        sku: str,
        quantity: int,
        now: datetime,
        *,
        reason: str,
        moved_to: Reservation | None = None,
    ) -> None:
        """`quantity` units of the `sku` line can no longer be kept here (`reason`: SHORTAGE or
        SHORT_PICK); `moved_to` holds them at another store now, if one could. The line shrinks
        (or goes); with no line left the reservation is CANCELLED for STOCK_SHORTAGE."""
        if not self.is_active:
            raise errors.InvalidTransition(
                f"Reservation {self.id} is {self.status}; its lines cannot change.",
                reservationId=self.id,
                status=str(self.status),
            )
        line = next((line for line in self.lines if line.sku == sku), None)
        if line is None or not 0 < quantity <= line.quantity:
            raise errors.BadInput(
                f"Reservation {self.id} holds no {quantity} units of {sku}.", field="sku"
            )
        left = line.quantity - quantity
        detail = Shortage(
            sku,
            quantity,
            reason,
            moved_to.id if moved_to else None,
            moved_to.store_id if moved_to else None,
        )
        if left == 0 and len(self.lines) == 1:
            # The last line goes: the reservation ends, and keeps the line it had for the record.
            self._move(Status.CANCELLED, now)
            self.cancelled_at = now
            self.cancel_reason = STOCK_SHORTAGE
            self._record(ReservationCancelled, now, detail)
        else:
            self.lines = tuple(
                (Line(sku, left) if x.sku == sku else x)
                for x in self.lines
                if x.sku != sku or left > 0
            )
            self.version += 1
            self._record(ReservationShortened, now, detail)

    def warn_expiring(self, now: datetime) -> None:
        """The shopper and the store are told the hold runs out soon (once per expiry)."""
        self.warned_for = self.expires_at
        self.version += 1
        self._record(ReservationExpiringSoon, now)

    def _ensure_not_due(self, now: datetime, verb: str) -> None:
        if self.is_due(now):
            raise errors.ReservationExpired(
                f"Reservation {self.id} expired at {self.expires_at.isoformat()} and cannot be "
                f"{verb}.",
                reservationId=self.id,
            )

    def _move(self, to: Status, now: datetime, also_from: Status | None = None) -> None:
        if to not in TRANSITIONS[self.status] and self.status is not also_from:
            if self.status is Status.EXPIRED:
                raise errors.ReservationExpired(
                    f"Reservation {self.id} has expired.", reservationId=self.id
                )
            raise errors.InvalidTransition(
                f"Reservation {self.id} is {self.status}; it cannot become {to}.",
                reservationId=self.id,
                status=str(self.status),
            )
        self.status = to
        self.version += 1

    def _record(
        self,
        kind: type[ReservationEvent],
        now: datetime,
        detail: Shortage | Resourced | None = None,
    ) -> None:
        self.events.append(
            kind(reservation=self.snapshot(), sequence=self.version, occurred_at=now, detail=detail)
        )

    def snapshot(self) -> ReservationState:
        return ReservationState(
            id=self.id,
            group_id=self.group_id,
            code=self.code,
            customer_id=self.customer_id,
            store_id=self.store_id,
            channel=self.channel,
            status=self.status,
            lines=self.lines,
            hold_seconds=self.hold_seconds,
            created_at=self.created_at,
            expires_at=self.expires_at,
            ready_at=self.ready_at,
            collected_at=self.collected_at,
            cancelled_at=self.cancelled_at,
            expired_at=self.expired_at,
            cancel_reason=self.cancel_reason,
            resourced_from=self.resourced_from,
            arrived_at=self.arrived_at,
            arrival_note=self.arrival_note,
            version=self.version,
        )
