"""The services a gateway depends on killed and started again under a load of reserves, the
gateway left running: it recovers by itself and loses nothing it acknowledged.

- Redis (a private redis-server, kill -9, then started again on the same port), both backends:
  mutations go on while it is down (events wait in the outbox), /readyz says degraded, then ok;
  the relay publishes what waited and a subscriber hears events again.
- PostgreSQL (a private cluster of the test's own, stopped with `-m immediate`, then started
  again), on the PostgreSQL run only: requests while it is down fail with a clear error and
  /readyz answers 503; once it is back the gateway serves again, on the same process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.db.engine import Database
from adapters.db.invariants import violations
from adapters.db.tables import outbox
from adapters.db.uow import SqlUnitOfWork
from domain.clock import SystemClock
from gateway import migrate
from tests.api.given import RESERVE
from tests.api.test_subscriptions import (
    MARK_READY,
    PICKUP_EVENTS,
    Live,
    NoEvent,
    bearer,
    is_warm_up,
    pos,
    ready_warm_up,
    subscribed,
    until_live,
)
from tests.conftest import reset
from tests.helpers import given_stock, given_stores, store_at
from tests.integration.processes import (
    Call,
    GatewayProcess,
    Load,
    Outcome,
    PostgresCluster,
    gateway_process,
    postgres_bin,
)
from tests.integration.test_broker import REDIS_SERVER, RedisServer, wait_until
from tests.integration.test_crash_recovery import groups_of, lines_of, post_graphql, unpublished

pytestmark = pytest.mark.asyncio(loop_scope="session")

RELAY_FAILED = "outbox relay could not publish"  # what the relay logs (WARNING) while Redis is down
RECOVERY_SECONDS = 30.0  # after a service is back: the gateway serves, the outbox drains
# A test still running this long after its gateway started is stuck: its gateway is killed, so
# that whatever waits on it fails instead of hanging the run.
TEST_DEADLINE_SECONDS = 150.0
HEARD_POLL_SECONDS = 0.5  # how often the subscription's reader looks whether to stop
BEFORE, DURING, AFTER = 10, 16, 10  # acknowledged calls before, during and after an outage
REFUSED_WHILE_DOWN = 6  # reserves refused while PostgreSQL is down


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


# --- the load -------------------------------------------------------------------------------------


def reserve_input(i: int) -> dict[str, Any]:
    return {
        "storeId": "S001",
        "lines": [{"sku": "SKU-1", "quantity": 1 + i % 2}],
        "idempotencyKey": f"order-{i}",
    }


def customer(i: int) -> str:
    return f"buyer-{i:04d}"


def reserve_jobs(
    http: httpx.AsyncClient, gateway: GatewayProcess, load: Load, *, ready: bool = False
) -> Iterator[Callable[[], Awaitable[object]]]:
    """A reserve each (a new customer each), and with `ready` the store marks it ready: an event
    the POS terminal hears."""

    def job(i: int) -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            token = gateway.token("customer", sub=customer(i))
            call = await load.send(
                Call(f"reserve-{i}"),
                lambda: post_graphql(http, gateway, RESERVE, {"input": reserve_input(i)}, token),
            )
            if call.outcome is not Outcome.ACKNOWLEDGED:
                await asyncio.sleep(0.05)  # a client's pause before its next order
                return
            if not ready:
                return
            (held,) = call.body["data"]["reserve"]["reservations"]
            await load.send(
                Call(f"ready-{i}"),
                lambda: post_graphql(
                    http, gateway, MARK_READY, {"id": held["id"]}, pos(gateway, "S001")
                ),
            )

        return run

    return (job(i) for i in itertools.count())


async def acknowledged_are_there(db: Database, load: Load) -> list[str]:
    """Every acknowledged reserve is in the database with its lines (and a reservation marked
    ready is ready); returns the acknowledged reservations' ids."""
    ids: list[str] = []
    for call in load.of(Outcome.ACKNOWLEDGED):
        kind, _, number = call.name.partition("-")
        groups = await groups_of(db, customer(int(number)))
        if kind == "ready":
            ((held,),) = groups.values()
            assert held["status"] == "READY_FOR_PICKUP", (call.name, held)
            continue
        answer = call.body["data"]["reserve"]
        assert list(groups) == [answer["id"]], (call.name, answer, groups)
        assert lines_of(groups[answer["id"]]) == reserve_input(int(number))["lines"]
        ids.extend(r["id"] for r in answer["reservations"])
    return ids


