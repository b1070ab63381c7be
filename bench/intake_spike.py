"""The intake under a spike, through ONE gateway process on PostgreSQL: three Shopify accounts
post signed `orders/create` deliveries at a steady rate each, then one of them (alpha) at ten
times its rate, and the others go on as before.

    .venv/bin/python -m bench.intake_spike [--spike-rate 50] [--spike-baseline 30]
        [--spike-seconds 60] [--spike-backlog 500] [--server URL]

(`python -m bench.intake --spike [options]` runs the same.)

1. warm-up (`--warmup` s), then the baseline: alpha, beta and gamma at `--spike-rate`
   deliveries/s each (open loop, each account over its own connections);
2. the spike: alpha at `--spike-multiplier` (10) times the rate for `--spike-seconds`, beta and
   gamma unchanged. Alpha's `max_backlog` is `--spike-backlog`, so its backlog fills and the edge
   answers it 429; the quiet accounts keep the default bound (10,000);
3. the tail: posting stops, every stored message must reach a final status, then the checks.

Per account and phase: posted, 202, 429, other answers; receipt (`received_at`) to final status
(`finished_at`) p50/p99 by the phase the message was received in; the backlog (RECEIVED or
RETRYING messages) sampled every second. Checks: every 202's message ended final (none lost),
reservation groups = ACCEPTED = channel orders RESERVED = idempotency keys per account, no order
reserved twice, adapters.db.invariants.

Figures only: the targets (quiet accounts' p99 in the spike <= 2x their baseline p99; only the
flooding account sees 429) print `met` or `NOT met` and never change the exit status. As in
bench.intake, the exit status is 1 only when the run itself broke: a delivery checked first that
did not end ACCEPTED, a drain that did not finish, a message lost or applied twice, a count that
differs, or a broken invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from bench import common, intake
from domain.intake import DEFAULT_MAX_BACKLOG

ACCOUNTS = ("alpha", "beta", "gamma")
FLOOD = "alpha"
PHASES = ("warm-up", "baseline", "spike")
ORDER_SEQ_STRIDE = 100_000_000  # each account's order ids and customers start apart
WAITING_SQL = (
    "SELECT account, count(*) AS n FROM intake_messages WHERE status = ANY($1::text[]) "
    "GROUP BY account"
)


# --- the accounts -------------------------------------------------------------------------------


@dataclass
class Account:
    """One channel account: its secret, its own orders, and what its deliveries were answered."""

    name: str
    secret: str
    orders: intake.Orders
    max_backlog: int
    answers: dict[str, Counter[int]] = field(default_factory=dict)  # phase -> HTTP status
    ids: dict[str, list[str]] = field(default_factory=dict)  # phase -> 202 message ids
    edge: dict[str, common.LoadResult] = field(default_factory=dict)  # phase -> the 202s' HTTP
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, status)
    retry_after: list[int] = field(default_factory=list)  # the 429s' retryAfterSeconds
    clients: list[common.HttpClient] = field(default_factory=list)  # its keep-alive connections

    @property
    def path(self) -> str:
        return f"/intake/{intake.CHANNEL}/{self.name}"

    def request(self, delivery: intake.Delivery, port: int) -> bytes:
        """bench.intake's signed request, sent to this account's path."""
        raw = delivery.request(port)
        head = f"POST {intake.INTAKE_PATH} ".encode()
        assert raw.startswith(head)
        return f"POST {self.path} ".encode() + raw[len(head) :]

    def all_ids(self) -> list[str]:
        return [i for ids in self.ids.values() for i in ids]

    def count(self, status: int, phases: tuple[str, ...] = PHASES) -> int:
        return sum(self.answers.get(p, Counter())[status] for p in phases)


def make_accounts(args: argparse.Namespace) -> list[Account]:
    accounts = []
    for k, name in enumerate(ACCOUNTS):
        secret = secrets.token_urlsafe(32)
        orders = intake.Orders(secret, args.stores, args.skus, args.seed + k)
        orders.counter = itertools.count(1 + k * ORDER_SEQ_STRIDE)
        bound = args.spike_backlog if name == FLOOD else DEFAULT_MAX_BACKLOG
        accounts.append(Account(name, secret, orders, bound))
    return accounts


async def add_accounts(url: str, accounts: list[Account], stores: int) -> None:
    """The three accounts, as bench.intake adds its own (one Shopify location per store,
    assume_pickup, weight 1), each with its backlog bound; bench.intake's account goes."""
    locations = {str(intake.LOCATION_BASE + i): intake.store_id(i) for i in range(1, stores + 1)}
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    now = datetime.now(UTC)
    try:
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM channel_accounts WHERE channel = $1 AND account = $2",
                intake.CHANNEL,
                intake.ACCOUNT,
            )
            for a in accounts:
                await conn.execute(
                    "INSERT INTO channel_accounts (channel, account, secret, default_store_id, "
                    "locations, products, rules, assume_pickup, max_backlog, weight, enabled, "
                    "created_at, updated_at) VALUES ($1, $2, $3, $4, $5::json, '{}', '{}', true, "
                    "$6, 1, true, $7, $7)",
                    intake.CHANNEL,
                    a.name,
                    a.secret,
                    intake.store_id(1),
                    json.dumps(locations),
                    a.max_backlog,
                    now,
                )
    finally:
        await conn.close()


