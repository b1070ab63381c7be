"""Availability query latency through the HTTP GraphQL endpoint of ONE gateway process, on a big
chain: 2,000 stores x 20,000 SKUs (40,000,000 stock rows at --stock-density 1.0).

    .venv/bin/python -m bench.availability [--duration 15] [--concurrency 32] [--server URL]
        [--stock-density 1.0] [--keep-db NAME]

The data is made server-side (INSERT ... SELECT FROM generate_series), so no stock row crosses
the wire; the stock table's indexes are built after the load, then everything is ANALYZEd (and
VACUUMed, unless --no-vacuum). With --keep-db NAME the database is kept and reused by the next run
with the same data parameters, so the load happens once.

Each request asks `availability` for 3-5 random SKUs near a random point (around the cities the
stores cluster in, sometimes anywhere in the area), radius 50 km, first 10; always the same query
text with variables, so the parser and validation caches apply. Beside it, a baseline: the one
statement the gateway runs per request (the stock rows of the nearest stores), straight on asyncpg
at the same concurrency: the database's share alone, a floor for any gateway on this machine.
Figures only: nothing passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.db.views import STOCK_LEVELS_PG
from bench import common

QUERY = (
    "query Availability($skus: [String!]!, $near: GeoPointInput!) { "
    "availability(skus: $skus, near: $near, radiusKm: 50, first: 10) { "
    "store { id name } distanceKm canServeAll lines { sku available } } }"
)
TARGET_P99_MS = 25.0

# Great Britain: (name, lat, lon, weight) - stores cluster around these, weighted by size.
CITIES = [
    ("London", 51.507, -0.128, 30),
    ("Birmingham", 52.486, -1.890, 8),
    ("Manchester", 53.480, -2.242, 8),
    ("Leeds", 53.801, -1.549, 5),
    ("Glasgow", 55.864, -4.252, 5),
    ("Liverpool", 53.408, -2.991, 4),
    ("Newcastle", 54.978, -1.618, 4),
    ("Sheffield", 53.381, -1.470, 4),
    ("Bristol", 51.455, -2.588, 4),
    ("Edinburgh", 55.953, -3.189, 4),
    ("Nottingham", 52.954, -1.158, 3),
    ("Leicester", 52.637, -1.140, 3),
    ("Cardiff", 51.482, -3.179, 3),
    ("Southampton", 50.910, -1.404, 3),
    ("Brighton", 50.823, -0.137, 3),
    ("Plymouth", 50.376, -4.143, 2),
    ("Norwich", 52.630, 1.297, 2),
    ("Oxford", 51.752, -1.258, 2),
    ("Cambridge", 52.205, 0.122, 2),
    ("York", 53.960, -1.087, 2),
    ("Hull", 53.768, -0.333, 2),
    ("Stoke-on-Trent", 53.003, -2.180, 2),
    ("Coventry", 52.407, -1.512, 2),
    ("Reading", 51.454, -0.978, 2),
    ("Exeter", 50.726, -3.527, 1),
    ("Swansea", 51.621, -3.944, 1),
    ("Aberdeen", 57.150, -2.094, 1),
    ("Dundee", 56.462, -2.971, 1),
    ("Canterbury", 51.280, 1.079, 1),
    ("Lincoln", 53.230, -0.540, 1),
]
LAT_RANGE = (50.0, 56.0)
LON_RANGE = (-5.0, 1.5)


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return min(bounds[1], max(bounds[0], value))


def _near_city(rng: random.Random, spread_deg: float) -> tuple[str, float, float]:
    name, lat, lon, _ = rng.choices(CITIES, weights=[c[3] for c in CITIES])[0]
    # degrees of longitude are shorter than degrees of latitude up here
    lat += rng.gauss(0.0, spread_deg)
    lon += rng.gauss(0.0, spread_deg / math.cos(math.radians(lat)))
    return name, _clip(lat, LAT_RANGE), _clip(lon, LON_RANGE)


def _anywhere(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(*LAT_RANGE), rng.uniform(*LON_RANGE)


def make_stores(count: int, seed: int) -> list[tuple[str, str, float, float]]:
    """85% clustered around the cities (about 15 km spread), 15% anywhere in the area."""
    rng = random.Random(seed)
    stores = []
    for i in range(1, count + 1):
        if rng.random() < 0.85:
            city, lat, lon = _near_city(rng, 0.12)
            name = f"{city} {i}"
        else:
            lat, lon = _anywhere(rng)
            name = f"Roadside {i}"
        stores.append((store_id(i), f"ROPOS {name}", round(lat, 5), round(lon, 5)))
    return stores


def store_id(i: int) -> str:
    return f"S{i:05d}"


def sku_code(i: int) -> str:
    return f"SKU-{i:06d}"


# --- the load -----------------------------------------------------------------------------------


def data_signature(args: argparse.Namespace) -> str:
    return (
        f"ropos-bench availability stores={args.stores} skus={args.skus} "
        f"density={args.stock_density:g} seed={args.seed}"
    )


async def database_comment(server: str, name: str) -> tuple[bool, str | None]:
    conn = await common.admin_connection(server)
    try:
        row = await conn.fetchrow(
            "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database "
            "WHERE datname = $1",
            name,
        )
    finally:
        await conn.close()
    return (row is not None, row["comment"] if row else None)


async def set_database_comment(server: str, name: str, comment: str) -> None:
    conn = await common.admin_connection(server)
    try:
        await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
    finally:
        await conn.close()


async def _session(url: str) -> asyncpg.Connection:
    """A loading session: no waiting on WAL flushes, big sort memory, FK triggers off where the
    role may turn them off (the rows are consistent by construction)."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SET maintenance_work_mem = '1GB'")
    # Not a superuser: the FK checks run and the load is slower.
    with contextlib.suppress(asyncpg.PostgresError):
        await conn.execute("SET session_replication_role = replica")
    return conn