@contextlib.asynccontextmanager
async def running(
    load: Load, jobs: Iterator[Callable[[], Awaitable[object]]]
) -> AsyncIterator[Load]:
    """The load's lane running in the background while the block runs; halted on leaving."""
    lane = asyncio.create_task(load.lane(jobs, concurrency=4))
    try:
        yield load
    finally:
        load.halt()
        await lane


class Heard:
    """What a subscription delivered, read in the background (the reader never blocks the
    test). It stops on a flag it looks at between short waits, not on cancellation alone: on
    Python 3.11 asyncio.wait_for drops a cancellation that comes as its item arrives, and the
    reader would then wait on for good."""

    def __init__(self, live: Live) -> None:
        self.events: list[dict[str, Any]] = []
        self.failure: Exception | None = None
        self._live = live
        self._stopping = False
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while not self._stopping:
            try:
                self.events.append(await self._live.next(within=HEARD_POLL_SECONDS))
            except NoEvent:
                continue
            except Exception as error:  # the subscription failed: the test says so
                self.failure = error
                return

    def reservations(self) -> set[str]:
        assert self.failure is None, f"the subscription failed: {self.failure!r}"
        return {str(e["reservation"]["id"]) for e in self.events}

    async def stop(self) -> None:
        self._stopping = True
        # Within one poll it ends by itself; cancelled (and awaited) if it has not by then.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), 2 * HEARD_POLL_SECONDS)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


# --- Redis ----------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server of the test's own, on a free port (never the shared one)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH: the Redis restart test starts its own server")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_redis_killed_and_restarted_under_load_delays_events_and_loses_nothing(
    http: httpx.AsyncClient,
    database_url: str,
    clean_db: Database,
    private_redis: RedisServer,
    tmp_path: Path,
) -> None:
    clock = SystemClock()
    uow = lambda: SqlUnitOfWork(clean_db)  # noqa: E731
    await given_stores(uow, clock, store_at("S001", 0))
    await given_stock(uow, clock, {("S001", "SKU-1"): 100_000, ("S001", "WARM"): 1000})
    log = tmp_path / "gateway.log"
    async with (
        gateway_process(
            http, database_url, private_redis.url, log, deadline=TEST_DEADLINE_SECONDS
        ) as gateway,
        subscribed(
            gateway,
            PICKUP_EVENTS,
            {"storeId": "S001"},
            init_payload=bearer(pos(gateway)),
            skip=is_warm_up,
        ) as terminal,
    ):
        await until_live(terminal, ready_warm_up(http, gateway))
        pid = gateway.pid
        heard = Heard(terminal)
        load = Load()
        try:
            async with running(load, reserve_jobs(http, gateway, load, ready=True)):
                await load.until_acknowledged(BEFORE, within=60, what="calls before the outage")

                await private_redis.stop()  # kill -9
                await wait_until(
                    lambda: _readiness_is(http, gateway, 200, "degraded"),
                    within=15,
                    what="/readyz to say degraded with Redis down",
                )
                down_at = load.acknowledged
                sent_before_kill = {call.name for call in load.calls}
                await load.until_acknowledged(
                    down_at + DURING, within=60, what=f"calls with Redis down\n{gateway.log()}"
                )
                await wait_until(
                    lambda: RELAY_FAILED in gateway.log(),
                    within=15,
                    what="the relay to fail to publish with Redis down",
                )
                sent_before_back = {call.name for call in load.calls}
                waiting = await unpublished(clean_db)
                assert waiting > 0, "events were published with Redis down?"
                assert await _readiness_is(http, gateway, 200, "degraded")

                back_at = datetime.now(UTC)
                await private_redis.start()  # the same port
                await wait_until(
                    lambda: _readiness_is(http, gateway, 200, "ok"),
                    within=RECOVERY_SECONDS,
                    what="/readyz to say ok once Redis is back",
                )
                up_at = load.acknowledged
                await load.until_acknowledged(
                    up_at + AFTER, within=60, what="calls after Redis came back"
                )
                # Pub/sub keeps nothing for a subscriber that was away: events made after the
                # gateway re-subscribed must come through on the same subscription.
                await wait_until(
                    lambda: bool(
                        heard.reservations() & (_ready(load) - _ready(load, sent_before_back))
                    ),
                    within=RECOVERY_SECONDS,
                    what=f"an event made after Redis came back to reach the subscriber\n"
                    f"{gateway.log()}",
                )
        finally:
            await heard.stop()

        assert not load.of(Outcome.REFUSED), [c.body for c in load.of(Outcome.REFUSED)]
        assert not load.of(Outcome.UNKNOWN), [c.error for c in load.of(Outcome.UNKNOWN)]
        await wait_until(
            lambda: _all_published(clean_db),
            within=RECOVERY_SECONDS,
            what="the relay to publish every event that waited",
        )
        assert (gateway.running, gateway.pid) == (True, pid), "the gateway was restarted"

    await acknowledged_are_there(clean_db, load)
    while_down = _ready(load, sent_before_back) - _ready(load, sent_before_kill)
    await _published_after(clean_db, while_down, back_at)
    assert await violations(clean_db) == {}


