"""Applying a WMS stock snapshot of 10,000 levels (issue 4): the time, and levels per second, on
SQLite and on PostgreSQL.

    .venv/bin/python bench/wms_snapshot.py [--backends sqlite,postgres] [--http] [--shrink N]

Per backend: a fresh database (a SQLite file in a temporary directory; a PostgreSQL database
created on --server and dropped at the end), migrated; 100 stores x 100 SKUs of stock and a few
thousand active reservations over them, made through the use cases. Then absolute snapshots of
every (store, SKU) go through `services.wms.inbox.receive_batch` (stored, then applied: the inbound
path minus HTTP), each with new on-hand values (never below what is reserved) and newer sequence
numbers; then a replay of the last batch (same batchId) and a stale batch (new batchId, old
sequences), both of which must change nothing. With --http the same rounds go to POST
/wms/stock-levels of one `ropos serve` process, with a wms token.

Figures only: nothing passes or fails on time. The exit status is 1 only when a batch does not do
what it must (applied or stale counts), the stock does not equal the last snapshot, or an
invariant is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/wms_snapshot.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
import sqlalchemy as sa

from bench import common

TARGET_LEVELS_PER_SECOND = 20_000  # on PostgreSQL
WMS_PATH = "/wms/stock-levels"


# --- data -----------------------------------------------------------------------------------------


def store_id(i: int) -> str:
    return f"W{i:03d}"


def sku_code(i: int) -> str:
    return f"WSKU-{i:05d}"


@dataclass
class Backend:
    name: str  # "sqlite" or "postgresql"
    url: str
    db: Any = None  # adapters.db.engine.Database

    def uow(self) -> Any:
        from adapters.db.uow import SqlUnitOfWork

        return SqlUnitOfWork(self.db)


async def load(backend: Backend, args: argparse.Namespace) -> dict[str, float]:
    """Stores, SKUs, stock (one WMS-style sync) and reservations, all through the use cases, so
    the ledger, the holds and the outbox are what production would have."""
    from domain.catalog import Sku, StockCount, Store
    from domain.clock import SystemClock
    from domain.commands import Reserve
    from domain.errors import DomainError
    from services import reservations, stock

    clock = SystemClock()
    rng = random.Random(args.seed)
    took: dict[str, float] = {}
    t0 = time.perf_counter()
    # Stores around central London, within a few km of each other: a shrink can re-source.
    await stock.upsert_stores(
        [
            Store.build(
                id=store_id(i),
                name=f"Bench store {i}",
                lat=51.50 + rng.uniform(-0.08, 0.08),
                lon=-0.12 + rng.uniform(-0.12, 0.12),
                timezone="Europe/London",
            )
            for i in range(1, args.stores + 1)
        ],
        uow=backend.uow,
        clock=clock,
    )
    await stock.upsert_skus(
        [Sku.build(code=sku_code(i), name=f"Bench SKU {i}") for i in range(1, args.skus + 1)],
        uow=backend.uow,
        clock=clock,
    )
    counts = [
        StockCount.build(store_id=store_id(s), sku=sku_code(k), on_hand=args.initial_on_hand)
        for s in range(1, args.stores + 1)
        for k in range(1, args.skus + 1)
    ]
    for start in range(0, len(counts), 10_000):
        await stock.sync_stock(counts[start : start + 10_000], uow=backend.uow, clock=clock)
    took["stores, SKUs, stock"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run = uuid.uuid4().hex[:6]
    commands = []
    for i in range(args.reservations):
        lines: dict[str, int] = {}
        for _ in range(rng.choice((1, 1, 2, 3))):
            lines[sku_code(rng.randint(1, args.skus))] = rng.randint(1, 3)
        commands.append(
            Reserve.build(
                customer_id=f"wb-{run}-{i}",
                lines=list(lines.items()),
                store_id=store_id(rng.randint(1, args.stores)),
                channel="bench",
            )
        )
    queue = iter(commands)
    refused: list[str] = []

    async def worker() -> None:
        for cmd in queue:
            try:
                await reservations.reserve(cmd, uow=backend.uow, clock=clock)
            except DomainError as error:
                refused.append(error.code)

    await asyncio.gather(*(worker() for _ in range(args.load_concurrency)))
    took["reservations"] = time.perf_counter() - t0
    if refused:
        print(f"  {len(refused)} reserves refused while loading: {sorted(set(refused))}")
    return took


async def stock_rows(backend: Backend) -> dict[tuple[str, str], tuple[int, int, int | None]]:
    """(store, SKU) -> (on hand, reserved, WMS sequence)."""
    from adapters.db.tables import stock_levels as t

    async with backend.db.read() as conn:
        rows = await conn.execute(
            sa.select(t.c.store_id, t.c.sku, t.c.on_hand, t.c.reserved, t.c.wms_sequence)
        )
        return {(r.store_id, r.sku): (r.on_hand, r.reserved, r.wms_sequence) for r in rows}


async def scalar(backend: Backend, sql: str) -> Any:
    async with backend.db.read() as conn:
        return (await conn.execute(sa.text(sql))).scalar_one()


# --- snapshots ------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    batch_id: str
    payload: dict[str, Any]
    on_hand: dict[tuple[str, str], int]
    sequence: int
    short: int = 0  # levels set below what is reserved (--shrink)


class Snapshots:
    """Absolute snapshots of every (store, SKU): new on hand values each time (never equal to the
    last one, so every level writes an update, a ledger row and a stock event: the worst case),
    never below what is reserved unless asked, and sequence numbers always newer."""

    def __init__(self, keys: list[tuple[str, str]], seed: int) -> None:
        self.keys = keys
        self.rng = random.Random(seed + 1)
        self.sequence = 1_000
        self.last: Snapshot | None = None
        self.first_sequence: int | None = None

    def next(
        self, rows: dict[tuple[str, str], tuple[int, int, int | None]], *, shrink: int = 0
    ) -> Snapshot:
        self.sequence += 1_000
        if self.first_sequence is None:
            self.first_sequence = self.sequence
        previous = self.last.on_hand if self.last is not None else {}
        shrinkable = [k for k in self.keys if rows[k][1] > 0]
        short = set(self.rng.sample(shrinkable, min(shrink, len(shrinkable)))) if shrink else set()
        on_hand: dict[tuple[str, str], int] = {}
        levels = []
        for key in self.keys:
            reserved = rows[key][1]
            if key in short:
                value = reserved - 1
            else:
                value = reserved + self.rng.randint(0, 200)
                if value == previous.get(key, rows[key][0]):
                    value += 1
            on_hand[key] = value
            levels.append(
                {"storeId": key[0], "sku": key[1], "onHand": value, "sequence": self.sequence}
            )
        batch_id = f"bench-{uuid.uuid4()}"
        snap = Snapshot(
            batch_id, {"batchId": batch_id, "levels": levels}, on_hand, self.sequence, len(short)
        )
        self.last = snap
        return snap

    def stale(self) -> Snapshot:
        """A new batch id with the first round's sequence: every level is older than applied."""
        assert self.last is not None
        assert self.first_sequence is not None
        batch_id = f"bench-stale-{uuid.uuid4()}"
        levels = [
            {"storeId": s, "sku": k, "onHand": 7, "sequence": self.first_sequence}
            for s, k in self.keys
        ]
        return Snapshot(batch_id, {"batchId": batch_id, "levels": levels}, {}, self.first_sequence)


