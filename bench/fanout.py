"""Fan-out of pickup events: N WebSocket subscribers of one store on ONE gateway process, the
latency from `markReadyForPickup` to each subscriber's receipt, and the gateway's memory per idle
subscriber.

    .venv/bin/python -m bench.fanout [--subscribers 1000,5000] [--events 20] [--broker URL]

Every subscriber is a POS terminal of store S001 (its own token, sent in connection_init) that
runs `pickupEvents(storeId: "S001")` over graphql-transport-ws. The client speaks the protocol
itself on the `websockets` library, in several processes so that it is not the bottleneck. For
each subscriber count a fresh gateway is started; the database is made once per run.

Figures only: nothing passes or fails on time. The exit status is 1 only when an expected
delivery is missing (a subscriber that could not open, or an event that did not reach one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import resource
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import common

DEFAULT_STORE = "S001"
CHANNEL = "bench"
SUBPROTOCOL = "graphql-transport-ws"
READY = "READY_FOR_PICKUP"

SUBSCRIPTION = (
    'subscription { pickupEvents(storeId: "%s") '
    "{ id type occurredAt reservation { id code status } } }"
)
RESERVE = (
    "mutation Reserve($input: ReserveInput!) { reserve(input: $input) { id "
    "reservations { id code storeId status } } }"
)
MARK_READY = "mutation Ready($id: ID!) { markReadyForPickup(id: $id) { id status } }"

TARGET_P99_MS = 250.0  # at 1,000 subscribers
TARGET_P99_SUBSCRIBERS = 1000
TARGET_KB_PER_SUBSCRIBER = 100.0
WARMUP_SUBSCRIBERS = 8

# One clock for every process of the client: CLOCK_MONOTONIC is system-wide on Linux.
clock = time.monotonic


# --- data ---------------------------------------------------------------------------------------


async def load_data(url: str, store: str, skus: int, on_hand: int) -> None:
    """One store with `skus` SKUs of `on_hand` units each, and the SYNC ledger rows the WMS sync
    would have written (so the ledger invariant holds)."""
    conn = await asyncpg.connect(**common.connect_kwargs(url))
    now = datetime.now(UTC)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO stores (id, name, lat, lon, timezone, created_at, updated_at) "
                "VALUES ($1, 'Fan-out store', 51.5152, -0.1419, 'Europe/London', $2, $2)",
                store,
                now,
            )
            await conn.execute(
                "INSERT INTO skus (code, name, unit_price, created_at) "
                "SELECT 'SKU-' || lpad(i::text, 6, '0'), 'Bench SKU ' || i, 10.00, $2 "
                "FROM generate_series(1, $1::int) AS i",
                skus,
                now,
            )
            await conn.execute(
                "INSERT INTO stock_levels (store_id, sku, on_hand, reserved, safety_stock, "
                "updated_at) SELECT $1, code, $2, 0, 0, $3 FROM skus",
                store,
                on_hand,
                now,
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


def pos_token(subject: str, store: str) -> str:
    """A POS token of the store the gateway accepts (ROPOS_ENV=dev, ROPOS_JWT_SECRET if set)."""
    from domain.access import Role
    from domain.clock import SystemClock
    from gateway.auth import issue_token
    from gateway.settings import Settings

    return issue_token(
        Settings(env="dev"),
        role=Role.POS,
        subject=subject,
        now=SystemClock().now(),
        store_id=store,
        ttl_seconds=6 * 3600,
    )


# --- the gateway process ----------------------------------------------------------------------


class FanoutGateway(common.GatewayProcess):
    """`ropos serve` as the other benchmarks start it, with the broker of this benchmark."""

    def __init__(self, database_url: str, broker: str, command: str | None) -> None:
        super().__init__(database_url, command=command)
        self.broker = broker

    def env(self) -> dict[str, str]:
        env = super().env()
        env["ROPOS_BROKER_URL"] = self.broker
        return env


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, VmHWM of a process, in KB (from /proc/<pid>/status)."""
    found = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


def _redis_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "redis-server":
                    pids.append(int(entry.name))
    return pids


# --- the WebSocket client (one or more per process) ----------------------------------------------


@dataclass
class ClientStats:
    opened: int = 0
    open_seconds: list[float] = field(default_factory=list)
    open_failures: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # error/complete messages, GraphQL errors
    closed: Counter[str] = field(default_factory=Counter)  # sockets that closed by themselves
    other_events: Counter[str] = field(default_factory=Counter)  # not READY_FOR_PICKUP
    foreign: int = 0  # READY events of reservations this run did not make (another process)
    duplicates: int = 0
    server_pings: int = 0
    # (when, how late) samples of a 20 ms timer: how long this client's event loop was busy
    loop_lag: list[tuple[float, float]] = field(default_factory=list)