async def _readiness_is(
    http: httpx.AsyncClient, gateway: GatewayProcess, code: int, say: str
) -> bool:
    status, body = await gateway.readiness(http)
    return status == code and body.get("status") == say


async def _all_published(db: Database) -> bool:
    return await unpublished(db) == 0


def _ready(load: Load, among: set[str] | None = None) -> set[str]:
    """The reservations whose markReadyForPickup was acknowledged (of the calls `among`)."""
    return {
        str(call.body["data"]["markReadyForPickup"]["id"])
        for call in load.of(Outcome.ACKNOWLEDGED)
        if call.name.startswith("ready-") and (among is None or call.name in among)
    }


async def _published_after(db: Database, made: set[str], back_at: datetime) -> None:
    """The events of the reservations made and marked ready after Redis was killed waited in
    the outbox and were published once it was back: none was marked published into a dead
    broker (nor left unpublished)."""
    assert made, "no reservation was made ready while Redis was down"
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.reservation_id, outbox.c.type, outbox.c.published_at).where(
                    outbox.c.reservation_id.in_(sorted(made))
                )
            )
        ).all()
    assert {r.type for r in rows} >= {"CREATED", "READY_FOR_PICKUP"}, rows
    early = [r for r in rows if r.published_at is None or r.published_at < back_at]
    assert not early, early


# --- PostgreSQL -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def private_postgres(backend: str) -> AsyncIterator[PostgresCluster]:
    """A PostgreSQL cluster of the test's own, started; removed afterwards."""
    if backend != "postgresql":
        pytest.skip("a PostgreSQL restart: on the PostgreSQL run (ROPOS_TEST_DATABASE_URL)")
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("initdb is not installed: the restart test starts a cluster of its own")
    cluster = PostgresCluster(bindir)
    try:
        await cluster.init()
        await cluster.start()
        yield cluster
    finally:
        await cluster.remove()


async def migrated_database(cluster: PostgresCluster) -> str:
    """A database `ropos` on the cluster, migrated to head, with the default policy."""
    admin = create_async_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql('CREATE DATABASE "ropos"')
    finally:
        await admin.dispose()
    url = cluster.url("ropos")
    db = Database(url)
    try:
        await migrate.upgrade(db)
        await reset(db)
    finally:
        await db.dispose()
    return url