# --- where the time goes (optional rounds, timed around repository calls) -------------------------


class Breakdown:
    """Wraps the storage calls of the inbound path with perf_counter, in this process only, and
    attributes each call's time exclusive of the wrapped calls inside it. What is left of
    apply_counts' own time is its Python: building the rows, movements and events."""

    def __init__(self) -> None:
        self.self_time: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def _wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        timing = self

        @functools.wraps(original)
        async def timed(*a: Any, **kw: Any) -> Any:
            timing._stack.append([0.0])
            start = time.perf_counter()
            try:
                return await original(*a, **kw)
            finally:
                elapsed = time.perf_counter() - start
                children = timing._stack.pop()[0]
                timing.self_time[label] += elapsed - children
                timing.calls[label] += 1
                if timing._stack:
                    timing._stack[-1][0] += elapsed

        self._undo.append((owner, attr, original))
        setattr(owner, attr, timed)

    def _wrap_sync(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        timing = self

        @functools.wraps(original)
        def timed(*a: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                elapsed = time.perf_counter() - start
                timing.self_time[label] += elapsed
                timing.calls[label] += 1
                if timing._stack:
                    timing._stack[-1][0] += elapsed

        self._undo.append((owner, attr, original))
        setattr(owner, attr, timed)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Breakdown]:
        from adapters.db.levels import LevelsRepository
        from adapters.db.repositories import CatalogRepository, LedgerRepository, OutboxRepository
        from adapters.db.uow import SqlUnitOfWork
        from adapters.db.wms_inbox import WmsInboxRepository
        from services import stock
        from services.wms import inbox

        self._wrap(SqlUnitOfWork, "__aenter__", "open transaction (connection, BEGIN)")
        self._wrap(SqlUnitOfWork, "__aexit__", "close transaction (rollback if any, release)")
        self._wrap(SqlUnitOfWork, "commit", "COMMIT")
        self._wrap(WmsInboxRepository, "find", "inbox: find (SELECT payload)")
        self._wrap(WmsInboxRepository, "add", "inbox: add (INSERT payload)")
        self._wrap(WmsInboxRepository, "finish", "inbox: finish (UPDATE)")
        self._wrap(CatalogRepository, "existing_stores", "catalog.existing_stores (SELECT)")
        self._wrap(CatalogRepository, "existing_skus", "catalog.existing_skus (SELECT)")
        self._wrap(LevelsRepository, "lock", "levels.lock (SELECT ... FOR UPDATE)")
        self._wrap(LevelsRepository, "write", "levels.write (UPDATE, bulk on PostgreSQL)")
        self._wrap(LevelsRepository, "insert", "levels.insert (INSERT)")
        self._wrap(LedgerRepository, "record", "ledger.record (INSERT stock_movements)")
        self._wrap(OutboxRepository, "add", "outbox.add (INSERT outbox)")
        self._wrap(stock, "resolve_shortages", "resolve_shortages")
        self._wrap(inbox, "apply_counts", "apply_counts: its own Python (rows, events)")
        self._wrap_sync(inbox, "parse_batch", "parse_batch (in apply_stored)")
        try:
            yield self
        finally:
            for owner, attr, original in reversed(self._undo):
                setattr(owner, attr, original)
            self._undo.clear()

    def report(self, total: float, rounds: int, levels: int) -> list[str]:
        accounted = sum(self.self_time.values())
        rows = sorted(self.self_time.items(), key=lambda kv: -kv[1])
        rows.append(
            ("everything else (parse in the endpoint, services, event loop)", total - accounted)
        )
        out = [f"  {'':<62} {'ms/round':>9} {'share':>6} {'us/level':>9} {'calls':>6}"]
        for label, seconds in rows:
            per_round = seconds / rounds
            out.append(
                f"  {label:<62} {per_round * 1000:>9.1f} {seconds / total * 100:>5.1f}% "
                f"{per_round / levels * 1e6:>9.2f} {self.calls.get(label, 0) // rounds:>6}"
            )
        return out


# --- rounds ---------------------------------------------------------------------------------------


@dataclass
class Round:
    label: str
    seconds: float
    levels: int
    applied: int
    stale: int
    duplicate: bool
    status: str
    note: str = ""

    @property
    def rate(self) -> float:
        return self.levels / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"  {self.label:<16} {self.seconds:>8.3f} s {self.rate:>10,.0f} levels/s  "
            f"{self.status:<8} applied {self.applied:>6,} stale {self.stale:>6,}"
            f"{'  duplicate' if self.duplicate else ''}{'  ' + self.note if self.note else ''}"
        )


