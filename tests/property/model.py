"""The lifecycle machine's model of the world: what each reservation should be after the steps
taken, what each step should answer, and the rules a stock shortage must follow. Pure: it knows
nothing of the database; the machine (test_lifecycle_machine.py) compares it with the real rows.

The model predicts every deterministic step exactly (which refusal, in the order the services
check; which stores a reserve lands in, through the domain's own sourcing plan). A shortage (a
WMS count below what is reserved, a short pick, a reconciliation) is judged instead of predicted:
which lines go, and where, depends on ties the model cannot see, so `judge_shortage` checks the
outcome against the rules (only the short rows lose units, newest first, no more than needed,
moved to the nearest store that had them or let go, nothing else changes) and the model then
takes the outcome as its new state."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain import errors
from domain.catalog import Store
from domain.commands import Reserve
from domain.geo import GeoPoint, bounding_box, distance_km
from domain.policy import ReservationPolicy
from domain.reservations import STOCK_SHORTAGE, Status
from domain.sourcing import Allocation, Candidate, plan
from services.shortage import DEFAULT_RESOURCE_RADIUS_KM
from tests.helpers import ORIGIN, store_at

# Three stores on a line east of ORIGIN (0, 1 and 3 km): no two distances between them tie.
STORES: tuple[Store, ...] = (store_at("S1", 0), store_at("S2", 1), store_at("S3", 3))
STORE_IDS = tuple(s.id for s in STORES)
SKUS = ("A", "B", "C")
ROWS = tuple((s, k) for s in STORE_IDS for k in SKUS)
CUSTOMERS = ("c1", "c2", "c3")
# Where a shopper searches from: at S1, and between S2 and S3 (0.5 km from S3).
NEAR_S1 = ORIGIN
NEAR_S3 = GeoPoint(ORIGIN.lat, ORIGIN.lon + 2.5 / 69.4)

Row = tuple[str, str]


def small_policy(*, pickup_window_seconds: int | None, without_ready: bool) -> ReservationPolicy:
    """Limits small enough that the steps run into them."""
    return ReservationPolicy(
        default_hold_seconds=3600,
        allowed_hold_seconds=(3600, 7200),
        max_active_reservations_per_customer=2,
        max_units_per_sku_per_customer=4,
        expiry_warning_seconds=600,
        max_stores_per_group=2,
        pickup_window_seconds=pickup_window_seconds,
        allow_pickup_without_ready=without_ready,
    )


@dataclass
class Held:
    """One reservation as the model expects it (and as the machine reads it back)."""

    id: str
    group_id: str
    customer: str
    store: str
    lines: dict[str, int]
    status: Status
    created_at: datetime
    expires_at: datetime
    arrived: bool = False
    warned_for: datetime | None = None
    payment: str | None = None  # the reference of the payment taken at collection
    resourced_from: str | None = None
    cancel_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.status.is_active

    def due(self, now: datetime) -> bool:
        return self.active and now >= self.expires_at


# --- what a step should answer ------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """The step must raise exactly this domain error and change nothing."""

    error: type[errors.DomainError]


@dataclass(frozen=True)
class Replayed:
    """A repeated idempotency key: the first request's group, nothing new."""

    group_id: str


@dataclass(frozen=True)
class Reserved:
    """New reservations: store -> lines."""

    allocations: dict[str, dict[str, int]]
    hold_seconds: int


