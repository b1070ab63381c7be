"""The reservation lifecycle as a state machine: Hypothesis draws sequences of reserves, cancels,
handoff steps, short picks, clock moves and sweeps, WMS counts, drifts and reconciliations, runs
them through the real services on the test database, and after every step checks the invariants
(`adapters.db.invariants`) and a model of what each reservation and stock row should be
(tests/property/model.py). A step the domain refuses must raise the domain's error and change
nothing.

The services are async and Hypothesis's state machines are not: the test is synchronous and owns
one event loop, with its own Database engine on the test run's database, and every rule runs its
service calls to completion on that loop (pytest-asyncio's loop is not running meanwhile)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.db import invariants
from adapters.db.engine import Database
from adapters.db.tables import (
    metadata,
    payments,
    reservation_lines,
    reservations,
    stock_discrepancies,
    stock_levels,
)
from adapters.db.uow import SqlUnitOfWork
from adapters.wms.emulator import EmulatedWms
from domain import errors
from domain.access import Actor, Role
from domain.commands import Reserve
from domain.geo import GeoPoint
from domain.pickup import Payment
from domain.reservations import MAX_ARRIVAL_NOTE_LENGTH, Status
from domain.wms import CircuitBreaker, MovementResult, WmsLevel, WmsMovement, parse_batch
from services import pickup, policy, shortage
from services import reservations as reserving
from services.unit_of_work import UnitOfWorkFactory
from services.wms import feed, inbox, reconciliation
from tests.clock import FakeClock
from tests.conftest import START, reset
from tests.helpers import given_stock, given_stores
from tests.property.model import (
    CUSTOMERS,
    NEAR_S1,
    NEAR_S3,
    ROWS,
    SKUS,
    STORE_IDS,
    STORES,
    Held,
    Refused,
    Replayed,
    Row,
    World,
    judge_shortage,
    small_policy,
)
from tests.property.profiles import bounded

T = TypeVar("T")

GHOST_ID = "00000000-0000-4000-8000-000000000000"
# Bookkeeping a refused step may touch without changing anything a client or the WMS sees.
_BOOKKEEPING = {"reserve_attempts", "intake_counts", "worker_leases"}

# --- what the rules draw from: small sets, so that steps collide ----------------------------------

# Mostly known SKUs and stores, with an unknown one now and then.
LINE_SKUS = st.sampled_from((*SKUS * 6, "GHOST"))
LINES = st.dictionaries(LINE_SKUS, st.integers(1, 3), min_size=1, max_size=3)
AT_STORE = st.sampled_from((*STORE_IDS * 3, "S9"))
NEAR = st.sampled_from(
    [
        (NEAR_S1, None),  # the default radius: every store
        (NEAR_S1, 0.5),  # S1 only
        (NEAR_S3, 2.0),  # S3 and S2
    ]
)
HOLDS = st.sampled_from([None, None, None, 7200, 600])  # 600 is not allowed
KEYS = st.sampled_from([None, None, "k1", "k2"])
CHANNELS = st.sampled_from([None, "web"])
PICK = st.integers(min_value=-1, max_value=15)  # -1: an id that names no reservation
MOSTLY = st.sampled_from([True, True, True, False])
NOTES = st.sampled_from([None, "bay 4", "x" * (MAX_ARRIVAL_NOTE_LENGTH + 1)])


class InProcessWms:
    """The reference WMS emulator's rules as a WmsPort, in this process: what the feed delivers
    moves its figures, and reconciliation reads them."""

    def __init__(self) -> None:
        self.state = EmulatedWms()

    async def send(self, movements: Sequence[WmsMovement]) -> list[MovementResult]:
        return [self.state.apply(m) for m in movements]

    async def levels(self, store_id: str) -> list[WmsLevel]:
        return [
            WmsLevel(store, sku, row.on_hand, row.reserved)
            for store, sku, row in self.state.levels(store_id)
        ]

    async def close(self) -> None:
        return None

    def figures(self) -> dict[Row, tuple[int, int]]:
        return {(s, k): (row.on_hand, row.reserved) for s, k, row in self.state.levels()}


class Lifecycle(RuleBasedStateMachine):
    def __init__(self, loop: asyncio.AbstractEventLoop, db: Database) -> None:
        super().__init__()
        self.loop = loop
        self.db = db
        self.uow: UnitOfWorkFactory = lambda: SqlUnitOfWork(db)
        self.clock = FakeClock(START)
        self.wms = InProcessWms()
        self.breaker = CircuitBreaker(threshold=1_000_000)
        self.world = World(small_policy(pickup_window_seconds=None, without_ready=False))
        self.batch_ids = itertools.count(1)
        self.drifted = False  # the WMS counted a row without telling ROPOS
        self.keyed: list[Reserve] = []  # every reserve sent with an idempotency key
        self.run(reset(db))

    # --- plumbing ---

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def refused_or_done(
        self, step: str, expected: Refused | None, call: Callable[[], Awaitable[T]]
    ) -> T | None:
        """Run the step. Refused: it must raise exactly that error and leave every row as it
        was; otherwise it must succeed (and the caller applies it to the model)."""
        if expected is None:
            event(f"{step}: done")
            return self.run(_call(call))
        event(f"{step}: {expected.error.__name__}")
        before = self.run(fingerprint(self.db))
        with pytest.raises(errors.DomainError) as raised:
            self.run(_call(call))
        assert type(raised.value) is expected.error, (
            f"expected {expected.error.__name__}, got {type(raised.value).__name__}: {raised.value}"
        )
        assert self.run(fingerprint(self.db)) == before, f"refused, yet changed: {raised.value}"
        return None

    def pick(self, index: int) -> Held | None:
        if index < 0:
            return None
        ids = list(self.world.reservations)
        return self.world.reservations[ids[index % len(ids)]]

    def has_reservations(self) -> bool:
        return bool(self.world.reservations)

    def deliver_to_wms(self) -> None:
        """Everything the ledger has for the WMS, delivered (the feed, run to the end)."""

        async def drain() -> None:
            while await feed.queue_movements(uow=self.uow, clock=self.clock):
                pass
            while True:
                stats = await feed.deliver_movements(
                    uow=self.uow,
                    clock=self.clock,
                    wms=self.wms,
                    breaker=self.breaker,
                    max_attempts=5,
                )
                assert (stats.dead, stats.failed) == (0, 0), stats
                if not stats.delivered:
                    return

        self.run(drain())

    def adopt_shortage(
        self,
        before: World,
        short_rows: Sequence[Row],
        *,
        picked: tuple[str, str, int] | None = None,
        precise: bool = True,
    ) -> None:
        after, levels, _ = self.run(read_state(self.db))
        available = {row: on_hand - reserved for row, (on_hand, reserved, _) in levels.items()}
        judge_shortage(
            before,
            after,
            available,
            short_rows,
            self.clock.now(),
            picked=picked,
            precise=precise,
        )
        # The model keeps its order (the rules pick reservations by position): the ones made by
        # the shortage go last, after their source.
        order = {rid: i for i, rid in enumerate(before.reservations)}
        made = sorted(
            set(after) - set(order),
            key=lambda rid: (
                order.get(after[rid].resourced_from or "", len(order)),
                after[rid].store,
                sorted(after[rid].lines),
            ),
        )
        self.world.reservations = {rid: after[rid] for rid in [*order, *made]}

    # --- set-up ---

    @initialize(
        # -1: no stock row at all.
        levels=st.lists(
            st.integers(min_value=-1, max_value=8), min_size=len(ROWS), max_size=len(ROWS)
        ),
        window=st.sampled_from([None, 1800]),
        without_ready=st.booleans(),
        first=st.lists(
            st.tuples(st.sampled_from(CUSTOMERS), LINES, st.sampled_from(STORE_IDS)), max_size=3
        ),
    )
    def setup(
        self,
        levels: list[int],
        window: int | None,
        without_ready: bool,
        first: list[tuple[str, dict[str, int], str]],
    ) -> None:
        """Three stores near each other, three SKUs with some stock (a row missing here and
        there), a policy with small limits, and a few reservations tried a minute apart (so
        that whichever rules Hypothesis leaves on for a run, there is something to act on)."""
        self.world.policy = small_policy(pickup_window_seconds=window, without_ready=without_ready)
        counts = {row: q for row, q in zip(ROWS, levels, strict=True) if q >= 0}
        counts.setdefault(("S1", "A"), 3)  # every SKU known, at least one row somewhere
        counts.setdefault(("S2", "B"), 3)
        counts.setdefault(("S3", "C"), 3)

        async def given() -> None:
            await given_stores(self.uow, self.clock, *STORES)
            await given_stock(self.uow, self.clock, counts)
            await policy.update_policy(self.world.policy, uow=self.uow, clock=self.clock)

        self.run(given())
        self.world.on_hand = dict(counts)
        for (store, sku), q in counts.items():
            self.wms.state.set_level(store, sku, q, 0)
        for customer, lines, store in first:
            self._reserve_step(
                Reserve.build(customer_id=customer, lines=list(lines.items()), store_id=store)
            )
            self.clock.advance(59)

    # --- reserving ---

    @rule(
        customer=st.sampled_from(CUSTOMERS),
        lines=LINES,
        store=AT_STORE,
        hold=HOLDS,
        key=KEYS,
        channel=CHANNELS,
    )
    def reserve_at_store(
        self,
        customer: str,
        lines: dict[str, int],
        store: str,
        hold: int | None,
        key: str | None,
        channel: str | None,
    ) -> None:
        self._reserve_step(
            Reserve.build(
                customer_id=customer,
                lines=list(lines.items()),
                store_id=store,
                hold_seconds=hold,
                idempotency_key=key,
                channel=channel,
            )
        )

    @rule(
        customer=st.sampled_from(CUSTOMERS),
        lines=LINES,
        near=NEAR,
        hold=HOLDS,
        key=KEYS,
        channel=CHANNELS,
    )
    def reserve_near(
        self,
        customer: str,
        lines: dict[str, int],
        near: tuple[GeoPoint, float | None],
        hold: int | None,
        key: str | None,
        channel: str | None,
    ) -> None:
        self._reserve_step(
            Reserve.build(
                customer_id=customer,
                lines=list(lines.items()),
                near=near[0],
                radius_km=near[1],
                hold_seconds=hold,
                idempotency_key=key,
                channel=channel,
            )
        )

    def _reserve_step(self, cmd: Reserve) -> None:
        """Reserve, at a named store or near a point: refused as the model says (in the order
        the service checks), replayed for a repeated key, or held where the model's sourcing
        says, for the policy's hold."""
        expected = self.world.predict_reserve(cmd)
        now = self.clock.now()
        if cmd.idempotency_key is not None:
            self.keyed.append(cmd)
        if isinstance(expected, Refused):
            self.refused_or_done("reserve", expected, lambda: self._reserve(cmd))
            return
        event(f"reserve: {type(expected).__name__}")
        if isinstance(expected, Replayed):
            before = self.run(fingerprint(self.db))
            group = self.run(self._reserve(cmd))
            assert group.replayed, group
            assert group.id == expected.group_id, group
            assert {r.id for r in group.reservations} == self.world.group(group.id)
            assert self.run(fingerprint(self.db)) == before, "a replay changed something"
            return
        group = self.run(self._reserve(cmd))
        assert not group.replayed
        got = {
            r.store_id: {line.sku: line.quantity for line in r.lines} for r in group.reservations
        }
        assert got == expected.allocations, f"reserved {got}, the model expected {expected}"
        for r in group.reservations:
            self.world.reservations[r.id] = Held(
                id=r.id,
                group_id=group.id,
                customer=cmd.customer_id,
                store=r.store_id,
                lines=got[r.store_id],
                status=Status.HELD,
                created_at=now,
                expires_at=r.expires_at,
            )
            assert (r.expires_at - now).total_seconds() == expected.hold_seconds
        if cmd.idempotency_key is not None:
            self.world.keys[(cmd.customer_id, cmd.idempotency_key)] = (cmd.fingerprint(), group.id)
        # Shoppers do not all come at the same instant: holds of one row have an age order
        # (which a shortage must follow, newest first).
        self.clock.advance(1)

    @rule(row=st.sampled_from(ROWS), first=st.sampled_from(CUSTOMERS), units=st.integers(1, 2))
    def two_shoppers(self, row: Row, first: str, units: int) -> None:
        """Two shoppers reserve the same SKU at the same store, a second apart: rows held by
        several reservations of different ages (what a shortage must take newest first)."""
        store, sku = row
        second = CUSTOMERS[(CUSTOMERS.index(first) + 1) % len(CUSTOMERS)]
        for customer in (first, second):
            self._reserve_step(
                Reserve.build(customer_id=customer, lines=[(sku, units)], store_id=store)
            )

    @precondition(lambda self: bool(self.keyed))
    @rule(index=st.integers(min_value=0, max_value=15))
    def reserve_again(self, index: int) -> None:
        """A channel retries a request it sent with an idempotency key (its answer was lost):
        the first group again if that one was reserved, whatever happened to it since."""
        self._reserve_step(self.keyed[index % len(self.keyed)])

    async def _reserve(self, cmd: Reserve) -> reserving.ReservationGroup:
        return await reserving.reserve(cmd, uow=self.uow, clock=self.clock)

    # --- the lifecycle ---

    @precondition(has_reservations)
    @rule(index=PICK, reason=st.sampled_from([None, "changed my mind"]))
    def cancel(self, index: int, reason: str | None) -> None:
        r = self.pick(index)
        now = self.clock.now()
        rid = r.id if r else GHOST_ID
        expected = self.world.predict_cancel(r, now)
        self.refused_or_done(
            "cancel",
            expected,
            lambda: reserving.cancel(rid, reason, uow=self.uow, clock=self.clock),
        )
        if expected is None and r is not None:
            self.world.release(r, Status.CANCELLED, now)
            r.cancel_reason = reason

    @precondition(has_reservations)
    @rule(index=PICK)
    def mark_ready(self, index: int) -> None:
        r = self.pick(index)
        now = self.clock.now()
        rid = r.id if r else GHOST_ID
        expected = self.world.predict_mark_ready(r, now)
        done = self.refused_or_done(
            "mark_ready", expected, lambda: pickup.mark_ready(rid, uow=self.uow, clock=self.clock)
        )
        if done is not None and r is not None:
            r.status = Status.READY_FOR_PICKUP
            window = self.world.policy.pickup_window_seconds
            if window is not None:
                r.expires_at = now + _seconds(window)
            assert done.expires_at == r.expires_at

    @precondition(has_reservations)
    @rule(index=PICK, own=MOSTLY, note=NOTES)
    def check_in(self, index: int, own: bool, note: str | None) -> None:
        r = self.pick(index)
        now = self.clock.now()
        rid = r.id if r else GHOST_ID
        owner = r.customer if r else CUSTOMERS[0]
        customer = owner if own else next(c for c in CUSTOMERS if c != owner)
        note_ok = note is None or len(note) <= MAX_ARRIVAL_NOTE_LENGTH
        expected = self.world.predict_check_in(r, customer, note_ok, now)
        self.refused_or_done(
            "check_in",
            expected,
            lambda: pickup.check_in(rid, customer, note, uow=self.uow, clock=self.clock),
        )
        if expected is None and r is not None:
            r.arrived = True

    @precondition(has_reservations)
    @rule(index=PICK, reference=st.sampled_from(["pay-1", "pay-2"]))
    def collect(self, index: int, reference: str) -> None:
        r = self.pick(index)
        now = self.clock.now()
        rid = r.id if r else GHOST_ID
        expected = self.world.predict_collect(r, reference, now)
        payment = Payment.build(amount="9.99", currency="GBP", method="card", reference=reference)
        repeat = r is not None and r.status is Status.COLLECTED
        before = self.run(fingerprint(self.db)) if repeat else None
        self.refused_or_done(
            "collect",
            expected,
            lambda: pickup.complete_pickup(rid, payment, "pos-1", uow=self.uow, clock=self.clock),
        )
        if expected is None and r is not None:
            if repeat:
                event("collect: the same payment again")
                assert self.run(fingerprint(self.db)) == before, "the same payment again changed"
            else:
                self.world.release(r, Status.COLLECTED, now)
                r.payment = reference

    @precondition(lambda self: self.has_active())
    @rule(
        index=st.integers(min_value=0, max_value=15), reference=st.sampled_from(["pay-1", "pay-2"])
    )
    def hand_over(self, index: int, reference: str) -> None:
        """The store's usual handoff of an active reservation: marked ready, then collected
        (each step as its own rule predicts it, refusals included)."""
        ids = list(self.world.reservations)
        active = [i for i, rid in enumerate(ids) if self.world.reservations[rid].active]
        chosen = active[index % len(active)]
        self.mark_ready(chosen)
        self.collect(chosen, reference)

    @precondition(has_reservations)
    @rule(
        index=PICK,
        line=st.integers(min_value=0, max_value=3),
        missing=st.sampled_from([1, 1, 2, 3, 0, None]),
        own_store=MOSTLY,
        of_active=MOSTLY,
    )
    def report_short_pick(
        self, index: int, line: int, missing: int | None, own_store: bool, of_active: bool
    ) -> None:
        """Staff found `missing` units fewer of a line than reserved (0: all of them, which is no
        short pick; None: a negative count; `line` past the reservation's lines: a SKU it does
        not hold; `of_active`: one of the active reservations, else any)."""
        active = [r for r in self.world.reservations.values() if r.active]
        r = active[index % len(active)] if of_active and active and index >= 0 else self.pick(index)
        held = sorted(r.lines) if r else []
        sku = held[line] if line < len(held) else next((k for k in SKUS if k not in held), "GHOST")
        reserved = r.lines.get(sku, 1) if r else 1
        found = -1 if missing is None else max(0, reserved - missing)
        now = self.clock.now()
        rid = r.id if r else GHOST_ID
        home = r.store if r else STORE_IDS[0]
        store = home if own_store else next(s for s in STORE_IDS if s != home)
        actor = Actor(role=Role.STAFF, subject="staff-1", store_id=store)
        expected = self.world.predict_short_pick(r, sku, found, own_store, now)
        before = self.world.copy()
        self.refused_or_done(
            "report_short_pick",
            expected,
            lambda: shortage.report_short_pick(
                rid, sku, found, actor, uow=self.uow, clock=self.clock
            ),
        )
        if expected is not None or r is None:
            return
        gone = r.lines[sku] - found
        row = (r.store, sku)
        self.world.on_hand[row] -= min(gone, self.world.on_hand[row])
        self.adopt_shortage(before, [row], picked=(r.id, sku, gone))

    # --- time ---

    def has_active(self) -> bool:
        return any(r.active for r in self.world.reservations.values())

    @precondition(has_active)
    @rule(seconds=st.sampled_from([1200, 3600, 300, 60]), then_sweep=st.booleans())
    def advance(self, seconds: int, then_sweep: bool) -> None:
        """Time passes, and the sweeper runs or not: until it does, due reservations stay active
        and every step on them is refused as expired."""
        self.clock.advance(seconds)
        event(f"advance: {seconds}")
        if then_sweep:
            self.sweep()

    @precondition(has_active)
    @rule(index=st.integers(min_value=0, max_value=15), then_sweep=MOSTLY)
    def near_expiry(self, index: int, then_sweep: bool) -> None:
        """Time passes until an active reservation is within the policy's warning lead time of
        its expiry (not past it), and the sweeper runs or not."""
        active = [r for r in self.world.reservations.values() if r.active]
        r = active[index % len(active)]
        lead = _seconds(self.world.policy.expiry_warning_seconds)
        self.clock.set(max(self.clock.now(), r.expires_at - lead + _seconds(1)))
        event("near_expiry")
        if then_sweep:
            self.sweep()

    def something_to_sweep(self) -> bool:
        now, lead = self.clock.now(), _seconds(self.world.policy.expiry_warning_seconds)
        return any(
            r.active and (r.due(now) or (r.warned_for != r.expires_at <= now + lead))
            for r in self.world.reservations.values()
        )

    @precondition(something_to_sweep)
    @rule()
    def sweep(self) -> None:
        """The background sweeps: the expiry warning, then the expiry (each once per due
        reservation: a second sweep at the same instant finds nothing)."""
        now = self.clock.now()
        warned = self.run(reserving.warn_expiring(uow=self.uow, clock=self.clock))
        assert warned == self.world.warn_due(now)
        expired = self.run(reserving.expire_due(uow=self.uow, clock=self.clock))
        assert expired == self.world.expire_due(now)
        event(
            f"sweep: {'warned' if warned else 'none warned'}, {'expired' if expired else 'none expired'}"
        )

    # --- the WMS ---

    @rule(
        row=st.sampled_from(ROWS),
        absolute=st.booleans(),
        value=st.integers(min_value=-3, max_value=6),
        short_by=st.sampled_from([None, None, 1, 2]),
    )
    def wms_count(self, row: Row, absolute: bool, value: int, short_by: int | None) -> None:
        """The WMS pushes a count (`POST /wms/stock-levels`): on hand set, or moved by a delta;
        a row short of what is reserved gives reservations up to re-sourcing. `short_by`: the
        count is of a row with units reserved, that many below them (so shortages are common)."""
        holders = {r: self._holders(r) for r in ROWS if self.world.reserved(r) > 0}
        if short_by is not None and holders:
            # The rows held by the most reservations: which of them go is the rule tested.
            most = max(holders.values())
            held = [r for r, n in holders.items() if n == most]
            row = held[ROWS.index(row) % len(held)]
            absolute, value = True, max(0, self.world.reserved(row) - short_by)
        store, sku = row
        level: dict[str, Any] = {"storeId": store, "sku": sku}
        if absolute:
            level["onHand"] = abs(value)
        else:
            level["delta"] = value
        batch_id = f"batch-{next(self.batch_ids)}"
        payload = {"batchId": batch_id, "levels": [level]}
        # The WMS counted: its own figures first (the feed has told it everything so far).
        self.deliver_to_wms()
        old = self.world.on_hand.get(row, 0)
        counted = abs(value) if absolute else max(0, old + value)
        self.wms.state.set_level(store, sku, counted)
        outcome = self.run(self._receive(payload))
        assert (outcome.status, outcome.duplicate) == ("APPLIED", False), outcome
        self.world.batches[batch_id] = payload
        self.world.on_hand[row] = counted
        before = self.world.copy()
        short = counted < before.reserved(row)
        event(f"wms_count: short of {min(self._holders(row), 2)}+ holds" if short else "wms_count")
        self.adopt_shortage(before, [row] if short else [])

    def _holders(self, row: Row) -> int:
        store, sku = row
        return sum(
            1
            for r in self.world.reservations.values()
            if r.active and r.store == store and sku in r.lines
        )

    @precondition(lambda self: bool(self.world.batches))
    @rule(index=st.integers(min_value=0, max_value=15), same=st.booleans())
    def wms_resend(self, index: int, same: bool) -> None:
        """The WMS sends a batch id again: with the same levels it is answered as the first time
        and changes nothing (a retry after a lost answer); with other levels it is refused."""
        ids = list(self.world.batches)
        batch_id = ids[index % len(ids)]
        payload = self.world.batches[batch_id]
        if not same:
            (level,) = payload["levels"]
            level = {k: v for k, v in level.items() if k not in ("onHand", "delta")}
            payload = {"batchId": batch_id, "levels": [{**level, "onHand": 99}]}
        expected = None if same else Refused(errors.BadInput)
        before = self.run(fingerprint(self.db))
        outcome = self.refused_or_done("wms_resend", expected, lambda: self._receive(payload))
        if outcome is not None:
            assert (outcome.status, outcome.duplicate) == ("APPLIED", True), outcome
            assert self.run(fingerprint(self.db)) == before, "a repeated batch changed something"

    async def _receive(self, payload: dict[str, Any]) -> inbox.BatchOutcome:
        return await inbox.receive_batch(
            parse_batch(payload), payload, uow=self.uow, clock=self.clock
        )

    @rule(index=st.integers(min_value=0, max_value=8), value=st.integers(min_value=0, max_value=8))
    def wms_drift(self, index: int, value: int) -> None:
        """The WMS's count of a row changes without a push (shrink it found, a miscount):
        ROPOS does not know until a reconciliation."""
        rows = sorted(self.world.on_hand)
        row = rows[index % len(rows)]
        self.deliver_to_wms()
        self.wms.state.set_level(*row, value)
        self.drifted = True

    @precondition(lambda self: self.drifted)
    @rule()
    def reconcile(self) -> None:
        """Reconciliation with everything delivered: the WMS's on hand is taken for the rows it
        counted differently (none is left open), and afterwards both sides agree. A row that
        gained a lock meanwhile (a shortage in a store compared before it moved units there) is
        skipped, as its movement is on its way: the next run takes its count."""
        self.deliver_to_wms()
        self.clock.advance(1)  # the figures are read after the last delivery
        drifted = {
            row: on_hand
            for row, (on_hand, _) in self.wms.figures().items()
            if self.world.on_hand.get(row) != on_hand
        }
        run = self.run(reconciliation.reconcile(uow=self.uow, clock=self.clock, wms=self.wms))
        found = self.run(discrepancies_of(self.db, run.id))
        repaired = {row: theirs for row, (kind, ours, theirs) in found.items()}
        assert all(
            kind == "ON_HAND" and ours == self.world.on_hand[row]
            for row, (kind, ours, _) in found.items()
        ), found
        assert repaired.items() <= drifted.items(), (repaired, drifted)
        skipped = set(drifted) - set(repaired)
        assert (run.error, run.open) == (None, 0), run
        # Skipped: the drifted rows not repaired, and maybe rows that did not drift.
        assert run.repaired == len(repaired), (run, drifted)
        assert run.skipped >= len(skipped), (run, drifted)
        event(f"reconcile: {min(len(repaired), 2)} rows repaired, {min(len(skipped), 1)} skipped")
        self.world.on_hand.update(repaired)
        before = self.world.copy()
        short = [row for row, q in repaired.items() if q < before.reserved(row)]
        self.adopt_shortage(before, short, precise=len(repaired) <= 1 and not skipped)
        self.drifted = bool(skipped)
        self.deliver_to_wms()
        _, levels, _ = self.run(read_state(self.db))
        for row, (on_hand, reserved) in self.wms.figures().items():
            ours = levels[row][:2]
            assert ours == (before.on_hand[row] if row in skipped else on_hand, reserved), (
                f"{row}: the WMS has {(on_hand, reserved)}, ROPOS {ours} after a reconciliation"
            )

    # --- after every step ---

    @invariant()
    def the_rows_match_the_model(self) -> None:
        broken = self.run(invariants.violations(self.db))
        assert not broken, f"invariants broken: {broken}"
        found, levels, paid = self.run(read_state(self.db))
        assert found == self.world.reservations, _difference(self.world.reservations, found)
        world = self.world
        assert {row: on_hand for row, (on_hand, _, _) in levels.items()} == world.on_hand
        for row, (on_hand, reserved, _) in levels.items():
            assert reserved == world.reserved(row), row
            assert on_hand - reserved >= 0, f"{row}: available below zero"
        assert paid == {r.id: r.payment for r in world.reservations.values() if r.payment}
        limits = world.policy
        for customer in CUSTOMERS:
            active = world.active_of(customer)
            # Units moved by a shortage count, but no limit refused them: not the shopper's doing.
            own = [r for r in active if r.resourced_from is None]
            assert len(own) <= limits.max_active_reservations_per_customer, (customer, active)
            for sku in SKUS:
                assert world.units_of(customer, sku) <= limits.max_units_per_sku_per_customer


