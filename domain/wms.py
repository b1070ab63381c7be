"""The WMS, both ways: what ROPOS tells it (stock movements, in order per store and SKU), what it
tells ROPOS (stock levels, absolute or as deltas, each with its own sequence number), and the
circuit breaker that keeps a WMS outage from piling up work."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from domain.commands import validate_code
from domain.errors import BadInput
from domain.stock import LevelUpdate


class MovementKind(StrEnum):
    """What a movement does to the WMS's figures for one (store, SKU)."""

    LOCK = "LOCK"  # reserved += quantity
    RELEASE = "RELEASE"  # reserved -= quantity
    CONSUME = "CONSUME"  # sold at pickup: on hand and reserved -= quantity
    SHORT_PICK = "SHORT_PICK"  # reserved units not found on the shelf: on hand and reserved -=
    SET_RESERVED = "SET_RESERVED"  # reconciliation: reserved = quantity (ROPOS owns reserved)


# The ledger's reasons, as the WMS is told of them. SYNC and RECONCILE came from the WMS itself.
KIND_OF_REASON: Mapping[str, MovementKind] = {
    "RESERVE": MovementKind.LOCK,
    "RESOURCE": MovementKind.LOCK,
    "CANCEL": MovementKind.RELEASE,
    "EXPIRE": MovementKind.RELEASE,
    "SHORTAGE": MovementKind.RELEASE,
    "COLLECT": MovementKind.CONSUME,
    "SHORT_PICK": MovementKind.SHORT_PICK,
}


@dataclass(frozen=True, slots=True)
class WmsMovement:
    """One change of reserved stock on its way to the WMS. `id` is its idempotency key: the WMS
    applies each id once. `sequence` counts the movements of one (store, SKU) from 1: the WMS
    applies them in that order and refuses one older than the last it applied."""

    id: str
    store_id: str
    sku: str
    sequence: int
    kind: MovementKind
    quantity: int
    reservation_id: str | None
    occurred_at: datetime


class Outcome(StrEnum):
    APPLIED = "APPLIED"  # the WMS changed its figures
    DUPLICATE = "DUPLICATE"  # it had applied this id before: nothing changed, and that is fine
    REJECTED = "REJECTED"  # it refuses this movement for good (stale sequence, unknown SKU...)


@dataclass(frozen=True, slots=True)
class MovementResult:
    id: str
    outcome: Outcome
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WmsLevel:
    """The WMS's own figures for one (store, SKU), as reconciliation reads them."""

    store_id: str
    sku: str
    on_hand: int
    reserved: int
    sequence: int | None = None


class WmsUnavailable(Exception):
    """The WMS did not answer, or answered that it cannot now (5xx, 429, a timeout, a refused
    connection, a reply that is not the protocol): try again later."""


class WmsPort(Protocol):
    async def send(self, movements: Sequence[WmsMovement]) -> list[MovementResult]:
        """Deliver movements (in the order given); one result per movement, in any order.
        Raises WmsUnavailable when the batch as a whole did not get through."""
        ...

    async def levels(self, store_id: str) -> list[WmsLevel]:
        """The WMS's on hand and reserved of every SKU it keeps at the store."""
        ...

    async def close(self) -> None: ...


# --- the circuit breaker --------------------------------------------------------------------------


class CircuitState(StrEnum):
    CLOSED = "CLOSED"  # calls go through
    OPEN = "OPEN"  # the WMS is failing: no calls until the cool-down ends
    HALF_OPEN = "HALF_OPEN"  # one trial call decides whether to close or open again


