"""What the benchmarks share: a fresh PostgreSQL database per run, one gateway process, a cheap
keep-alive HTTP/1.1 client, a closed-loop load runner, percentiles, CPU accounting and the facts
of the machine. Figures only: nothing here passes or fails on time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import asyncpg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql+asyncpg://postgres@/postgres?host=/var/run/postgresql"
GRAPHQL_PATH = "/graphql"


# --- the database -----------------------------------------------------------------------------


def connect_kwargs(url: str) -> dict[str, Any]:
    """asyncpg.connect() arguments for a SQLAlchemy URL (host may be a Unix socket directory)."""
    u = make_url(url)
    host = u.query.get("host") or u.host
    if isinstance(host, tuple):
        host = host[0]
    kwargs = {
        "user": u.username,
        "password": u.password,
        "database": u.database,
        "host": host,
        "port": u.port,
    }
    return {k: v for k, v in kwargs.items() if v is not None}


def database_name(url: str) -> str | None:
    return make_url(url).database


def database_url(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def admin_connection(server_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(**connect_kwargs(server_url))


async def create_database(server_url: str, prefix: str) -> tuple[str, str]:
    """A new empty database on the server: (its SQLAlchemy URL, its name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await admin_connection(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(server_url, name), name


async def drop_database(server_url: str, name: str) -> None:
    conn = await admin_connection(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrate(url: str) -> None:
    """Alembic to head, exactly as `ropos migrate` and the tests do it."""
    from adapters.db.engine import Database
    from gateway import migrate as migrations

    db = Database(url)
    try:
        await migrations.upgrade(db)
    finally:
        await db.dispose()


async def invariant_violations(url: str) -> dict[str, list[tuple[object, ...]]]:
    """adapters.db.invariants.violations on the database (zero oversell, reserved = active lines,
    the ledger adds up, the customers' counters match)."""
    from adapters.db.engine import Database
    from adapters.db.invariants import violations

    db = Database(url, pool_size=1, max_overflow=0)
    try:
        return await violations(db)
    finally:
        await db.dispose()


# --- the gateway process ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ropos_command() -> list[str]:
    script = Path(sys.executable).parent / "ropos"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "gateway.cli"]


_RATE_LIMITS = (
    "ROPOS_RATE_LIMIT_GRAPHQL_PER_SECOND",
    "ROPOS_RATE_LIMIT_GRAPHQL_SERVICE_PER_SECOND",
    "ROPOS_RATE_LIMIT_GRAPHQL_ANONYMOUS_PER_SECOND",
    "ROPOS_RATE_LIMIT_INTAKE_PER_SECOND",
    "ROPOS_RATE_LIMIT_WMS_PER_SECOND",
)


class GatewayProcess:
    """`ropos serve` on a free loopback port, in its own process, until stop()."""

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int | None = None,
        max_overflow: int = 0,
        command: str | None = None,
    ) -> None:
        self.database_url = database_url
        # Another way to start it (e.g. a patched copy, for A/B experiments): "{port}" is filled in.
        self.command = command
        self.port = free_port()
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="ropos-bench-gateway-", suffix=".log", delete=False
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> str:
        return self._log.name

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(ROPOS_DATABASE_URL=self.database_url, ROPOS_ENV="dev", ROPOS_LOG_LEVEL="WARNING")
        # The benchmarks measure what one process can take, through one address and a few token
        # subjects: the rate limits are off unless the environment sets them (0: off).
        for limit in _RATE_LIMITS:
            env.setdefault(limit, "0")
        if self.pool_size is not None:  # else the gateway's own defaults, as shipped
            env.update(
                ROPOS_DB_POOL_SIZE=str(self.pool_size), ROPOS_DB_MAX_OVERFLOW=str(self.max_overflow)
            )
        return env

    async def start(self, startup_seconds: float = 60.0) -> None:
        if self.command:
            command = shlex.split(self.command.format(port=self.port))
        else:
            command = [*_ropos_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        proc = self._spawn(command)
        deadline = time.monotonic() + startup_seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                client = HttpClient("127.0.0.1", self.port)
                await client.connect()
                try:
                    status, _ = await client.request(
                        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    )
                finally:
                    client.close()
                if status == 200:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(
            f"the gateway did not answer /healthz in {startup_seconds} s:\n{self.log_tail()}"
        )

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            command, cwd=REPO, env=self.env(), stdout=self._log, stderr=subprocess.STDOUT
        )
        return self.proc

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (uvicorn shuts down gracefully), SIGKILL only if it hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)
        return self.proc.returncode


