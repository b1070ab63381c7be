"""`ropos simulate`: one day of a chain in accelerated time, through the real services.

A discrete-event simulation: the world's behaviour (services/simulation.py) decides what happens
and when; this module moves the injectable clock from event to event (it never sleeps) and has
every step carried out the way the product's clients would: shoppers reserve, check in and cancel
through the GraphQL schema (executed in process, with their own customer token) or order on a
sales channel (signed deliveries into the intake edge, then the intake worker); staff mark ready,
report short picks and hand over with payment through GraphQL; holds run out through the expiry
use case every simulated minute; the WMS (the reference emulator, in process) takes ROPOS's
movements from the feed, pushes cycle counts into the WMS inbox, and is reconciled with at
closing. The KPIs are then read with the `kpis` query, as an ops client would: hour by hour while
the day runs (the window ends at the clock's now), and for the whole day at the end."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import json
import logging
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.channels.value import value_hint
from adapters.db.engine import Database
from adapters.wms.emulator import EmulatedWms
from domain.access import Actor, Role
from domain.catalog import Sku, StockCount
from domain.geo import GeoPoint
from domain.intake import (
    ChannelAccount,
    ChannelOrder,
    Customer,
    IntakeMessage,
    Money,
    OrderEvent,
    OrderLine,
    Pickup,
    SalesChannel,
    intake_customer_id,
    to_json,
)
from domain.intake_auth import standard_headers
from domain.reservations import Reservation
from domain.wms import CircuitBreaker, MovementResult, WmsLevel, WmsMovement, parse_batch
from gateway import migrate
from gateway.auth import actor_from_header, issue_token
from gateway.deps import Deps
from gateway.runtime import running
from gateway.seed import demo_skus, demo_stock, demo_stores
from gateway.settings import Settings
from gateway.workers import intake_config
from resolvers.errors import client_error
from resolvers.root import build_schema
from schema.context import Context
from services import reservations, stock
from services.intake import accounts, edge, ops
from services.intake.accounts import AccountChange
from services.intake.worker import IntakeConfig, process_due
from services.simulation import (
    FIGURES_FIRST,
    MACHINERY,
    Agenda,
    Count,
    Fate,
    Floor,
    Loss,
    Parameters,
    Popularity,
    Shopper,
    SimClock,
    StorePlace,
    counts_of,
    losses_of,
    rng_for,
    shelves_of,
    shoppers_of,
    stores_of,
    visit_time,
)
from services.wms import feed, inbox, reconciliation

log = logging.getLogger(__name__)

ACCOUNT = "shop"  # the sales channel's account: orders reach ROPOS through the generic intake
SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"ropos-simulation").digest()[:27]).decode()
CURRENCY = "GBP"
TOKEN_TTL_SECONDS = 3 * 24 * 3600
ACTIVE = ("HELD", "READY_FOR_PICKUP")

RESERVATION = "id code storeId status expiresAt lines { sku quantity }"
RESERVE = f"""
mutation($input: ReserveInput!) {{ reserve(input: $input) {{ id reservations {{ {RESERVATION} }} }} }}
"""
CANCEL = f"""
mutation($id: ID!) {{ cancelReservation(id: $id, reason: "Changed my mind") {{ {RESERVATION} }} }}
"""
CHECK_IN = f"mutation($id: ID!) {{ checkIn(id: $id) {{ {RESERVATION} }} }}"
MARK_READY = f"mutation($id: ID!) {{ markReadyForPickup(id: $id) {{ {RESERVATION} }} }}"
SHORT_PICK = f"""
mutation($id: ID!, $sku: String!, $found: Int!) {{
  reportShortPick(reservationId: $id, sku: $sku, quantityFound: $found) {{ {RESERVATION} }}
}}
"""
SCAN = f"mutation($code: String!) {{ scanPickup(code: $code) {{ {RESERVATION} }} }}"
COMPLETE = f"""
mutation($id: ID!, $payment: PaymentInput!) {{
  completePickup(id: $id, payment: $payment) {{ {RESERVATION} }}
}}
"""
AVAILABILITY = """
query($skus: [String!]!, $near: GeoPointInput!, $quantities: [Int!]) {
  availability(skus: $skus, near: $near, quantities: $quantities, first: 10) {
    store { id } canServeAll
  }
}
"""
_DURATION = "count meanSeconds p50Seconds p90Seconds shareWithinTarget meanWithinTarget"
_FIGURES = f"""
  reservationSuccess {{
    asked reserved outOfStock limitExceeded badInput technicalFailures rate rateWhereStockExisted met
  }}
  timeToReady {{ {_DURATION} }}
  pickupWait {{ {_DURATION} }}
  readyToCollected {{ {_DURATION} }}
  endings {{
    ended collected cancelled expired noShows endedAfterReady picked shortPicked
    noShowRate shortPickRate expiryRate cancelRate
  }}