async def receive_in_process(backend: Backend, snap: Snapshot, label: str) -> Round:
    """What POST /wms/stock-levels does after reading the body: parse, store, apply."""
    from domain.clock import SystemClock
    from domain.wms import parse_batch
    from services.wms.inbox import receive_batch

    start = time.perf_counter()
    batch = parse_batch(snap.payload)
    outcome = await receive_batch(batch, snap.payload, uow=backend.uow, clock=SystemClock())
    seconds = time.perf_counter() - start
    return Round(
        label,
        seconds,
        len(snap.payload["levels"]),
        outcome.applied,
        outcome.stale,
        outcome.duplicate,
        outcome.status,
    )


class HttpSender:
    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.prefix = (
            f"POST {WMS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
        ).encode()
        self.client = common.HttpClient("127.0.0.1", port)

    async def send(self, snap: Snapshot, label: str) -> Round:
        body = orjson.dumps(snap.payload)
        raw = b"%sContent-Length: %d\r\n\r\n%s" % (self.prefix, len(body), body)
        start = time.perf_counter()
        status, answer = await self.client.request(raw)
        seconds = time.perf_counter() - start
        try:
            data = orjson.loads(answer)
        except orjson.JSONDecodeError:
            data = {}
        return Round(
            label,
            seconds,
            len(snap.payload["levels"]),
            int(data.get("applied") or 0),
            int(data.get("stale") or 0),
            bool(data.get("duplicate")),
            str(data.get("status") or f"HTTP {status}"),
            note=f"HTTP {status}, body {len(body) / 1024:,.0f} KiB"
            + (f", {data.get('error')}" if data.get("error") else ""),
        )

    def close(self) -> None:
        self.client.close()