@dataclass
class Phase:
    name: str
    rates: dict[str, float]
    seconds: float
    started: datetime | None = None  # UTC, on the gateway's clock (same host)
    started_mono: float = 0.0
    cpu: common.CpuUse | None = None
    activity: str = ""  # pg_stat_activity of the run's database, sampled every 100 ms


# --- posting --------------------------------------------------------------------------------------


def _retry_after(raw: bytes) -> int | None:
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        value = json.loads(raw)["error"]["retryAfterSeconds"]
        return int(value)
    return None


def poster(account: Account, port: int, phase: str) -> common.Operation:
    """A delivery per call, nothing retried: a 202's message id is kept, a 429 is counted."""
    clients = account.clients
    answers = account.answers.setdefault(phase, Counter())
    ids = account.ids.setdefault(phase, [])

    async def operation(worker: int) -> str | None:
        raw_request = account.request(account.orders.next(), port)
        try:
            status, raw = await clients[worker].request(raw_request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            clients[worker].close()
            answers[0] += 1  # no answer: the connection broke
            raise
        answers[status] += 1
        account.timeline.append((time.monotonic(), status))
        if status == 202:
            ids.append(str(json.loads(raw)["messageId"]))
            return None
        if status == 429:
            wait = _retry_after(raw)
            if wait is not None:
                account.retry_after.append(wait)
        return intake._edge_error(status, raw)

    return operation


async def post_phase(accounts: list[Account], port: int, phase: Phase) -> None:
    """Every account at its rate for the phase's seconds, each an open loop over its own
    (already open) connections."""

    async def one(account: Account) -> None:
        account.edge[phase.name] = await common.open_loop(
            poster(account, port, phase.name),
            rate=phase.rates[account.name],
            connections=len(account.clients),
            warmup=0.0,
            duration=phase.seconds,
        )

    await asyncio.gather(*(one(a) for a in accounts))


# --- the backlog over time ------------------------------------------------------------------------


class BacklogSampler(common.Poller):
    """Each account's waiting messages (RECEIVED or RETRYING), counted every `interval` s."""

    def __init__(self, url: str, interval: float = 1.0) -> None:
        super().__init__(url, interval)
        self.samples: list[tuple[float, dict[str, int]]] = []  # (monotonic, account -> waiting)

    async def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stopped():
            at = time.monotonic()
            rows = await self._conn.fetch(WAITING_SQL, intake.WAITING)
            self.samples.append((at, {r["account"]: int(r["n"]) for r in rows}))
            next_at += self.interval
            await self._pause(next_at - time.monotonic())


# --- the run --------------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[Phase]:
    steady = dict.fromkeys(ACCOUNTS, args.spike_rate)
    spike = {**steady, FLOOD: args.spike_rate * args.spike_multiplier}
    phases = [
        Phase("warm-up", steady, args.warmup),
        Phase("baseline", steady, args.spike_baseline),
        Phase("spike", spike, args.spike_seconds),
    ]
    return [p for p in phases if p.seconds > 0]


@dataclass
class Run:
    phases: list[Phase]
    checked: list[str]  # the message ids of the deliveries checked first
    posted_until: datetime
    posted_until_mono: float
    drain_seconds: float | None
    samples: list[tuple[float, dict[str, int]]]
    cpu_drain: common.CpuUse | None = None


async def check_first(
    gateway: intake.Gateway, accounts: list[Account], conn: asyncpg.Connection
) -> list[str] | None:
    """One delivery per account, before anything is measured: 202, then ACCEPTED with a group."""
    ids = []
    for a in accounts:
        client = common.HttpClient("127.0.0.1", gateway.port)
        try:
            status, raw = await client.request(a.request(a.orders.next(), gateway.port))
        finally:
            client.close()
        if status != 202:
            print(f"  {a.name}: answered {status} {raw[:300]!r}\n{gateway.log_tail()}")
            return None
        message_id = str(json.loads(raw)["messageId"])
        row = await intake.wait_final(conn, message_id, 30.0)
        if row["status"] != "ACCEPTED" or not row["reservation_group_id"]:
            print(f"  {a.name}: NOT ACCEPTED:\n{intake._row_text(row)}\n{gateway.log_tail()}")
            return None
        took = (row["finished_at"] - row["received_at"]).total_seconds() * 1000
        print(
            f"  {a.name}: 202, then ACCEPTED {took:.0f} ms after receipt, order "
            f"{row['external_id']}"
        )
        a.ids["check"] = [message_id]
        ids.append(message_id)
    return ids


async def run_phases(
    gateway: intake.Gateway, accounts: list[Account], phases: list[Phase], connections: int
) -> None:
    database = common.database_name(gateway.database_url)
    for a in accounts:
        a.clients = [common.HttpClient("127.0.0.1", gateway.port) for _ in range(connections)]
        await intake.connect_all(a.clients)
    try:
        for phase in phases:
            await run_phase(gateway, accounts, phase, database)
    finally:
        for a in accounts:
            intake.close_all(a.clients)


async def run_phase(
    gateway: intake.Gateway, accounts: list[Account], phase: Phase, database: str | None
) -> None:
    """One phase: its posting, its CPU, a line of what it was answered."""
    rates = ", ".join(f"{n} {r:g}/s" for n, r in phase.rates.items())
    print(f"  {phase.name}: {phase.seconds:g} s, {rates} ...", flush=True)
    before = common.cpu_snapshot(gateway.pid, database)
    phase.started, phase.started_mono = datetime.now(UTC), time.monotonic()
    async with common.ActivitySampler(gateway.database_url) as activity:
        await post_phase(accounts, gateway.port, phase)
    phase.activity = activity.summary()
    phase.cpu = common.cpu_between(before, common.cpu_snapshot(gateway.pid, database))
    answered = Counter[int]()
    for a in accounts:
        answered.update(a.answers.get(phase.name, Counter()))
    print(f"    answers {dict(sorted(answered.items()))}", flush=True)


async def spike_run(url: str, accounts: list[Account], args: argparse.Namespace) -> Run | None:
    gateway = intake.Gateway(
        url, workers=True, pool_size=args.gateway_pool_size, command=args.gateway_command
    )
    database = common.database_name(url)
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    try:
        with common.timed(f"start gateway (workers on) on port {gateway.port}"):
            await gateway.start()
        print(f"gateway pid {gateway.pid}, pool {common.pool_description(args.gateway_pool_size)}")
        print("one delivery per account end to end, before measuring:", flush=True)
        checked = await check_first(gateway, accounts, conn)
        if checked is None:
            return None
        phases = plan(args)
        async with common.Analyzer(url) as analyzer, BacklogSampler(url) as sampler:
            await run_phases(gateway, accounts, phases, args.concurrency)
            posted_until, posted_mono = datetime.now(UTC), time.monotonic()
            print("  tail: posting stopped; draining ...", flush=True)
            before = common.cpu_snapshot(gateway.pid, database)
            drained = await intake.drain(conn, args.drain_timeout)
            cpu_drain = common.cpu_between(before, common.cpu_snapshot(gateway.pid, database))
            await asyncio.sleep(1.0)  # one more sample: the backlog at zero
        print(
            f"  statistics of the growing tables kept current: ANALYZE x {analyzer.runs}, "
            f"{analyzer.seconds:.1f} s in all"
        )
        return Run(phases, checked, posted_until, posted_mono, drained, sampler.samples, cpu_drain)
    finally:
        await conn.close()
        code = gateway.stop()
        print(f"gateway stopped (exit status {code})", flush=True)


# --- what the database shows --------------------------------------------------------------------

LATENCY_SQL = (
    "SELECT account, received_at, finished_at, "
    "extract(epoch FROM finished_at - received_at)::float8 AS s "
    "FROM intake_messages WHERE finished_at IS NOT NULL"
)
FINAL_SQL = (
    "SELECT account, status, error_code, count(*) AS n, count(reservation_group_id) AS groups "
    "FROM intake_messages WHERE id = ANY($1::text[]) GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC"
)
PER_ACCOUNT_SQL = """
SELECT a.account,
  (SELECT count(*) FROM intake_messages m WHERE m.account = a.account) AS stored,
  (SELECT count(*) FROM intake_messages m WHERE m.account = a.account
     AND m.status = 'ACCEPTED') AS accepted,
  (SELECT count(DISTINCT r.group_id) FROM reservations r JOIN intake_messages m
     ON m.reservation_group_id = r.group_id WHERE m.account = a.account) AS groups,
  (SELECT count(*) FROM (SELECT m.external_id FROM intake_messages m
     WHERE m.account = a.account AND m.reservation_group_id IS NOT NULL
     GROUP BY m.external_id HAVING count(DISTINCT m.reservation_group_id) > 1) t) AS twice,
  (SELECT count(*) FROM channel_orders o WHERE o.account = a.account
     AND o.state = 'RESERVED') AS channel_orders,
  (SELECT count(*) FROM idempotency_keys k WHERE k.key LIKE $1 || a.account || ':%') AS keys,
  (SELECT count(DISTINCT k.key) FROM idempotency_keys k
     WHERE k.key LIKE $1 || a.account || ':%') AS distinct_keys
FROM unnest($2::text[]) AS a(account)
"""


@dataclass
class Checks:
    latencies: dict[tuple[str, str], list[float]]  # (account, phase) -> seconds
    finished: list[float]  # each message's finished_at, seconds from the baseline's start
    finals: list[tuple[str, str, str | None, int, int]]  # account, status, code, n, groups
    per_account: dict[str, dict[str, int]]
    all_reservation_groups: int
    lost: dict[str, int]  # 202 ids not final (or missing)
    violations: dict[str, list[tuple[object, ...]]]

    def consistent(self, accounts: list[Account]) -> bool:
        return (
            not self.violations
            and not any(self.lost.values())
            and all(self.account_ok(a) for a in accounts)
        )

    def account_ok(self, a: Account) -> bool:
        row = self.per_account[a.name]
        n = row["accepted"]
        return (
            row["stored"] == len(a.all_ids())
            and row["twice"] == 0
            and row["keys"] == row["distinct_keys"] == n
            and row["groups"] == n
            and row["channel_orders"] == n
        )


def phase_of(received: datetime, phases: list[Phase]) -> str:
    name = "check"
    for p in phases:
        if p.started is not None and received >= p.started:
            name = p.name
    return name


async def checks(url: str, accounts: list[Account], run: Run) -> Checks:
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    ids = [i for a in accounts for i in a.all_ids()]  # the checked deliveries' included
    try:
        latencies: dict[tuple[str, str], list[float]] = {}
        finished: list[float] = []
        t0 = next((p.started for p in run.phases if p.name == "baseline"), None)
        for r in await conn.fetch(LATENCY_SQL):
            key = (r["account"], phase_of(r["received_at"], run.phases))
            latencies.setdefault(key, []).append(float(r["s"]))
            if t0 is not None:
                finished.append((r["finished_at"] - t0).total_seconds())
        finals = [
            (r["account"], r["status"], r["error_code"], int(r["n"]), int(r["groups"]))
            for r in await conn.fetch(FINAL_SQL, ids)
        ]
        rows = await conn.fetch(PER_ACCOUNT_SQL, f"{intake.CHANNEL}:", list(ACCOUNTS))
        per_account = {
            r["account"]: {k: int(v) for k, v in r.items() if k != "account"} for r in rows
        }
        all_groups = int(await conn.fetchval("SELECT count(DISTINCT group_id) FROM reservations"))
    finally:
        await conn.close()
    final_by_account = Counter[str]()
    for account, status, _, n, _ in finals:
        if status not in intake.WAITING:
            final_by_account[account] += n
    lost = {a.name: len(a.all_ids()) - final_by_account[a.name] for a in accounts}
    violations = await common.invariant_violations(url)
    return Checks(latencies, finished, finals, per_account, all_groups, lost, violations)


# --- printing -------------------------------------------------------------------------------------


def _ms(values: list[float], p: float) -> str:
    return f"{common.percentile(values, p) * 1000:,.0f}" if values else "-"


def _others(answers: Counter[int]) -> str:
    rest = {s: n for s, n in answers.items() if s not in (202, 429)}
    return ", ".join(f"{'no answer' if s == 0 else s} x{n:,}" for s, n in sorted(rest.items()))


def print_accounts(accounts: list[Account], run: Run, found: Checks) -> None:
    print("[per account and phase] HTTP answers; receipt -> final status of the messages received")
    print("  in the phase (received_at -> finished_at, ms); edge p99: the 202s' HTTP answer, ms")
    print(
        f"  {'account':<8} {'phase':<9} {'rate/s':>7} {'posted':>8} {'202':>8} {'429':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'edge p99':>9}  other"
    )
    for a in accounts:
        for p in run.phases:
            answers = a.answers.get(p.name, Counter())
            lat = found.latencies.get((a.name, p.name), [])
            edge = a.edge.get(p.name)
            edge_p99 = f"{edge.percentile_ms(99):,.1f}" if edge and edge.latencies else "-"
            print(
                f"  {a.name:<8} {p.name:<9} {p.rates[a.name]:>7g} {sum(answers.values()):>8,} "
                f"{answers[202]:>8,} {answers[429]:>7,} {_ms(lat, 50):>8} {_ms(lat, 99):>8} "
                f"{_ms(lat, 100):>8} {edge_p99:>9}  {_others(answers)}"
            )
    flood = next(a for a in accounts if a.name == FLOOD)
    if flood.retry_after:
        ra = sorted(flood.retry_after)
        print(
            f"  {FLOOD}'s 429s said Retry-After {ra[0]} to {ra[-1]} s (median "
            f"{ra[len(ra) // 2]} s); nothing was sent again"
        )


def _p99(found: Checks, account: str, phase: str) -> float:
    return common.percentile(found.latencies.get((account, phase), []), 99)


def print_targets(accounts: list[Account], found: Checks) -> None:
    print("[targets]")
    ratios = {
        a.name: _p99(found, a.name, "spike") / _p99(found, a.name, "baseline")
        for a in accounts
        if a.name != FLOOD
    }
    ok = all(r <= 2.0 for r in ratios.values())  # nan compares False: not met
    listed = ", ".join(
        f"{n} {_ms(found.latencies.get((n, 'spike'), []), 99)} / "
        f"{_ms(found.latencies.get((n, 'baseline'), []), 99)} ms = {r:.2f}x"
        for n, r in ratios.items()
    )
    print(f"  quiet accounts' p99 spike / baseline: {listed} (target <= 2x: {intake._met(ok)})")
    refused = {a.name: a.count(429) for a in accounts}
    only = refused[FLOOD] > 0 and not any(n for name, n in refused.items() if name != FLOOD)
    listed = ", ".join(f"{n} {c:,}" for n, c in refused.items())
    print(f"  429s: {listed} (target only {FLOOD} sees 429: {intake._met(only)})")


def print_checks(accounts: list[Account], run: Run, found: Checks) -> None:
    print("[nothing lost, nothing applied twice]")
    accepted = sum(len(a.all_ids()) for a in accounts)
    lost = sum(found.lost.values())
    print(
        f"  lost: {lost:,} of the {accepted:,} messages answered 202 (each must reach a final "
        f"status; 1 per account checked first included): {'ok' if not lost else 'NOT ok'}"
    )
    for a in accounts:
        r = found.per_account[a.name]
        mark = "ok" if found.account_ok(a) else "NOT ok"
        print(
            f"  {a.name:<6} 202s {len(a.all_ids()):,}, stored {r['stored']:,}, ACCEPTED "
            f"{r['accepted']:,}; reservation groups {r['groups']:,}, channel orders RESERVED "
            f"{r['channel_orders']:,}, idempotency keys {r['keys']:,} ({r['distinct_keys']:,} "
            f"distinct); orders with 2+ groups {r['twice']:,}: {mark}"
        )
    twice = sum(found.per_account[a.name]["twice"] for a in accounts)
    print(f"  applied twice: {twice:,}; reservation groups in all {found.all_reservation_groups:,}")
    finals = "; ".join(
        f"{acc} {status}{'/' + code if code else ''} {n:,}"
        for acc, status, code, n, _ in found.finals
    )
    print(f"  final statuses of the 202s: {finals}")
    invariants = (
        "ok (no oversell, reserved = active lines, ledger, counters)"
        if not found.violations
        else f"BROKEN: {found.violations}"
    )
    print(f"  invariants: {invariants}")


def _bucket(
    samples: list[tuple[float, dict[str, int]]], t0: float, step: float
) -> Iterator[tuple[float, dict[str, int]]]:
    """The sample nearest each multiple of `step` seconds from t0 (the first one at or after
    half a second before the mark); t0 is the baseline's start, the warm-up is before it."""
    if not samples:
        return
    mark = math.floor((samples[0][0] - t0) / step) * step
    for at, waiting in samples:
        if at - t0 >= mark - 0.5:
            yield at - t0, waiting
            while at - t0 >= mark - 0.5:
                mark += step


def _answered(a: Account, start: float, end: float, status: int) -> int:
    return sum(1 for at, s in a.timeline if start <= at < end and s == status)


def print_backlog(accounts: list[Account], run: Run, found: Checks, step: float) -> None:
    t0 = next((p.started_mono for p in run.phases if p.name == "baseline"), 0.0)
    names = [a.name for a in accounts]
    flood = next(a for a in accounts if a.name == FLOOD)
    print("[backlog over time] waiting messages (RECEIVED + RETRYING), sampled every 1 s, shown")
    print(
        f"  every {step:g} s from the baseline's start (t 0), beside the answers of the {step:g} s"
    )
    print("  that follow and the messages the worker finished in them (done/s, every account)")
    head = " ".join(f"{n:>6}" for n in names)
    print(f"  {'t s':>5} {'phase':<9} {head}   {FLOOD} 202/s 429/s   others 202/s   done/s")
    for t, waiting in _bucket(run.samples, t0, step):
        at = t0 + t
        phase = _phase_at(run, at + step / 2)
        counts = " ".join(f"{waiting.get(n, 0):>6,}" for n in names)
        ok = _answered(flood, at, at + step, 202) / step
        refused = _answered(flood, at, at + step, 429) / step
        others = sum(_answered(a, at, at + step, 202) for a in accounts if a is not flood) / step
        done = sum(1 for f in found.finished if t <= f < t + step) / step
        print(
            f"  {t:>5.0f} {phase:<9} {counts}   {ok:>11.0f} {refused:>5.0f}   {others:>12.0f}"
            f"   {done:>6.0f}"
        )
    peaks = []
    for n in names:
        peak_at, peak = max(((t, w.get(n, 0)) for t, w in run.samples), key=lambda x: x[1])
        peaks.append(f"{n} {peak:,} at t={peak_at - t0:.0f} s")
    print(f"  peak: {', '.join(peaks)}")


def _phase_at(run: Run, at: float) -> str:
    if at >= run.posted_until_mono:
        return "tail"
    name = run.phases[0].name
    for p in run.phases:
        if at >= p.started_mono:
            name = p.name
    return name


def print_cpu(accounts: list[Account], run: Run) -> None:
    print(
        "[CPU and PostgreSQL by phase] CPU per answer (202 or 429); other processes: the rest "
        "of the host (noise)"
    )
    for p in run.phases:
        if p.cpu is not None:
            answers = sum(sum(a.answers.get(p.name, Counter()).values()) for a in accounts)
            print(f"  {p.name:<9} {p.cpu.line(answers)}")
            print(f"  {'':<9} PostgreSQL {p.activity}")
    if run.cpu_drain is not None:
        drained = "did NOT drain" if run.drain_seconds is None else f"{run.drain_seconds:.1f} s"
        print(f"  tail      {run.cpu_drain.line(0)} (drain {drained})")


def parameters(args: argparse.Namespace) -> dict[str, str]:
    flood = args.spike_rate * args.spike_multiplier
    return {
        "server": args.server,
        "gateway": f"1 process (uvicorn), workers on, DB pool "
        f"{common.pool_description(args.gateway_pool_size)}, ROPOS_LOG_LEVEL=WARNING",
        "accounts": f"shopify/{', shopify/'.join(ACCOUNTS)}: own secret each, weight 1, "
        f"assume_pickup, one location per store; max_backlog {FLOOD} {args.spike_backlog:,}, "
        f"the others {DEFAULT_MAX_BACKLOG:,}",
        "phases": f"warm-up {args.warmup:g} s and baseline {args.spike_baseline:g} s at "
        f"{args.spike_rate:g}/s per account; spike {args.spike_seconds:g} s with {FLOOD} at "
        f"{flood:g}/s ({args.spike_multiplier:g}x); tail: drain (<= {args.drain_timeout:g} s)",
        "load": f"open loop per account over at most {args.concurrency} connections each; "
        "nothing sent again on 429",
        "deliveries": f"bench.intake's: Shopify {intake.TOPIC}, signed, a new order, customer "
        f"and event id each, 1-{intake.MAX_LINES} lines, pickup at a random store's location",
        "data": f"{args.stores} stores x {args.skus:,} SKUs, on hand {args.on_hand:,}; policy "
        "limits 1,000,000",
    }


# --- main -----------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    facts = await common.machine_facts(args.server)
    accounts = make_accounts(args)
    url, name = await common.create_database(args.server, "ropos_bench_spike")
    print(f"database {name} (fresh; dropped at the end)", flush=True)
    try:
        with common.timed("migrate and load"):
            await common.migrate(url)
            await intake.load_data(url, args, accounts[0].secret)
            await add_accounts(url, accounts, args.stores)
        run = await spike_run(url, accounts, args)
        found = await checks(url, accounts, run) if run is not None else None
    finally:
        await common.drop_database(args.server, name)
        print(f"database {name} dropped")

    print()
    common.print_block("=== intake spike: machine ===", facts)
    common.print_block("=== parameters ===", parameters(args))
    print("=== figures ===")
    if run is None or found is None:
        print("NOT MEASURED: a delivery checked first did not end ACCEPTED (see above)")
        return 1
    print_accounts(accounts, run, found)
    print_targets(accounts, found)
    print_checks(accounts, run, found)
    print_backlog(accounts, run, found, args.backlog_step)
    print_cpu(accounts, run)
    if run.drain_seconds is None:
        print(f"the tail did NOT drain within {args.drain_timeout:g} s")
    return 0 if run.drain_seconds is not None and found.consistent(accounts) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.intake_spike",
        description="Order intake under a spike: three accounts steady, then one at 10x.",
    )
    p.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL")
    p.add_argument("--spike-rate", type=float, default=50.0, help="deliveries/s per account")
    p.add_argument("--spike-baseline", type=float, default=30.0, help="seconds of the baseline")
    p.add_argument("--spike-seconds", type=float, default=60.0, help="seconds of the spike")
    p.add_argument(
        "--spike-multiplier", type=float, default=10.0, help=f"{FLOOD}'s rate in the spike, x"
    )
    p.add_argument(
        "--spike-backlog", type=int, default=500, help=f"{FLOOD}'s max_backlog (the 429 bound)"
    )
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before the baseline")
    p.add_argument("--concurrency", type=int, default=32, help="connections per account, at most")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="seconds, for the tail")
    p.add_argument("--backlog-step", type=float, default=5.0, help="seconds between lines")
    p.add_argument("--stores", type=int, default=5, help="stores, one Shopify location each")
    p.add_argument("--skus", type=int, default=300, help="SKUs stocked at every store")
    p.add_argument("--on-hand", type=int, default=1_000_000, help="on hand of every stock row")
    p.add_argument("--gateway-pool-size", type=int, default=None, help="ROPOS_DB_POOL_SIZE")
    p.add_argument("--gateway-command", metavar="CMD", help="start the gateway another way")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    if (
        args.spike_rate <= 0
        or args.spike_baseline <= 0
        or args.spike_seconds <= 0
        or args.spike_multiplier <= 0
        or not 1 <= args.spike_backlog <= 1_000_000
        or args.warmup < 0
        or args.concurrency < 1
        or args.backlog_step <= 0
        or args.stores < 1
        or args.skus < intake.MAX_LINES
    ):
        p.error(
            "rate, baseline, seconds, multiplier and backlog step > 0; backlog 1 to 1,000,000; "
            f"warmup >= 0; concurrency >= 1; stores >= 1; skus >= {intake.MAX_LINES}"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