class CircuitBreaker:
    """After `threshold` failures in a row, stop calling for `cooldown_seconds`; then let one call
    through, and close on its success or open again (for twice as long, up to `max_cooldown`) on
    its failure. Time comes from the caller, so tests need no sleeping."""

    def __init__(
        self, threshold: int = 5, cooldown_seconds: float = 5.0, max_cooldown_seconds: float = 300.0
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown_seconds
        self.max_cooldown = max_cooldown_seconds
        self.failures = 0
        self._cooldown = cooldown_seconds
        self._open_until: datetime | None = None
        self._trial = False

    def state(self, now: datetime) -> CircuitState:
        if self._open_until is None:
            return CircuitState.CLOSED
        return CircuitState.OPEN if now < self._open_until else CircuitState.HALF_OPEN

    def allow(self, now: datetime) -> bool:
        state = self.state(now)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial:
            self._trial = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures = 0
        self._cooldown = self.base_cooldown
        self._open_until = None
        self._trial = False

    def failed(self, now: datetime) -> None:
        self.failures += 1
        if self._trial:  # the trial call failed: open again, for longer
            self._cooldown = min(self.max_cooldown, self._cooldown * 2)
            self._open_until = now + timedelta(seconds=self._cooldown)
        elif self.failures >= self.threshold:
            self._open_until = now + timedelta(seconds=self._cooldown)
        self._trial = False


# --- inbound: stock levels from the WMS -----------------------------------------------------------

MAX_LEVELS_PER_BATCH = 10_000
MAX_QUANTITY = 10_000_000
MAX_SEQUENCE = 2**62


@dataclass(frozen=True, slots=True)
class InboundBatch:
    batch_id: str
    levels: tuple[LevelUpdate, ...]


def _code(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{field} must be a string.", field=field)
    return validate_code(value, field)


def _int(value: Any, field: str, *, low: int, high: int, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"{field} must be a whole number from {low} to {high}.", field=field)
    return value


def _sequence(value: Any, field: str) -> int | None:
    """A sequence number, or a timestamp (ISO-8601, turned into microseconds since 1970)."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(f"{field} must be a number or an ISO-8601 time.", field=field) from None
        if when.tzinfo is None:
            raise BadInput(f"{field} as a time needs its zone (e.g. Z).", field=field)
        return math.floor(when.timestamp() * 1_000_000)
    return _int(value, field, low=0, high=MAX_SEQUENCE)


def parse_level(data: Any, where: str) -> LevelUpdate:
    if not isinstance(data, Mapping):
        raise BadInput(f"{where} must be an object.", field=where)
    unknown = set(data) - {
        "storeId",
        "sku",
        "onHand",
        "delta",
        "sequence",
        "countedAt",
        "safetyStock",
        "lowStockThreshold",
    }
    if unknown:
        raise BadInput(f"{where} has unknown fields: {', '.join(sorted(unknown))}.", field=where)
    if ("onHand" in data) == ("delta" in data):
        raise BadInput(f"{where} needs exactly one of onHand and delta.", field=where)
    if "sequence" in data and "countedAt" in data:
        raise BadInput(f"{where} needs at most one of sequence and countedAt.", field=where)
    return LevelUpdate(
        store_id=_code(data.get("storeId"), f"{where}.storeId"),
        sku=_code(data.get("sku"), f"{where}.sku"),
        on_hand=_int(data.get("onHand"), f"{where}.onHand", low=0, high=MAX_QUANTITY),
        delta=_int(data.get("delta"), f"{where}.delta", low=-MAX_QUANTITY, high=MAX_QUANTITY),
        sequence=_sequence(data.get("sequence", data.get("countedAt")), f"{where}.sequence"),
        safety_stock=_int(
            data.get("safetyStock"), f"{where}.safetyStock", low=0, high=MAX_QUANTITY
        ),
        low_stock_threshold=_int(
            data.get("lowStockThreshold"), f"{where}.lowStockThreshold", low=0, high=MAX_QUANTITY
        ),
    )


def parse_batch(data: Any) -> InboundBatch:
    """The body of `POST /wms/stock-levels`, checked whole: the first problem is named, with
    the field it is in, and nothing of a bad batch applies."""
    if not isinstance(data, Mapping):
        raise BadInput("The body must be a JSON object with batchId and levels.")
    unknown = set(data) - {"batchId", "levels"}
    if unknown:
        raise BadInput(f"Unknown fields: {', '.join(sorted(unknown))}.", field="body")
    batch_id = data.get("batchId")
    if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 128 or not batch_id.isprintable():
        raise BadInput("batchId must be a string of 1 to 128 characters.", field="batchId")
    raw = data.get("levels")
    if not isinstance(raw, list) or not raw:
        raise BadInput("levels must be a non-empty list.", field="levels")
    if len(raw) > MAX_LEVELS_PER_BATCH:
        raise BadInput(
            f"At most {MAX_LEVELS_PER_BATCH} levels per batch, got {len(raw)}.", field="levels"
        )
    levels = tuple(parse_level(item, f"levels[{i}]") for i, item in enumerate(raw))
    seen: set[tuple[str, str]] = set()
    for i, level in enumerate(levels):
        key = (level.store_id, level.sku)
        if key in seen:
            raise BadInput(
                f"levels[{i}]: {level.store_id}/{level.sku} appears twice in one batch.",
                field=f"levels[{i}]",
            )
        seen.add(key)
    return InboundBatch(batch_id, levels)


# --- what storage keeps of the WMS side --------------------------------------------------------


class BatchStatus(StrEnum):
    """Where a stored stock-levels batch stands."""

    RECEIVED = "RECEIVED"  # stored, not applied yet (the worker applies it)
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"  # none of its levels applied; `error_code` says why


@dataclass(frozen=True, slots=True)
class StoredBatch:
    batch_id: str
    payload: dict[str, Any]
    status: BatchStatus
    attempts: int
    applied: int | None
    stale: int | None
    error_code: str | None
    error: str | None
    received_at: datetime


class MovementStatus(StrEnum):
    """Where a movement on its way to the WMS stands."""

    PENDING = "PENDING"  # not delivered yet; tried when due
    DELIVERED = "DELIVERED"  # the WMS took it (or had it already)
    DEAD = "DEAD"  # refused for good, or out of attempts: ops may replay it
    DISCARDED = "DISCARDED"  # dead, and ops gave up on it: reconciliation puts the WMS right


# How much a dead movement matters per unit, by kind: one that leaves the WMS counting units
# as free that are not (a lock, a sale, a short pick) risks selling them twice elsewhere; a
# reconciliation's figure either way; a release only keeps free units off sale a while longer.
IMPACT_OF_KIND: Mapping[MovementKind, int] = {
    MovementKind.LOCK: 3,
    MovementKind.CONSUME: 3,
    MovementKind.SHORT_PICK: 3,
    MovementKind.SET_RESERVED: 2,
    MovementKind.RELEASE: 1,
}


@dataclass(frozen=True, slots=True)
class Queued:
    """A movement in the outbound feed, with where its delivery stands."""

    movement: WmsMovement
    attempts: int
    next_attempt_at: datetime
    status: MovementStatus
    last_error: str | None
    delivered_at: datetime | None
    discarded_at: datetime | None = None
    discarded_by: str | None = None
    discard_reason: str | None = None

    def impact(self, now: datetime) -> float:
        """How much a dead letter matters: its units (at least 1) times its kind's weight
        (IMPACT_OF_KIND), times one plus the hours since it happened, as the intake ranks its
        dead letters."""
        m = self.movement
        hours = max(0.0, (now - m.occurred_at).total_seconds()) / 3600
        return max(1, abs(m.quantity)) * IMPACT_OF_KIND[m.kind] * (1 + hours)