async def test_postgres_restarted_under_load_the_gateway_serves_again_without_a_restart(
    http: httpx.AsyncClient, private_postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = await migrated_database(private_postgres)
    db = Database(url, pool_size=4)
    try:
        clock = SystemClock()
        uow = lambda: SqlUnitOfWork(db)  # noqa: E731
        await given_stores(uow, clock, store_at("S001", 0))
        await given_stock(uow, clock, {("S001", "SKU-1"): 100_000})
        await db.dispose()  # its connections die with the server
        log = tmp_path / "gateway.log"
        async with gateway_process(
            http, url, "memory://", log, deadline=TEST_DEADLINE_SECONDS
        ) as gateway:
            pid = gateway.pid
            load = Load()
            async with running(load, reserve_jobs(http, gateway, load)):
                await load.until_acknowledged(BEFORE, within=60, what="reserves before the stop")
                await private_postgres.stop("immediate")
                sent_before_stop = len(load.calls)

                await wait_until(
                    lambda: _readiness_is(http, gateway, 503, "unavailable"),
                    within=15,
                    what="/readyz to answer 503 with the database down",
                )
                await _refused_clearly(http, gateway)
                # Refusals of reserves sent after the stop (those in flight at it do not count).
                await wait_until(
                    lambda: _refused_since(load, sent_before_stop) >= REFUSED_WHILE_DOWN,
                    within=30,
                    what=f"the load to go on with the database down\n{gateway.log()}",
                )
                down = load.calls[sent_before_stop : len(load.calls)]

                await private_postgres.start()
                back_at = load.acknowledged
                await load.until_acknowledged(
                    back_at + AFTER,
                    within=RECOVERY_SECONDS,
                    what=f"reserves after the database came back\n{gateway.log()}",
                )
            assert (gateway.running, gateway.pid) == (True, pid), "the gateway was restarted"
            status, body = await gateway.readiness(http)
            assert (status, body["status"], body["database"]) == (200, "ok", "up")
            await wait_until(
                lambda: _all_published(db),
                within=RECOVERY_SECONDS,
                what=f"the outbox to drain after the restart\n{gateway.log()}",
            )

            # A restart the gateway does not see (no request meanwhile): its pool is left full
            # of connections the server closed, and none may fail a request.
            await private_postgres.stop("immediate")
            await private_postgres.start()
            await _served_every_time(http, gateway)
            assert (gateway.running, gateway.pid) == (True, pid), "the gateway was restarted"

        await refused_are_not_there(db, down)
        await acknowledged_are_there(db, load)
        assert await violations(db) == {}
    finally:
        await db.dispose()


def _refused_since(load: Load, first: int) -> int:
    return sum(call.outcome is Outcome.REFUSED for call in load.calls[first:])


async def refused_are_not_there(db: Database, sent_while_down: list[Call]) -> None:
    """Each reserve sent while the database was down got an answer (none hung until the client
    gave up); each refused one with a clear error, and nothing of it was kept."""
    refused = [c for c in sent_while_down if c.outcome is Outcome.REFUSED]
    assert refused
    for call in sent_while_down:
        assert call.outcome is not Outcome.UNKNOWN, (call.name, call.error)
    for call in refused:
        assert_clear_refusal(call.status, call.body)
        assert await groups_of(db, customer(int(call.name.partition("-")[2]))) == {}, call.name


def assert_clear_refusal(status: int | None, body: Any) -> None:
    """A GraphQL error with the contract's code for a failure on the gateway's side (INTERNAL),
    a reference, and a message that says to try again; no data, no traceback."""
    text = json.dumps(body)
    assert "Traceback" not in text, text
    assert 'File "' not in text, text
    assert status == 200, (status, text)
    assert isinstance(body, dict), text
    assert body["data"] is None, text
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL", error
    assert error["extensions"]["reference"], error
    assert "try again" in error["message"].lower(), error


async def _refused_clearly(http: httpx.AsyncClient, gateway: GatewayProcess) -> None:
    """A reserve while the database is down: refused at once, with a code and a message a
    person can act on, no traceback; nothing is left of it afterwards (checked at the end)."""
    token = gateway.token("customer", sub="while-down")
    response = await post_graphql(
        http, gateway, RESERVE, {"input": reserve_input(0) | {"idempotencyKey": "down"}}, token
    )
    assert_clear_refusal(response.status_code, response.json())
    assert await _readiness_is(http, gateway, 503, "unavailable")


async def _served_every_time(http: httpx.AsyncClient, gateway: GatewayProcess) -> None:
    """Once the database is back, the gateway answers every request, the first one included: no
    connection the server closed is handed out of the pool (20 in a row, more than it holds)."""
    for i in range(20):
        token = gateway.token("customer", sub=f"after-{i}")
        variables = {"input": reserve_input(i) | {"idempotencyKey": f"after-{i}"}}
        body = (await post_graphql(http, gateway, RESERVE, variables, token)).json()
        assert not body.get("errors"), body
    query = json.dumps({"query": "{ stores { id } }"})
    response = await http.post(
        f"{gateway.url}/graphql", content=query, headers={"content-type": "application/json"}
    )
    assert response.json() == {"data": {"stores": [{"id": "S001"}]}}
    status, body = await gateway.readiness(http)
    assert (status, body["status"]) == (200, "ok"), body
