"""Real processes for the crash and restart tests: a `ropos serve` gateway that can be killed with
SIGKILL and started again on the same database and port, a private PostgreSQL cluster of the test's
own (never the machine's shared one), a POS webhook sink that records every delivery, and a load
driver that keeps requests in flight and says what became of each one.

A private redis-server is tests.integration.test_broker.RedisServer (its stop() is a kill -9)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import hmac
import os
import pwd
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.access import Role
from domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from gateway.auth import issue_token
from gateway.settings import Settings
from tests.helpers import free_port, serving
from tests.integration.test_broker import wait_until

ROPOS = Path(sys.executable).with_name("ropos")
ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 30.0  # a gateway process answers /healthz within this
# Short worker intervals and leases, so that what a killed process left is taken up within
# seconds: the intake lease is how long a message the dead process had taken waits.
FAST_WORKERS = {
    "ROPOS_RELAY_INTERVAL_SECONDS": "0.2",
    "ROPOS_WEBHOOK_INTERVAL_SECONDS": "0.2",
    # The POS sink answers in 0.3 s; the lease on a webhook batch is 12.5 s at this timeout.
    "ROPOS_WEBHOOK_TIMEOUT_SECONDS": "0.75",
    "ROPOS_INTAKE_INTERVAL_SECONDS": "0.2",
    "ROPOS_INTAKE_LEASE_SECONDS": "2",
    "ROPOS_INTAKE_SWEEP_INTERVAL_SECONDS": "0",
    "ROPOS_DB_POOL_SIZE": "8",
}


# --- a gateway process ----------------------------------------------------------------------------


@dataclass
class GatewayProcess:
    """`ropos serve` on a fixed free port, on `database_url` and `broker_url`, with its workers.
    `kill()` is a SIGKILL (nothing of the process runs after it); `start()` again serves on the
    same port and database. Has what the API helpers use of a gateway: `url` and `token()`."""

    database_url: str
    broker_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def token(self, role: Role | str, *, sub: str | None = None, store: str | None = None) -> str:
        role = Role(role)
        # Signed with the development secret, which the process uses too (ROPOS_ENV=dev).
        return issue_token(
            Settings(env="dev", jwt_secret=None),
            role=role,
            subject=sub or f"{role.value}-1",
            now=datetime.now(UTC),
            store_id=store,
        )

    async def start(self, http: httpx.AsyncClient) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROPOS_")}
        env |= {
            "ROPOS_ENV": "dev",
            "ROPOS_DATABASE_URL": self.database_url,
            "ROPOS_BROKER_URL": self.broker_url,
            "ROPOS_LOG_LEVEL": "WARNING",
            **FAST_WORKERS,
            **self.env,
        }
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                str(ROPOS),
                *("serve", "--host", "127.0.0.1", "--port", str(self.port)),
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

        async def healthy() -> bool:
            if not self.running:
                raise AssertionError(f"the gateway exited:\n{self.log()}")
            try:
                return (await http.get(f"{self.url}/healthz", timeout=2)).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(healthy, within=START_SECONDS, what=f"ropos serve on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, at once (no await before the signal: what the caller saw is what it killed).
        Call `reap()` afterwards."""
        assert self.process is not None, "not started"
        assert self.process.returncode is None, "not running"
        self.process.send_signal(signal.SIGKILL)

    def kill_if_running(self) -> bool:
        """SIGKILL if it is running (a watchdog's last resort); says whether it was."""
        if not self.running:
            return False
        self.kill()
        return True

    async def reap(self) -> None:
        if self.process is not None:
            await asyncio.wait_for(self.process.wait(), 15)
            self.process = None

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()

    def log(self, tail: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:]

    async def readiness(self, http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
        response = await http.get(f"{self.url}/readyz", timeout=10)
        return response.status_code, dict(response.json())


@contextlib.asynccontextmanager
async def gateway_process(
    http: httpx.AsyncClient,
    database_url: str,
    broker_url: str,
    log_path: Path,
    *,
    deadline: float | None = None,
    **env: str,
) -> AsyncIterator[GatewayProcess]:
    """A started gateway process; stopped on leaving, whatever state it is in. With `deadline`,
    a watchdog kills it if the block still runs that many seconds after the start."""
    gateway = GatewayProcess(database_url, broker_url, log_path, env=dict(env))
    try:
        await gateway.start(http)
        if deadline is None:
            yield gateway
        else:
            with watchdog(gateway, deadline, what="the block using the gateway"):
                yield gateway
    finally:
        await gateway.stop()


@contextlib.contextmanager
def watchdog(gateway: GatewayProcess, seconds: float, *, what: str) -> Iterator[None]:
    """If the block still runs after `seconds`, SIGKILL the gateway: whatever the block awaits
    of it (a WebSocket, a request) fails at once, and the test fails instead of hanging the run.
    It does not rely on cancelling the block (a cancellation asyncio.wait_for may drop)."""
    fired = False

    def fire() -> None:
        nonlocal fired
        fired = gateway.kill_if_running()

    handle = asyncio.get_running_loop().call_later(seconds, fire)
    try:
        yield
    finally:
        handle.cancel()
        if fired:
            raise AssertionError(f"{what} took longer than {seconds} s: the gateway was killed")


# --- a private PostgreSQL cluster -----------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory of initdb and pg_ctl: the newest /usr/lib/postgresql/*/bin, else PATH's."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresCluster:
    """A PostgreSQL cluster of the test's own: initdb into a temporary directory (trust auth),
    listening only on a Unix socket in it, on a free port. Stopped with `-m immediate` (what a
    crash of the server looks like to its clients) and started again on the same directory.

    initdb and the server refuse to run as root: as root they run as the `postgres` user (its
    temporary directory is made its own); as anyone else, as that user."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ropos-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log_path = self.root / "server.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.sockets.mkdir()
        if self._as:
            os.chown(self.sockets, pwd.getpwnam("postgres").pw_uid, -1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@:{self.port}/{database}?host={self.sockets}"

    async def _run(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._as,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        if process.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{output.decode(errors='replace')}")

    async def init(self) -> None:
        await self._run(
            str(self.bindir / "initdb"),
            *("-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"),
        )

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses='' -c max_connections=50"
        await self._run(
            str(self.bindir / "pg_ctl"),
            *("-D", str(self.data), "-o", options, "-l", str(self.log_path), "-w", "start"),
        )

    async def stop(self, mode: str = "immediate") -> None:
        await self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def log(self, tail: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:]

    async def remove(self) -> None:
        if self.running:
            with contextlib.suppress(AssertionError):
                await self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- a POS webhook sink ---------------------------------------------------------------------------


@dataclass
class WebhookSink:
    """A store's POS webhook receiver: every delivery it took, by event id (the sink dedupes by
    it: delivery is at least once), each checked against the shared secret.

    A POS takes `answer_after` seconds to answer, and a delivery counts as taken only once it
    has answered to a sender still connected: one whose sender died meanwhile (a SIGKILL) is
    counted in `cut_off`, not taken, and must come again."""

    secret: str
    answer_after: float = 0.0
    url: str = ""
    deliveries: int = 0
    event_ids: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    answering: int = 0  # requests the POS is working on now
    cut_off: int = 0

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        mac = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        if not hmac.compare_digest(
            request.headers.get(SIGNATURE_HEADER, ""), f"sha256={mac.hexdigest()}"
        ):
            self.bad_signatures += 1
            return Response(status_code=401)
        self.answering += 1
        try:
            await asyncio.sleep(self.answer_after)  # the POS at work, not a wait for the test
        finally:
            self.answering -= 1
        if await request.is_disconnected():
            self.cut_off += 1
            return Response(status_code=503)
        self.deliveries += 1
        self.event_ids.add(request.headers["X-Ropos-Event-Id"])
        return Response(status_code=200)


@contextlib.asynccontextmanager
async def webhook_sink(secret: str, *, answer_after: float = 0.0) -> AsyncIterator[WebhookSink]:
    """The sink served on a free loopback port, in the test's process (it outlives the gateway)."""
    sink = WebhookSink(secret, answer_after)
    app = Starlette(routes=[Route("/hooks", sink.receive, methods=["POST"])])
    async with serving(app) as url:
        sink.url = f"{url}/hooks"
        yield sink