@dataclass
class World:
    """The model: stock on hand per row, the reservations, the idempotency keys and stock batches
    seen, the policy, and what the WMS counted for rows it did not push."""

    policy: ReservationPolicy
    on_hand: dict[Row, int] = field(default_factory=dict)
    reservations: dict[str, Held] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)

    def copy(self) -> World:
        return dataclasses.replace(
            self,
            on_hand=dict(self.on_hand),
            reservations={
                i: dataclasses.replace(r, lines=dict(r.lines)) for i, r in self.reservations.items()
            },
            keys=dict(self.keys),
            batches=dict(self.batches),
        )

    # --- figures ---

    def reserved(self, row: Row) -> int:
        store, sku = row
        return sum(
            r.lines.get(sku, 0) for r in self.reservations.values() if r.active and r.store == store
        )

    def available(self, row: Row) -> int:
        return self.on_hand.get(row, 0) - self.reserved(row)

    def active_of(self, customer: str) -> list[Held]:
        return [r for r in self.reservations.values() if r.active and r.customer == customer]

    def units_of(self, customer: str, sku: str) -> int:
        return sum(r.lines.get(sku, 0) for r in self.active_of(customer))

    def group(self, group_id: str) -> set[str]:
        return {r.id for r in self.reservations.values() if r.group_id == group_id}

    # --- predictions, each in the order the service checks ---

    def predict_reserve(self, cmd: Reserve) -> Refused | Replayed | Reserved:
        policy = self.policy
        hold = cmd.hold_seconds or policy.default_hold_seconds
        if cmd.hold_seconds is not None and cmd.hold_seconds not in policy.allowed_hold_seconds:
            return Refused(errors.BadInput)
        if any(q > policy.max_units_per_sku_per_customer for q in cmd.units.values()):
            return Refused(errors.LimitExceeded)
        if cmd.idempotency_key is not None:
            found = self.keys.get((cmd.customer_id, cmd.idempotency_key))
            if found is not None:
                signature, group_id = found
                if signature != cmd.fingerprint():
                    return Refused(errors.BadInput)
                return Replayed(group_id)
        unknown_sku = any(sku not in SKUS for sku in cmd.units)
        if cmd.store_id is None:
            try:
                allocations = self._source_near(cmd)
            except errors.OutOfStock:
                return Refused(errors.NotFound if unknown_sku else errors.OutOfStock)
        else:
            allocations = {cmd.store_id: dict(cmd.units)}
        if self._over_limits(cmd, len(allocations)):
            return Refused(errors.LimitExceeded)
        if cmd.store_id is not None:
            # The rows are inserted before the stock is locked: an unknown store or SKU fails
            # its foreign key first.
            if cmd.store_id not in STORE_IDS or unknown_sku:
                return Refused(errors.NotFound)
            if any(self.available((cmd.store_id, s)) < q for s, q in cmd.units.items()):
                return Refused(errors.OutOfStock)
        return Reserved(allocations, hold)

    def _over_limits(self, cmd: Reserve, reservations: int) -> bool:
        """The customer's counters: active reservations (a split counts one per store) and units
        of each SKU over all their active reservations."""
        policy = self.policy
        active = len(self.active_of(cmd.customer_id))
        if active + reservations > policy.max_active_reservations_per_customer:
            return True
        return any(
            self.units_of(cmd.customer_id, sku) + q > policy.max_units_per_sku_per_customer
            for sku, q in cmd.units.items()
        )

    def _source_near(self, cmd: Reserve) -> dict[str, dict[str, int]]:
        """What the stock query and the domain's plan choose: stores within the radius with some
        of the wanted SKUs available, nearest first."""
        assert cmd.near is not None
        assert cmd.radius_km is not None
        box = bounding_box(cmd.near, cmd.radius_km)
        candidates = []
        for store in STORES:
            distance = distance_km(cmd.near, store.lat, store.lon)
            inside = box.min_lat <= store.lat <= box.max_lat and (
                box.min_lon <= store.lon <= box.max_lon
            )
            if not inside or distance > cmd.radius_km:
                continue
            available = {
                sku: self.available((store.id, sku))
                for sku in cmd.units
                if (store.id, sku) in self.on_hand and self.available((store.id, sku)) > 0
            }
            if available:
                candidates.append(Candidate(store.id, distance, available))
        chosen: list[Allocation] = plan(cmd.units, candidates, self.policy.max_stores_per_group)
        return {a.store_id: {line.sku: line.quantity for line in a.lines} for a in chosen}

    def predict_cancel(self, r: Held | None, now: datetime) -> Refused | None:
        if r is None:
            return Refused(errors.NotFound)
        if r.due(now) or r.status is Status.EXPIRED:
            return Refused(errors.ReservationExpired)
        if not r.active:
            return Refused(errors.InvalidTransition)
        return None

    def predict_mark_ready(self, r: Held | None, now: datetime) -> Refused | None:
        if r is None:
            return Refused(errors.NotFound)
        if r.due(now) or r.status is Status.EXPIRED:
            return Refused(errors.ReservationExpired)
        if r.status is not Status.HELD:
            return Refused(errors.InvalidTransition)
        return None

    def predict_check_in(
        self, r: Held | None, customer: str, note_ok: bool, now: datetime
    ) -> Refused | None:
        if r is None or r.customer != customer:
            return Refused(errors.NotFound)
        if not note_ok:
            return Refused(errors.BadInput)
        if not r.active:
            return Refused(errors.InvalidTransition)
        if r.due(now):
            return Refused(errors.ReservationExpired)
        if r.arrived:
            return Refused(errors.InvalidTransition)
        return None

    def predict_collect(self, r: Held | None, reference: str, now: datetime) -> Refused | None:
        """None: collected now, or (already collected with this very payment) answered again."""
        if r is None:
            return Refused(errors.NotFound)
        if r.status is Status.COLLECTED:
            return None if r.payment == reference else Refused(errors.InvalidTransition)
        if r.due(now) or r.status is Status.EXPIRED:
            return Refused(errors.ReservationExpired)
        if r.status is Status.HELD and not self.policy.allow_pickup_without_ready:
            return Refused(errors.InvalidTransition)
        if not r.active:
            return Refused(errors.InvalidTransition)
        return None

    def predict_short_pick(
        self, r: Held | None, sku: str, found: int, own_store: bool, now: datetime
    ) -> Refused | None:
        if found < 0:
            return Refused(errors.BadInput)
        if r is None or not own_store:
            return Refused(errors.NotFound)
        if r.due(now) or r.status is Status.EXPIRED:
            return Refused(errors.ReservationExpired)
        if not r.active:
            return Refused(errors.InvalidTransition)
        if sku not in r.lines or found >= r.lines[sku]:
            return Refused(errors.BadInput)
        return None

    # --- the deterministic changes ---

    def release(self, r: Held, status: Status, now: datetime) -> None:
        r.status = status
        if status is Status.COLLECTED:
            for sku, q in r.lines.items():
                self.on_hand[(r.store, sku)] -= q

    def warn_due(self, now: datetime) -> int:
        lead = timedelta(seconds=self.policy.expiry_warning_seconds)
        warned = [
            r
            for r in self.reservations.values()
            if r.active and now < r.expires_at <= now + lead and r.warned_for != r.expires_at
        ]
        for r in warned:
            r.warned_for = r.expires_at
        return len(warned)

    def expire_due(self, now: datetime) -> int:
        due = [r for r in self.reservations.values() if r.due(now)]
        for r in due:
            r.status = Status.EXPIRED
        return len(due)