def check_round(r: Round, *, applied: int, stale: int, duplicate: bool) -> str | None:
    if (r.applied, r.stale, r.duplicate) != (applied, stale, duplicate) or r.status != "APPLIED":
        return (
            f"{r.label}: expected APPLIED, applied {applied}, stale {stale}, duplicate "
            f"{duplicate}; got {r.status}, applied {r.applied}, stale {r.stale}, "
            f"duplicate {r.duplicate}"
        )
    return None


@dataclass
class Result:
    backend: str
    load: dict[str, float] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    replay: Round | None = None
    stale: Round | None = None
    shrink: Round | None = None
    http_rounds: list[Round] = field(default_factory=list)
    http_replay: Round | None = None
    http_stale: Round | None = None
    cpu: str = ""
    breakdown: list[str] = field(default_factory=list)
    mismatches: int = -1
    sequence_mismatches: int = -1
    violations: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def median(self, rounds: list[Round]) -> float:
        return statistics.median(r.seconds for r in rounds) if rounds else float("nan")


async def measure_rounds(
    backend: Backend,
    snapshots: Snapshots,
    send: Callable[[Snapshot, str], Any],
    rounds: int,
    result: Result,
    into: list[Round],
    after_round: Callable[[], Any] | None = None,
) -> tuple[Round, Round]:
    """`rounds` fresh snapshots, then a replay of the last one and a stale one."""
    levels = len(snapshots.keys)
    for i in range(1, rounds + 1):
        snap = snapshots.next(await stock_rows(backend))
        r = await send(snap, f"round {i}")
        print(r.line(), flush=True)
        into.append(r)
        if problem := check_round(r, applied=levels, stale=0, duplicate=False):
            result.problems.append(problem)
        if after_round is not None:
            await after_round()
    assert snapshots.last is not None
    replay = await send(snapshots.last, "replay (same id)")
    print(replay.line(), flush=True)
    if problem := check_round(replay, applied=levels, stale=0, duplicate=True):
        result.problems.append(problem)
    stale = await send(snapshots.stale(), "stale (old seq)")
    print(stale.line(), flush=True)
    if problem := check_round(stale, applied=0, stale=levels, duplicate=False):
        result.problems.append(problem)
    return replay, stale


# --- one backend ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_backend(name: str, args: argparse.Namespace) -> Any:
    from adapters.db.engine import Database

    if name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ropos-bench-wms-") as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'ropos.db'}"
            print(f"database {url} (temporary)", flush=True)
            await common.migrate(url)
            backend = Backend("sqlite", url, Database(url))
            try:
                yield backend
            finally:
                await backend.db.dispose()
        return
    url, db_name = await common.create_database(args.server, "ropos_bench_wms")
    print(f"database {db_name} (fresh; dropped at the end)", flush=True)
    backend = Backend("postgresql", url)
    try:
        await common.migrate(url)
        backend.db = Database(url, pool_size=max(4, args.load_concurrency), max_overflow=0)
        yield backend
    finally:
        if backend.db is not None:
            await backend.db.dispose()
        await common.drop_database(args.server, db_name)
        print(f"database {db_name} dropped", flush=True)