def _seconds(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


async def _call(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


def _difference(expected: dict[str, Held], found: dict[str, Held]) -> str:
    lines = []
    for rid in sorted(set(expected) | set(found)):
        if expected.get(rid) != found.get(rid):
            lines.append(f"{rid}:\n  model: {expected.get(rid)}\n  rows:  {found.get(rid)}")
    return "\n".join(lines)


async def read_state(
    db: Database,
) -> tuple[dict[str, Held], dict[Row, tuple[int, int, int]], dict[str, str]]:
    """The reservations as the model sees them, each stock row's (on hand, reserved, safety)
    and each payment's reference."""
    async with db.read() as conn:
        rows = (
            await conn.execute(sa.select(reservations).order_by(reservations.c.created_at))
        ).all()
        lines = (await conn.execute(sa.select(reservation_lines))).all()
        levels = (await conn.execute(sa.select(stock_levels))).all()
        paid = (
            await conn.execute(sa.select(payments.c.reservation_id, payments.c.reference))
        ).all()
    by_reservation: dict[str, dict[str, int]] = {}
    for line in lines:
        by_reservation.setdefault(line.reservation_id, {})[line.sku] = line.quantity
    references = {p.reservation_id: p.reference for p in paid}
    held = {
        r.id: Held(
            id=r.id,
            group_id=r.group_id,
            customer=r.customer_id,
            store=r.store_id,
            lines=by_reservation.get(r.id, {}),
            status=Status(r.status),
            created_at=r.created_at,
            expires_at=r.expires_at,
            arrived=r.arrived_at is not None,
            warned_for=r.warned_for,
            payment=references.get(r.id),
            resourced_from=r.resourced_from,
            cancel_reason=r.cancel_reason,
        )
        for r in rows
    }
    figures = {(lv.store_id, lv.sku): (lv.on_hand, lv.reserved, lv.safety_stock) for lv in levels}
    return held, figures, references


async def discrepancies_of(db: Database, run_id: str) -> dict[Row, tuple[str, int, int]]:
    """What a reconciliation run found, per row: (kind, ROPOS's figure, the WMS's)."""
    found = stock_discrepancies.c
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    found.store_id, found.sku, found.kind, found.ropos_value, found.wms_value
                ).where(found.run_id == run_id)
            )
        ).all()
    result = {(r.store_id, r.sku): (r.kind, r.ropos_value, r.wms_value) for r in rows}
    assert len(result) == len(rows), rows
    return result


async def fingerprint(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but counters of attempts and leases: what a refused step must
    leave as it was. (No relay runs here: the outbox's delivery marks stay put too.)"""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in _BOOKKEEPING:
                continue
            query = sa.select(table).order_by(*table.primary_key.columns)
            found[table.name] = [tuple(row) for row in (await conn.execute(query)).all()]
    return found


def test_the_lifecycle_keeps_its_invariants_and_its_model(database_url: str) -> None:
    loop = asyncio.new_event_loop()
    db = Database(database_url)
    try:

        class OnTheTestDatabase(Lifecycle):
            def __init__(self) -> None:
                super().__init__(loop, db)

        run_state_machine_as_test(OnTheTestDatabase, settings=bounded(examples=25, steps=30))
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