# --- judging a shortage's outcome ---------------------------------------------------------------

_STABLE = ("group_id", "customer", "store", "created_at", "expires_at", "arrived", "payment")


def _distance(a: str, b: str) -> float:
    store = {s.id: s for s in STORES}
    return distance_km(GeoPoint(store[a].lat, store[a].lon), store[b].lat, store[b].lon)


def judge_shortage(
    before: World,
    after: Mapping[str, Held],
    available_after: Mapping[Row, int],
    short_rows: Iterable[Row],
    now: datetime,
    *,
    picked: tuple[str, str, int] | None = None,
    precise: bool = True,
) -> None:
    """Assert that `after` is what resolving the shortages of `short_rows` may make of `before`.

    `picked`: (reservation, SKU, units missing) of a short pick, whose units go first whatever
    their age. `precise`: one row ran short and nothing else moved in the step, so the amounts
    (no more taken than needed) and the destinations (the nearest store that had the units, else
    let go) are checked too; a reconciliation over several stores only gets the rules that hold
    whatever the order of the stores."""
    rows = set(short_rows)
    picked_key = (picked[0], picked[1]) if picked else None
    assert set(before.reservations) <= set(after), "a reservation disappeared"
    lost: dict[tuple[str, str], int] = {}
    for rid, old in before.reservations.items():
        for sku, q in _lines_lost(old, after[rid]).items():
            if (rid, sku) == picked_key:
                assert picked is not None
                assert q >= picked[2], (old, after[rid], picked)
            else:
                assert (old.store, sku) in rows, (
                    f"{rid} lost {q} of {sku} at {old.store}, which did not run short"
                )
                assert q == old.lines[sku], (
                    f"{rid} lost part of its {sku} line: {old} -> {after[rid]}"
                )
            lost[(rid, sku)] = q
    moved = _lines_moved(before, after, lost, now, precise=precise)
    for store, sku in rows:
        _newest_first(before, lost, store, sku, picked_key)
    if not precise:
        return
    for store, sku in rows:
        _no_more_than_needed(before, lost, store, sku, picked)
    for (rid, sku), q in lost.items():
        _to_the_nearest(
            before.reservations[rid], sku, q, moved.get((rid, sku), []), available_after, now
        )


def _lines_lost(old: Held, new: Held) -> dict[str, int]:
    """The units of each SKU a shortage took from one reservation (nothing else may change)."""
    for name in _STABLE:
        assert getattr(new, name) == getattr(old, name), (
            f"a shortage changed {name} of {old.id}: {old} -> {new}"
        )
    if new.status == old.status and new.lines == old.lines:
        return {}
    assert old.active, f"a shortage changed the finished reservation {old} -> {new}"
    if new.status is Status.CANCELLED:
        assert new.cancel_reason == STOCK_SHORTAGE, new
        # It keeps the last line it had, for the record.
        (sku,) = new.lines
        assert new.lines[sku] <= old.lines[sku], (old, new)
        return {k: q for k, q in old.lines.items() if q}
    assert new.status == old.status, (old, new)
    assert set(new.lines) <= set(old.lines), (old, new)
    gone = {sku: q - new.lines.get(sku, 0) for sku, q in old.lines.items()}
    assert all(q >= 0 for q in gone.values()), (old, new)
    return {k: q for k, q in gone.items() if q}