# --- a load driver --------------------------------------------------------------------------------


class Outcome(StrEnum):
    PENDING = "PENDING"  # not sent (yet)
    ACKNOWLEDGED = "ACKNOWLEDGED"  # the answer came back with data (or a 202)
    REFUSED = "REFUSED"  # the answer came back with an error
    UNKNOWN = "UNKNOWN"  # no answer: in flight when the server died (either way, never half)


@dataclass
class Call:
    """One request of the load and what became of it."""

    name: str
    outcome: Outcome = Outcome.PENDING
    status: int | None = None
    body: Any = None
    error: str | None = None

    @property
    def codes(self) -> list[str]:
        if not isinstance(self.body, dict):
            return []
        errors = self.body.get("errors") or []
        return [str(e.get("extensions", {}).get("code")) for e in errors]


Send = Callable[[], Awaitable[httpx.Response]]
Judge = Callable[[httpx.Response], bool]


def graphql_ok(response: httpx.Response) -> bool:
    """A GraphQL answer is an acknowledgement when it has data and no error."""
    body = response.json()
    return response.status_code == 200 and not body.get("errors") and bool(body.get("data"))


class Load:
    """Sends requests from several lanes at once (`concurrency` in flight per lane) until its
    jobs run out or `halt()`; counts acknowledgements and what is in flight, so a test can kill a
    server after N acknowledgements while requests are on their way. A transport error (the
    server died, the connection was reset) makes a call UNKNOWN, never an exception."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.acknowledged = 0
        self.calls: list[Call] = []
        self._halted = asyncio.Event()

    def halt(self) -> None:
        """No new request from now on; those in flight finish (or fail) on their own."""
        self._halted.set()

    @property
    def halted(self) -> bool:
        return self._halted.is_set()

    async def send(self, call: Call, send: Send, judge: Judge = graphql_ok) -> Call:
        """One request: its outcome recorded on `call`."""
        self.calls.append(call)
        self.in_flight += 1
        try:
            response = await send()
        except httpx.TransportError as error:
            call.outcome, call.error = Outcome.UNKNOWN, f"{type(error).__name__}: {error}"
            return call
        finally:
            self.in_flight -= 1
        call.status = response.status_code
        try:
            call.body = response.json()
        except ValueError:
            call.body = response.text
        if judge(response):
            call.outcome = Outcome.ACKNOWLEDGED
            self.acknowledged += 1
        else:
            call.outcome = Outcome.REFUSED
        return call

    async def lane(self, jobs: Iterator[Callable[[], Awaitable[object]]], concurrency: int) -> None:
        """Runs `jobs` (each one or more `send`s), `concurrency` at a time, until they run out
        or the load is halted."""

        async def worker() -> None:
            while not self.halted:
                job = next(jobs, None)
                if job is None:
                    return
                await job()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def until_acknowledged(self, count: int, *, within: float, what: str) -> None:
        """Until `count` calls were acknowledged (the lanes keep running meanwhile)."""
        await wait_until(lambda: self.acknowledged >= count, within=within, what=what)

    def summary(self) -> str:
        counts = {o.value: len(self.of(o)) for o in Outcome}
        return f"{counts}, {self.in_flight} in flight"

    def of(self, outcome: Outcome) -> list[Call]:
        return [c for c in self.calls if c.outcome is outcome]