async def run_backend(name: str, args: argparse.Namespace) -> Result:
    result = Result(name)
    print(f"\n=== {name} ===", flush=True)
    async with open_backend(name, args) as backend:
        with common.timed(
            f"load {args.stores} stores x {args.skus} SKUs and {args.reservations:,} reservations"
        ):
            result.load = await load(backend, args)
        if backend.name == "postgresql":
            conn = await common.admin_connection(backend.url)
            try:
                await conn.execute("VACUUM ANALYZE")
            finally:
                await conn.close()
        rows = await stock_rows(backend)
        keys = sorted(rows)
        reserved_rows = sum(1 for v in rows.values() if v[1] > 0)
        held = await scalar(backend, "SELECT count(*) FROM reservations WHERE status = 'HELD'")
        print(
            f"  {len(keys):,} stock rows, {reserved_rows:,} with units reserved "
            f"({sum(v[1] for v in rows.values()):,} units, "
            f"{held:,} held reservations); "
            + ", ".join(f"{k} {v:.1f} s" for k, v in result.load.items()),
            flush=True,
        )
        snapshots = Snapshots(keys, args.seed)

        # A warm-up batch: the first one pays for compiling statements and filling caches.
        warm = await receive_in_process(
            backend, snapshots.next(await stock_rows(backend)), "warm-up"
        )
        print(warm.line(), flush=True)

        print(
            f"in process: services.wms.inbox.receive_batch, {len(keys):,} absolute levels per batch",
            flush=True,
        )
        pg_database = common.database_name(backend.url) if backend.name == "postgresql" else None
        before = common.cpu_snapshot(None, pg_database)
        result.replay, result.stale = await measure_rounds(
            backend,
            snapshots,
            lambda snap, label: receive_in_process(backend, snap, label),
            args.rounds,
            result,
            result.rounds,
        )
        after = common.cpu_snapshot(None, pg_database)
        use = common.cpu_between(before, after)
        busy = sum(r.seconds for r in result.rounds) + result.replay.seconds + result.stale.seconds
        result.cpu = (
            f"CPU over the {args.rounds + 2} batches ({busy:.1f} s of {use.wall:.1f} s wall, "
            "including reading the stock between rounds): bench process (Python, SQLAlchemy, "
            f"asyncpg/sqlite3) {use.bench:.1f} s"
            + (
                f", PostgreSQL (this database + background) {use.postgres:.1f} s"
                if pg_database
                else ""
            )
            + f", other processes {use.others:.1f} s"
        )
        print(f"  {result.cpu}", flush=True)

        if args.breakdown_rounds:
            timing = Breakdown()
            total = 0.0
            with timing.installed():
                for i in range(args.breakdown_rounds):
                    snap = snapshots.next(await stock_rows(backend))
                    r = await receive_in_process(backend, snap, f"timed round {i + 1}")
                    print(r.line(), flush=True)
                    total += r.seconds
            result.breakdown = [
                f"where the time goes ({args.breakdown_rounds} extra rounds, each repository "
                f"call wrapped with perf_counter, time exclusive of the calls inside it; "
                f"{total / args.breakdown_rounds * 1000:.0f} ms/round):",
                *timing.report(total, args.breakdown_rounds, len(keys)),
            ]
            print("\n".join(result.breakdown), flush=True)

        if args.shrink:
            before_shortage = await scalar(
                backend, "SELECT count(*) FROM stock_movements WHERE reason = 'SHORTAGE'"
            )
            snap = snapshots.next(await stock_rows(backend), shrink=args.shrink)
            r = await receive_in_process(backend, snap, f"shrink {snap.short}")
            released = (
                await scalar(
                    backend, "SELECT count(*) FROM stock_movements WHERE reason = 'SHORTAGE'"
                )
                - before_shortage
            )
            r.note = f"{snap.short} levels below reserved; {released} lines released or moved"
            print(r.line(), flush=True)
            result.shrink = r
            if problem := check_round(r, applied=len(keys), stale=0, duplicate=False):
                result.problems.append(problem)

        if args.http:
            await run_http(backend, snapshots, args, result)

        with common.timed("verify"):
            rows = await stock_rows(backend)
            last = snapshots.last
            assert last is not None
            result.mismatches = sum(1 for k, v in last.on_hand.items() if rows[k][0] != v)
            result.sequence_mismatches = sum(1 for k in last.on_hand if rows[k][2] != last.sequence)
            result.violations = await common.invariant_violations(backend.url)
        print(f"  {verify_line(result)}", flush=True)
    return result


