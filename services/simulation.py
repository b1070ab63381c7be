"""The simulated world of `ropos simulate`: how a chain's shoppers, staff and stockroom behave over
one day, in accelerated time. Pure behaviour, drawn from seeded random generators: nothing here
touches the database, and nothing here knows the KPIs. gateway/simulate.py moves the clock from
event to event and has every decision carried out by the real use cases (GraphQL, the intake, the
WMS inbox), so the figures come out of the product's own code.

Every figure the world is tuned by is a field of `Parameters`: a plausible chain is made by
tuning these, never the KPI code. Determinism: every draw comes from a generator seeded from the
run's seed and the name of what draws (a shopper's number, a store's code), so the same seed gives
the same day whatever order the database hands rows back in."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.geo import GeoPoint

# The share of each sales channel among shoppers: "web" and "app" reserve through GraphQL,
# "shop" orders on a sales channel and reaches ROPOS through the intake.
CHANNELS = ("web", "app", "shop")
INTAKE_CHANNEL = "shop"
KM_PER_DEGREE = 111.32


@dataclass(frozen=True, slots=True)
class Parameters:
    """What the simulated chain is made of and how its people behave (printed at the start)."""

    seed: int = 1
    stores: int = 25
    shoppers: int = 3_000
    day: date = date(2026, 3, 3)  # a Tuesday; London is on GMT then
    timezone: str = "Europe/London"
    opens_at: time = time(8, 0)
    hours: float = 14.0  # open until 22:00; the run goes on until the 2-hour holds have run out
    # Shoppers: where, how and what they reserve.
    channel_shares: tuple[float, float, float] = (0.45, 0.35, 0.20)  # web, app, shop
    near_share: float = 0.35  # reserve near where they are, not at a named store
    # Look at which stores have it first and pick one that does: on web and app through ROPOS's
    # availability, on the sales channel's storefront through the same query (its "pick up at").
    looks_first_share: float = 0.75
    home_radius_km: float = 2.5  # how far from their usual store shoppers are (1 sd)
    long_hold_share: float = 0.15  # ask for 24 hours instead of the default 2
    lines_weights: tuple[float, ...] = (0.68, 0.25, 0.07)  # 1, 2 or 3 SKUs
    quantity_weights: tuple[float, ...] = (0.88, 0.10, 0.02)  # 1, 2 or 3 units of each
    zipf_exponent: float = 0.75  # how much the popular SKUs dominate
    over_limit_share: float = 0.004  # ask for more units than one customer may hold
    unknown_sku_share: float = 0.004  # an old link, a typo: a SKU the chain does not sell
    bulk_buyer_share: float = 0.006  # reserve again and again, into the active-holds limit
    bulk_reserves: tuple[int, int] = (6, 8)
    retry_near_share: float = 0.6  # out of stock at their store: try near them instead
    # Shoppers: whether and when they come.
    no_show_share: float = 0.05
    long_hold_no_show_share: float = 0.10
    cancel_share: float = 0.03
    check_in_share: tuple[float, float] = (0.55, 0.85)  # web, app ("I'm here"); shop: none
    visit_median_minutes: float = 45.0  # after reserving, 2-hour holds
    visit_sigma: float = 0.5
    long_visit_median_minutes: float = 200.0  # 24-hour holds
    second_store_minutes: float = 20.0  # a split group: the next store after the first
    # Staff: picking and the handover.
    ready_median_minutes: float = 22.0
    ready_sigma: float = 0.6
    slow_store_share: float = 0.12
    slow_store_factor: float = 1.8
    busy_factor: float = 0.05  # each reservation already waiting to be picked slows by 5 %
    rush_median_minutes: float = 6.0  # the shopper is there: their order is picked first
    rush_sigma: float = 0.7
    counter_staff: int = 2
    handover_median_minutes: float = 3.0
    handover_sigma: float = 0.5
    misplaced_share: float = 0.004  # a line staff cannot find although it is there
    # The stockroom and the WMS.
    phantom_share: float = 0.03  # rows whose record is 1-2 units above the shelf at opening
    shrink_share: float = 0.01  # of the (store, SKU) rows, those that lose a unit today
    written_off_share: float = 0.3  # of the shrink, damage the WMS records (ROPOS is not told)
    counted_skus_per_store: int = 12  # cycle counts pushed to ROPOS through the WMS inbox
    count_rounds: int = 2
    # The machinery.
    sweep_seconds: int = 60  # expiry and the expiry warning
    feed_seconds: int = 300  # movements out to the WMS

    def __post_init__(self) -> None:
        if self.stores < 1:
            raise ValueError("stores must be 1 or more")
        if self.shoppers < 0:
            raise ValueError("shoppers must be 0 or more")
        if not 0 < self.hours <= 18:
            raise ValueError("hours must be more than 0 and at most 18")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def opens(self) -> datetime:
        return datetime.combine(self.day, self.opens_at, self.zone)

    @property
    def closes(self) -> datetime:
        return self.opens + timedelta(hours=self.hours)

    @property
    def ends(self) -> datetime:
        """When the run stops: the last 2-hour hold of the day has run out (24-hour holds made
        late are still held then)."""
        return self.closes + timedelta(hours=2, minutes=1)

    def described(self) -> list[tuple[str, str]]:
        """Every parameter as (name, value), in declaration order."""
        return [(name, _shown(value)) for name, value in asdict(self).items()]


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return "/".join(_shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def rng_for(seed: int, *names: object) -> random.Random:
    """A generator of its own for one thing of the world (a shopper, a store): seeded from a
    string, which Python hashes with SHA-512, the same in every process."""
    return random.Random(":".join(str(n) for n in (seed, *names)))


class SimClock:
    """The clock the services read: it moves only when the simulation moves it, forward."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware time")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def move_to(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError(f"time does not go back: {when} is before {self._now}")
        self._now = when


# --- the agenda: what happens next -------------------------------------------------------------


# Of events at the same moment, the lower priority goes first: the hour's figures are read before
# anything of the next hour happens, the machinery runs before people act.
FIGURES_FIRST = 0
MACHINERY = 1
PEOPLE = 2


@dataclass(order=True, slots=True)
class _Entry:
    at: datetime
    priority: int
    seq: int
    event: object = field(compare=False)


class Agenda:
    """Events in time order (then priority, then the order they were planned: no tie is left to
    chance)."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = 0

    def plan(self, at: datetime, event: object, priority: int = PEOPLE) -> None:
        self._seq += 1
        heapq.heappush(self._heap, _Entry(at, priority, self._seq, event))

    def next(self) -> tuple[datetime, object]:
        entry = heapq.heappop(self._heap)
        return entry.at, entry.event

    def __len__(self) -> int:
        return len(self._heap)


# --- demand over the day -----------------------------------------------------------------------

# (hour of the day, spread in hours, weight): the morning commute, lunch, after work.
PEAKS = ((9.0, 0.8, 0.55), (12.75, 0.9, 1.0), (18.0, 1.3, 1.15))
BASE_DEMAND = 0.3


def demand(hour: float) -> float:
    """How many shoppers reserve at this local hour of the day, relative to the quietest."""
    return BASE_DEMAND + sum(w * math.exp(-(((hour - h) / s) ** 2) / 2) for h, s, w in PEAKS)


def arrival_hours(rng: random.Random, count: int, opens: float, hours: float) -> list[float]:
    """`count` local hours of the day within opening hours, drawn from the demand curve."""
    top = max(demand(opens + hours * i / 200) for i in range(201))
    found: list[float] = []
    while len(found) < count:
        hour = opens + rng.random() * hours
        if rng.random() * top <= demand(hour):
            found.append(hour)
    return sorted(found)


def lognormal_minutes(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


class Popularity:
    """A Zipf-like ranking of the catalogue: the k-th most popular SKU is asked for in proportion
    to 1 / k**exponent. The ranking itself is drawn from the seed."""

    def __init__(self, skus: Sequence[str], exponent: float, rng: random.Random) -> None:
        self.ranked = sorted(skus)
        rng.shuffle(self.ranked)
        weights = [1 / (k + 1) ** exponent for k in range(len(self.ranked))]
        total = sum(weights)
        self._cumulative: list[float] = []
        running = 0.0
        for w in weights:
            running += w / total
            self._cumulative.append(running)

    def pick(self, rng: random.Random) -> str:
        point = rng.random()
        low, high = 0, len(self._cumulative) - 1
        while low < high:
            mid = (low + high) // 2
            if self._cumulative[mid] < point:
                low = mid + 1
            else:
                high = mid
        return self.ranked[low]

    def distinct(self, rng: random.Random, count: int) -> list[str]:
        chosen: list[str] = []
        while len(chosen) < min(count, len(self.ranked)):
            sku = self.pick(rng)
            if sku not in chosen:
                chosen.append(sku)
        return chosen


# --- the people --------------------------------------------------------------------------------


class Fate(StrEnum):
    """What a shopper does once they hold a reservation."""

    COLLECT = "collect"
    NO_SHOW = "no_show"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class StorePlace:
    """A store as the world sees it: where it is, how many shoppers it draws, how fast its staff
    pick."""

    id: str
    location: GeoPoint
    draw: float
    slow: bool


@dataclass(frozen=True, slots=True)
class Shopper:
    number: int
    customer_id: str
    channel: str
    arrives_at: datetime
    home_store: str
    location: GeoPoint
    near: bool  # near their location, else at their home store
    looks_first: bool  # asks which stores have it before reserving (or ordering)
    hold_seconds: int | None  # None: the policy's default (2 hours)
    lines: tuple[tuple[str, int], ...]
    reserves: int  # 1, or more for a bulk buyer (each a reserve of its own, minutes apart)
    retries_near: bool
    fate: Fate
    checks_in: bool
    visit_after: timedelta
    cancel_after: timedelta

    @property
    def via_intake(self) -> bool:
        return self.channel == INTAKE_CHANNEL


def stores_of(params: Parameters, places: Sequence[tuple[str, GeoPoint]]) -> list[StorePlace]:
    """The chain's stores with their draw (how busy) and pace (a few are slow), per seed."""
    found = []
    for store_id, location in places:
        rng = rng_for(params.seed, "store", store_id)
        draw = math.exp(rng.gauss(0.0, 0.45))
        found.append(StorePlace(store_id, location, draw, rng.random() < params.slow_store_share))
    return found


def shoppers_of(
    params: Parameters,
    stores: Sequence[StorePlace],
    popularity: Popularity,
    max_units: int,
) -> list[Shopper]:
    """The day's shoppers, in the order they come."""
    rng = rng_for(params.seed, "arrivals")
    opens = params.opens.hour + params.opens.minute / 60
    hours = arrival_hours(rng, params.shoppers, opens, params.hours)
    midnight = datetime.combine(params.day, time(0), params.zone)
    return [
        _shopper(
            params,
            n,
            midnight + timedelta(hours=hour),
            stores,
            popularity,
            max_units,
        )
        for n, hour in enumerate(hours, start=1)
    ]


def _shopper(
    params: Parameters,
    n: int,
    arrives_at: datetime,
    stores: Sequence[StorePlace],
    popularity: Popularity,
    max_units: int,
) -> Shopper:
    rng = rng_for(params.seed, "shopper", n)
    channel = rng.choices(CHANNELS, weights=params.channel_shares)[0]
    home = rng.choices(stores, weights=[s.draw for s in stores])[0]
    long_hold = channel != INTAKE_CHANNEL and rng.random() < params.long_hold_share
    count = rng.choices(range(1, len(params.lines_weights) + 1), params.lines_weights)[0]
    lines = [
        (sku, rng.choices(range(1, len(params.quantity_weights) + 1), params.quantity_weights)[0])
        for sku in popularity.distinct(rng, count)
    ]
    if rng.random() < params.over_limit_share:
        lines[0] = (lines[0][0], max_units + rng.randint(1, 5))
    if rng.random() < params.unknown_sku_share:
        lines[-1] = (f"SKU-{rng.randint(90_000, 99_999)}", 1)
    bulk = channel != INTAKE_CHANNEL and rng.random() < params.bulk_buyer_share
    no_show = params.long_hold_no_show_share if long_hold else params.no_show_share
    fate_draw = rng.random()
    fate = (
        Fate.NO_SHOW
        if fate_draw < no_show
        else Fate.CANCEL
        if fate_draw < no_show + params.cancel_share
        else Fate.COLLECT
    )
    check_in = {"web": params.check_in_share[0], "app": params.check_in_share[1]}.get(channel, 0)
    median = params.long_visit_median_minutes if long_hold else params.visit_median_minutes
    return Shopper(
        number=n,
        customer_id=f"C-{n:05d}" if channel == INTAKE_CHANNEL else f"sim-{n:05d}",
        channel=channel,
        arrives_at=arrives_at,
        home_store=home.id,
        location=_around(rng, home.location, params.home_radius_km),
        near=rng.random() < params.near_share,
        looks_first=rng.random() < params.looks_first_share,
        hold_seconds=24 * 3600 if long_hold else None,
        lines=tuple(lines),
        reserves=rng.randint(*params.bulk_reserves) if bulk else 1,
        retries_near=rng.random() < params.retry_near_share,
        fate=fate,
        checks_in=rng.random() < check_in,
        visit_after=timedelta(minutes=lognormal_minutes(rng, median, params.visit_sigma)),
        cancel_after=timedelta(minutes=5 + rng.random() * 40),
    )


def _around(rng: random.Random, center: GeoPoint, sd_km: float) -> GeoPoint:
    north, east = rng.gauss(0.0, sd_km), rng.gauss(0.0, sd_km)
    lat = center.lat + north / KM_PER_DEGREE
    lon = center.lon + east / (KM_PER_DEGREE * math.cos(math.radians(center.lat)))
    return GeoPoint(round(lat, 5), round(lon, 5))


def visit_time(
    params: Parameters, shopper: Shopper, reserved_at: datetime, extra: timedelta = timedelta(0)
) -> datetime | None:
    """When the shopper comes for what they reserved at `reserved_at`: before closing (a shopper
    who reserves in the last quarter of an hour comes another day: None)."""
    last = params.closes - timedelta(minutes=5)
    if reserved_at >= params.closes - timedelta(minutes=15):
        return None
    return min(reserved_at + shopper.visit_after + extra, last)


# --- the stores' staff -------------------------------------------------------------------------


class Floor:
    """One store's staff: how long picking takes (longer the more is waiting to be picked, and
    at a slow store), and the handover desk (a few staff, shoppers served in turn)."""

    def __init__(self, params: Parameters, place: StorePlace) -> None:
        self.params = params
        self.place = place
        self.rng = rng_for(params.seed, "floor", place.id)
        self.waiting = 0  # reservations not yet picked
        self._desk = [params.opens] * max(1, params.counter_staff)

    def ready_delay(self) -> timedelta:
        p = self.params
        median = p.ready_median_minutes * (1 + p.busy_factor * self.waiting)
        if self.place.slow:
            median *= p.slow_store_factor
        return timedelta(minutes=lognormal_minutes(self.rng, median, p.ready_sigma))

    def rush_delay(self) -> timedelta:
        p = self.params
        median = p.rush_median_minutes * (1 + p.busy_factor * self.waiting)
        return timedelta(minutes=lognormal_minutes(self.rng, median, p.rush_sigma))

    def misplaced(self) -> bool:
        return self.rng.random() < self.params.misplaced_share

    def hand_over(self, now: datetime) -> datetime:
        """When the shopper arriving at the desk `now` has been served: the first of the staff
        free serves them."""
        desk = min(range(len(self._desk)), key=lambda i: (self._desk[i], i))
        start = max(now, self._desk[desk])
        took = lognormal_minutes(
            self.rng, self.params.handover_median_minutes, self.params.handover_sigma
        )
        self._desk[desk] = start + timedelta(minutes=took)
        return self._desk[desk]


# --- the stockroom: what is really on the shelves ----------------------------------------------


class Shelves:
    """The physical stock of every (store, SKU): units on hand (on the shelf, or picked and put
    aside for a shopper). ROPOS and the WMS know it only through what they are told: a theft is
    found by a count or a pick; damage the WMS writes off is found by reconciliation."""

    def __init__(self, on_hand: dict[tuple[str, str], int]) -> None:
        self.on_hand = dict(on_hand)
        self.staged: dict[tuple[str, str], int] = {}

    def shelf(self, store_id: str, sku: str) -> int:
        key = (store_id, sku)
        return self.on_hand.get(key, 0) - self.staged.get(key, 0)

    def pick(self, store_id: str, sku: str, quantity: int, *, misplaced: bool) -> int:
        """Put up to `quantity` units aside; how many were found (a misplaced unit: one fewer)."""
        found = max(0, min(quantity - (1 if misplaced else 0), self.shelf(store_id, sku)))
        key = (store_id, sku)
        self.staged[key] = self.staged.get(key, 0) + found
        return found

    def put_back(self, store_id: str, sku: str, quantity: int) -> None:
        key = (store_id, sku)
        self.staged[key] = max(0, self.staged.get(key, 0) - quantity)

    def hand_over(self, store_id: str, sku: str, quantity: int) -> None:
        key = (store_id, sku)
        self.put_back(store_id, sku, quantity)
        self.on_hand[key] = max(0, self.on_hand.get(key, 0) - quantity)

    def lose(self, store_id: str, sku: str) -> bool:
        """A unit leaves the shelf unseen (theft, damage); False when the shelf was empty."""
        if self.shelf(store_id, sku) <= 0:
            return False
        self.on_hand[(store_id, sku)] -= 1
        return True


def shelves_of(params: Parameters, recorded: dict[tuple[str, str], int]) -> Shelves:
    """What is really on the shelves at opening: the records, less what earlier days lost unseen
    (phantom stock) on a share of the rows. ROPOS and the WMS both start from the records."""
    rng = rng_for(params.seed, "phantom")
    real = {}
    for row in sorted(recorded):
        missing = rng.choice((1, 1, 2)) if rng.random() < params.phantom_share else 0
        real[row] = max(0, recorded[row] - missing)
    return Shelves(real)


@dataclass(frozen=True, slots=True)
class Loss:
    """A unit the stockroom loses during the day; `written_off`: the WMS records it."""

    at: datetime
    store_id: str
    sku: str
    written_off: bool


def losses_of(params: Parameters, rows: Sequence[tuple[str, str]]) -> list[Loss]:
    """The day's shrink: a share of the rows each lose a unit at some moment of opening hours."""
    rng = rng_for(params.seed, "shrink")
    chosen = [row for row in sorted(rows) if rng.random() < params.shrink_share]
    seconds = params.hours * 3600
    return sorted(
        (
            Loss(
                params.opens + timedelta(seconds=rng.random() * seconds),
                store_id,
                sku,
                rng.random() < params.written_off_share,
            )
            for store_id, sku in chosen
        ),
        key=lambda loss: (loss.at, loss.store_id, loss.sku),
    )


@dataclass(frozen=True, slots=True)
class Count:
    """A cycle count: some SKUs of one store counted, and pushed to ROPOS."""

    at: datetime
    store_id: str
    skus: tuple[str, ...]


def counts_of(params: Parameters, stocked: dict[str, list[str]]) -> list[Count]:
    """Each store counts a few of the SKUs it keeps, in a few rounds over the day."""
    found = []
    per_round = max(1, params.counted_skus_per_store // max(1, params.count_rounds))
    for store_id in sorted(stocked):
        rng = rng_for(params.seed, "counts", store_id)
        for round_ in range(params.count_rounds):
            share = (round_ + rng.random()) / params.count_rounds
            at = params.opens + timedelta(hours=params.hours * share)
            skus = sorted(rng.sample(stocked[store_id], min(per_round, len(stocked[store_id]))))
            found.append(Count(at, store_id, tuple(skus)))
    return sorted(found, key=lambda c: (c.at, c.store_id))