"""
KPIS = f"""
query($since: DateTime!) {{
  kpis(since: $since) {{
    since until
    {_FIGURES}
    stockAccuracy {{
      overall {{ lines ok rate }} pick {{ lines ok rate }} reconciliation {{ lines ok rate }}
      perStore {{ storeId overall {{ lines ok rate }} }}
    }}
    perStore {{ storeId figures {{ {_FIGURES} }} }}
    perChannel {{ channel figures {{ {_FIGURES} }} }}
    targets {{ reservationSuccessRate pickupWaitSeconds stockAccuracy readySeconds }}
  }}
}}
"""


# --- the events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrive:
    shopper: Shopper
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Ready:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class Visit:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class Handover:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class Cancel:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class Sweep:
    pass


@dataclass(frozen=True, slots=True)
class Feed:
    pass


@dataclass(frozen=True, slots=True)
class HourEnd:
    pass


@dataclass(frozen=True, slots=True)
class Reconcile:
    pass


@dataclass(slots=True)
class Held:
    """A reservation as the world follows it: what it holds, what staff put aside for it."""

    id: str
    seq: int
    shopper: Shopper
    store_id: str
    code: str
    lines: dict[str, int]
    expires_at: datetime
    status: str = "HELD"
    picked: dict[str, int] = field(default_factory=dict)
    shopper_waiting: bool = False
    to_pick: bool = True  # counted in its floor's waiting

    @property
    def ended(self) -> bool:
        return self.status not in ACTIVE


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run gives: the day's KPIs as the `kpis` query answered, the same hour by hour, and
    counts of what happened in the world."""

    params: Parameters
    kpis: dict[str, Any]
    hourly: list[dict[str, Any]]
    happened: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "parameters": dict(self.params.described()),
            "kpis": self.kpis,
            "hourly": self.hourly,
            "happened": self.happened,
        }


class SimulatedWms:
    """The WMS port over the reference emulator, in process: movements applied in order, levels
    read as the emulator keeps them."""

    def __init__(self, emulated: EmulatedWms) -> None:
        self.emulated = emulated

    async def send(self, movements: Sequence[WmsMovement]) -> list[MovementResult]:
        return [self.emulated.apply(m) for m in movements]

    async def levels(self, store_id: str) -> list[WmsLevel]:
        return [
            WmsLevel(store, sku, row.on_hand, row.reserved, row.revision)
            for store, sku, row in self.emulated.levels(store_id)
        ]

    async def close(self) -> None:
        return None


# --- running it --------------------------------------------------------------------------------


async def simulate(params: Parameters, *, database_url: str | None = None) -> Outcome:
    """Run the day on a fresh database: a temporary SQLite file, or `database_url` (which must
    be empty: the run migrates it and refuses one that holds stores)."""
    async with _fresh_database(database_url) as url:
        clock = SimClock(params.opens - timedelta(hours=1))
        settings = Settings(database_url=url, broker_url="memory://", run_workers=False)
        async with running(settings, clock, workers=False) as runtime:
            deps = runtime.deps
            # The counts are written when the figures are read (the kpis resolver flushes them),
            # not on the wall clock's timer, so no write ever races a read.
            await deps.reserve_attempts.stop()
            await deps.intake_counts.stop()
            world = World(params, settings, deps, clock)
            await world.set_up()
            return await world.run()


@contextlib.asynccontextmanager
async def _fresh_database(database_url: str | None) -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="ropos-sim-") as folder:
        url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'simulation.db'}"
        db = Database(url)
        try:
            await migrate.upgrade(db)
            async with db.read() as conn:
                stores = (await conn.exec_driver_sql("SELECT count(*) FROM stores")).scalar()
        finally:
            await db.dispose()
        if stores:
            raise SystemExit(
                "ropos simulate: the database already holds stores; give it an empty one."
            )
        yield url


