"""The order intake, edge and worker, through ONE gateway process: signed Shopify `orders/create`
deliveries POSTed to /intake/shopify/bench, beside a raw asyncpg baseline that only INSERTs the
same bodies.

    .venv/bin/python -m bench.intake [--duration 8] [--concurrency 32] [--rate 100]
        [--sustained-rate 200] [--server URL]

1. edge: 202s per second with the process's workers off (ROPOS_RUN_WORKERS=false), alternating
   rounds with the baseline INSERT of the same rows on an asyncpg pool of the same concurrency;
2. edge to reservation, workers on: (a) a closed loop of posts flooding the edge, and the drain
   after it (the worker alone); (b) the time from `received_at` to `finished_at` of each message
   at an open-loop rate; (c) orders per second into reservations with deliveries arriving at a
   steady --sustained-rate, edge and worker sharing the process: whether the worker keeps up;
3. afterwards: adapters.db.invariants and the counts (messages = 202s, reservations = ACCEPTED).

Figures only: nothing passes or fails on time. The exit status is 1 only when the delivery
checked before measuring does not end ACCEPTED with a reservation, an invariant is broken, a
count differs, or a message of the measured runs ends other than ACCEPTED.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import random
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from bench import common
from domain.intake_auth import sign_shopify

CHANNEL, ACCOUNT = "shopify", "bench"
INTAKE_PATH = f"/intake/{CHANNEL}/{ACCOUNT}"
SAMPLE = (
    common.REPO / "tests/fixtures/payloads/shopify/webhook_orders_create_docs_sample_2023-07.json"
)
TOPIC = "orders/create"
API_VERSION = "2023-07"
SHOP_DOMAIN = "ropos-bench.myshopify.com"
USER_AGENT = "Shopify-Captain-Hook"
MAX_LINES = 3
LOCATION_BASE = 68_000_000_000  # Shopify location ids: location i is LOCATION_BASE + i
ORDER_ID_BASE = 5_900_000_000_000  # below 2**53, as real order ids are
CUSTOMER_ID_BASE = 7_300_000_000_000
WAITING = ["RECEIVED", "RETRYING"]
EDGE_ONLY = "ROPOS_RUN_WORKERS=false"


# --- data ---------------------------------------------------------------------------------------


def store_id(i: int) -> str:
    return f"S{i:03d}"


def sku_code(i: int) -> str:
    return f"BENCH-{i:05d}"


async def load_data(url: str, args: argparse.Namespace, secret: str) -> None:
    """Stores, SKUs and their stock (with the SYNC ledger rows, so the ledger invariant holds),
    the policy limits raised, and the channel account with one Shopify location per store."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    now = datetime.now(UTC)
    locations = {str(LOCATION_BASE + i): store_id(i) for i in range(1, args.stores + 1)}
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO stores (id, name, lat, lon, timezone, created_at, updated_at) "
                "SELECT 'S' || lpad(i::text, 3, '0'), 'Bench store ' || i, "
                "51 + random() * 2, -2 + random() * 2, 'Europe/London', $2, $2 "
                "FROM generate_series(1, $1::int) AS i",
                args.stores,
                now,
            )
            await conn.execute(
                "INSERT INTO skus (code, name, unit_price, created_at) "
                "SELECT 'BENCH-' || lpad(i::text, 5, '0'), 'Bench SKU ' || i, 199.00, $2 "
                "FROM generate_series(1, $1::int) AS i",
                args.skus,
                now,
            )
            await conn.execute(
                "INSERT INTO stock_levels (store_id, sku, on_hand, reserved, safety_stock, "
                "updated_at) SELECT s.id, k.code, $1, 0, 0, $2 FROM stores s CROSS JOIN skus k",
                args.on_hand,
                now,
            )
            await conn.execute(
                "INSERT INTO stock_movements (store_id, sku, on_hand_delta, reserved_delta, "
                "reason, reservation_id, occurred_at) "
                "SELECT store_id, sku, on_hand, 0, 'SYNC', NULL, $1 FROM stock_levels",
                now,
            )
            await conn.execute(
                "UPDATE reservation_policy SET max_active_reservations_per_customer = 1000000, "
                "max_units_per_sku_per_customer = 1000000, updated_at = $1 WHERE id = 1",
                now,
            )
            await conn.execute(
                "INSERT INTO channel_accounts (channel, account, secret, default_store_id, "
                "locations, products, rules, assume_pickup, max_backlog, weight, enabled, "
                "created_at, updated_at) VALUES ($1, $2, $3, $4, $5::json, '{}', '{}', true, "
                "1000000, 1, true, $6, $6)",
                CHANNEL,
                ACCOUNT,
                secret,
                store_id(1),
                json.dumps(locations),
                now,
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def reset(url: str) -> None:
    """Back to the loaded state: no messages, no reservations, nothing reserved."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    try:
        async with conn.transaction():
            await conn.execute(
                "TRUNCATE intake_messages, channel_orders, payments, reservation_lines, "
                "reservations, idempotency_keys, customer_holds, customer_sku_holds, outbox, "
                "webhook_deliveries RESTART IDENTITY"
            )
            await conn.execute("DELETE FROM stock_movements WHERE reason <> 'SYNC'")
            await conn.execute("UPDATE stock_levels SET reserved = 0 WHERE reserved <> 0")
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


# --- the deliveries -----------------------------------------------------------------------------

_NUMBER = re.compile(r'"@@N:(\w+)@@"')  # a JSON number: the quotes go too
_TEXT = re.compile(r"@@(\w+)@@")  # inside a JSON string


def _money(amount: str, currency: str) -> dict[str, Any]:
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def _line_items(sample: dict[str, Any], lines: int) -> list[dict[str, Any]]:
    published = sample["line_items"]
    items = []
    for i in range(lines):
        item = copy.deepcopy(published[i % len(published)])
        item.update(sku=f"@@sku{i}@@", quantity=1, fulfillable_quantity=1)
        if i >= len(published):  # a line of its own: its own ids
            gid = item["admin_graphql_api_id"]
            item["admin_graphql_api_id"] = f"{gid[:-2]}{int(gid[-2:]) + i:02d}"
        items.append(item)
    return items


def order_template(sample: dict[str, Any], lines: int) -> str:
    """The published `orders/create` sample as a pickup order of `lines` lines, with %(name)s
    where each delivery differs. Serialized as published (indent 2): about 10 KB."""
    order = copy.deepcopy(sample)
    currency = order["currency"]
    price = Decimal(order["line_items"][0]["price"])
    amount = f"{price * lines:.2f}"
    zero = "0.00"
    order.update(
        id="@@N:order_id@@",
        admin_graphql_api_id="gid://shopify/Order/@@order_id@@",
        name="#@@order_number@@",
        number="@@N:number@@",
        order_number="@@N:order_number@@",
        email="@@email@@",
        contact_email="@@email@@",
        created_at="@@placed_at@@",
        updated_at="@@placed_at@@",
        processed_at="@@placed_at@@",
        cancelled_at=None,
        cancel_reason=None,
        confirmed=True,
        test=False,
        financial_status="paid",
        fulfillment_status=None,
        location_id="@@N:location_id@@",
        line_items=_line_items(sample, lines),
        # Shopify's local pickup rate: the delivery says pickup in the shipping line's code.
        shipping_lines=[
            {
                **sample["shipping_lines"][0],
                "code": "Pickup",
                "title": "Local Pickup",
                "discounted_price": zero,
                "discounted_price_set": _money(zero, currency),
                "price": zero,
                "price_set": _money(zero, currency),
            }
        ],
    )
    for key in ("current_subtotal_price", "current_total_price", "subtotal_price"):
        order[key] = amount
        order[f"{key}_set"] = _money(amount, currency)
    for key in ("total_line_items_price", "total_price"):
        order[key] = amount
        order[f"{key}_set"] = _money(amount, currency)
    order["total_outstanding"] = amount
    for key in ("current_total_discounts", "total_discounts"):
        order[key] = zero
        order[f"{key}_set"] = _money(zero, currency)
    order["total_shipping_price_set"] = _money(zero, currency)
    customer = order["customer"]
    customer.update(
        id="@@N:customer_id@@",
        admin_graphql_api_id="gid://shopify/Customer/@@customer_id@@",
        email="@@email@@",
    )
    customer["default_address"]["customer_id"] = "@@N:customer_id@@"
    text = json.dumps(order, indent=2).replace("%", "%%")
    return _TEXT.sub(r"%(\1)s", _NUMBER.sub(r"%(\1)s", text))


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    event_id: str
    webhook_id: str
    triggered_at: str
    signature: str
    skus: tuple[str, ...]
    store: str

    def request(self, port: int) -> bytes:
        head = (
            f"POST {INTAKE_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nUser-Agent: {USER_AGENT}\r\n"
            f"X-Shopify-Topic: {TOPIC}\r\nX-Shopify-Hmac-Sha256: {self.signature}\r\n"
            f"X-Shopify-Shop-Domain: {SHOP_DOMAIN}\r\nX-Shopify-API-Version: {API_VERSION}\r\n"
            f"X-Shopify-Webhook-Id: {self.webhook_id}\r\nX-Shopify-Event-Id: {self.event_id}\r\n"
            f"X-Shopify-Triggered-At: {self.triggered_at}\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body

    def kept_headers(self) -> dict[str, str]:
        """What the edge keeps of the delivery's headers (services/intake/edge.py KEPT_HEADERS),
        in its order."""
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "x-shopify-topic": TOPIC,
            "x-shopify-event-id": self.event_id,
            "x-shopify-webhook-id": self.webhook_id,
            "x-shopify-api-version": API_VERSION,
            "x-shopify-shop-domain": SHOP_DOMAIN,
            "x-shopify-triggered-at": self.triggered_at,
        }


class Orders:
    """A new order per call: its own order id, number, customer and email, 1-3 distinct SKUs
    (quantity 1) and the location of a random store, signed with the account's secret."""

    def __init__(self, secret: str, stores: int, skus: int, seed: int) -> None:
        sample = json.loads(SAMPLE.read_text())
        self.templates = [order_template(sample, n) for n in range(1, MAX_LINES + 1)]
        self.secret = secret
        self.stores = stores
        self.skus = [sku_code(i) for i in range(1, skus + 1)]
        self.rng = random.Random(seed)
        self.counter = itertools.count(1)

    def next(self) -> Delivery:
        seq = next(self.counter)
        lines = self.rng.randint(1, MAX_LINES)
        skus = tuple(self.rng.sample(self.skus, lines))
        store = self.rng.randint(1, self.stores)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        values: dict[str, object] = {
            "order_id": ORDER_ID_BASE + seq,
            "order_number": 1000 + seq,
            "number": seq,
            "customer_id": CUSTOMER_ID_BASE + seq,
            "email": f"shopper.{seq}@example.com",
            "placed_at": now,
            "location_id": LOCATION_BASE + store,
        }
        values.update({f"sku{i}": sku for i, sku in enumerate(skus)})
        body = (self.templates[lines - 1] % values).encode()
        return Delivery(
            body=body,
            event_id=str(uuid.uuid4()),
            webhook_id=str(uuid.uuid4()),
            triggered_at=now,
            signature=sign_shopify(self.secret, body),
            skus=skus,
            store=store_id(store),
        )


def check_body(delivery: Delivery) -> str:
    """The body reads as the order it was made for (fails loudly if the template is wrong)."""
    order = json.loads(delivery.body)
    skus = tuple(item["sku"] for item in order["line_items"])
    assert skus == delivery.skus, (skus, delivery.skus)
    assert order["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"
    assert order["cancelled_at"] is None
    assert order["location_id"] - LOCATION_BASE == int(delivery.store[1:])
    return f"{len(order['line_items'])} lines"


def body_sizes(secret: str, args: argparse.Namespace) -> str:
    sample = Orders(secret, args.stores, args.skus, args.seed + 1)
    sizes = [len(sample.next().body) for _ in range(300)]
    return (
        f"{min(sizes):,} to {max(sizes):,} bytes, mean {sum(sizes) / len(sizes):,.0f} "
        f"(the published sample is {SAMPLE.stat().st_size:,})"
    )


# --- the gateway ----------------------------------------------------------------------------------


class Gateway(common.GatewayProcess):
    """`ropos serve`, with its background workers (the intake worker among them) on or off."""

    def __init__(
        self, url: str, *, workers: bool, pool_size: int | None, command: str | None
    ) -> None:
        super().__init__(url, pool_size=pool_size, command=command)
        self.workers = workers

    def env(self) -> dict[str, str]:
        env = super().env()
        if not self.workers:
            env["ROPOS_RUN_WORKERS"] = "false"
        return env


def _edge_error(status: int, raw: bytes) -> str:
    try:
        error = json.loads(raw).get("error") or {}
        return f"HTTP {status} {error.get('code')} {error.get('reason') or ''}".strip()
    except ValueError:
        return f"HTTP {status}"


def poster(
    port: int, orders: Orders, concurrency: int
) -> tuple[common.Operation, list[common.HttpClient]]:
    clients = [common.HttpClient("127.0.0.1", port) for _ in range(concurrency)]

    async def operation(worker: int) -> str | None:
        status, raw = await clients[worker].request(orders.next().request(port))
        if status == 202 and b'"RECEIVED"' in raw:
            return None
        return _edge_error(status, raw)

    return operation, clients


async def connect_all(clients: list[common.HttpClient]) -> None:
    for client in clients:
        await client.connect()


def close_all(clients: list[common.HttpClient]) -> None:
    for client in clients:
        client.close()


# --- 1. the edge alone, beside the baseline INSERT ----------------------------------------------------

INSERT_SQL = (
    "INSERT INTO intake_messages (id, channel, account, dedupe_key, topic, event_id, body, "
    "headers, received_at, status, attempts, next_attempt_at, decisions) VALUES ($1, $2, $3, $4, "
    "$5, $6, $7, $8::json, $9, $10, $11, $12, $13::json) "
    "ON CONFLICT (channel, account, dedupe_key) DO NOTHING"
)


@dataclass
class EdgeRun:
    result: common.LoadResult
    cpu: common.CpuUse
    activity: str
    stored: int
    statuses: dict[str, int]

    @property
    def consistent(self) -> bool:
        return self.stored == self.result.ok_total


async def message_statuses(url: str) -> tuple[int, dict[str, int]]:
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM intake_messages GROUP BY 1")
    finally:
        await conn.close()
    statuses = {row["status"]: int(row["n"]) for row in rows}
    return sum(statuses.values()), statuses


async def measure_edge(
    gateway: Gateway, orders: Orders, args: argparse.Namespace, profiler: common.PySpy
) -> EdgeRun:
    await reset(gateway.database_url)
    database = common.database_name(gateway.database_url)
    operation, clients = poster(gateway.port, orders, args.concurrency)
    await connect_all(clients)
    before = common.cpu_snapshot(gateway.pid, database)
    profiler.start(gateway.pid, "intake-edge-gateway", args.warmup + args.duration)
    try:
        async with common.ActivitySampler(gateway.database_url, delay=args.warmup) as activity:
            result = await common.closed_loop(
                operation, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration
            )
        after = common.cpu_snapshot(gateway.pid, database)
    finally:
        close_all(clients)
    profiler.finish()
    stored, statuses = await message_statuses(gateway.database_url)
    return EdgeRun(result, common.cpu_between(before, after), activity.summary(), stored, statuses)


async def measure_baseline(url: str, orders: Orders, args: argparse.Namespace) -> EdgeRun:
    """The rows the edge writes, INSERTed straight on asyncpg: no HTTP, no signature check, no
    account read, one autocommitted statement per body."""
    await reset(url)
    database = common.database_name(url)
    pool = await asyncpg.create_pool(
        **common.connect_kwargs(url), min_size=args.concurrency, max_size=args.concurrency
    )

    async def operation(worker: int) -> str | None:
        delivery = orders.next()
        now = datetime.now(UTC)
        status = await pool.execute(
            INSERT_SQL,
            str(uuid.uuid4()),
            CHANNEL,
            ACCOUNT,
            f"event:{delivery.event_id}",
            TOPIC,
            delivery.event_id,
            delivery.body,
            json.dumps(delivery.kept_headers()),
            now,
            "RECEIVED",
            0,
            now,
            "[]",
        )
        return None if status == "INSERT 0 1" else f"not inserted: {status}"

    try:
        before = common.cpu_snapshot(None, database)
        async with common.ActivitySampler(url, delay=args.warmup) as activity:
            result = await common.closed_loop(
                operation, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration
            )
        after = common.cpu_snapshot(None, database)
    finally:
        await pool.close()
    stored, statuses = await message_statuses(url)
    return EdgeRun(result, common.cpu_between(before, after), activity.summary(), stored, statuses)


def edge_check(run: EdgeRun) -> str:
    same = "=" if run.consistent else "!="
    return (
        f"messages stored {run.stored:,} {same} successful answers {run.result.ok_total:,} "
        f"(errors {run.result.errors_total:,}); by status {run.statuses}"
    )


async def edge_rounds(
    url: str, orders: Orders, args: argparse.Namespace, profiler: common.PySpy
) -> list[tuple[EdgeRun, EdgeRun]]:
    gateway = Gateway(
        url, workers=False, pool_size=args.gateway_pool_size, command=args.gateway_command
    )
    rounds: list[tuple[EdgeRun, EdgeRun]] = []
    try:
        with common.timed(f"start gateway ({EDGE_ONLY}) on port {gateway.port}"):
            await gateway.start()
        print(f"gateway pid {gateway.pid}: no background worker runs in it (edge only)")
        for number in range(1, args.rounds + 1):
            print(
                f"  round {number}/{args.rounds}, edge: {args.concurrency} workers, "
                f"{args.warmup:g} s warm-up + {args.duration:g} s ...",
                flush=True,
            )
            spy = profiler if number == 1 else common.PySpy(None)
            edge = await measure_edge(gateway, orders, args, spy)
            print(f"  {edge.result.throughput:,.0f} accepted/s; {edge_check(edge)}")
            print(f"  {edge.cpu.line(edge.result.ok_total)}", flush=True)
            print("  baseline (asyncpg INSERT of the same rows) ...", flush=True)
            baseline = await measure_baseline(url, orders, args)
            print(f"  {baseline.result.throughput:,.0f} inserts/s; {edge_check(baseline)}")
            print(f"  {baseline.cpu.line(baseline.result.ok_total)}", flush=True)
            for label, run in (("edge", edge), ("baseline", baseline)):
                if run.result.error_kinds:
                    print(f"  {label} errors: {dict(run.result.error_kinds.most_common(5))}")
            rounds.append((edge, baseline))
    finally:
        code = gateway.stop()
        print(f"gateway stopped (exit status {code})", flush=True)
    return rounds


# --- 2. edge to reservation, workers on -----------------------------------------------------------


async def wait_final(conn: asyncpg.Connection, message_id: str, limit: float) -> asyncpg.Record:
    deadline = time.monotonic() + limit
    while True:
        row = await conn.fetchrow(
            "SELECT id, status, attempts, error_code, error, decisions, external_id, "
            "order_value, reservation_group_id, received_at, finished_at, order_json "
            "FROM intake_messages WHERE id = $1",
            message_id,
        )
        if row is not None and (row["status"] not in WAITING or time.monotonic() > deadline):
            return row
        await asyncio.sleep(0.05)


def _row_text(row: asyncpg.Record) -> str:
    return json.dumps(dict(row.items()), default=str, indent=2)


async def _one_request(port: int, raw: bytes) -> tuple[int, dict[str, Any]]:
    client = common.HttpClient("127.0.0.1", port)
    try:
        status, body = await client.request(raw)
    finally:
        client.close()
    answer: dict[str, Any] = json.loads(body) if body else {}
    return status, answer


async def _check_answers(port: int, orders: Orders) -> tuple[Delivery, str | None, list[str]]:
    """One delivery, the same delivery again, and one with a bad signature: the first, its
    message id and what went wrong."""
    problems: list[str] = []
    delivery = orders.next()
    print(f"  delivery: {check_body(delivery)} ({', '.join(delivery.skus)}) at {delivery.store}")
    status, first = await _one_request(port, delivery.request(port))
    print(f"  POST -> {status} {first}")
    if status != 202 or first.get("status") != "RECEIVED":
        return delivery, None, [f"the delivery was answered {status} {first}"]
    status, again = await _one_request(port, delivery.request(port))
    print(f"  same delivery again -> {status} {again}")
    if (
        status != 200
        or again.get("status") != "DUPLICATE"
        or again.get("messageId") != first.get("messageId")
    ):
        problems.append(f"the same delivery again was answered {status} {again}")
    forged = replace(orders.next(), signature=sign_shopify("not-the-account-secret-0", b"x"))
    status, refused = await _one_request(port, forged.request(port))
    print(f"  bad signature -> {status} {refused}")
    if status != 401:
        problems.append(f"a bad signature was answered {status} {refused}")
    return delivery, str(first["messageId"]), problems


async def verify_one(gateway: Gateway, orders: Orders, conn: asyncpg.Connection) -> bool:
    """One delivery end to end before anything is measured: it must end ACCEPTED with a
    reservation group holding its lines at the store its location maps to."""
    delivery, message_id, problems = await _check_answers(gateway.port, orders)
    if message_id is None:
        print(f"  NOT VERIFIED: {problems}\n  gateway log:\n{gateway.log_tail()}")
        return False
    row = await wait_final(conn, message_id, 30.0)
    group = row["reservation_group_id"]
    reservations = await conn.fetch(
        "SELECT r.id, r.store_id, r.status, r.customer_id, r.channel, "
        "array_agg(l.sku || ' x' || l.quantity ORDER BY l.sku) AS lines FROM reservations r "
        "JOIN reservation_lines l ON l.reservation_id = r.id WHERE r.group_id = $1 "
        "GROUP BY r.id",
        group,
    )
    if row["status"] != "ACCEPTED" or not group or not reservations:
        problems.append(f"the message ended {row['status']} with group {group}")
    held = sorted(line.split(" x")[0] for r in reservations for line in r["lines"])
    if held and (
        held != sorted(delivery.skus) or {r["store_id"] for r in reservations} != {delivery.store}
    ):
        problems.append(f"the group holds {held} at another store or other SKUs")
    if problems:
        print(f"  NOT VERIFIED: {problems}\n  the message:\n{_row_text(row)}")
        print(f"  gateway log:\n{gateway.log_tail()}")
        return False
    took = (row["finished_at"] - row["received_at"]).total_seconds()
    rules = [d["rule"] for d in json.loads(row["decisions"])]
    print(
        f"  worker: {row['status']} {took * 1000:.0f} ms after it was received, order "
        f"{row['external_id']}, value {row['order_value']}, group {group}; decisions {rules}"
    )
    for r in reservations:
        print(
            f"  reservation {r['id']} {r['status']} at {r['store_id']} for {r['customer_id']} "
            f"({r['channel']}): {', '.join(r['lines'])}"
        )
    return True


@dataclass
class Flow:
    """A run with the workers on: what was posted, and what became of it."""

    name: str
    posting: common.LoadResult
    window: tuple[datetime, datetime]
    posted_until: datetime
    drain_seconds: float | None
    cpu: common.CpuUse  # posting + drain
    cpu_drain: common.CpuUse  # the drain alone: the worker with the edge idle
    activity: str
    figures: dict[str, Any] = field(default_factory=dict)
    statuses: list[tuple[str, str | None, int, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    polled: int | None = None

    @property
    def finished(self) -> int:
        return sum(n for status, _, n, _ in self.statuses if status not in WAITING)

    @property
    def accepted(self) -> int:
        return sum(groups for status, _, _, groups in self.statuses if status == "ACCEPTED")

    @property
    def all_accepted(self) -> bool:
        return all(status == "ACCEPTED" and n == groups for status, _, n, groups in self.statuses)


async def drain(conn: asyncpg.Connection, limit: float) -> float | None:
    """Seconds until no message waits (RECEIVED or RETRYING), or None after `limit` seconds."""
    start = last_print = time.monotonic()
    while True:
        waiting = int(
            await conn.fetchval(
                "SELECT count(*) FROM intake_messages WHERE status = ANY($1::text[])", WAITING
            )
        )
        now = time.monotonic()
        if waiting == 0:
            return now - start
        if now - start > limit:
            print(f"    {waiting:,} messages still wait after {limit:g} s; stopped waiting")
            return None
        if now - last_print >= 10:
            print(f"    {waiting:,} messages wait ({now - start:.0f} s)", flush=True)
            last_print = now
        await asyncio.sleep(0.2)


async def poll_accepted(url: str, start: float, duration: float) -> int:
    """ACCEPTED messages counted at the window's start and at its end: the difference."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    sql = "SELECT count(*) FROM intake_messages WHERE status = 'ACCEPTED'"
    try:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        first = int(await conn.fetchval(sql))
        await asyncio.sleep(max(0.0, start + duration - time.monotonic()))
        return int(await conn.fetchval(sql)) - first
    finally:
        await conn.close()


FLOW_SQL = """
SELECT count(*) FILTER (WHERE status = 'ACCEPTED' AND finished_at >= $1 AND finished_at < $2)
         AS accepted_in_window,
       count(*) FILTER (WHERE received_at >= $1 AND received_at < $2) AS received_in_window,
       count(*) FILTER (WHERE received_at < $2)
         - count(*) FILTER (WHERE finished_at < $2) AS waiting_at_window_end,
       count(*) FILTER (WHERE finished_at >= $3) AS finished_after_posting,
       max(finished_at) AS last_finished
FROM intake_messages WHERE received_at >= $4
"""
STATUS_SQL = (
    "SELECT status, error_code, count(*) AS n, count(reservation_group_id) AS groups "
    "FROM intake_messages WHERE received_at >= $1 GROUP BY 1, 2 ORDER BY 3 DESC"
)
LATENCY_SQL = (
    "SELECT extract(epoch FROM finished_at - received_at)::float8 AS seconds "
    "FROM intake_messages WHERE received_at >= $1 AND received_at < $2 AND finished_at IS NOT NULL"
)


async def _post(
    operation: common.Operation, args: argparse.Namespace, rate: float | None
) -> common.LoadResult:
    if rate:
        return await common.open_loop(
            operation,
            rate=rate,
            connections=args.concurrency,
            warmup=args.warmup,
            duration=args.duration,
        )
    return await common.closed_loop(
        operation, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration
    )


async def run_flow(
    gateway: Gateway,
    conn: asyncpg.Connection,
    orders: Orders,
    args: argparse.Namespace,
    profilers: tuple[common.PySpy, common.PySpy],
    *,
    rate: float | None,
) -> Flow:
    """Posts (closed loop, or open loop at `rate`), then waits until every message is final.
    CPU covers the posting and the drain (all the work the orders cost), and the drain alone
    (the worker with the edge idle). `profilers`: one for the posting, one for the drain."""
    name = f"intake-e2e-open-{rate:g}" if rate else "intake-e2e-closed"
    database = common.database_name(gateway.database_url)
    operation, clients = poster(gateway.port, orders, args.concurrency)
    await connect_all(clients)
    before = common.cpu_snapshot(gateway.pid, database)
    profilers[0].start(gateway.pid, f"{name}-gateway", args.warmup + args.duration)
    run_start = datetime.now(UTC)
    window_start = run_start + timedelta(seconds=args.warmup)
    window = (window_start, window_start + timedelta(seconds=args.duration))
    polling = asyncio.create_task(
        poll_accepted(gateway.database_url, time.monotonic() + args.warmup, args.duration)
    )
    try:
        async with common.ActivitySampler(gateway.database_url, delay=args.warmup) as activity:
            result = await _post(operation, args, rate)
            posted_until = datetime.now(UTC)
            middle = common.cpu_snapshot(gateway.pid, database)
            profilers[1].start(gateway.pid, f"{name}-drain-gateway", 10.0)
            polled = await polling
            print(f"    posted {result.ok_total:,} (errors {result.errors_total:,}); draining ...")
            drained = await drain(conn, args.drain_timeout)
            after = common.cpu_snapshot(gateway.pid, database)
    finally:
        close_all(clients)
    for profiler in profilers:
        profiler.finish()
    flow = Flow(
        name,
        result,
        window,
        posted_until,
        drained,
        common.cpu_between(before, after),
        common.cpu_between(middle, after),
        activity.summary(),
        polled=polled,
    )
    figures = await conn.fetchrow(FLOW_SQL, *window, posted_until, run_start)
    flow.figures = dict(figures.items())
    flow.statuses = [
        (r["status"], r["error_code"], int(r["n"]), int(r["groups"]))
        for r in await conn.fetch(STATUS_SQL, run_start)
    ]
    flow.latencies = [float(r["seconds"]) for r in await conn.fetch(LATENCY_SQL, *window)]
    return flow


@dataclass
class Totals:
    messages: int
    accepted: int
    accepted_with_reservation: int
    reservations: int
    groups: int
    channel_orders: int
    violations: dict[str, list[tuple[object, ...]]]
    expected_messages: int

    @property
    def consistent(self) -> bool:
        return (
            not self.violations
            and self.messages == self.expected_messages
            and self.accepted == self.messages
            and self.accepted_with_reservation == self.accepted
            and self.groups == self.accepted
        )


async def totals(conn: asyncpg.Connection, url: str, expected_messages: int) -> Totals:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM intake_messages) AS messages, "
        "(SELECT count(*) FROM intake_messages WHERE status = 'ACCEPTED') AS accepted, "
        "(SELECT count(*) FROM intake_messages m WHERE status = 'ACCEPTED' AND EXISTS "
        " (SELECT 1 FROM reservations r WHERE r.group_id = m.reservation_group_id)) AS held, "
        "(SELECT count(*) FROM reservations) AS reservations, "
        "(SELECT count(DISTINCT group_id) FROM reservations) AS groups, "
        "(SELECT count(*) FROM channel_orders WHERE state = 'RESERVED') AS channel_orders"
    )
    return Totals(
        messages=int(row["messages"]),
        accepted=int(row["accepted"]),
        accepted_with_reservation=int(row["held"]),
        reservations=int(row["reservations"]),
        groups=int(row["groups"]),
        channel_orders=int(row["channel_orders"]),
        violations=await common.invariant_violations(url),
        expected_messages=expected_messages,
    )


@dataclass
class Reservation:
    verified: bool
    closed: Flow | None = None
    open: Flow | None = None
    sustained: Flow | None = None
    totals: Totals | None = None


async def edge_to_reservation(
    url: str, orders: Orders, args: argparse.Namespace, profiler: common.PySpy
) -> Reservation:
    gateway = Gateway(
        url, workers=True, pool_size=args.gateway_pool_size, command=args.gateway_command
    )
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    try:
        with common.timed(f"start gateway (workers on) on port {gateway.port}"):
            await gateway.start()
        print(f"gateway pid {gateway.pid}, pool {common.pool_description(args.gateway_pool_size)}")
        await reset(url)
        print("one delivery end to end, before measuring:", flush=True)
        if not await verify_one(gateway, orders, conn):
            return Reservation(False)
        outcome = Reservation(True)
        print(
            f"  closed loop: {args.concurrency} workers posting, {args.warmup:g} s warm-up + "
            f"{args.duration:g} s ...",
            flush=True,
        )
        spies = (profiler, common.PySpy(args.py_spy))
        outcome.closed = await run_flow(gateway, conn, orders, args, spies, rate=None)
        print(
            f"  open loop at {args.rate:g}/s, {args.warmup:g} s warm-up + {args.duration:g} s ...",
            flush=True,
        )
        none = (common.PySpy(None), common.PySpy(None))
        outcome.open = await run_flow(gateway, conn, orders, args, none, rate=args.rate)
        print(
            f"  open loop at {args.sustained_rate:g}/s, {args.warmup:g} s warm-up + "
            f"{args.duration:g} s ...",
            flush=True,
        )
        outcome.sustained = await run_flow(
            gateway, conn, orders, args, none, rate=args.sustained_rate
        )
        expected = (
            1
            + outcome.closed.posting.ok_total
            + outcome.open.posting.ok_total
            + outcome.sustained.posting.ok_total
        )
        outcome.totals = await totals(conn, url, expected)
        return outcome
    finally:
        await conn.close()
        code = gateway.stop()
        print(f"gateway stopped (exit status {code})", flush=True)


# --- printing -------------------------------------------------------------------------------------


def figures_line(label: str, r: common.LoadResult, unit: str) -> str:
    return (
        f"  {label:<22} {r.throughput:>9,.0f} {unit:<11} {r.percentile_ms(50):>8.2f} "
        f"{r.percentile_ms(99):>8.2f} {r.mean_ms:>8.2f} {r.ok_in_window:>9,} "
        f"{r.errors_in_window:>7,}"
    )


def _ratio(edge: EdgeRun, baseline: EdgeRun) -> float:
    if not baseline.result.throughput:
        return float("nan")
    return edge.result.throughput / baseline.result.throughput


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_edge(rounds: list[tuple[EdgeRun, EdgeRun]]) -> bool:
    ratios = [_ratio(e, b) for e, b in rounds]
    median_at = sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]
    edge, baseline = rounds[median_at]
    ratio = ratios[median_at]
    print(f"[1. edge alone] gateway with {EDGE_ONLY}: the deliveries are stored, nobody takes them")
    print(
        f"  {'':<22} {'per second':>21} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'ok':>9} {'errors':>7}"
    )
    print(figures_line("edge (HTTP, signed)", edge.result, "accepted"))
    print(figures_line("baseline (asyncpg)", baseline.result, "inserts"))
    print(
        f"  edge/baseline: {ratio * 100:.1f}% (target >= 40%: {_met(ratio >= 0.4)}); edge "
        f"{edge.result.throughput:,.0f} accepted/s (target >= 1,000: "
        f"{_met(edge.result.throughput >= 1000)})"
    )
    if len(rounds) > 1:
        listed = ", ".join(f"{r * 100:.1f}%" for r in ratios)
        speeds = ", ".join(f"{e.result.throughput:,.0f}" for e, _ in rounds)
        print(f"  rounds (edge then baseline, alternating): {listed}; the median's round is shown")
        print(f"  edge accepted/s by round: {speeds}")
    print(f"  edge     {edge.cpu.line(edge.result.ok_total)}")
    print(f"  baseline {baseline.cpu.line(baseline.result.ok_total)}")
    print(f"  edge     PostgreSQL {edge.activity}")
    print(f"  baseline PostgreSQL {baseline.activity}")
    print(f"  edge:     {edge_check(edge)}")
    print(f"  baseline: {edge_check(baseline)}")
    return all(e.consistent and b.consistent for e, b in rounds)


def _statuses_text(flow: Flow) -> str:
    parts = [
        f"{status}{'/' + code if code else ''} {n:,} ({groups:,} with a reservation group)"
        for status, code, n, groups in flow.statuses
    ]
    return ", ".join(parts) or "none"


def _drain_text(flow: Flow) -> str:
    if flow.drain_seconds is None:
        return "did NOT drain within --drain-timeout"
    after = int(flow.figures["finished_after_posting"])
    last = flow.figures["last_finished"]
    span = (last - flow.posted_until).total_seconds() if last else 0.0
    rate = f", {after / span:,.0f} orders/s with the edge idle" if span > 0.05 else ""
    return f"drained {flow.drain_seconds:.1f} s after posting stopped ({after:,} finished{rate})"


def print_closed(flow: Flow, args: argparse.Namespace) -> None:
    r = flow.posting
    accepted = int(flow.figures["accepted_in_window"])
    per_second = accepted / args.duration
    print(f"[2a. edge to reservation, closed loop] workers on, {args.concurrency} workers posting")
    print(
        f"  posted: {r.throughput:,.0f} 202/s in the window (HTTP p50 {r.percentile_ms(50):.2f} "
        f"ms, p99 {r.percentile_ms(99):.2f} ms; ok {r.ok_total:,}, errors {r.errors_total:,})"
    )
    print(
        f"  ACCEPTED: {per_second:,.0f} orders/s over the {args.duration:g} s window "
        f"({accepted:,} with finished_at in it; polled count of ACCEPTED rose by "
        f"{flow.polled:,}) (target >= 200: {_met(per_second >= 200)})"
    )
    print(
        f"  waiting at the window's end: {int(flow.figures['waiting_at_window_end']):,} "
        f"messages; {_drain_text(flow)}"
    )
    print(f"  posting + drain, per finished order: {flow.cpu.line(flow.finished)}")
    drained = int(flow.figures["finished_after_posting"])
    print(f"  the drain alone (worker, edge idle), per order: {flow.cpu_drain.line(drained)}")
    print(f"  PostgreSQL {flow.activity}")
    print(f"  messages of this run: {_statuses_text(flow)}")
    if r.error_kinds:
        print(f"  errors: {dict(r.error_kinds.most_common(5))}")


def _print_open_tail(flow: Flow) -> None:
    """What an open-loop run ends with: its drain, its CPU, PostgreSQL, its messages, errors."""
    print(f"  {_drain_text(flow)}")
    print(f"  posting + drain, per finished order: {flow.cpu.line(flow.finished)}")
    print(f"  PostgreSQL {flow.activity}")
    print(f"  messages of this run: {_statuses_text(flow)}")
    if flow.posting.error_kinds:
        print(f"  errors: {dict(flow.posting.error_kinds.most_common(5))}")


def print_open(flow: Flow, args: argparse.Namespace) -> None:
    r = flow.posting
    lat = flow.latencies
    print(f"[2b. edge to reservation, open loop] workers on, {args.rate:g} deliveries/s")
    print(
        f"  posted: {r.ok_in_window:,} in the window, {r.throughput:,.0f} 202/s (HTTP p50 "
        f"{r.percentile_ms(50):.2f} ms, p99 {r.percentile_ms(99):.2f} ms from when each was due; "
        f"errors {r.errors_total:,})"
    )
    if lat:
        p99 = common.percentile(lat, 99)
        print(
            f"  finished_at - received_at of the {len(lat):,} messages received in the window: "
            f"p50 {common.percentile(lat, 50) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {max(lat) * 1000:.1f} ms, mean {sum(lat) / len(lat) * 1000:.1f} ms "
            f"(target p99 <= 1 s: {_met(p99 <= 1.0)})"
        )
    else:
        print("  no message received in the window finished")
    _print_open_tail(flow)


def print_sustained(flow: Flow, args: argparse.Namespace) -> None:
    """Orders per second from edge to reservation: deliveries arriving at a steady rate, the
    edge and the worker sharing the process, and what the worker turned into reservations. The
    target is met by 200 or more orders/s ACCEPTED in the window, or by keeping up (within 3%,
    the window's edges) with 200 or more arriving per second."""
    r = flow.posting
    received = int(flow.figures["received_in_window"]) / args.duration
    accepted = int(flow.figures["accepted_in_window"]) / args.duration
    waiting = int(flow.figures["waiting_at_window_end"])
    kept_up = accepted >= 0.97 * received and waiting <= received
    lat = flow.latencies
    print(
        f"[2c. edge to reservation, sustained] workers on, {args.sustained_rate:g} deliveries/s "
        "arriving, the edge and the worker in one process"
    )
    print(
        f"  posted: {r.ok_in_window:,} in the window, {r.throughput:,.0f} 202/s (HTTP p99 "
        f"{r.percentile_ms(99):.2f} ms; errors {r.errors_total:,})"
    )
    print(
        f"  into reservations: {accepted:,.0f} orders/s ACCEPTED over the {args.duration:g} s "
        f"window, {received:,.0f}/s received; {waiting:,} waiting at its end "
        f"({'kept up' if kept_up else 'fell BEHIND'}) (target >= 200: "
        f"{_met(accepted >= 200 or (kept_up and received >= 200))})"
    )
    if lat:
        print(
            f"  finished_at - received_at: p50 {common.percentile(lat, 50) * 1000:.1f} ms, p99 "
            f"{common.percentile(lat, 99) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms"
        )
    _print_open_tail(flow)


def print_totals(t: Totals) -> None:
    invariants = (
        "invariants hold (no oversell, reserved = active lines, ledger, counters)"
        if not t.violations
        else f"INVARIANTS BROKEN: {t.violations}"
    )
    print("[3. after the runs with workers on]")
    print(f"  {invariants}")
    print(
        f"  messages {t.messages:,} {'=' if t.messages == t.expected_messages else '!='} "
        f"successful 202s {t.expected_messages:,} (1 checked first + the runs); ACCEPTED "
        f"{t.accepted:,}, of which {t.accepted_with_reservation:,} name a reservation group "
        f"that exists"
    )
    print(
        f"  reservations {t.reservations:,} in {t.groups:,} groups "
        f"{'=' if t.groups == t.accepted else '!='} ACCEPTED messages {t.accepted:,}; channel "
        f"orders RESERVED {t.channel_orders:,}"
    )


def print_reservation(outcome: Reservation, args: argparse.Namespace) -> bool:
    if not outcome.verified:
        print("[2. edge to reservation] NOT MEASURED: the delivery checked first did not end")
        print("  ACCEPTED with a reservation (see above)")
        return False
    assert outcome.closed is not None
    assert outcome.open is not None
    assert outcome.totals is not None
    print_closed(outcome.closed, args)
    print_open(outcome.open, args)
    assert outcome.sustained is not None
    print_sustained(outcome.sustained, args)
    print_totals(outcome.totals)
    flows = (outcome.closed, outcome.open, outcome.sustained)
    return (
        all(flow.drain_seconds is not None and flow.all_accepted for flow in flows)
        and outcome.totals.consistent
    )


def parameters(args: argparse.Namespace, sizes: str) -> dict[str, str]:
    return {
        "server": args.server,
        "concurrency": f"{args.concurrency} workers (keep-alive HTTP/1.1 connections; baseline: "
        f"asyncpg pool of {args.concurrency})",
        "duration": f"{args.duration:g} s measured after {args.warmup:g} s warm-up, "
        f"{args.rounds} alternating edge/baseline rounds",
        "open-loop rate": f"{args.rate:g} deliveries/s over at most {args.concurrency} connections",
        "gateway": f"1 process (uvicorn) at a time, DB pool "
        f"{common.pool_description(args.gateway_pool_size)}, ROPOS_LOG_LEVEL=WARNING; "
        f"edge phase with {EDGE_ONLY}, edge-to-reservation phase with the workers on",
        "deliveries": f"Shopify {TOPIC}, X-Shopify-Hmac-Sha256 signed, a new X-Shopify-Event-Id, "
        f"order id, customer and email each; 1-{MAX_LINES} lines of distinct SKUs, quantity 1; "
        "location_id of a random store, pickup shipping line",
        "body": sizes,
        "data": f"{args.stores} stores x {args.skus:,} SKUs, on hand {args.on_hand:,}; policy "
        "limits 1,000,000; account shopify/bench (assume_pickup, one location per store)",
    }


# --- the run --------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    facts = await common.machine_facts(args.server)
    secret = secrets.token_urlsafe(32)
    sizes = body_sizes(secret, args)
    orders = Orders(secret, args.stores, args.skus, args.seed)
    url, name = await common.create_database(args.server, "ropos_bench_intake")
    print(f"database {name} (fresh; dropped at the end)", flush=True)
    profiler = common.PySpy(args.py_spy)
    try:
        with common.timed("migrate and load"):
            await common.migrate(url)
            await load_data(url, args, secret)
        print("\n[edge to reservation, workers on]", flush=True)
        reservation = await edge_to_reservation(url, orders, args, profiler)
        print("\n[edge alone]", flush=True)
        edge = await edge_rounds(url, orders, args, profiler)
    finally:
        await common.drop_database(args.server, name)
        print(f"database {name} dropped")

    print()
    common.print_block("=== intake benchmark: machine ===", facts)
    common.print_block("=== parameters ===", parameters(args, sizes))
    print("=== figures ===")
    ok = print_edge(edge)
    ok = print_reservation(reservation, args) and ok
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.intake",
        description="Order intake: the edge vs a raw INSERT, and edge to reservation.",
    )
    p.add_argument(
        "--server",
        default=common.DEFAULT_SERVER,
        help="PostgreSQL server URL (a fresh database is created there and dropped afterwards)",
    )
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per run")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent workers")
    p.add_argument(
        "--rounds", type=int, default=3, help="edge and baseline runs, alternating; median ratio"
    )
    p.add_argument("--rate", type=float, default=100.0, help="open-loop deliveries per second")
    p.add_argument(
        "--sustained-rate",
        type=float,
        default=200.0,
        help="deliveries per second of the sustained run (orders/s from edge to reservation)",
    )
    p.add_argument("--stores", type=int, default=5, help="stores, one Shopify location each")
    p.add_argument("--skus", type=int, default=300, help="SKUs stocked at every store")
    p.add_argument("--on-hand", type=int, default=1_000_000, help="on hand of every stock row")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the worker to finish every message after posting",
    )
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
        "--spike",
        action="store_true",
        help="run the spike scenario instead (bench/intake_spike.py, with its own options: "
        "python -m bench.intake_spike --help)",
    )
    p.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record the gateway with py-spy during the first edge round, the closed-loop "
        "edge-to-reservation posting and the first 10 s of its drain (py-spy must be installed)",
    )
    args = p.parse_args(argv)
    if (
        args.concurrency < 1
        or args.duration <= 0
        or args.warmup < 0
        or args.rounds < 1
        or args.rate <= 0
        or args.sustained_rate <= 0
        or args.stores < 1
        or args.skus < MAX_LINES
    ):
        p.error(
            f"concurrency >= 1, duration > 0, warmup >= 0, rounds >= 1, rate > 0, stores >= 1, "
            f"skus >= {MAX_LINES}"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--spike" in argv:  # the spike scenario and its own options (--spike-rate, ...)
        from bench import intake_spike

        return intake_spike.main([a for a in argv if a != "--spike"])
    args = parse_args(argv)
    return common.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