async def load(url: str, args: argparse.Namespace) -> dict[str, float]:
    timings: dict[str, float] = {}
    now = datetime.now(UTC)
    conn = await _session(url)
    try:
        start = time.perf_counter()
        stores = make_stores(args.stores, args.seed)
        await conn.copy_records_to_table(
            "stores",
            records=[(i, n, lat, lon, "Europe/London", now, now) for i, n, lat, lon in stores],
            columns=["id", "name", "lat", "lon", "timezone", "created_at", "updated_at"],
        )
        await conn.execute(
            "INSERT INTO skus (code, name, unit_price, created_at) "
            "SELECT 'SKU-' || lpad(i::text, 6, '0'), 'Bench product ' || i, "
            "round((5 + random() * 195)::numeric, 2), $2 "
            "FROM generate_series(1, $1::int) AS i",
            args.skus,
            now,
        )
        timings["stores and SKUs"] = time.perf_counter() - start

        # The stock table's indexes are built once after the load, much faster than row by row.
        await conn.execute("ALTER TABLE stock_levels DROP CONSTRAINT pk_stock_levels")
        await conn.execute("DROP INDEX ix_stock_levels_sku_store_id")
    finally:
        await conn.close()

    start = time.perf_counter()
    jobs = max(1, min(args.load_jobs, args.stores))
    bounds = [round(args.stores * j / jobs) for j in range(jobs + 1)]
    density = "" if args.stock_density >= 1.0 else f"WHERE random() < {float(args.stock_density)!r}"

    async def insert_range(lo: int, hi: int) -> None:
        job = await _session(url)
        try:
            await job.execute(
                "INSERT INTO stock_levels (store_id, sku, on_hand, reserved, safety_stock, "
                "updated_at) "
                "SELECT 'S' || lpad(s::text, 5, '0'), 'SKU-' || lpad(k::text, 6, '0'), "
                "floor(random() * 31)::int, 0, (random() < 0.2)::int, $3 "
                "FROM generate_series($1::int, $2::int) AS s "
                f"CROSS JOIN generate_series(1, $4::int) AS k {density}",
                lo,
                hi,
                now,
                args.skus,
            )
        finally:
            await job.close()

    await asyncio.gather(
        *(
            insert_range(bounds[j] + 1, bounds[j + 1])
            for j in range(jobs)
            if bounds[j + 1] > bounds[j]
        )
    )
    timings["stock rows"] = time.perf_counter() - start

    conn = await _session(url)
    try:
        start = time.perf_counter()
        await conn.execute("CREATE UNIQUE INDEX pk_stock_levels ON stock_levels (store_id, sku)")
        await conn.execute(
            "ALTER TABLE stock_levels ADD CONSTRAINT pk_stock_levels "
            "PRIMARY KEY USING INDEX pk_stock_levels"
        )
        await conn.execute(
            "CREATE INDEX ix_stock_levels_sku_store_id ON stock_levels (sku, store_id)"
        )
        timings["stock indexes"] = time.perf_counter() - start
        start = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)" if args.vacuum else "ANALYZE")
        timings["VACUUM ANALYZE" if args.vacuum else "ANALYZE"] = time.perf_counter() - start
        timings["stock rows loaded"] = float(
            await conn.fetchval("SELECT count(*) FROM stock_levels")
        )
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"  database size {size}")
    finally:
        await conn.close()
    return timings