# --- a minimal HTTP/1.1 client ------------------------------------------------------------------


class HttpClient:
    """One keep-alive connection; requests are pre-built bytes, responses are read by
    Content-Length (chunked as a fallback). Costs the benchmark's CPU as little as possible."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            length = int(head[at + 17 : end])
            body = await self.reader.readexactly(length) if length else b""
        elif b"transfer-encoding: chunked" in lower:
            body = await self._chunked()
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


def graphql_request_prefix(port: int, token: str | None) -> bytes:
    """The head of a POST /graphql request, up to (not including) Content-Length."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {GRAPHQL_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json\r\n{auth}"
    ).encode()


def graphql_request(prefix: bytes, body: bytes) -> bytes:
    return b"%sContent-Length: %d\r\n\r\n%s" % (prefix, len(body), body)


async def graphql(
    port: int, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """One GraphQL call on a fresh connection (set-up, not measured)."""
    client = HttpClient("127.0.0.1", port)
    try:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        status, raw = await client.request(
            graphql_request(graphql_request_prefix(port, token), body)
        )
    finally:
        client.close()
    result: dict[str, Any] = json.loads(raw)
    if status != 200 or result.get("errors"):
        raise RuntimeError(f"GraphQL call failed ({status}): {result}")
    return result


def issue_token(role: str, *, subject: str, channel: str | None = None) -> str:
    """A token the gateway accepts: same settings (ROPOS_ENV=dev, ROPOS_JWT_SECRET if set)."""
    from domain.access import Role
    from domain.clock import SystemClock
    from gateway.auth import issue_token as issue
    from gateway.settings import Settings

    settings = Settings(env="dev")
    return issue(
        settings,
        role=Role(role),
        subject=subject,
        now=SystemClock().now(),
        channel=channel,
        ttl_seconds=6 * 3600,
    )


# --- the load -----------------------------------------------------------------------------------


Operation = Callable[[int], Awaitable[str | None]]  # worker index -> None if ok, else error kind


@dataclass
class LoadResult:
    concurrency: int
    duration: float
    latencies: list[float] = field(default_factory=list)  # seconds, ok requests in the window
    ok_in_window: int = 0
    errors_in_window: int = 0
    ok_total: int = 0  # every phase: warm-up, window, drain
    errors_total: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def throughput(self) -> float:
        return self.ok_in_window / self.duration if self.duration else 0.0

    def percentile_ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000.0

    @property
    def mean_ms(self) -> float:
        return (sum(self.latencies) / len(self.latencies) * 1000.0) if self.latencies else 0.0


async def closed_loop(
    operation: Operation, *, concurrency: int, warmup: float, duration: float
) -> LoadResult:
    """`concurrency` workers each run `operation` back to back for warmup + duration seconds.
    Requests that complete inside the measured window count (throughput and latency); every
    request's outcome counts in the totals (what the database must show afterwards)."""
    result = LoadResult(concurrency=concurrency, duration=duration)
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + duration
    clock = time.perf_counter
    offset = clock() - loop.time()
    window_start, window_end = start + offset, end + offset

    async def worker(index: int) -> None:
        while True:
            t0 = clock()
            try:
                error = await operation(index)
            except Exception as exc:  # a dropped connection, a timeout: an error, not a crash
                error = f"{type(exc).__name__}: {exc}"[:200]
            t1 = clock()
            if error is None:
                result.ok_total += 1
                if window_start <= t1 < window_end:
                    result.ok_in_window += 1
                    result.latencies.append(t1 - t0)
            else:
                result.errors_total += 1
                result.error_kinds[error] += 1
                if window_start <= t1 < window_end:
                    result.errors_in_window += 1
            if t1 >= window_end:
                return

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return result


async def open_loop(
    operation: Operation, *, rate: float, connections: int, warmup: float, duration: float
) -> LoadResult:
    """Requests sent at a fixed `rate` per second, whether or not earlier ones have been answered,
    over at most `connections` at once: what a site's many independent shoppers do. Latency runs
    from when a request was due, so time spent waiting for a free connection counts (no
    coordinated omission). If the server cannot keep up, latencies grow without bound: the rate
    is then above what it can serve."""
    result = LoadResult(concurrency=connections, duration=duration)
    clock = time.perf_counter
    start = clock()
    window_start, window_end = start + warmup, start + warmup + duration
    free: asyncio.Queue[int] = asyncio.Queue()
    for index in range(connections):
        free.put_nowait(index)
    tasks: set[asyncio.Task[None]] = set()

    async def send(due: float) -> None:
        index = await free.get()
        try:
            try:
                error = await operation(index)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            free.put_nowait(index)
        done = clock()
        in_window = window_start <= due < window_end
        if error is None:
            result.ok_total += 1
            if in_window:
                result.ok_in_window += 1
                result.latencies.append(done - due)
        else:
            result.errors_total += 1
            result.error_kinds[error] += 1
            if in_window:
                result.errors_in_window += 1

    sent = 0
    while (due := start + sent / rate) < window_end:
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    if tasks:
        await asyncio.gather(*tasks)
    return result


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- CPU accounting -----------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _postgres_pids(database: str | None) -> list[int]:
    """The server's background processes and the client backends of `database` (not the
    backends of other databases: the host and the server may be shared)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            is_client = "[local]" in title or re.search(r"\d+\.\d+\.\d+\.\d+\(\d+\)", title)
            if database is None or not is_client or f" {database} " in title:
                pids.append(int(entry.name))
    return pids


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) / _TICK for v in parts]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    total = sum(values[:8])
    return total - idle, total


@dataclass
class CpuSnapshot:
    at: float
    gateway: float
    bench: float
    postgres: dict[int, float]
    machine_busy: float
    machine_total: float


def cpu_snapshot(gateway_pid: int | None, database: str | None = None) -> CpuSnapshot:
    usage = os.times()
    busy, total = _machine_busy()
    return CpuSnapshot(
        at=time.monotonic(),
        gateway=_process_cpu(gateway_pid) if gateway_pid else 0.0,
        bench=usage.user + usage.system,
        postgres={pid: _process_cpu(pid) for pid in _postgres_pids(database)},
        machine_busy=busy,
        machine_total=total,
    )


@dataclass
class CpuUse:
    wall: float
    gateway: float
    bench: float
    postgres: float
    machine_busy: float
    machine_total: float

    def line(self, requests: int) -> str:
        def per(seconds: float) -> str:
            return f"{seconds / requests * 1e6:,.0f} us/req" if requests else "-"

        return (
            f"CPU over {self.wall:.1f} s: gateway {self.gateway:.1f} s ({per(self.gateway)}), "
            f"bench process {self.bench:.1f} s ({per(self.bench)}), "
            f"PostgreSQL (this database + background) {self.postgres:.1f} s "
            f"({per(self.postgres)}); "
            f"other processes {self.others:.1f} s; machine busy {self.busy_percent:.0f}%"
        )

    @property
    def others(self) -> float:
        """CPU the machine spent outside the gateway, the bench and PostgreSQL (shared host)."""
        return max(0.0, self.machine_busy - self.gateway - self.bench - self.postgres)

    @property
    def busy_percent(self) -> float:
        return self.machine_busy / self.machine_total * 100 if self.machine_total else 0.0


def cpu_between(a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
    postgres = sum(max(0.0, v - a.postgres.get(pid, 0.0)) for pid, v in b.postgres.items())
    return CpuUse(
        wall=b.at - a.at,
        gateway=b.gateway - a.gateway,
        bench=b.bench - a.bench,
        postgres=postgres,
        machine_busy=b.machine_busy - a.machine_busy,
        machine_total=b.machine_total - a.machine_total,
    )


# --- what the database's backends are doing -----------------------------------------------------


# The tables a run grows from nothing: their statistics are kept current while it runs.
# Only the columns the plans filter, join and sort on (a body or a payload is not sampled).
GROWING_TABLES = (
    "intake_messages (id, channel, account, status, next_attempt_at, received_at, finished_at)",
    "channel_orders (channel, account, external_id)",
    "reservations (id, group_id, customer_id, status, expires_at)",
    "reservation_lines (reservation_id, sku)",
    "idempotency_keys (customer_id, key)",
    "customer_holds (customer_id)",
    "customer_sku_holds (customer_id, sku)",
    "stock_movements (id)",
    "outbox (position, published_at)",
)


class Poller:
    """A task beside a run, on a connection of its own to the run's database, from entering to
    leaving its `async with`; `_run` loops until `_stopped()`, pausing with `_pause`."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._conn: asyncpg.Connection = await asyncpg.connect(**connect_kwargs(self.url))
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._conn.close()

    def _stopped(self) -> bool:
        return self._stop.is_set()

    async def _pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, less when the run ends."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), max(0.0, seconds))

    async def _run(self) -> None:
        raise NotImplementedError


class Analyzer(Poller):
    """ANALYZEs each table a run grows whenever it has doubled (from `first` rows, up to about
    `last`) since its last ANALYZE, looking every `interval` seconds. A benchmark starts from an empty database, which
    production never is: tables grow from nothing to tens of thousands of rows in a minute
    while nothing analyzes them (autovacuum is off on this machine kind's PostgreSQL; where it
    is on, once a minute at most), and the plans cached on the gateway's
    pooled connections meanwhile (the foreign-key checks' among them) go on scanning whole
    tables, ever slower. With the statistics following the sizes, the plans are the ones a
    database of that size gets, as in production. Doubling keeps the ANALYZEs few, and they
    stop once the plans have settled (an index scan stays one as the table grows): each one
    makes every connection plan its statements on the table again, a stall of the whole host
    while the spike is measured."""

    def __init__(
        self, url: str, *, interval: float = 1.0, first: int = 1_000, last: int = 10_000
    ) -> None:
        super().__init__(url, interval)
        self.first = first
        self.last = last
        self.runs = 0
        self.seconds = 0.0  # spent analyzing
        self._analyzed: dict[str, float] = {}  # table -> rows at its last ANALYZE

    async def _run(self) -> None:
        while not self._stopped():
            rows = await self._conn.fetch(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY($1)",
                [spec.split(" ", 1)[0] for spec in GROWING_TABLES],
            )
            live = {r["relname"]: float(r["n_live_tup"]) for r in rows}
            for spec in GROWING_TABLES:
                table = spec.split(" ", 1)[0]
                n, before = live.get(table, 0.0), self._analyzed.get(table, 0.0)
                if n >= max(self.first, 2 * before) and 2 * before <= self.last:
                    started = time.monotonic()
                    await self._conn.execute(f"ANALYZE {spec}")
                    self.seconds += time.monotonic() - started
                    self.runs += 1
                    self._analyzed[table] = n
            await self._pause(self.interval)


class ActivitySampler(Poller):
    """Samples pg_stat_activity for the run's database every `interval` seconds: how many client
    backends are running, waiting on a lock, or idle in a transaction (waiting for the client, e.g.
    a gateway whose event loop is busy) - the evidence for where a transaction's time goes."""

    def __init__(self, url: str, *, delay: float = 0.0, interval: float = 0.1) -> None:
        super().__init__(url, interval)
        self.delay = delay
        self.database = database_name(url)
        self.samples = 0
        self.counts: Counter[str] = Counter()

    async def _run(self) -> None:
        await self._pause(self.delay)
        while not self._stopped():
            rows = await self._conn.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'",
                self.database,
            )
            self.samples += 1
            for row in rows:
                state = row["state"] or "?"
                if state == "active" and row["wait_event_type"] in ("Lock", "LWLock", "IO"):
                    key = f"active, waiting on {row['wait_event_type']}:{row['wait_event']}"
                elif state == "active" and row["wait_event"]:
                    key = f"active ({row['wait_event_type']}:{row['wait_event']})"
                else:
                    key = state
                self.counts[key] += 1
            await self._pause(self.interval)

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        parts = [
            f"{name} {count / self.samples:.1f}"
            for name, count in sorted(self.counts.items(), key=lambda kv: -kv[1])
        ]
        return f"mean client backends by state ({self.samples} samples): " + ", ".join(parts)