class _Subscriber:
    __slots__ = ("got", "index", "task", "ws")

    def __init__(self, index: int) -> None:
        self.index = index
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None
        self.got: set[str] = set()  # reservation ids whose READY event arrived


class ClientPool:
    """Subscribers of one process: open them, record when each READY_FOR_PICKUP event arrives
    (the receive time per reservation id), close them."""

    def __init__(
        self, port: int, store: str, *, compression: str | None, expected: set[str]
    ) -> None:
        self.url = f"ws://127.0.0.1:{port}{common.GRAPHQL_PATH}"
        self.query = SUBSCRIPTION % store
        self.compression = compression
        self.expected = expected  # this run's reservations: others are counted apart
        self.subscribers: list[_Subscriber] = []
        self.receipts: dict[str, list[float]] = defaultdict(list)
        self.delivered = 0  # distinct (subscriber, reservation) READY receipts
        self.stats = ClientStats()
        self.closing = False

    async def open(self, indices: range, tokens: list[str], concurrency: int) -> None:
        gate = asyncio.Semaphore(concurrency)
        await asyncio.gather(
            *(self._open_one(i, token, gate) for i, token in zip(indices, tokens, strict=True))
        )

    async def _open_one(self, index: int, token: str, gate: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        sub = _Subscriber(index)
        async with gate:
            t0 = clock()
            try:
                sub.ws = await connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    compression=self.compression,
                    ping_interval=None,  # graphql-transport-ws: the server never pings; we idle
                    open_timeout=60,
                    close_timeout=5,
                    proxy=None,
                )
                await sub.ws.send(
                    orjson.dumps(
                        {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
                    ).decode()
                )
                ack = orjson.loads(await asyncio.wait_for(sub.ws.recv(), 60))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no connection_ack: {str(ack)[:120]}")
                await sub.ws.send(
                    orjson.dumps(
                        {"id": f"s{index}", "type": "subscribe", "payload": {"query": self.query}}
                    ).decode()
                )
            except Exception as error:
                self.stats.open_failures[f"{type(error).__name__}: {error}"[:160]] += 1
                if sub.ws is not None:
                    sub.ws.transport.abort()
                return
            self.stats.open_seconds.append(clock() - t0)
        self.stats.opened += 1
        self.subscribers.append(sub)
        sub.task = asyncio.create_task(self._listen(sub))

    async def _listen(self, sub: _Subscriber) -> None:
        from websockets.exceptions import ConnectionClosed

        stats = self.stats
        try:
            async for raw in sub.ws:
                now = clock()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message.get("payload") or {}
                    if payload.get("errors"):
                        stats.errors[f"next with errors: {payload['errors'][0]}"[:160]] += 1
                        continue
                    event = (payload.get("data") or {}).get("pickupEvents") or {}
                    reservation = event.get("reservation") or {}
                    if event.get("type") != READY or reservation.get("status") != READY:
                        stats.other_events[str(event.get("type"))] += 1
                        continue
                    rid = reservation["id"]
                    if rid not in self.expected:
                        stats.foreign += 1
                        continue
                    if rid in sub.got:
                        stats.duplicates += 1
                        continue
                    sub.got.add(rid)
                    self.receipts[rid].append(now)
                    self.delivered += 1
                elif kind == "ping":  # answer as the protocol asks (this server never pings)
                    stats.server_pings += 1
                    await sub.ws.send('{"type":"pong"}')
                elif kind == "pong":
                    pass
                else:  # error or complete: this subscription is over
                    stats.errors[f"{kind}: {message.get('payload')}"[:160]] += 1
                    return
        except ConnectionClosed as closed:
            if not self.closing:
                rcvd = closed.rcvd
                stats.closed[f"{rcvd.code} {rcvd.reason}" if rcvd else "no close frame"] += 1
            return
        if not self.closing:
            stats.closed["closed cleanly by the server"] += 1

    async def close(self, concurrency: int = 200) -> None:
        self.closing = True
        gate = asyncio.Semaphore(concurrency)

        async def close_one(sub: _Subscriber) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await sub.ws.close()
            if sub.task is not None:
                sub.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sub.task

        await asyncio.gather(*(close_one(sub) for sub in self.subscribers))

    async def watch_loop(self, period: float = 0.02) -> None:
        """Samples how late a timer fires: receive times are taken when this event loop gets to
        a message, so a busy client would make the gateway look slower than it is."""
        while not self.closing:
            due = clock() + period
            await asyncio.sleep(period)
            self.stats.loop_lag.append((due, max(0.0, clock() - due)))


def _client_process(
    first: int, count: int, port: int, options: dict[str, Any], pipe: Connection
) -> None:
    """A client process: tokens made up front, then commands from the parent on `pipe`."""
    common.run(lambda: _client_main(first, count, port, options, pipe))


async def _client_main(
    first: int, count: int, port: int, options: dict[str, Any], pipe: Connection
) -> int:
    loop = asyncio.get_running_loop()
    indices = range(first, first + count)
    store = options["store"]
    tokens = [pos_token(f"bench-pos-{i:05d}", store) for i in indices]
    pool = ClientPool(port, store, compression=options["compression"], expected=options["expected"])
    pipe.send(("ready", os.getpid()))
    watcher: asyncio.Task[None] | None = None
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "open":
            await pool.open(indices, tokens, options["connect_concurrency"])
            watcher = asyncio.create_task(pool.watch_loop())
            pipe.send(("opened", pool.stats.opened))
        elif command == "count":
            pipe.send(pool.delivered)
        elif command == "collect":
            pipe.send((dict(pool.receipts), pool.stats))
        elif command == "close":
            await pool.close()
            if watcher is not None:
                await watcher
            pipe.send("closed")
            return 0


class ClientProcesses:
    """The client processes of one run, and the commands the parent sends them."""

    def __init__(self, subscribers: int, processes: int, port: int, options: dict[str, Any]):
        ctx = multiprocessing.get_context("spawn")
        share = math.ceil(subscribers / processes)
        self.pipes: list[Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for first in range(0, subscribers, share):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_client_process,
                args=(first, min(share, subscribers - first), port, options, child),
                daemon=True,
            )
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.pids: list[int] = []

    async def ask(self, command: str, within: float = 600.0) -> list[Any]:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            pipe.send(command)
        return await asyncio.wait_for(
            asyncio.gather(*(loop.run_in_executor(None, pipe.recv) for pipe in self.pipes)),
            within,
        )

    async def started(self) -> None:
        loop = asyncio.get_running_loop()
        replies = await asyncio.gather(
            *(loop.run_in_executor(None, pipe.recv) for pipe in self.pipes)
        )
        self.pids = [pid for _, pid in replies]

    def cpu(self) -> float:
        return sum(common._process_cpu(pid) for pid in self.pids)

    def rss_kb(self) -> int:
        return sum(memory_kb(pid).get("VmRSS", 0) for pid in self.pids)

    def stop(self) -> None:
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        for pipe in self.pipes:
            pipe.close()


# --- CPU over a phase -------------------------------------------------------------------------


@dataclass
class Cpu:
    at: float
    gateway: float
    clients: float
    bench: float
    postgres: dict[int, float]
    redis: float
    busy: float
    total: float


def cpu_now(gateway_pid: int, clients: ClientProcesses | None, database: str | None) -> Cpu:
    base = common.cpu_snapshot(gateway_pid, database)
    return Cpu(
        at=base.at,
        gateway=base.gateway,
        clients=clients.cpu() if clients is not None else 0.0,
        bench=base.bench,
        postgres=base.postgres,
        redis=sum(common._process_cpu(pid) for pid in _redis_pids()),
        busy=base.machine_busy,
        total=base.machine_total,
    )


def cpu_line(a: Cpu, b: Cpu, per: int = 0, unit: str = "") -> str:
    gateway, clients, bench = b.gateway - a.gateway, b.clients - a.clients, b.bench - a.bench
    postgres = sum(max(0.0, v - a.postgres.get(pid, 0.0)) for pid, v in b.postgres.items())
    redis = b.redis - a.redis
    busy, total = b.busy - a.busy, b.total - a.total
    others = max(0.0, busy - gateway - clients - bench - postgres - redis)

    def each(seconds: float) -> str:
        return f" ({seconds / per * 1e6:,.0f} us/{unit})" if per else ""

    return (
        f"CPU over {b.at - a.at:.1f} s: gateway {gateway:.2f} s{each(gateway)}, "
        f"client processes {clients:.2f} s{each(clients)}, bench main process {bench:.2f} s, "
        f"PostgreSQL {postgres:.2f} s, Redis {redis:.2f} s, other processes {others:.2f} s; "
        f"machine busy {busy / total * 100 if total else 0:.0f}% of {os.cpu_count()} CPUs"
    )


# --- one run: N subscribers ---------------------------------------------------------------------


@dataclass
class EventRow:
    reservation_id: str
    sent: float
    answered: float  # the HTTP response of markReadyForPickup
    error: str | None
    receipts: list[float] = field(default_factory=list)


@dataclass
class RunResult:
    subscribers: int
    processes: int
    gateway_pid: int = 0
    opened: int = 0
    open_wall: float = 0.0
    open_seconds: list[float] = field(default_factory=list)
    rss_before: dict[str, int] = field(default_factory=dict)
    rss_open: dict[str, int] = field(default_factory=dict)  # at once after the last subscribe
    rss_idle: dict[str, int] = field(default_factory=dict)  # after the idle pause
    rss_after: dict[str, int] = field(default_factory=dict)  # after the measured events
    client_rss_kb: int = 0
    probe_received: int = 0
    probe_seconds: float = 0.0
    events: list[EventRow] = field(default_factory=list)
    stats: ClientStats = field(default_factory=ClientStats)
    cpu_open: str = ""
    cpu_events: str = ""
    latencies: list[float] = field(default_factory=list)
    client_lag: list[float] = field(default_factory=list)  # during the events, every process

    @property
    def expected(self) -> int:
        return self.subscribers * len(self.events)

    @property
    def delivered(self) -> int:
        return sum(len(e.receipts) for e in self.events)

    @property
    def missing(self) -> int:
        return self.expected - self.delivered

    def kb_per_subscriber(self, after: dict[str, int], key: str = "VmRSS") -> float:
        if not self.opened or key not in after or key not in self.rss_before:
            return float("nan")
        return (after[key] - self.rss_before[key]) / self.opened


async def mark_ready(client: common.HttpClient, prefix: bytes, rid: str) -> str | None:
    body = json.dumps({"query": MARK_READY, "variables": {"id": rid}}).encode()
    status, raw = await client.request(common.graphql_request(prefix, body))
    if status != 200 or b'"errors"' in raw:
        return f"HTTP {status}: {raw[:200]!r}"
    return None


async def make_reservations(port: int, store: str, count: int, skus: int) -> list[str]:
    token = common.issue_token("channel", subject="bench-channel", channel=CHANNEL)
    run = uuid.uuid4().hex[:6]
    ids = []
    for i in range(count):
        result = await common.graphql(
            port,
            RESERVE,
            {
                "input": {
                    "customerId": f"fan-{run}-{i}",
                    "storeId": store,
                    "lines": [{"sku": f"SKU-{i % skus + 1:06d}", "quantity": 1}],
                }
            },
            token,
        )
        ids.append(result["data"]["reserve"]["reservations"][0]["id"])
    return ids


async def wait_for(
    count: Any, target: int, within: float, interval: float = 0.05
) -> tuple[int, float]:
    """Poll `count()` until it reaches `target` or `within` seconds pass: (last count, seconds)."""
    start = clock()
    while True:
        got = await count()
        if got >= target or clock() - start >= within:
            return got, clock() - start
        await asyncio.sleep(interval)


async def warm_up(port: int, store: str, prefix: bytes, rid: str, compression: str | None) -> int:
    """A few subscribers in this process receive one event, so the first measured subscribers and
    events do not pay for the gateway's first WebSocket, first broker subscribe and first relay."""
    pool = ClientPool(port, store, compression=compression, expected={rid})
    tokens = [pos_token(f"bench-warm-{i}", store) for i in range(WARMUP_SUBSCRIBERS)]
    await pool.open(range(WARMUP_SUBSCRIBERS), tokens, WARMUP_SUBSCRIBERS)
    await asyncio.sleep(0.5)
    client = common.HttpClient("127.0.0.1", port)
    try:
        error = await mark_ready(client, prefix, rid)
        if error:
            raise RuntimeError(f"warm-up markReadyForPickup failed: {error}")

        async def delivered() -> int:
            return pool.delivered

        got, _ = await wait_for(delivered, pool.stats.opened, 10.0)
    finally:
        client.close()
        await pool.close()
    return got


async def run_one(
    url: str, subscribers: int, args: argparse.Namespace, profiler: common.PySpy
) -> RunResult:
    processes = args.client_procs or max(1, math.ceil(subscribers / args.per_process))
    result = RunResult(subscribers=subscribers, processes=processes)
    database = common.database_name(url)
    gateway = FanoutGateway(url, args.broker, args.gateway_command)
    clients: ClientProcesses | None = None
    try:
        with common.timed(f"  start gateway on port {gateway.port}"):
            await gateway.start()
        result.gateway_pid = gateway.pid
        print(f"  gateway pid {gateway.pid}, broker {args.broker}", flush=True)
        prefix = common.graphql_request_prefix(
            gateway.port, pos_token("bench-pos-marker", args.store)
        )
        reservations = await make_reservations(gateway.port, args.store, args.events + 2, args.skus)
        warm_rid, probe_rid, measured = reservations[0], reservations[1], reservations[2:]
        warmed = await warm_up(gateway.port, args.store, prefix, warm_rid, args.compression)
        print(f"  warm-up: {warmed}/{WARMUP_SUBSCRIBERS} warm-up subscribers got an event")

        options = {
            "compression": args.compression,
            "store": args.store,
            "connect_concurrency": max(1, args.connect_concurrency // processes),
            "expected": set(reservations[1:]),
        }
        clients = ClientProcesses(subscribers, processes, gateway.port, options)
        await clients.started()  # tokens made; nothing open yet
        await asyncio.sleep(args.settle)
        result.rss_before = memory_kb(gateway.pid)

        # open every socket, in batches (connect_concurrency handshakes in flight at a time)
        before = cpu_now(gateway.pid, clients, database)
        start = clock()
        replies = await clients.ask("open")
        result.open_wall = clock() - start
        result.rss_open = memory_kb(gateway.pid)
        after = cpu_now(gateway.pid, clients, database)
        result.opened = sum(n for _, n in replies)
        result.cpu_open = cpu_line(before, after, result.opened, "subscriber")
        print(
            f"  opened {result.opened:,}/{subscribers:,} subscribers in {result.open_wall:.1f} s "
            f"({processes} client processes)",
            flush=True,
        )

        # idle: the memory of idle subscribers
        await asyncio.sleep(args.idle)
        result.rss_idle = memory_kb(gateway.pid)
        result.client_rss_kb = clients.rss_kb()
        print(
            f"  gateway RSS {result.rss_before.get('VmRSS', 0) / 1024:.1f} MiB before, "
            f"{result.rss_idle.get('VmRSS', 0) / 1024:.1f} MiB after {args.idle:g} s idle: "
            f"{result.kb_per_subscriber(result.rss_idle):.1f} KB per subscriber",
            flush=True,
        )

        async def delivered() -> int:
            return sum(await clients.ask("count"))

        # the probe: every subscription is live (subscribing has no acknowledgement)
        probe_client = common.HttpClient("127.0.0.1", gateway.port)
        try:
            error = await mark_ready(probe_client, prefix, probe_rid)
            if error:
                raise RuntimeError(f"probe markReadyForPickup failed: {error}")
            result.probe_received, result.probe_seconds = await wait_for(
                delivered, result.opened, args.drain_timeout
            )
        finally:
            probe_client.close()
        print(
            f"  probe event: {result.probe_received:,}/{result.opened:,} subscribers got it "
            f"within {result.probe_seconds:.2f} s",
            flush=True,
        )
        await asyncio.sleep(args.settle)

        # the measured events
        http = common.HttpClient("127.0.0.1", gateway.port)
        await http.connect()
        profiler.start(
            gateway.pid,
            f"fanout-{subscribers}-gateway",
            args.events * args.interval + 3,
        )
        before = cpu_now(gateway.pid, clients, database)
        baseline = result.probe_received
        next_at = clock()
        try:
            for rid in measured:
                now = clock()
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                sent = clock()
                try:
                    error = await mark_ready(http, prefix, rid)
                except Exception as exc:  # a dropped connection: the event is then missing
                    error = f"{type(exc).__name__}: {exc}"
                result.events.append(EventRow(rid, sent, clock(), error))
                next_at = sent + args.interval
            expected = baseline + result.opened * len(measured)
            got, _ = await wait_for(delivered, expected, args.drain_timeout, 0.1)
        finally:
            http.close()
        after = cpu_now(gateway.pid, clients, database)
        profiler.finish()
        result.cpu_events = cpu_line(before, after, max(1, got - baseline), "delivery")
        result.rss_after = memory_kb(gateway.pid)

        replies = await clients.ask("collect")
        stats = result.stats
        for receipts, worker in replies:
            for row in result.events:
                row.receipts.extend(receipts.get(row.reservation_id, ()))
            stats.opened += worker.opened
            stats.open_seconds += worker.open_seconds
            stats.duplicates += worker.duplicates
            stats.foreign += worker.foreign
            stats.loop_lag += worker.loop_lag
            stats.server_pings += worker.server_pings
            for name in ("open_failures", "errors", "closed", "other_events"):
                getattr(stats, name).update(getattr(worker, name))
        result.open_seconds = stats.open_seconds
        for row in result.events:
            result.latencies += [t - row.sent for t in row.receipts]
        window_start = result.events[0].sent
        window_end = max((max(e.receipts) for e in result.events if e.receipts), default=clock())
        result.client_lag = [lag for at, lag in stats.loop_lag if window_start <= at <= window_end]
        await clients.ask("close", within=120)
    finally:
        if clients is not None:
            clients.stop()
        code = gateway.stop()
        print(f"  gateway stopped (exit status {code})", flush=True)
    return result


# --- printing -----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def print_run(r: RunResult, args: argparse.Namespace) -> None:
    pct = common.percentile
    print(
        f"[{r.subscribers:,} subscribers] ({r.processes} client processes, gateway pid "
        f"{r.gateway_pid})"
    )
    opened = f"{r.opened:,}/{r.subscribers:,}"
    print(
        f"  opened {opened} in {r.open_wall:.1f} s ({r.opened / r.open_wall:,.0f}/s); "
        f"connect+init+ack per socket p50 {ms(pct(r.open_seconds, 50))} ms, "
        f"p99 {ms(pct(r.open_seconds, 99))} ms"
    )
    print(f"  opening: {r.cpu_open}")
    if r.stats.open_failures:
        print(f"  OPEN FAILURES: {dict(r.stats.open_failures.most_common(5))}")
    before = r.rss_before.get("VmRSS", 0)
    print(
        f"  gateway memory (VmRSS): {before / 1024:,.1f} MiB before; "
        f"{r.rss_open.get('VmRSS', 0) / 1024:,.1f} MiB when all were subscribed; "
        f"{r.rss_idle.get('VmRSS', 0) / 1024:,.1f} MiB after {args.idle:g} s idle; "
        f"{r.rss_after.get('VmRSS', 0) / 1024:,.1f} MiB after the events "
        f"(peak VmHWM {r.rss_after.get('VmHWM', 0) / 1024:,.1f} MiB)"
    )
    print(
        f"  memory per idle subscriber: {r.kb_per_subscriber(r.rss_idle):,.1f} KB "
        f"(RssAnon: {r.kb_per_subscriber(r.rss_idle, 'RssAnon'):,.1f} KB); after the events "
        f"{r.kb_per_subscriber(r.rss_after):,.1f} KB; target <= {TARGET_KB_PER_SUBSCRIBER:g} KB: "
        f"{'met' if r.kb_per_subscriber(r.rss_idle) <= TARGET_KB_PER_SUBSCRIBER else 'missed'}"
    )
    print(f"  client processes' RSS when idle: {r.client_rss_kb / 1024:,.0f} MiB in all")
    print(
        f"  probe event reached {r.probe_received:,}/{r.opened:,} subscribers in "
        f"{r.probe_seconds:.2f} s"
    )
    print(
        f"  events: {len(r.events)} x markReadyForPickup, one every {args.interval:g} s; "
        f"deliveries {r.delivered:,}/{r.expected:,} expected"
        + (f"; MISSING {r.missing:,}" if r.missing else " (none missing)")
    )
    failed = [e for e in r.events if e.error]
    if failed:
        print(f"  MUTATIONS FAILED: {len(failed)}; first: {failed[0].error}")
    print(
        f"  latency markReadyForPickup sent -> event received, over every (event, subscriber): "
        f"p50 {ms(pct(r.latencies, 50))} ms, p99 {ms(pct(r.latencies, 99))} ms, "
        f"max {ms(max(r.latencies, default=float('nan')))} ms"
        + (
            f"; target p99 <= {TARGET_P99_MS:g} ms at {TARGET_P99_SUBSCRIBERS:,} subscribers: "
            f"{'met' if pct(r.latencies, 99) * 1000 <= TARGET_P99_MS else 'missed'}"
            if r.subscribers == TARGET_P99_SUBSCRIBERS
            else ""
        )
    )
    answered = [e.answered - e.sent for e in r.events]
    firsts = [min(e.receipts) - e.sent for e in r.events if e.receipts]
    lasts = [max(e.receipts) - e.sent for e in r.events if e.receipts]
    spans = [max(e.receipts) - min(e.receipts) for e in r.events if e.receipts]
    print(
        "  per event (median over events / max): "
        f"mutation HTTP answer {ms(pct(answered, 50))} / {ms(max(answered, default=0))} ms; "
        f"first subscriber {ms(pct(firsts, 50))} / {ms(max(firsts, default=0))} ms; "
        f"last subscriber {ms(pct(lasts, 50))} / {ms(max(lasts, default=0))} ms; "
        f"first-to-last spread {ms(pct(spans, 50))} / {ms(max(spans, default=0))} ms "
        f"({r.subscribers / pct(spans, 50) if spans and pct(spans, 50) else float('nan'):,.0f} "
        "deliveries/s)"
    )
    if args.per_event:
        print(
            f"    {'#':>3} {'answer ms':>10} {'first ms':>9} {'p50 ms':>9} {'last ms':>9} "
            f"{'received':>9}"
        )
        for k, e in enumerate(r.events, 1):
            lat = [t - e.sent for t in e.receipts]
            print(
                f"    {k:>3} {ms(e.answered - e.sent):>10} {ms(min(lat, default=float('nan'))):>9}"
                f" {ms(pct(lat, 50)):>9} {ms(max(lat, default=float('nan'))):>9} "
                f"{len(lat):>9,}"
            )
    print(f"  events: {r.cpu_events}")
    print(
        f"  client event-loop lag during the events (a 20 ms timer, every client process): "
        f"p50 {ms(pct(r.client_lag, 50))} ms, p99 {ms(pct(r.client_lag, 99))} ms, "
        f"max {ms(max(r.client_lag, default=float('nan')))} ms"
    )
    s = r.stats
    if s.errors or s.closed or s.duplicates or s.other_events or s.server_pings or s.foreign:
        print(
            f"  client saw: errors {dict(s.errors.most_common(3))}, closed by the server "
            f"{dict(s.closed.most_common(3))}, duplicates {s.duplicates}, other events "
            f"{dict(s.other_events)}, server pings {s.server_pings}"
        )
    if s.foreign or s.other_events:
        print(
            f"  WARNING: {s.foreign + sum(s.other_events.values()):,} deliveries of events this "
            f"run did not make: another process published on store:{args.store} (Redis "
            "pub/sub channels ignore the database number); they cost the gateway time too. Use "
            "--store for a store id of its own."
        )


# --- the benchmark ------------------------------------------------------------------------------


def raise_open_files(needed: int) -> str:
    """The open-files limit this process (and so the gateway and the client processes it starts)
    needs; raises the soft limit, and the hard one when allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return f"{soft} (hard {hard}); needed {needed}"
    if hard != resource.RLIM_INFINITY and hard < needed:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        new_soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    note = "" if soft >= needed else " - TOO LOW: sockets will fail to open"
    return f"raised to {soft} (hard {hard}); needed {needed}{note}"


async def main_async(args: argparse.Namespace) -> int:
    counts = args.subscribers
    # The gateway holds one socket per subscriber (plus its pools, files, the listening socket);
    # the client processes share the other ends, so no process needs much more than max(N).
    limit = raise_open_files(max(counts) + 1024)
    facts = await common.machine_facts(args.server)
    facts["open files (ulimit -n)"] = limit
    facts["somaxconn"] = _somaxconn()
    facts["websockets"] = _version("websockets")
    if args.broker.startswith("redis"):
        facts["Redis"] = _redis_version(args.broker)
    url, name = await common.create_database(args.server, "ropos_bench_fanout")
    print(f"database {name} (fresh; dropped at the end)", flush=True)
    results: list[RunResult] = []
    profiler = common.PySpy(args.py_spy)
    try:
        with common.timed("migrate and load"):
            await common.migrate(url)
            await load_data(url, args.store, args.skus, args.on_hand)
        for n in counts:
            print(f"\n[{n:,} subscribers]", flush=True)
            results.append(await run_one(url, n, args, profiler))
        violations = await common.invariant_violations(url)
    finally:
        await common.drop_database(args.server, name)
        print(f"database {name} dropped")

    print()
    common.print_block("=== fan-out benchmark: machine ===", facts)
    common.print_block(
        "=== parameters ===",
        {
            "server": args.server,
            "broker": args.broker,
            "gateway": "1 process (`ropos serve`, uvicorn, websockets-sansio), ROPOS_ENV=dev, "
            "ROPOS_LOG_LEVEL=WARNING, a fresh process per subscriber count",
            "subscribers": ", ".join(f"{n:,}" for n in counts)
            + f" (graphql-transport-ws, one POS token each, permessage-deflate "
            f"{'offered' if args.compression else 'not offered'}; "
            f"{args.connect_concurrency} handshakes in flight at a time)",
            "subscription": SUBSCRIPTION % args.store,
            "client": "websockets (asyncio, uvloop), spread over "
            + ", ".join(f"{r.processes}" for r in results)
            + " processes",
            "events": f"{args.events} x markReadyForPickup over HTTP (POS token), one every "
            f"{args.interval:g} s, after a warm-up event and a probe event",
            "idle": f"{args.idle:g} s after the last subscribe before reading the gateway's RSS",
            "clock": "time.monotonic (CLOCK_MONOTONIC, one clock for every process on the host)",
        },
    )
    print("=== figures ===")
    for r in results:
        print_run(r, args)
    print(
        f"targets: p99 <= {TARGET_P99_MS:g} ms at {TARGET_P99_SUBSCRIBERS:,} subscribers; "
        f"<= {TARGET_KB_PER_SUBSCRIBER:g} KB per idle subscriber (figures only: not an exit status)"
    )
    print(
        "invariants hold (no oversell, reserved = active lines, ledger, counters)"
        if not violations
        else f"invariants broken: {violations}"
    )
    missing = sum(r.missing for r in results)
    if missing:
        print(f"MISSING DELIVERIES: {missing:,}")
    return 1 if missing else 0


def _somaxconn() -> str:
    try:
        return Path("/proc/sys/net/core/somaxconn").read_text().strip()
    except OSError:
        return "?"


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _redis_version(url: str) -> str:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    except Exception as error:
        return f"unknown ({error})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Pickup-event fan-out: latency to N WebSocket subscribers, memory each.",
    )
    p.add_argument(
        "--server",
        default=common.DEFAULT_SERVER,
        help="PostgreSQL server URL (a fresh database is created there and dropped afterwards)",
    )
    p.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/14",
        help="the gateway's ROPOS_BROKER_URL: redis://... or memory://",
    )
    p.add_argument(
        "--subscribers",
        default="1000,5000",
        help="comma-separated subscriber counts, run one after the other",
    )
    p.add_argument("--events", type=int, default=20, help="measured markReadyForPickup calls")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between two events")
    p.add_argument(
        "--client-procs",
        type=int,
        default=0,
        help="client processes (default: one per --per-process subscribers)",
    )
    p.add_argument(
        "--per-process",
        type=int,
        default=2500,
        help="subscribers per client process when --client-procs is not given (measured here: "
        "one process keeps up with 5,000, two keep its event-loop lag p99 near 1 ms)",
    )
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=64,
        help="WebSocket handshakes in flight at a time, over all client processes",
    )
    p.add_argument(
        "--compression",
        choices=("deflate", "none"),
        default="deflate",
        help="offer permessage-deflate as browsers do (default) or not",
    )
    p.add_argument("--idle", type=float, default=5.0, help="idle seconds before reading the RSS")
    p.add_argument("--settle", type=float, default=2.0, help="pause between phases (seconds)")
    p.add_argument(
        "--drain-timeout", type=float, default=30.0, help="how long to wait for late deliveries"
    )
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help="the store's id (its POS subscribe to it); another id keeps events that other "
        "processes publish on the same Redis for S001 (tests, say) away from the subscribers",
    )
    p.add_argument("--skus", type=int, default=20, help="SKUs at the store")
    p.add_argument("--on-hand", type=int, default=1_000_000, help="units of each SKU")
    p.add_argument("--per-event", action="store_true", help="print every event's figures")
    p.add_argument(
        "--gateway-command",
        metavar="CMD",
        help="start the gateway with this command instead of `ropos serve` ({port} is replaced; "
        "the ROPOS_* environment is the same), e.g. to compare a patched build",
    )
    p.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record the gateway with py-spy during the measured events; collapsed stacks and a "
        "top-functions summary go to DIR",
    )
    args = p.parse_args(argv)
    try:
        args.subscribers = [int(n) for n in args.subscribers.split(",") if n.strip()]
    except ValueError:
        p.error("--subscribers takes comma-separated integers")
    if not args.subscribers or min(args.subscribers) < 1 or args.events < 1:
        p.error("subscribers >= 1, events >= 1")
    if args.interval <= 0 or args.per_process < 1 or args.connect_concurrency < 1:
        p.error("interval > 0, per-process >= 1, connect-concurrency >= 1")
    args.compression = None if args.compression == "none" else args.compression
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