async def prewarm(url: str) -> str:
    """Read the stock table and its primary key once, so that the runs measure the gateway and
    the database rather than the disk (pg_prewarm's 'read' mode: the OS page cache, not
    shared_buffers)."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    try:
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except asyncpg.PostgresError as error:
            return f"skipped: pg_prewarm is not available ({error})"
        blocks = await conn.fetchval(
            "SELECT pg_prewarm('stock_levels', 'read') + pg_prewarm('pk_stock_levels', 'read')"
        )
    finally:
        await conn.close()
    return f"{blocks:,} blocks read"


# --- the requests -------------------------------------------------------------------------------


def make_bodies(args: argparse.Namespace, count: int) -> list[bytes]:
    """Pre-built request bodies: 3-5 random SKUs, a random point (80% around a city within about
    25 km, 20% anywhere in the area)."""
    rng = random.Random(args.seed + 1)
    query = json.dumps(QUERY)
    bodies = []
    for _ in range(count):
        skus = [sku_code(k) for k in rng.sample(range(1, args.skus + 1), rng.randint(3, 5))]
        if rng.random() < 0.8:
            _, lat, lon = _near_city(rng, 0.2)
        else:
            lat, lon = _anywhere(rng)
        variables = {"skus": skus, "near": {"lat": round(lat, 5), "lon": round(lon, 5)}}
        bodies.append(f'{{"query":{query},"variables":{json.dumps(variables)}}}'.encode())
    return bodies


async def run_gateway(
    gateway: common.GatewayProcess, args: argparse.Namespace, profiler: common.PySpy
) -> tuple[common.LoadResult, common.CpuUse, dict[str, Any]]:
    prefix = common.graphql_request_prefix(gateway.port, None)
    requests = [
        common.graphql_request(prefix, b) for b in make_bodies(args, args.distinct_requests)
    ]
    picks = itertools.cycle(range(len(requests)))
    clients = [common.HttpClient("127.0.0.1", gateway.port) for _ in range(args.concurrency)]
    for client in clients:
        await client.connect()
    stores_returned: list[int] = []

    async def operation(worker: int) -> str | None:
        status, raw = await clients[worker].request(requests[next(picks)])
        if status != 200:
            return f"HTTP {status}"
        if b'"errors"' in raw:
            errors = json.loads(raw).get("errors") or [{}]
            return str(errors[0].get("extensions", {}).get("code") or errors[0].get("message"))
        stores_returned.append(raw.count(b'"canServeAll"'))
        return None

    before = common.cpu_snapshot(gateway.pid, common.database_name(gateway.database_url))
    profiler.start(gateway.pid, "availability-gateway", args.warmup + args.duration)
    async with common.ActivitySampler(gateway.database_url, delay=args.warmup) as activity:
        result = await common.closed_loop(
            operation, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration
        )
    after = common.cpu_snapshot(gateway.pid, common.database_name(gateway.database_url))
    for client in clients:
        client.close()
    profiler.finish()
    shape: dict[str, Any] = {
        "mean stores per answer": sum(stores_returned) / len(stores_returned)
        if stores_returned
        else 0,
        "answers with no store": (
            sum(1 for n in stores_returned if n == 0) / len(stores_returned) * 100
            if stores_returned
            else 0
        ),
    }
    shape["activity"] = activity.summary()
    return result, common.cpu_between(before, after), shape


async def run_more(
    gateway: common.GatewayProcess, args: argparse.Namespace
) -> list[tuple[str, common.LoadResult]]:
    """The same gateway, other loads: `{ __typename }` closed-loop (what HTTP and GraphQL cost
    with no resolver and no database: the gateway's own floor), then the availability query
    open-loop at each of --rates (requests sent on a clock, as independent shoppers send them)."""
    prefix = common.graphql_request_prefix(gateway.port, None)
    typename = common.graphql_request(prefix, b'{"query":"{ __typename }"}')
    requests = [
        common.graphql_request(prefix, b) for b in make_bodies(args, args.distinct_requests)
    ]
    picks = itertools.cycle(range(len(requests)))
    clients = [common.HttpClient("127.0.0.1", gateway.port) for _ in range(args.concurrency)]
    for client in clients:
        await client.connect()

    async def send(client: common.HttpClient, request: bytes) -> str | None:
        status, raw = await client.request(request)
        if status != 200:
            return f"HTTP {status}"
        return "GraphQL error" if b'"errors"' in raw else None

    found = []
    try:
        if args.floor:
            print(f"gateway floor: {{ __typename }}, {args.concurrency} clients ...", flush=True)
            result = await common.closed_loop(
                lambda w: send(clients[w], typename),
                concurrency=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
            )
            found.append(("gateway { __typename }", result))
        for rate in args.rates:
            print(f"gateway open loop: {rate:g} requests/s ...", flush=True)
            result = await common.open_loop(
                lambda w: send(clients[w], requests[next(picks)]),
                rate=rate,
                connections=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
            )
            found.append((f"gateway at {rate:g}/s (open)", result))
    finally:
        for client in clients:
            client.close()
    return found


async def run_baseline(
    url: str, args: argparse.Namespace
) -> tuple[common.LoadResult, common.CpuUse]:
    """The database's share alone: the same stock read for the same stores and SKUs, straight on
    asyncpg at the same concurrency, with the nearest stores found before the clock starts. No
    gateway can be faster than this on the same machine."""
    from domain.geo import GeoPoint, nearest

    stores = make_stores(args.stores, args.seed)
    reads = []
    for body in make_bodies(args, args.distinct_requests):
        variables = json.loads(body)["variables"]
        near = GeoPoint(variables["near"]["lat"], variables["near"]["lon"])
        found = nearest(near, stores, lambda s: (s[2], s[3]), 50.0, 10)
        reads.append(([s[0] for s, _ in found], variables["skus"]))
    picks = itertools.cycle(range(len(reads)))
    pool = await asyncpg.create_pool(
        **common.connect_kwargs(url), min_size=args.concurrency, max_size=args.concurrency
    )

    async def operation(worker: int) -> str | None:
        store_ids, skus = reads[next(picks)]
        if store_ids:
            async with pool.acquire() as conn:
                await conn.fetch(STOCK_LEVELS_PG, store_ids, skus)
        return None

    try:
        before = common.cpu_snapshot(None, common.database_name(url))
        result = await common.closed_loop(
            operation, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration
        )
        after = common.cpu_snapshot(None, common.database_name(url))
    finally:
        await pool.close()
    return result, common.cpu_between(before, after)


def figures_line(label: str, r: common.LoadResult) -> str:
    return (
        f"  {label:<24} {r.percentile_ms(50):>8.2f} {r.percentile_ms(99):>8.2f} "
        f"{r.mean_ms:>8.2f} {r.throughput:>9,.0f} {r.ok_in_window:>9,} {r.errors_in_window:>7,}"
    )


@dataclass
class Measured:
    """What one run measured, for the report."""

    result: common.LoadResult
    cpu: common.CpuUse
    shape: dict[str, Any]
    more: list[tuple[str, common.LoadResult]]
    baseline: tuple[common.LoadResult, common.CpuUse] | None


async def main_async(args: argparse.Namespace) -> int:
    facts = await common.machine_facts(args.server)
    signature = data_signature(args)
    url, name, reused = await open_database(args, signature)
    try:
        timings = {} if reused else await load_database(args, url, name, signature)
        measured = await measure(args, url)
    finally:
        if args.keep_db:
            print(f"database {name} kept (--keep-db)")
        else:
            await common.drop_database(args.server, name)
            print(f"database {name} dropped")
    print()
    report(args, facts, name, reused, timings, measured)
    return 0


async def open_database(args: argparse.Namespace, signature: str) -> tuple[str, str, bool]:
    """(URL, name, whether its data is reused): a kept database with the same data parameters
    is reused; otherwise a fresh one is made."""
    if not args.keep_db:
        url, name = await common.create_database(args.server, "ropos_bench_availability")
        print(f"database {name} (fresh; dropped at the end)")
        return url, name, False
    name = args.keep_db
    url = common.database_url(args.server, name)
    exists, comment = await database_comment(args.server, name)
    if exists and comment == signature:
        print(f"database {name}: reused ({signature})")
        return url, name, True
    if exists and not (comment or "").startswith("ropos-bench availability"):
        sys.exit(f"database {name} exists and is not a benchmark database: choose another name")
    if exists:
        print(f"database {name} holds other data ({comment}); loading it anew")
        await common.drop_database(args.server, name)
    conn = await common.admin_connection(args.server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url, name, False


async def load_database(
    args: argparse.Namespace, url: str, name: str, signature: str
) -> dict[str, float]:
    with common.timed("migrate"):
        await common.migrate(url)
    expected = round(args.stores * args.skus * min(1.0, args.stock_density))
    with common.timed(
        f"load {args.stores:,} stores x {args.skus:,} SKUs at density "
        f"{args.stock_density:g} (~{expected:,} stock rows)"
    ) as took:
        timings = await load(url, args)
    timings["total load"] = took["seconds"]
    for step, seconds in timings.items():
        if step == "stock rows loaded":
            print(f"  {step}: {int(seconds):,}")
        else:
            print(f"  {step}: {seconds:.1f} s")
    if args.keep_db:
        await set_database_comment(args.server, name, signature)
    return timings


async def measure(args: argparse.Namespace, url: str) -> Measured:
    if args.prewarm:
        with common.timed("prewarm the stock table and its key into the OS page cache"):
            print(f"  {await prewarm(url)}")
    gateway = common.GatewayProcess(
        url, pool_size=args.gateway_pool_size, command=args.gateway_command
    )
    profiler = common.PySpy(args.py_spy)
    try:
        with common.timed(f"start gateway on port {gateway.port}"):
            await gateway.start()
        print(f"gateway pid {gateway.pid}, pool {common.pool_description(args.gateway_pool_size)}")
        print(
            f"gateway: {args.concurrency} clients, {args.warmup:g} s warm-up + {args.duration:g} s",
            flush=True,
        )
        result, cpu, shape = await run_gateway(gateway, args, profiler)
        print(
            f"  p50 {result.percentile_ms(50):.2f} ms, p99 {result.percentile_ms(99):.2f} ms, "
            f"{result.throughput:,.0f} req/s",
            flush=True,
        )
        more = await run_more(gateway, args)
    finally:
        code = gateway.stop()
        print(f"gateway stopped (exit status {code})")
    baseline: tuple[common.LoadResult, common.CpuUse] | None = None
    if args.baseline:
        print("baseline (asyncpg, the stock read alone) ...", flush=True)
        baseline = await run_baseline(url, args)
    return Measured(result, cpu, shape, more, baseline)


def report(
    args: argparse.Namespace,
    facts: dict[str, str],
    name: str,
    reused: bool,
    timings: dict[str, float],
    measured: Measured,
) -> None:
    common.print_block("=== availability benchmark: machine ===", facts)
    params = {
        "server": args.server,
        "data": f"{args.stores:,} stores x {args.skus:,} SKUs, stock density "
        f"{args.stock_density:g} ({'reused database ' + name if reused else 'loaded this run'})",
        "query": "availability(skus: 3-5 random, near: random point, radiusKm: 50, first: 10) "
        "{ store { id name } distanceKm canServeAll lines { sku available } }",
        "concurrency": f"{args.concurrency} clients (keep-alive HTTP/1.1), gateway DB pool "
        f"{common.pool_description(args.gateway_pool_size)}",
        "duration": f"{args.duration:g} s measured after {args.warmup:g} s warm-up",
    }
    common.print_block("=== parameters ===", params)
    if timings:
        common.print_block(
            "=== load ===",
            {
                k: (f"{int(v):,}" if k == "stock rows loaded" else f"{v:.1f} s")
                for k, v in timings.items()
            },
        )
    report_figures(args, measured)


def report_figures(args: argparse.Namespace, measured: Measured) -> None:
    result, cpu, shape, more, baseline = (
        measured.result,
        measured.cpu,
        measured.shape,
        measured.more,
        measured.baseline,
    )
    print("=== figures ===")
    print(
        f"  {'':<24} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>9} {'ok':>9} "
        f"{'errors':>7}"
    )
    print(figures_line("gateway (HTTP)", result))
    for label, extra in more:
        print(figures_line(label, extra))
    if baseline is not None:
        print(figures_line("baseline (asyncpg read)", baseline[0]))
    p99 = result.percentile_ms(99)
    verdict = "met" if p99 <= TARGET_P99_MS else "missed"
    print(
        f"  target: p99 <= {TARGET_P99_MS:g} ms with {args.concurrency} concurrent clients: "
        f"{verdict} ({p99:.2f} ms)"
    )
    if baseline is not None:
        print(
            f"  gateway throughput {result.throughput / max(baseline[0].throughput, 1e-9):.0%} "
            "of the baseline's"
        )
    floors = [
        (label, r, "no query through this gateway process meets the target here")
        for label, r in more
        if "__typename" in label
    ]
    if baseline is not None:
        floors.append(
            ("the stock read alone on asyncpg", baseline[0], "no gateway meets the target here")
        )
    for label, r, meaning in floors:
        p99_floor = r.percentile_ms(99)
        print(
            f"  floor: {label}, {args.concurrency} clients: p99 {p99_floor:.2f} ms"
            + (f", above the target: {meaning}" if p99_floor > TARGET_P99_MS else "")
        )
    print(
        f"  answers: {shape['mean stores per answer']:.1f} stores on average, "
        f"{shape['answers with no store']:.1f}% with none"
    )
    print(f"  gateway  {cpu.line(result.ok_total)}")
    print(f"  gateway  PostgreSQL {shape['activity']}")
    if baseline is not None:
        print(f"  baseline {baseline[1].line(baseline[0].ok_total)}")
    if result.error_kinds:
        print(f"  gateway errors: {dict(result.error_kinds.most_common(5))}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.availability",
        description="Availability query p50/p99 through one gateway process, on a big chain.",
    )
    p.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    p.add_argument("--stores", type=int, default=2000)
    p.add_argument("--skus", type=int, default=20000)
    p.add_argument(
        "--stock-density",
        type=float,
        default=1.0,
        help="fraction of (store, SKU) pairs that have a stock row (1.0 = every store carries "
        "every SKU: stores x SKUs rows)",
    )
    p.add_argument(
        "--keep-db",
        metavar="NAME",
        help="keep the database under this name and reuse it when its data parameters match",
    )
    p.add_argument("--load-jobs", type=int, default=2, help="parallel connections loading stock")
    p.add_argument(
        "--no-vacuum", dest="vacuum", action="store_false", help="ANALYZE only after the load"
    )
    p.add_argument(
        "--rates",
        type=lambda v: [float(r) for r in v.split(",") if r],
        default=[100.0, 200.0],
        help="open-loop runs at these requests/s, comma-separated (empty: none)",
    )
    p.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the gateway's floor run ({ __typename } at the same concurrency)",
    )
    p.add_argument(
        "--no-prewarm",
        dest="prewarm",
        action="store_false",
        help="do not read the stock table into the OS page cache first (pg_prewarm)",
    )
    p.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the asyncpg baseline (the stock read alone)",
    )
    p.add_argument("--distinct-requests", type=int, default=5000, help="pre-built request bodies")
    p.add_argument(
        "--gateway-pool-size",
        type=int,
        default=None,
        help="the gateway's ROPOS_DB_POOL_SIZE, overflow 0 (default: the gateway's own settings)",
    )
    p.add_argument(
        "--gateway-command",
        metavar="CMD",
        help="start the gateway with this command instead of `ropos serve` ({port} is replaced; "
        "the ROPOS_* environment is the same), e.g. to compare a patched build",
    )
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--py-spy", metavar="DIR", help="record the gateway with py-spy into DIR")
    args = p.parse_args(argv)
    if not 0.0 < args.stock_density <= 1.0:
        p.error("--stock-density must be in (0, 1]")
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        p.error("concurrency >= 1, duration > 0, warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