class World:
    """The simulated chain around the real services: what it knows of each reservation, the
    shelves, the staff, the WMS; one method per kind of event."""

    def __init__(self, params: Parameters, settings: Settings, deps: Deps, clock: SimClock):
        self.params = params
        self.settings = settings
        self.deps = deps
        self.clock = clock
        self.schema = build_schema(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            plain_completion=settings.plain_completion,
        )
        self.agenda = Agenda()
        self.happened: Counter[str] = Counter()
        self.hourly: list[dict[str, Any]] = []
        self.held: dict[str, Held] = {}
        self.expiries: list[tuple[datetime, int, str]] = []
        self._tokens: dict[tuple[Role, str, str | None], str] = {}
        self._seq = 0
        stores = demo_stores()[: params.stores]
        self.skus: dict[str, Sku] = {s.code: s for s in demo_skus()}
        self.levels: list[StockCount] = demo_stock(stores, list(self.skus.values()))
        self.places: list[StorePlace] = stores_of(
            params, [(s.id, GeoPoint(s.lat, s.lon)) for s in stores]
        )
        self.floors = {p.id: Floor(params, p) for p in self.places}
        self.shelves = shelves_of(params, {(lv.store_id, lv.sku): lv.on_hand for lv in self.levels})
        self.wms = SimulatedWms(EmulatedWms())
        self.breaker = CircuitBreaker()
        self.intake: IntakeConfig = intake_config(settings, attempts=deps.reserve_attempts)
        self.account: ChannelAccount | None = None
        self.popularity = Popularity(
            list(self.skus), params.zipf_exponent, rng_for(params.seed, "popularity")
        )

    # --- the day's plan ---

    async def set_up(self) -> None:
        """The chain (its stores, catalogue and stock, loaded through the use cases), the sales
        channel's account, the WMS with the same counts, and the day's agenda."""
        stores = demo_stores()[: self.params.stores]
        uow, clock = self.deps.uow, self.clock
        await stock.upsert_stores(stores, uow=uow, clock=clock)
        await stock.upsert_skus(list(self.skus.values()), uow=uow, clock=clock)
        await stock.sync_stock(self.levels, uow=uow, clock=clock)
        for level in self.levels:
            self.wms.emulated.set_level(level.store_id, level.sku, level.on_hand, 0)
        self.account = await accounts.upsert_account(
            AccountChange(
                channel=SalesChannel.GENERIC,
                account=ACCOUNT,
                secret=SECRET,
                locations={f"LOC-{s.id}": s.id for s in stores},
            ),
            uow=uow,
            clock=clock,
            cache=self.deps.intake_accounts,
        )
        policy = await self.deps.read.policy()
        self._plan_day(policy.max_units_per_sku_per_customer)

    def _plan_day(self, max_units: int) -> None:
        p = self.params
        for shopper in shoppers_of(p, self.places, self.popularity, max_units):
            self.agenda.plan(shopper.arrives_at, Arrive(shopper))
        for loss in losses_of(p, sorted(self.shelves.on_hand)):
            self.agenda.plan(loss.at, loss)
        stocked: dict[str, list[str]] = {}
        for level in self.levels:
            stocked.setdefault(level.store_id, []).append(level.sku)
        for count in counts_of(p, stocked):
            self.agenda.plan(count.at, count, MACHINERY)
        self._every(p.sweep_seconds, Sweep())
        self._every(p.feed_seconds, Feed())
        self._every(3600, HourEnd(), FIGURES_FIRST)
        self.agenda.plan(p.closes, Reconcile(), MACHINERY)

    def _every(self, seconds: int, event: object, priority: int = MACHINERY) -> None:
        at = self.params.opens + timedelta(seconds=seconds)
        while at <= self.params.ends:
            self.agenda.plan(at, event, priority)
            at += timedelta(seconds=seconds)

    async def run(self) -> Outcome:
        while self.agenda:
            at, event = self.agenda.next()
            if at > self.params.ends:
                break
            self.clock.move_to(at)
            await self._handle(event)
        self.clock.move_to(self.params.ends)
        await self._sweep()
        self.happened["still held at the end"] = sum(1 for h in self.held.values() if not h.ended)
        day = await self._kpis(self.params.opens)
        return Outcome(self.params, day, self.hourly, dict(sorted(self.happened.items())))

    async def _handle(self, event: object) -> None:
        match event:
            case Arrive(shopper, attempt):
                await self._arrive(shopper, attempt)
            case Ready(reservation_id):
                await self._ready(self.held[reservation_id])
            case Visit(reservation_id):
                await self._visit(self.held[reservation_id])
            case Handover(reservation_id):
                await self._handover(self.held[reservation_id])
            case Cancel(reservation_id):
                await self._cancel(self.held[reservation_id])
            case Sweep():
                await self._sweep()
            case Feed():
                await self._feed()
            case HourEnd():
                await self._hour_end()
            case Reconcile():
                await self._reconcile()
            case Loss():
                self._lose(event)
            case Count():
                await self._count(event)
            case _:
                raise TypeError(f"no handler for {event!r}")

    # --- GraphQL, as the product's clients call it ---

    def _actor(
        self, role: Role, subject: str, store_id: str | None = None, channel: str | None = None
    ) -> Actor:
        key = (role, subject, store_id)
        token = self._tokens.get(key)
        if token is None:
            token = issue_token(
                self.settings,
                role=role,
                subject=subject,
                now=self.clock.now(),
                store_id=store_id,
                channel=channel,
                ttl_seconds=TOKEN_TTL_SECONDS,
            )
            self._tokens[key] = token
        actor, problem = actor_from_header(self.settings, f"Bearer {token}", self.clock.now())
        if actor is None:
            raise RuntimeError(f"the simulation's own token was refused: {problem}")
        return actor

    async def _call(
        self, document: str, variables: dict[str, Any], actor: Actor
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The operation's data, or the error code it was refused with."""
        result = await self.schema.execute(
            document,
            variable_values=variables,
            context_value=Context(deps=self.deps, actor=actor),
        )
        if result.errors:
            extensions = client_error(result.errors[0]).extensions or {}
            return None, str(extensions.get("code", "INTERNAL"))
        return result.data, None

    def _customer(self, shopper: Shopper) -> Actor:
        return self._actor(Role.CUSTOMER, shopper.customer_id)

    def _staff(self, store_id: str) -> Actor:
        return self._actor(Role.STAFF, f"staff-{store_id}", store_id)

    def _pos(self, store_id: str) -> Actor:
        return self._actor(Role.POS, f"till-{store_id}", store_id)

    def _storefront(self) -> Actor:
        return self._actor(Role.CHANNEL, f"storefront-{ACCOUNT}", channel="generic")

    async def _kpis(self, since: datetime) -> dict[str, Any]:
        data, code = await self._call(
            KPIS, {"since": since.isoformat()}, self._actor(Role.OPS, "ops-sim")
        )
        if data is None:
            raise RuntimeError(f"the kpis query failed: {code}")
        figures: dict[str, Any] = data["kpis"]
        return figures

    # --- shoppers reserve ---

    async def _arrive(self, shopper: Shopper, attempt: int) -> None:
        if attempt == 1:
            self.happened["shoppers"] += 1
        if shopper.via_intake:
            await self._order(shopper)
        elif attempt > 1:
            await self._reserve(shopper, self._bulk_lines(shopper, attempt), shopper.home_store)
        elif shopper.near:
            await self._reserve(shopper, shopper.lines, None)
        elif shopper.looks_first:
            await self._reserve(shopper, shopper.lines, await self._store_to_ask(shopper))
        else:
            await self._reserve(shopper, shopper.lines, shopper.home_store)
        if attempt < shopper.reserves:
            rng = rng_for(self.params.seed, "bulk gap", shopper.number, attempt)
            gap = timedelta(minutes=2 + 4 * rng.random())
            self.agenda.plan(self.clock.now() + gap, Arrive(shopper, attempt + 1))

    def _bulk_lines(self, shopper: Shopper, attempt: int) -> tuple[tuple[str, int], ...]:
        rng = rng_for(self.params.seed, "bulk", shopper.number, attempt)
        return ((self.popularity.pick(rng), 1),)

    async def _store_to_ask(self, shopper: Shopper) -> str | None:
        """The shopper looks at availability near them first (in the app, or on the sales
        channel's storefront, which asks ROPOS with its channel token): they reserve at their
        usual store if it has everything, else at the nearest store that has (None: near them,
        and the service decides, or splits)."""
        data, code = await self._call(
            AVAILABILITY,
            {
                "skus": [sku for sku, _ in shopper.lines],
                "quantities": [q for _, q in shopper.lines],
                "near": {"lat": shopper.location.lat, "lon": shopper.location.lon},
            },
            self._storefront() if shopper.via_intake else self._customer(shopper),
        )
        if data is None:
            self.happened[f"availability refused: {code}"] += 1
            return shopper.home_store  # they reserve from the product page anyway
        serving = [str(s["store"]["id"]) for s in data["availability"] if s["canServeAll"]]
        if shopper.home_store in serving:
            return shopper.home_store
        self.happened["looked, chose another store" if serving else "looked, none had it"] += 1
        return serving[0] if serving else None

    async def _reserve(
        self, shopper: Shopper, lines: tuple[tuple[str, int], ...], store: str | None
    ) -> None:
        """Reserve at `store`, or near the shopper (None)."""
        request: dict[str, Any] = {
            "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
            "channel": shopper.channel,
            "holdSeconds": shopper.hold_seconds,
        }
        if store is None:
            request["near"] = {"lat": shopper.location.lat, "lon": shopper.location.lon}
        else:
            request["storeId"] = store
        data, code = await self._call(RESERVE, {"input": request}, self._customer(shopper))
        self.happened[f"reserve attempts: {code or 'RESERVED'}"] += 1
        if data is not None:
            self._took(shopper, data["reserve"]["reservations"])
        elif code == "OUT_OF_STOCK" and store is not None and shopper.retries_near:
            self.happened["retried near after out of stock"] += 1
            await self._reserve(shopper, lines, None)

    async def _order(self, shopper: Shopper) -> None:
        """The shopper orders for pickup on the sales channel: at their store's location, or
        near where they are; the channel's signed webhook goes through the intake."""
        location = None if shopper.near else shopper.home_store
        if location is not None and shopper.looks_first:
            location = await self._store_to_ask(shopper)
        now = self.clock.now()
        total = sum((self._price(sku) * q for sku, q in shopper.lines), Decimal(0))
        order = ChannelOrder(
            channel=SalesChannel.GENERIC,
            account=ACCOUNT,
            external_id=f"SIM-{shopper.number:05d}",
            external_number=f"#{shopper.number}",
            event=OrderEvent.CREATE,
            placed_at=now,
            updated_at=now,
            customer=Customer(
                id=shopper.customer_id, email=f"{shopper.customer_id}@example.com", guest=False
            ),
            currency=CURRENCY,
            total=Money(total, CURRENCY),
            lines=tuple(
                OrderLine(
                    sku=sku,
                    quantity=q,
                    name=self.skus[sku].name if sku in self.skus else sku,
                    unit_price=Money(self._price(sku), CURRENCY),
                )
                for sku, q in shopper.lines
            ),
            pickup=Pickup(
                requested=True,
                channel_location_id=None if location is None else f"LOC-{location}",
            ),
            customer_location=shopper.location if location is None else None,
        )
        message = await self._deliver(order, f"msg_sim_{shopper.number}")
        status = f"{message.status.value} {message.error_code or ''}" if message else "LOST"
        self.happened[f"channel orders: {status}".strip()] += 1
        if message is not None and message.reservation_group_id:
            await self._refresh(shopper)

    async def _deliver(self, order: ChannelOrder, msg_id: str) -> IntakeMessage | None:
        """Sign the channel's webhook, hand it to the edge, let the worker act on it."""
        assert self.account is not None
        body = json.dumps(to_json(order)).encode()
        headers = standard_headers(SECRET, msg_id, int(self.clock.now().timestamp()), body)
        verified = edge.authenticate(self.account, headers, body, self.clock)
        receipt = await edge.receive(
            self.account,
            headers,
            body,
            verified,
            uow=self.deps.single or self.deps.uow,
            clock=self.clock,
            value_hint=value_hint,
        )
        while (await process_due(uow=self.deps.uow, clock=self.clock, config=self.intake)).taken:
            pass
        if receipt.message_id is None:
            return None
        return await ops.message(receipt.message_id, uow=self.deps.uow)

    def _price(self, sku: str) -> Decimal:
        found = self.skus.get(sku)
        return found.unit_price if found is not None and found.unit_price else Decimal("10.00")

    def _took(self, shopper: Shopper, made: list[dict[str, Any]]) -> None:
        """Follow what a reserve made: staff will pick it; the shopper will come, or cancel."""
        for i, found in enumerate(sorted(made, key=lambda r: str(r["storeId"]))):
            self._follow(
                shopper,
                str(found["id"]),
                str(found["storeId"]),
                str(found["code"]),
                {line["sku"]: int(line["quantity"]) for line in found["lines"]},
                datetime.fromisoformat(str(found["expiresAt"])),
                visit_extra=timedelta(minutes=self.params.second_store_minutes * i),
            )

    def _follow(
        self,
        shopper: Shopper,
        reservation_id: str,
        store_id: str,
        code: str,
        lines: dict[str, int],
        expires_at: datetime,
        *,
        visit_extra: timedelta = timedelta(0),
    ) -> None:
        now = self.clock.now()
        self._seq += 1
        held = Held(reservation_id, self._seq, shopper, store_id, code, lines, expires_at)
        self.held[reservation_id] = held
        heapq.heappush(self.expiries, (expires_at, held.seq, reservation_id))
        self.happened["reservations made"] += 1
        floor = self.floors[store_id]
        floor.waiting += 1
        self.agenda.plan(now + floor.ready_delay(), Ready(reservation_id))
        if shopper.fate is Fate.CANCEL:
            self.agenda.plan(now + shopper.cancel_after, Cancel(reservation_id))
        elif shopper.fate is Fate.COLLECT:
            visit = visit_time(self.params, shopper, now, visit_extra)
            if visit is not None:
                self.agenda.plan(max(visit, now), Visit(reservation_id))

    # --- staff pick ---

    async def _ready(self, held: Held) -> None:
        if held.status != "HELD" or not held.to_pick:
            return  # readied already (a rush came first), or over
        if self.clock.now() >= self.params.closes and not held.shopper_waiting:
            return  # the staff have gone home: it waits for tomorrow, or runs out
        floor = self.floors[held.store_id]
        for sku, quantity in sorted(held.lines.items()):
            already = held.picked.get(sku, 0)
            more = self.shelves.pick(
                held.store_id, sku, quantity - already, misplaced=floor.misplaced()
            )
            found = held.picked[sku] = already + more
            if found < quantity and not await self._short(held, sku, found):
                return
        data, code = await self._call(MARK_READY, {"id": held.id}, self._staff(held.store_id))
        if data is None:
            self.happened[f"mark ready refused: {code}"] += 1
            return
        self._update(held, data["markReadyForPickup"])
        self.happened["made ready"] += 1
        if held.shopper_waiting:
            self._to_desk(held)

    async def _short(self, held: Held, sku: str, found: int) -> bool:
        """Report the line short; whether the reservation still has something to hand over."""
        data, code = await self._call(
            SHORT_PICK, {"id": held.id, "sku": sku, "found": found}, self._staff(held.store_id)
        )
        if data is None:
            self.happened[f"short pick refused: {code}"] += 1
            return False
        self.happened["short picks"] += 1
        self._update(held, data["reportShortPick"])
        await self._refresh(held.shopper)  # the missing units may be held at another store now
        return not held.ended

    # --- shoppers come, or cancel ---

    async def _visit(self, held: Held) -> None:
        if held.ended:
            self.happened[f"came, found it {held.status.lower()}"] += 1
            return
        self.happened["came to collect"] += 1
        if held.shopper.checks_in:
            data, code = await self._call(CHECK_IN, {"id": held.id}, self._customer(held.shopper))
            self.happened["checked in" if data else f"check-in refused: {code}"] += 1
        if held.status == "READY_FOR_PICKUP":
            self._to_desk(held)
            return
        held.shopper_waiting = True  # staff pick it first: the shopper is there
        self.agenda.plan(self.clock.now() + self.floors[held.store_id].rush_delay(), Ready(held.id))

    def _to_desk(self, held: Held) -> None:
        done = self.floors[held.store_id].hand_over(self.clock.now())
        self.agenda.plan(done, Handover(held.id))

    async def _handover(self, held: Held) -> None:
        if held.ended:
            return
        till = self._pos(held.store_id)
        scanned, code = await self._call(SCAN, {"code": held.code}, till)
        if scanned is None:
            self.happened[f"handover refused: {code}"] += 1
            await self._sync([held])
            return
        amount = sum((self._price(s) * q for s, q in sorted(held.lines.items())), Decimal(0))
        payment = {
            "amount": str(amount),
            "currency": CURRENCY,
            "method": "card",
            "reference": f"SIM-PAY-{held.seq:06d}",
        }
        data, code = await self._call(COMPLETE, {"id": held.id, "payment": payment}, till)
        if data is None:
            self.happened[f"handover refused: {code}"] += 1
            await self._sync([held])
            return
        for sku, quantity in held.picked.items():
            self.shelves.hand_over(held.store_id, sku, quantity)
        held.picked = {}
        self._update(held, data["completePickup"])
        self.happened["collected"] += 1

    async def _cancel(self, held: Held) -> None:
        if held.ended:
            return
        if held.shopper.via_intake:
            await self._cancel_order(held.shopper)
            return
        data, code = await self._call(CANCEL, {"id": held.id}, self._customer(held.shopper))
        if data is None:
            self.happened[f"cancel refused: {code}"] += 1
            return
        self._update(held, data["cancelReservation"])
        self.happened["cancelled by the shopper"] += 1

    async def _cancel_order(self, shopper: Shopper) -> None:
        """The shopper cancels on the sales channel: its cancel webhook reaches the intake."""
        now = self.clock.now()
        order = ChannelOrder(
            channel=SalesChannel.GENERIC,
            account=ACCOUNT,
            external_id=f"SIM-{shopper.number:05d}",
            event=OrderEvent.CANCEL,
            placed_at=shopper.arrives_at,
            updated_at=now,
            customer=Customer(id=shopper.customer_id, guest=False),
            lines=(),
            pickup=Pickup(requested=True),
            cancelled=True,
        )
        message = await self._deliver(order, f"msg_sim_{shopper.number}_cancel")
        status = message.status.value if message else "LOST"
        self.happened[f"channel cancels: {status}"] += 1
        await self._refresh(shopper)

    # --- what ROPOS says of the reservations ---

    def _update(self, held: Held, answer: dict[str, Any]) -> None:
        lines = {line["sku"]: int(line["quantity"]) for line in answer["lines"]}
        self._apply(held, str(answer["status"]), lines)

    def _apply(self, held: Held, status: str, lines: dict[str, int]) -> None:
        """ROPOS's word on the reservation: what it holds now, whether it is over. Staff put
        back on the shelf what was put aside for lines it no longer holds."""
        for sku, picked in list(held.picked.items()):
            keep = lines.get(sku, 0) if status in ACTIVE else 0
            if picked > keep:
                self.shelves.put_back(held.store_id, sku, picked - keep)
                held.picked[sku] = keep
        held.lines = lines
        if status != "HELD" and held.to_pick:
            held.to_pick = False
            self.floors[held.store_id].waiting -= 1
        held.status = status

    def _apply_domain(self, held: Held, reservation: Reservation) -> None:
        lines = {line.sku: line.quantity for line in reservation.lines}
        self._apply(held, str(reservation.status), lines)

    async def _sync(self, held: Sequence[Held]) -> None:
        found = await self.deps.read.reservations_by_ids([h.id for h in held])
        for h in held:
            if h.id in found:
                self._apply_domain(h, found[h.id])

    def _ropos_customer(self, shopper: Shopper) -> str:
        if not shopper.via_intake:
            return shopper.customer_id
        order = ChannelOrder(
            channel=SalesChannel.GENERIC,
            account=ACCOUNT,
            external_id=f"SIM-{shopper.number:05d}",
            event=OrderEvent.CREATE,
            lines=(),
            pickup=Pickup(requested=True),
            customer=Customer(id=shopper.customer_id, guest=False),
        )
        return intake_customer_id(order)

    async def _refresh(self, shopper: Shopper) -> None:
        """Read the shopper's reservations: what changed is applied, and a reservation ROPOS
        made for them (an order's, or one re-sourced at another store) is followed."""
        found = await self.deps.read.reservations_of_customer(
            self._ropos_customer(shopper), active_only=False, first=100
        )
        for reservation in sorted(found, key=lambda r: (r.created_at, r.store_id)):
            held = self.held.get(reservation.id)
            if held is not None:
                self._apply_domain(held, reservation)
            elif reservation.is_active:
                if reservation.resourced_from is not None:
                    self.happened["re-sourced at another store"] += 1
                self._follow(
                    shopper,
                    reservation.id,
                    reservation.store_id,
                    reservation.code,
                    {line.sku: line.quantity for line in reservation.lines},
                    reservation.expires_at,
                )

    async def _refresh_holding(self, keys: set[tuple[str, str]]) -> None:
        """Refresh the shoppers holding any of these (store, SKU) rows."""
        shoppers = {
            h.shopper.number: h.shopper
            for h in self.held.values()
            if not h.ended and any((h.store_id, sku) in keys for sku in h.lines)
        }
        for number in sorted(shoppers):
            await self._refresh(shoppers[number])

    # --- the machinery ---

    async def _sweep(self) -> None:
        """Holds that ran out are expired (and the expiry warning sent), as the sweeper does."""
        uow, clock = self.deps.uow, self.clock
        await reservations.warn_expiring(uow=uow, clock=clock)
        await reservations.expire_due(uow=uow, clock=clock)
        due: list[Held] = []
        while self.expiries and self.expiries[0][0] <= clock.now():
            held = self.held[heapq.heappop(self.expiries)[2]]
            if not held.ended:
                due.append(held)
        if not due:
            return
        before = {h.id: h.status for h in due}
        await self._sync(due)
        for held in due:
            if held.status == "EXPIRED":
                ready = before[held.id] == "READY_FOR_PICKUP"
                self.happened["expired after ready" if ready else "expired before ready"] += 1

    async def _feed(self) -> None:
        """Movements out to the WMS until none is left."""
        uow, clock = self.deps.uow, self.clock
        while await feed.queue_movements(uow=uow, clock=clock):
            pass
        while True:
            sent = await feed.deliver_movements(
                uow=uow, clock=clock, wms=self.wms, breaker=self.breaker, max_attempts=8
            )
            if not sent.delivered:
                return

    async def _hour_end(self) -> None:
        now = self.clock.now()
        figures = await self._kpis(now - timedelta(hours=1))
        local = now.astimezone(self.params.zone)
        self.hourly.append({"hour": local.strftime("%H:%M"), **_hour_figures(figures)})

    def _lose(self, loss: Loss) -> None:
        if not self.shelves.lose(loss.store_id, loss.sku):
            return
        self.happened["units lost from the shelves"] += 1
        if loss.written_off:
            row = self.wms.emulated.row(loss.store_id, loss.sku)
            self.wms.emulated.set_level(loss.store_id, loss.sku, max(0, row.on_hand - 1))
            self.happened["of them written off in the WMS"] += 1

    async def _count(self, count: Count) -> None:
        """A cycle count: the WMS sets its figures to what is on the shelves (and put aside for
        shoppers), then pushes them to ROPOS's inbox as a stock-levels batch."""
        await self._feed()  # the WMS counts on top of every movement ROPOS made
        ours = await self.deps.read.stock_levels([count.store_id], list(count.skus))
        levels = []
        for sku in count.skus:
            counted = self.shelves.on_hand.get((count.store_id, sku), 0)
            self.wms.emulated.set_level(count.store_id, sku, counted)
            row = self.wms.emulated.row(count.store_id, sku)
            levels.append(
                {"storeId": count.store_id, "sku": sku, "onHand": counted, "sequence": row.revision}
            )
            level = ours.get((count.store_id, sku))
            if level is not None and counted < level.on_hand:
                self.happened["counted rows found short"] += 1
        self._seq += 1
        payload = {"batchId": f"sim-count-{count.store_id}-{self._seq}", "levels": levels}
        done = await inbox.receive_batch(
            parse_batch(payload),
            payload,
            uow=self.deps.uow,
            clock=self.clock,
            radius_km=self.deps.resource_radius_km,
        )
        self.happened[f"count batches: {done.status}"] += 1
        self.happened["counted rows"] += len(levels)
        await self._refresh_holding({(count.store_id, sku) for sku in count.skus})

    async def _reconcile(self) -> None:
        """At closing: every row compared with the WMS (the reconciliation ops would run)."""
        await self._feed()
        run = await reconciliation.reconcile(
            uow=self.deps.uow,
            clock=self.clock,
            wms=self.wms,
            radius_km=self.deps.resource_radius_km,
        )
        self.happened["reconciliation: rows compared"] += run.compared
        self.happened["reconciliation: repaired"] += run.repaired
        self.happened["reconciliation: left open"] += run.open
        await self._sync([h for h in self.held.values() if not h.ended])


def _hour_figures(kpis: dict[str, Any]) -> dict[str, Any]:
    """The figures the plot draws, of one hour's window."""
    success = kpis["reservationSuccess"]
    ready, wait, endings = kpis["timeToReady"], kpis["pickupWait"], kpis["endings"]
    return {
        "asked": success["asked"],
        "reserved": success["reserved"],
        "outOfStock": success["outOfStock"],
        "successRate": success["rateWhereStockExisted"],
        "readyP50Seconds": ready["p50Seconds"],
        "readyP90Seconds": ready["p90Seconds"],
        "waitMeanSeconds": wait["meanSeconds"],
        "waitP90Seconds": wait["p90Seconds"],
        "collected": endings["collected"],
        "noShows": endings["noShows"],
        "expired": endings["expired"],
        "stockAccuracy": kpis["stockAccuracy"]["overall"]["rate"],
    }