async def run_http(
    backend: Backend, snapshots: Snapshots, args: argparse.Namespace, result: Result
) -> None:
    # The in-process rounds' stock events were never published (no relay ran): mark them so the
    # gateway's relay does not start on a backlog during the HTTP rounds.
    async with backend.db.write() as conn:
        await conn.execute(
            sa.text("UPDATE outbox SET published_at = CURRENT_TIMESTAMP WHERE published_at IS NULL")
        )
        await conn.commit()
    gateway = common.GatewayProcess(
        backend.url, pool_size=args.gateway_pool_size, command=args.gateway_command
    )
    with common.timed(f"start gateway on port {gateway.port}"):
        await gateway.start()
    sender = HttpSender(gateway.port, common.issue_token("wms", subject="bench-wms"))
    drains: list[float] = []

    async def wait_for_relay() -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < args.relay_wait:
            if not await scalar(backend, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                break
            await asyncio.sleep(0.05)
        drains.append(time.perf_counter() - start)

    try:
        print(
            f"HTTP: POST {WMS_PATH} to one gateway process (wms token; the relay publishes "
            "each batch's stock events before the next batch is sent)",
            flush=True,
        )
        await sender.send(snapshots.next(await stock_rows(backend)), "warm-up")
        await wait_for_relay()
        drains.clear()
        result.http_replay, result.http_stale = await measure_rounds(
            backend,
            snapshots,
            sender.send,
            args.rounds,
            result,
            result.http_rounds,
            after_round=wait_for_relay,
        )
        print(
            f"  the gateway's relay published each batch's {len(snapshots.keys):,} stock events "
            f"within {statistics.median(drains):.2f} s (median) after the answer",
            flush=True,
        )
    finally:
        sender.close()
        code = gateway.stop()
        print(f"gateway stopped (exit status {code})", flush=True)


def verify_line(result: Result) -> str:
    invariants = (
        "invariants hold (no oversell, reserved = active lines, ledger, counters)"
        if not result.violations
        else f"INVARIANTS BROKEN: {result.violations}"
    )
    return (
        f"stock on hand vs the last snapshot: {result.mismatches:,} mismatches; wms_sequence: "
        f"{result.sequence_mismatches:,} mismatches; {invariants}"
    )


# --- the run ----------------------------------------------------------------------------------------


def print_figures(result: Result, args: argparse.Namespace) -> None:
    print(f"[{result.backend}]")
    header = f"  {'':<16} {'seconds':>10} {'levels/s':>10}"
    for title, rounds, replay, stale in (
        ("in process (receive_batch)", result.rounds, result.replay, result.stale),
        (
            "HTTP (POST /wms/stock-levels)",
            result.http_rounds,
            result.http_replay,
            result.http_stale,
        ),
    ):
        if not rounds:
            continue
        print(f" {title}")
        print(header)
        for r in rounds:
            print(r.line())
        median = result.median(rounds)
        levels = rounds[0].levels
        print(f"  {'median':<16} {median:>8.3f} s {levels / median:>10,.0f} levels/s")
        for other in (replay, stale):
            if other is not None:
                print(other.line())
        if rounds is result.rounds and result.shrink is not None:
            print(result.shrink.line())
    if result.cpu:
        print(f"  {result.cpu}")
    for line in result.breakdown:
        print(line)
    print(f"  {verify_line(result)}")
    for problem in result.problems:
        print(f"  PROBLEM: {problem}")


async def main_async(args: argparse.Namespace) -> int:
    facts = {**common._host_facts()}
    if "postgresql" in args.backends:
        facts = await common.machine_facts(args.server)
    results: list[Result] = []
    for name in args.backends:
        results.append(await run_backend(name, args))

    print()
    common.print_block("=== WMS snapshot benchmark: machine ===", facts)
    common.print_block(
        "=== parameters ===",
        {
            "backends": ", ".join(args.backends)
            + (f" (PostgreSQL on {args.server})" if "postgresql" in args.backends else ""),
            "data": f"{args.stores} stores x {args.skus} SKUs = {args.stores * args.skus:,} stock "
            f"rows; {args.reservations:,} reservations of 1-3 lines (1-3 units each)",
            "snapshot": f"{args.stores * args.skus:,} absolute levels (onHand + sequence), every "
            "on hand changed, never below reserved"
            + (f"; then one batch with {args.shrink} levels below reserved" if args.shrink else ""),
            "rounds": f"{args.rounds} measured after 1 warm-up, then a replay and a stale batch"
            + ("; the same over HTTP" if args.http else ""),
        },
    )
    print("=== figures ===")
    for result in results:
        print_figures(result, args)
    pg = next((r for r in results if r.backend == "postgresql"), None)
    if pg is not None and pg.rounds:
        rate = pg.rounds[0].levels / pg.median(pg.rounds)
        verdict = "met" if rate >= TARGET_LEVELS_PER_SECOND else "NOT met"
        print(
            f"target >= {TARGET_LEVELS_PER_SECOND:,} levels/s on PostgreSQL: {verdict} "
            f"(median {rate:,.0f} levels/s through receive_batch"
            + (
                f"; {pg.http_rounds[0].levels / pg.median(pg.http_rounds):,.0f} levels/s over HTTP"
                if pg.http_rounds
                else ""
            )
            + ")"
        )
    else:
        print(f"target >= {TARGET_LEVELS_PER_SECOND:,} levels/s on PostgreSQL: not measured")
    ok = all(
        not r.problems and r.mismatches == 0 and r.sequence_mismatches == 0 and not r.violations
        for r in results
    )
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python bench/wms_snapshot.py",
        description="Apply 10,000-level WMS snapshots on SQLite and PostgreSQL: time, levels/s.",
    )
    p.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (or postgres)",
    )
    p.add_argument(
        "--server",
        default=common.DEFAULT_SERVER,
        help="PostgreSQL server URL (a fresh database is created there and dropped afterwards)",
    )
    p.add_argument("--stores", type=int, default=100)
    p.add_argument("--skus", type=int, default=100, help="stores x SKUs levels per snapshot")
    p.add_argument("--reservations", type=int, default=3_000, help="active reservations loaded")
    p.add_argument("--initial-on-hand", type=int, default=50)
    p.add_argument("--load-concurrency", type=int, default=8, help="concurrent reserves at load")
    p.add_argument("--rounds", type=int, default=5, help="measured snapshots per mode")
    p.add_argument(
        "--breakdown-rounds",
        type=int,
        default=2,
        help="extra in-process rounds timed per repository call (0: none)",
    )
    p.add_argument(
        "--shrink",
        type=int,
        default=0,
        metavar="N",
        help="one more batch with N levels below what is reserved (re-sourcing)",
    )
    p.add_argument("--http", action="store_true", help="also through POST /wms/stock-levels")
    p.add_argument("--relay-wait", type=float, default=20.0, help="HTTP: max s for the relay")
    p.add_argument("--gateway-pool-size", type=int, default=None)
    p.add_argument("--gateway-command", metavar="CMD")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    names = {
        "sqlite": "sqlite",
        "postgres": "postgresql",
        "postgresql": "postgresql",
        "pg": "postgresql",
    }
    chosen = [n.strip().lower() for n in args.backends.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown or not chosen:
        p.error(f"unknown backend(s): {', '.join(unknown)}; choose from sqlite, postgresql")
    args.backends = list(dict.fromkeys(names[n] for n in chosen))
    if args.stores * args.skus > 10_000:
        p.error("stores x skus must be at most 10,000 (one batch)")
    if args.rounds < 1:
        p.error("rounds >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The services log every shortage and rejected batch at WARNING; the figures are the output.
    logging.disable(logging.WARNING)
    return common.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
