"""Reserve throughput and latency through the HTTP GraphQL endpoint of ONE gateway process, beside
a raw-SQL baseline: the same locking transaction written directly with asyncpg.

    .venv/bin/python -m bench.reserve [--duration 15] [--concurrency 32] [--server URL]

Two scenarios, each on freshly reset data:
  hot     every request reserves 1 unit of the same SKU at the same store (lock contention);
  spread  each request reserves 1 unit of a random SKU among thousands at a random store among 50.

Figures only: nothing passes or fails on time. The exit status is 1 only when an invariant is
broken or the database does not hold one reservation per successful response.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import common

HOT_STORE, HOT_SKU = "H001", "HOT-1"
CHANNEL = "bench"

RESERVE = (
    "mutation Reserve($input: ReserveInput!) { reserve(input: $input) { id "
    "reservations { id code storeId status expiresAt lines { sku quantity } } } }"
)
UPDATE_POLICY = (
    "mutation Policy($input: ReservationPolicyInput!) { updateReservationPolicy(input: $input) "
    "{ maxActiveReservationsPerCustomer maxUnitsPerSkuPerCustomer } }"
)
UNLIMITED_POLICY = {
    "defaultHoldSeconds": 7200,
    "allowedHoldSeconds": [7200, 86400],
    "maxActiveReservationsPerCustomer": 1_000_000,
    "maxUnitsPerSkuPerCustomer": 1_000_000,
    "expiryWarningSeconds": 900,
    "maxStoresPerGroup": 3,
}


# --- data ---------------------------------------------------------------------------------------


def spread_store(i: int) -> str:
    return f"S{i:04d}"


def spread_sku(i: int) -> str:
    return f"SKU-{i:06d}"


async def load_data(url: str, args: argparse.Namespace) -> None:
    """The hot row and the spread grid, server-side, with the SYNC ledger rows the WMS sync would
    have written (so the ledger invariant holds)."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    now = datetime.now(UTC)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO stores (id, name, lat, lon, timezone, created_at, updated_at) "
                "VALUES ($1, 'Hot store', 51.5152, -0.1419, 'Europe/London', $2, $2)",
                HOT_STORE,
                now,
            )
            await conn.execute(
                "INSERT INTO stores (id, name, lat, lon, timezone, created_at, updated_at) "
                "SELECT 'S' || lpad(i::text, 4, '0'), 'Bench store ' || i, "
                "50 + random() * 6, -5 + random() * 6.5, 'Europe/London', $2, $2 "
                "FROM generate_series(1, $1::int) AS i",
                args.stores,
                now,
            )
            await conn.execute(
                "INSERT INTO skus (code, name, unit_price, created_at) "
                "VALUES ($1, 'Hot SKU', 10.00, $2)",
                HOT_SKU,
                now,
            )
            await conn.execute(
                "INSERT INTO skus (code, name, unit_price, created_at) "
                "SELECT 'SKU-' || lpad(i::text, 6, '0'), 'Bench SKU ' || i, 10.00, $2 "
                "FROM generate_series(1, $1::int) AS i",
                args.skus,
                now,
            )
            await conn.execute(
                "INSERT INTO stock_levels (store_id, sku, on_hand, reserved, safety_stock, "
                "updated_at) VALUES ($1, $2, $3, 0, 0, $4)",
                HOT_STORE,
                HOT_SKU,
                args.hot_on_hand,
                now,
            )
            await conn.execute(
                "INSERT INTO stock_levels (store_id, sku, on_hand, reserved, safety_stock, "
                "updated_at) SELECT s.id, k.code, $1, 0, 0, $2 FROM stores s CROSS JOIN skus k "
                "WHERE s.id <> $3 AND k.code <> $4",
                args.spread_on_hand,
                now,
                HOT_STORE,
                HOT_SKU,
            )
            await conn.execute(
                "INSERT INTO stock_movements (store_id, sku, on_hand_delta, reserved_delta, "
                "reason, reservation_id, occurred_at) "
                "SELECT store_id, sku, on_hand, 0, 'SYNC', NULL, $1 FROM stock_levels",
                now,
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def reset(url: str) -> None:
    """Back to the loaded state: no reservations, nothing reserved, only the SYNC ledger."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    try:
        async with conn.transaction():
            await conn.execute(
                "TRUNCATE payments, reservation_lines, reservations, idempotency_keys, "
                "customer_holds, customer_sku_holds, outbox, webhook_deliveries RESTART IDENTITY"
            )
            await conn.execute("DELETE FROM stock_movements WHERE reason <> 'SYNC'")
            await conn.execute("UPDATE stock_levels SET reserved = 0 WHERE reserved <> 0")
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def count_reservations(url: str) -> int:
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM reservations"))
    finally:
        await conn.close()


# --- what a request reserves --------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    target_ratio: float

    def pick(self, rng: random.Random, stores: int, skus: int) -> tuple[str, str]:
        if self.name == "hot":
            return HOT_STORE, HOT_SKU
        return spread_store(rng.randint(1, stores)), spread_sku(rng.randint(1, skus))


# --- the gateway side ---------------------------------------------------------------------------


def _error_code(raw: bytes) -> str:
    try:
        errors = json.loads(raw).get("errors") or [{}]
        return str(errors[0].get("extensions", {}).get("code") or errors[0].get("message"))
    except ValueError:
        return "unreadable response"


async def run_gateway(
    gateway: common.GatewayProcess,
    scenario: Scenario,
    args: argparse.Namespace,
    token: str,
    profiler: common.PySpy,
) -> tuple[common.LoadResult, common.CpuUse, str]:
    rng = random.Random(args.seed)
    prefix = common.graphql_request_prefix(gateway.port, token)
    template = (
        '{"query":' + json.dumps(RESERVE) + ',"variables":{"input":{"customerId":"%s",'
        '"storeId":"%s","lines":[{"sku":"%s","quantity":1}]}}}'
    )
    counter = itertools.count()
    run_id = uuid.uuid4().hex[:6]
    clients = [common.HttpClient("127.0.0.1", gateway.port) for _ in range(args.concurrency)]
    for client in clients:
        await client.connect()

    async def operation(worker: int) -> str | None:
        store, sku = scenario.pick(rng, args.stores, args.skus)
        body = (template % (f"g{run_id}-{next(counter)}", store, sku)).encode()
        status, raw = await clients[worker].request(common.graphql_request(prefix, body))
        if status != 200:
            return f"HTTP {status}"
        if b'"errors"' in raw:
            return _error_code(raw)
        return None

    before = common.cpu_snapshot(gateway.pid, common.database_name(gateway.database_url))
    profiler.start(gateway.pid, f"reserve-{scenario.name}-gateway", args.warmup + args.duration)
    async with common.ActivitySampler(gateway.database_url, delay=args.warmup) as activity:
        result = await common.closed_loop(
            operation, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration
        )
    after = common.cpu_snapshot(gateway.pid, common.database_name(gateway.database_url))
    for client in clients:
        client.close()
    profiler.finish()
    return result, common.cpu_between(before, after), activity.summary()


# --- the raw-SQL baseline: the service's transaction, statement for statement --------------------

POLICY_SQL = (
    "SELECT id, default_hold_seconds, allowed_hold_seconds, max_active_reservations_per_customer, "
    "max_units_per_sku_per_customer, expiry_warning_seconds, max_stores_per_group, updated_at "
    "FROM reservation_policy WHERE id = $1::INTEGER"
)
HOLDS_SQL = (
    "INSERT INTO customer_holds (customer_id, active_reservations) VALUES ($1::VARCHAR, "
    "$2::INTEGER) ON CONFLICT (customer_id) DO UPDATE SET active_reservations = "
    "(customer_holds.active_reservations + excluded.active_reservations) WHERE "
    "customer_holds.active_reservations + excluded.active_reservations <= $3::INTEGER "
    "RETURNING customer_holds.customer_id"
)
SKU_HOLDS_SQL = (
    "INSERT INTO customer_sku_holds (customer_id, sku, units) VALUES ($1::VARCHAR, $2::VARCHAR, "
    "$3::INTEGER) ON CONFLICT (customer_id, sku) DO UPDATE SET units = (customer_sku_holds.units "
    "+ excluded.units) WHERE customer_sku_holds.units + excluded.units <= $4::INTEGER "
    "RETURNING customer_sku_holds.sku"
)
LOCK_SQL = (
    "UPDATE stock_levels SET reserved=(stock_levels.reserved + $1::INTEGER), "
    "updated_at=$2::TIMESTAMP WITH TIME ZONE WHERE stock_levels.store_id = $3::VARCHAR AND "
    "stock_levels.sku = $4::VARCHAR AND (stock_levels.on_hand - stock_levels.reserved) - "
    "stock_levels.safety_stock >= $1::INTEGER RETURNING stock_levels.on_hand, "
    "stock_levels.reserved, stock_levels.safety_stock"
)
RESERVATION_SQL = (
    "INSERT INTO reservations (id, group_id, code, customer_id, store_id, channel, status, "
    "hold_seconds, created_at, expires_at, version, updated_at) VALUES ($1::VARCHAR, "
    "$2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, $6::VARCHAR, $7::VARCHAR, $8::INTEGER, "
    "$9::TIMESTAMP WITH TIME ZONE, $10::TIMESTAMP WITH TIME ZONE, $11::INTEGER, "
    "$12::TIMESTAMP WITH TIME ZONE)"
)
LINE_SQL = (
    "INSERT INTO reservation_lines (reservation_id, sku, quantity) VALUES ($1::VARCHAR, "
    "$2::VARCHAR, $3::INTEGER)"
)
LEDGER_SQL = (
    "INSERT INTO stock_movements (store_id, sku, on_hand_delta, reserved_delta, reason, "
    "reservation_id, occurred_at) VALUES ($1::VARCHAR, $2::VARCHAR, $3::INTEGER, $4::INTEGER, "
    "$5::VARCHAR, $6::VARCHAR, $7::TIMESTAMP WITH TIME ZONE) RETURNING stock_movements.id"
)
OUTBOX_SQL = (
    "INSERT INTO outbox (event_id, type, reservation_id, store_id, customer_id, sequence, "
    "payload, occurred_at) VALUES ($1::VARCHAR, $2::VARCHAR, $3::VARCHAR, $4::VARCHAR, "
    "$5::VARCHAR, $6::INTEGER, $7::JSON, $8::TIMESTAMP WITH TIME ZONE)"
)
PICKUP_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


_policy_cache: dict[str, Any] = {}


async def read_policy(conn: asyncpg.Connection) -> asyncpg.Record:
    """The policy, re-read every 2 s as the service's PolicyCache does."""
    cached = _policy_cache.get("policy")
    if cached is None or time.monotonic() - float(_policy_cache["at"]) >= 2.0:
        cached = await conn.fetchrow(POLICY_SQL, 1)
        _policy_cache.update(policy=cached, at=time.monotonic())
    return cached


async def reserve_once(conn: asyncpg.Connection, customer: str, store: str, sku: str) -> None:
    """services.reservations._reserve_once for one line at a given store (no idempotency key),
    as SQL, in the same order: the counters, the rows, the outbox, the stock lock last, commit."""
    quantity = 1
    async with conn.transaction():
        now = datetime.now(UTC)
        policy = await read_policy(conn)
        allowed = json.loads(policy["allowed_hold_seconds"])
        hold_seconds = policy["default_hold_seconds"]
        assert hold_seconds in allowed
        if quantity > policy["max_units_per_sku_per_customer"]:
            raise Refused("LIMIT_EXCEEDED")
        group_id = str(uuid.uuid4())
        if (
            await conn.fetchrow(
                HOLDS_SQL, customer, 1, policy["max_active_reservations_per_customer"]
            )
            is None
        ):
            raise Refused("LIMIT_EXCEEDED")
        counted = await conn.fetch(
            SKU_HOLDS_SQL, customer, sku, quantity, policy["max_units_per_sku_per_customer"]
        )
        if not counted:
            raise Refused("LIMIT_EXCEEDED")
        reservation_id = str(uuid.uuid4())
        code = "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(6))
        expires_at = now + timedelta(seconds=hold_seconds)
        await conn.execute(
            RESERVATION_SQL,
            reservation_id,
            group_id,
            code,
            customer,
            store,
            CHANNEL,
            "HELD",
            hold_seconds,
            now,
            expires_at,
            1,
            now,
        )
        await conn.execute(LINE_SQL, reservation_id, sku, quantity)
        await conn.fetchval(LEDGER_SQL, store, sku, 0, quantity, "RESERVE", reservation_id, now)
        created = str(uuid.uuid4())
        snapshot = {
            "id": reservation_id,
            "code": code,
            "groupId": group_id,
            "customerId": customer,
            "storeId": store,
            "channel": CHANNEL,
            "status": "HELD",
            "lines": [{"sku": sku, "quantity": quantity}],
            "holdSeconds": hold_seconds,
            "createdAt": now.isoformat(),
            "expiresAt": expires_at.isoformat(),
            "readyAt": None,
            "collectedAt": None,
            "cancelledAt": None,
            "expiredAt": None,
            "cancelReason": None,
            "version": 1,
        }
        created_event = {
            "id": created,
            "type": "CREATED",
            "occurredAt": now.isoformat(),
            "sequence": 1,
            "reservation": snapshot,
        }
        await conn.execute(
            OUTBOX_SQL,
            created,
            "CREATED",
            reservation_id,
            store,
            customer,
            1,
            json.dumps(created_event),
            now,
        )
        if await conn.fetchrow(LOCK_SQL, quantity, now, store, sku) is None:
            raise Refused("OUT_OF_STOCK")


async def run_baseline(
    url: str, scenario: Scenario, args: argparse.Namespace
) -> tuple[common.LoadResult, common.CpuUse, str]:
    rng = random.Random(args.seed)
    counter = itertools.count()
    run_id = uuid.uuid4().hex[:6]
    pool = await asyncpg.create_pool(
        **common.connect_kwargs(url), min_size=args.concurrency, max_size=args.concurrency
    )

    async def operation(worker: int) -> str | None:
        store, sku = scenario.pick(rng, args.stores, args.skus)
        customer = f"b{run_id}-{next(counter)}"
        async with pool.acquire() as conn:
            for _attempt in range(4):  # as the service: a pickup code taken meanwhile is retried
                try:
                    await reserve_once(conn, customer, store, sku)
                    return None
                except Refused as refused:
                    return refused.code
                except asyncpg.UniqueViolationError as error:
                    if error.constraint_name != "uq_reservations_active_code":
                        return f"unique violation {error.constraint_name}"
        return "pickup code retries exhausted"

    try:
        before = common.cpu_snapshot(None, common.database_name(url))
        async with common.ActivitySampler(url, delay=args.warmup) as activity:
            result = await common.closed_loop(
                operation, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration
            )
        after = common.cpu_snapshot(None, common.database_name(url))
    finally:
        await pool.close()
    return result, common.cpu_between(before, after), activity.summary()


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Measured:
    result: common.LoadResult
    cpu: common.CpuUse
    reservations: int
    violations: dict[str, list[tuple[object, ...]]]
    activity: str

    @property
    def consistent(self) -> bool:
        return not self.violations and self.reservations == self.result.ok_total


def figures_line(label: str, m: Measured) -> str:
    r = m.result
    return (
        f"  {label:<20} {r.throughput:>9,.0f} {r.percentile_ms(50):>8.2f} "
        f"{r.percentile_ms(99):>8.2f} {r.mean_ms:>8.2f} {r.ok_in_window:>9,} "
        f"{r.errors_in_window:>7,}"
    )


def check_line(m: Measured) -> str:
    invariants = (
        "invariants hold (no oversell, reserved = active lines, ledger, counters)"
        if not m.violations
        else f"INVARIANTS BROKEN: {m.violations}"
    )
    same = "=" if m.reservations == m.result.ok_total else "!="
    return (
        f"{invariants}; reservations in the database {m.reservations:,} {same} "
        f"successful responses {m.result.ok_total:,} (errors {m.result.errors_total:,})"
    )


async def measure_gateway(
    url: str,
    gateway: common.GatewayProcess,
    scenario: Scenario,
    args: argparse.Namespace,
    token: str,
    profiler: common.PySpy,
) -> Measured:
    await reset(url)
    result, cpu, activity = await run_gateway(gateway, scenario, args, token, profiler)
    return Measured(
        result, cpu, await count_reservations(url), await common.invariant_violations(url), activity
    )


async def measure_baseline(url: str, scenario: Scenario, args: argparse.Namespace) -> Measured:
    await reset(url)
    result, cpu, activity = await run_baseline(url, scenario, args)
    return Measured(
        result, cpu, await count_reservations(url), await common.invariant_violations(url), activity
    )


def _ratio(via_gateway: Measured, baseline: Measured) -> float:
    if not baseline.result.throughput:
        return float("nan")
    return via_gateway.result.throughput / baseline.result.throughput


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    known = {
        "hot": Scenario(
            "hot",
            f"every request: 1 unit of {HOT_SKU} at {HOT_STORE} (on hand {args.hot_on_hand:,})",
            0.50,
        ),
        "spread": Scenario(
            "spread",
            f"1 unit of a random SKU of {args.skus:,} at a random store of {args.stores} "
            f"(on hand {args.spread_on_hand:,} each, storeId given)",
            0.30,
        ),
    }
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        sys.exit(f"unknown scenario(s): {', '.join(unknown)}; choose from hot, spread")
    return [known[name] for name in chosen]


async def main_async(args: argparse.Namespace) -> int:
    facts = await common.machine_facts(args.server)
    chosen = scenarios(args)
    url, name = await common.create_database(args.server, "ropos_bench_reserve")
    print(f"database {name} (fresh; dropped at the end)", flush=True)
    gateway: common.GatewayProcess | None = None
    results: dict[str, list[tuple[Measured, Measured]]] = {}
    profiler = common.PySpy(args.py_spy)
    try:
        with common.timed("migrate and load"):
            await common.migrate(url)
            await load_data(url, args)
        gateway = common.GatewayProcess(
            url, pool_size=args.gateway_pool_size, command=args.gateway_command
        )
        with common.timed(f"start gateway on port {gateway.port}"):
            await gateway.start()
        print(f"gateway pid {gateway.pid}, pool {common.pool_description(args.gateway_pool_size)}")
        ops = common.issue_token("ops", subject="bench-ops")
        policy = await common.graphql(gateway.port, UPDATE_POLICY, {"input": UNLIMITED_POLICY}, ops)
        print(f"policy limits raised: {policy['data']['updateReservationPolicy']}")
        token = common.issue_token("channel", subject="bench-channel", channel=CHANNEL)

        for scenario in chosen:
            print(f"\n[{scenario.name}] {scenario.description}", flush=True)
            rounds: list[tuple[Measured, Measured]] = []
            for number in range(1, args.rounds + 1):
                print(
                    f"  round {number}/{args.rounds}, gateway: {args.concurrency} workers, "
                    f"{args.warmup:g} s warm-up + {args.duration:g} s ...",
                    flush=True,
                )
                # Profile the first round only: every round would overwrite the same file.
                spy = profiler if number == 1 else common.PySpy(None)
                via_gateway = await measure_gateway(url, gateway, scenario, args, token, spy)
                print(f"  {via_gateway.result.throughput:,.0f} req/s; {check_line(via_gateway)}")
                print(f"  {via_gateway.cpu.line(via_gateway.result.ok_total)}", flush=True)
                print("  baseline (asyncpg, same transaction) ...", flush=True)
                baseline = await measure_baseline(url, scenario, args)
                print(f"  {baseline.result.throughput:,.0f} req/s; {check_line(baseline)}")
                print(f"  {baseline.cpu.line(baseline.result.ok_total)}", flush=True)
                for label, m in (("gateway", via_gateway), ("baseline", baseline)):
                    if m.result.error_kinds:
                        print(f"  {label} errors: {dict(m.result.error_kinds.most_common(5))}")
                rounds.append((via_gateway, baseline))
            results[scenario.name] = rounds
    finally:
        if gateway is not None:
            code = gateway.stop()
            print(f"\ngateway stopped (exit status {code})")
        await common.drop_database(args.server, name)
        print(f"database {name} dropped")

    print()
    common.print_block("=== reserve benchmark: machine ===", facts)
    common.print_block(
        "=== parameters ===",
        {
            "server": args.server,
            "concurrency": f"{args.concurrency} workers (keep-alive HTTP/1.1 connections; "
            f"baseline: asyncpg pool of {args.concurrency})",
            "duration": f"{args.duration:g} s measured after {args.warmup:g} s warm-up",
            "gateway": f"1 process (uvicorn), DB pool {common.pool_description(args.gateway_pool_size)}, "
            "ROPOS_LOG_LEVEL=WARNING, channel token, distinct customerId per request",
            "data": f"hot row on hand {args.hot_on_hand:,}; spread {args.stores} stores x "
            f"{args.skus:,} SKUs, on hand {args.spread_on_hand:,}",
        },
    )
    print("=== figures ===")
    ok = True
    for scenario in chosen:
        rounds = results[scenario.name]
        ratios = [_ratio(g, b) for g, b in rounds]
        # The round whose ratio is the median stands for the run; the others are listed.
        median_at = sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]
        via_gateway, baseline = rounds[median_at]
        ratio = ratios[median_at]
        verdict = "met" if ratio >= scenario.target_ratio else "missed"
        print(f"[{scenario.name}] {scenario.description}")
        print(
            f"  {'':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
            f"{'ok':>9} {'errors':>7}"
        )
        print(figures_line("gateway (HTTP)", via_gateway))
        print(figures_line("baseline (asyncpg)", baseline))
        print(
            f"  gateway/baseline throughput: {ratio * 100:.1f}%  "
            f"(target >= {scenario.target_ratio * 100:.0f}%: {verdict})"
        )
        if len(rounds) > 1:
            listed = ", ".join(f"{r * 100:.1f}%" for r in ratios)
            print(
                f"  rounds (gateway then baseline, alternating): {listed}; the median's round "
                "is shown"
            )
        print(f"  gateway  {via_gateway.cpu.line(via_gateway.result.ok_total)}")
        print(f"  baseline {baseline.cpu.line(baseline.result.ok_total)}")
        print(f"  gateway  PostgreSQL {via_gateway.activity}")
        print(f"  baseline PostgreSQL {baseline.activity}")
        print(f"  gateway:  {check_line(via_gateway)}")
        print(f"  baseline: {check_line(baseline)}")
        ok = ok and all(g.consistent and b.consistent for g, b in rounds)
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.reserve",
        description="Reserve throughput/latency: one gateway process over HTTP vs raw asyncpg.",
    )
    p.add_argument(
        "--server",
        default=common.DEFAULT_SERVER,
        help="PostgreSQL server URL (a fresh database is created there and dropped afterwards)",
    )
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="gateway and baseline runs per scenario, alternating; the median ratio counts "
        "(a shared machine's speed drifts by more than the difference being measured)",
    )
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per run")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent workers")
    p.add_argument("--scenarios", default="hot,spread", help="comma-separated: hot, spread")
    p.add_argument("--stores", type=int, default=50, help="stores of the spread scenario")
    p.add_argument("--skus", type=int, default=2000, help="SKUs of the spread scenario")
    p.add_argument("--hot-on-hand", type=int, default=10_000_000)
    p.add_argument("--spread-on-hand", type=int, default=100_000)
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
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record the gateway with py-spy during each gateway run; collapsed stacks and a "
        "top-functions summary go to DIR (py-spy must be installed)",
    )
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        p.error("concurrency >= 1, duration > 0, warmup >= 0, rounds >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