# --- profiling (optional) -----------------------------------------------------------------------


class PySpy:
    """`py-spy record` on the gateway during a measured window, when --py-spy DIR is given."""

    def __init__(self, directory: str | None) -> None:
        self.directory = Path(directory) if directory else None
        self.exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: Path | None = None

    def start(self, pid: int, name: str, seconds: float) -> None:
        if self.directory is None:
            return
        if not Path(self.exe).exists():
            print(f"  (py-spy not found at {self.exe}; no profile)")
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.output = self.directory / f"{name}.collapsed"
        self.proc = subprocess.Popen(
            [
                self.exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, int(seconds))),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(self.output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finish(self, top: int = 25) -> None:
        if self.proc is None or self.output is None:
            return
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()
        self.proc = None
        if self.output.exists():
            print(f"  profile: {self.output}")
            print(summarize_collapsed(self.output, top=top))


def summarize_collapsed(path: Path, *, top: int = 25) -> str:
    """Top functions by self and by inclusive samples, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        names = [_short_frame(f) for f in frames]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    if not total:
        return "  (no samples)"
    out = [f"  {total} samples; top by self time:"]
    out += [f"    {n / total * 100:5.1f}%  {name}" for name, n in own.most_common(top)]
    out.append("  top by inclusive time:")
    out += [f"    {n / total * 100:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def _short_frame(frame: str) -> str:
    # py-spy frames look like "function (path/to/file.py:123)"; drop the line number
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    else:
        where = where.replace(str(REPO) + "/", "")
    return f"{name} ({where})"


# --- facts and printing -------------------------------------------------------------------------


async def machine_facts(server_url: str) -> dict[str, str]:
    conn = await admin_connection(server_url)
    try:
        version = await conn.fetchval("SHOW server_version")
        settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("shared_buffers", "synchronous_commit", "max_connections", "work_mem")
        }
    finally:
        await conn.close()
    return {
        **_host_facts(),
        "PostgreSQL": f"{version} ({', '.join(f'{k}={v}' for k, v in settings.items())})",
    }


def _host_facts() -> dict[str, str]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    facts = {
        "cpus": f"{os.cpu_count()} (usable {len(os.sched_getaffinity(0))}) {cpu_model}".strip(),
        "memory": mem,
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "Python": f"{platform.python_version()} ({platform.system()} {platform.release()})",
        "libraries": _versions(
            "strawberry-graphql", "graphql-core", "starlette", "uvicorn", "sqlalchemy", "asyncpg"
        ),
        "bench event loop": _loop_name(),
    }
    return facts


def _versions(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join(found)


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run the benchmark's coroutine on uvloop when there is one (as uvicorn does)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


def print_block(title: str, rows: dict[str, Any]) -> None:
    width = max((len(k) for k in rows), default=0)
    print(title)
    for key, value in rows.items():
        print(f"  {key.ljust(width)}  {value}")


@contextlib.contextmanager
def timed(label: str) -> Iterator[dict[str, float]]:
    took: dict[str, float] = {}
    start = time.perf_counter()
    print(f"{label} ...", flush=True)
    yield took
    took["seconds"] = time.perf_counter() - start
    print(f"{label}: {took['seconds']:.1f} s", flush=True)


def pool_description(pool_size: int | None) -> str:
    """How the gateway's database pool is set for a run, for the printed parameters."""
    if pool_size is None:
        return "as the gateway's defaults (ROPOS_DB_POOL_SIZE, ROPOS_DB_MAX_OVERFLOW)"
    return f"{pool_size} (+0 overflow)"