def _lines_moved(
    before: World,
    after: Mapping[str, Held],
    lost: Mapping[tuple[str, str], int],
    now: datetime,
    *,
    precise: bool,
) -> dict[tuple[str, str], list[Held]]:
    """The reservations a shortage made elsewhere, by the (reservation, SKU) they took over;
    each one line, of the same customer, group and expiry, never more units than were lost."""
    moved: dict[tuple[str, str], list[Held]] = {}
    for rid in set(after) - set(before.reservations):
        new = after[rid]
        source = before.reservations.get(new.resourced_from or "")
        if source is None:
            # Taken over from a reservation made in this very step (a reconciliation that moved
            # units twice): only its own shape is checked.
            assert not precise, new
            assert new.resourced_from in after, new
            source = after[new.resourced_from or ""]
        assert len(new.lines) == 1, new
        (sku,) = new.lines
        assert (new.customer, new.group_id) == (source.customer, source.group_id), new
        assert (new.expires_at, new.created_at) == (source.expires_at, now), new
        assert new.store != source.store, new
        assert new.cancel_reason in (None, STOCK_SHORTAGE), new
        assert (new.arrived, new.payment, new.warned_for) == (False, None, None), new
        assert _distance(source.store, new.store) <= DEFAULT_RESOURCE_RADIUS_KM
        if source.id in before.reservations:
            assert not source.due(now), f"the due {source.id} had units moved to {new}"
            moved.setdefault((source.id, sku), []).append(new)
    for key, news in moved.items():
        assert sum(n.lines[key[1]] for n in news) <= lost.get(key, 0), (key, news, lost)
    return moved


def _no_more_than_needed(
    before: World,
    lost: Mapping[tuple[str, str], int],
    store: str,
    sku: str,
    picked: tuple[str, str, int] | None,
) -> None:
    """A short row gives up whole lines until what is reserved fits on hand, and no more."""
    picked_key = (picked[0], picked[1]) if picked else None
    taken = [
        q
        for (rid, s), q in lost.items()
        if s == sku and (rid, s) != picked_key and before.reservations[rid].store == store
    ]
    excess = before.reserved((store, sku)) - before.on_hand.get((store, sku), 0)
    if picked is not None and (before.reservations[picked[0]].store, picked[1]) == (store, sku):
        # The picked units leave reserved, and as many as there are leave on hand.
        on_hand = before.on_hand.get((store, sku), 0)
        excess -= picked[2] - min(picked[2], on_hand)
    if excess <= 0:
        assert not taken, f"{store}/{sku} was not short, yet lost {taken}"
    else:
        assert sum(taken) >= excess, f"{store}/{sku} is still short by {excess - sum(taken)}"
        assert sum(taken) - max(taken) < excess, f"{store}/{sku} lost more than needed"


def _to_the_nearest(
    source: Held,
    sku: str,
    quantity: int,
    news: list[Held],
    available_after: Mapping[Row, int],
    now: datetime,
) -> None:
    """Lost units went, whole, to the nearest other store that had them, or were let go when
    none had them (or the source was due)."""
    assert len(news) <= 1, (source, sku, quantity, news)
    assert all(n.lines[sku] == quantity for n in news), (source, sku, quantity, news)
    target = news[0].store if news else None
    if source.due(now):
        return
    for other in STORE_IDS:
        if other in (source.store, target):
            continue
        if target is None or _distance(source.store, other) < _distance(source.store, target):
            assert available_after.get((other, sku), 0) < quantity, (
                f"{quantity} of {sku} from {source.id} went to {target}, but {other} is nearer "
                f"and has {available_after.get((other, sku), 0)}"
            )


def _newest_first(
    before: World,
    lost: Mapping[tuple[str, str], int],
    store: str,
    sku: str,
    picked: tuple[str, str] | None,
) -> None:
    """The lines a shortage took are the newest of the row: none left alone is newer than one
    taken (holds made at the same instant may go either way)."""
    holders = [
        r
        for r in before.reservations.values()
        if r.active and r.store == store and sku in r.lines and (r.id, sku) != picked
    ]
    taken = [r.created_at for r in holders if (r.id, sku) in lost]
    kept = [r.created_at for r in holders if (r.id, sku) not in lost]
    if taken and kept:
        assert min(taken) >= max(kept), f"{store}/{sku}: an older hold went before a newer one"
