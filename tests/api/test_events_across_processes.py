"""Events between gateway processes, the production mode: PostgreSQL and Redis, each gateway a
`ropos serve` process of its own. An event made on one replica reaches a subscriber of another,
and a Redis outage delays events but fails no mutation and loses nothing from the outbox."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from adapters.db.engine import Database
from adapters.db.tables import outbox
from tests.api.given import given_stores_with_stock
from tests.api.test_subscriptions import (
    DELIVERY_SECONDS,
    PICKUP_EVENTS,
    Live,
    NoEvent,
    bearer,
    is_warm_up,
    mark_ready,
    pos,
    ready_warm_up,
    reserve,
    subscribed,
    until_live,
)
from tests.integration.processes import GatewayProcess
from tests.integration.test_broker import REDIS_SERVER, RedisServer, wait_until

_DATABASE = os.environ.get("ROPOS_TEST_DATABASE_URL", "")
_BROKER = os.environ.get("ROPOS_TEST_BROKER_URL", "")
_ON_POSTGRES = bool(_DATABASE) and make_url(_DATABASE).get_backend_name() == "postgresql"
_ON_REDIS = urlsplit(_BROKER).scheme == "redis"

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(
        not (_ON_POSTGRES and _ON_REDIS),
        reason="gateway processes share events only through PostgreSQL and Redis: set "
        "ROPOS_TEST_DATABASE_URL to a PostgreSQL server and ROPOS_TEST_BROKER_URL to redis://...",
    ),
]

RECOVERY_SECONDS = 15.0  # after Redis is back: subscribers resume, the outbox drains
RELAY_FAILED = "outbox relay could not publish"  # what the relay logs (WARNING) while Redis is down


@pytest_asyncio.fixture(loop_scope="session")
async def gateways(clean_db: Database) -> AsyncIterator[list[GatewayProcess]]:
    """The gateway processes a test starts (after the database was emptied); stopped after it."""
    started: list[GatewayProcess] = []
    yield started
    await asyncio.gather(*(gateway.stop() for gateway in started))


async def start_gateways(
    gateways: list[GatewayProcess],
    http: httpx.AsyncClient,
    database_url: str,
    broker_url: str,
    tmp_path: Path,
    count: int = 1,
) -> list[GatewayProcess]:
    new = [
        GatewayProcess(database_url, broker_url, tmp_path / f"gateway-{len(gateways) + i}.log")
        for i in range(count)
    ]
    gateways.extend(new)
    await asyncio.gather(*(gateway.start(http) for gateway in new))
    return new


async def given_store_with_stock(http: httpx.AsyncClient, gateway: GatewayProcess) -> None:
    """S001 and S002; SKU-1 and WARM (for the warm-up and the probes) at S001."""
    await given_stores_with_stock(http, gateway, {("S001", "SKU-1"): 10, ("S001", "WARM"): 100})


async def unpublished(db: Database) -> int:
    async with db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return int(count or 0)


# --- across replicas ------------------------------------------------------------------------------


async def test_an_event_made_on_one_process_reaches_a_subscriber_of_another_within_a_second(
    http: httpx.AsyncClient,
    database_url: str,
    clean_db: Database,
    gateways: list[GatewayProcess],
    tmp_path: Path,
) -> None:
    a, b = await start_gateways(gateways, http, database_url, _BROKER, tmp_path, count=2)
    await given_store_with_stock(http, b)
    held = await reserve(http, b)

    async with subscribed(
        a, PICKUP_EVENTS, {"storeId": "S001"}, init_payload=bearer(pos(a)), skip=is_warm_up
    ) as terminal:
        await until_live(terminal, ready_warm_up(http, b))
        started = asyncio.get_running_loop().time()
        await mark_ready(http, b, held)
        event = await terminal.next(within=DELIVERY_SECONDS - elapsed(started))

    assert (event["type"], event["reservation"]["id"]) == ("READY_FOR_PICKUP", held["id"])
    assert event["reservation"]["code"] == held["code"]
    assert event["reservation"]["status"] == "READY_FOR_PICKUP"
    assert event["reservation"]["lines"] == [{"sku": "SKU-1", "quantity": 2}]


def elapsed(started: float) -> float:
    return asyncio.get_running_loop().time() - started


# --- a Redis outage -------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server of the test's own, to stop and start again on the same port."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH: the outage test starts its own server")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_redis_outage_delays_events_but_fails_no_mutation_and_loses_none(
    http: httpx.AsyncClient,
    database_url: str,
    clean_db: Database,
    private_redis: RedisServer,
    gateways: list[GatewayProcess],
    tmp_path: Path,
) -> None:
    (gateway,) = await start_gateways(gateways, http, database_url, private_redis.url, tmp_path)
    await given_store_with_stock(http, gateway)

    async with subscribed(
        gateway,
        PICKUP_EVENTS,
        {"storeId": "S001"},
        init_payload=bearer(pos(gateway)),
        skip=is_warm_up,
    ) as terminal:
        await until_live(terminal, ready_warm_up(http, gateway))

        await private_redis.stop()
        await wait_until(
            lambda: _broker_is(http, gateway, "down"),
            within=10,
            what="the gateway to see Redis down",
        )
        # a mutation fails -> .ok() raises
        during = await reserve(http, gateway, "during-the-outage")
        await mark_ready(http, gateway, during)
        # Redis stays down until the relay has tried to publish these and failed.
        await wait_until(
            lambda: RELAY_FAILED in gateway.log(),
            within=10,
            what="the outbox relay to fail to publish with Redis down",
        )
        assert await unpublished(clean_db) > 0, "events were published with Redis down?"

        await private_redis.start()  # the same port
        # Pub/sub has no replay: what was published before this process's subscription to Redis
        # was back is lost to it. Events made after recovery must come through, on the same
        # subscription, once the gateway has reconnected (its backoff is at most 5 s).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECOVERY_SECONDS
        after: set[str] = set()  # reservations made after Redis came back
        seen: list[dict[str, Any]] = []
        while True:
            assert loop.time() < deadline, (
                f"no event made after Redis came back reached the subscriber within "
                f"{RECOVERY_SECONDS} s; seen {seen}\n{gateway.log()}"
            )
            held = await reserve(
                http, gateway, f"after-the-outage-{len(after)}", sku="WARM", quantity=1
            )
            await mark_ready(http, gateway, held)
            after.add(held["id"])
            if await _one_of(terminal, after, seen):
                break

    assert {e["type"] for e in seen} == {"READY_FOR_PICKUP"}
    assert {e["reservation"]["id"] for e in seen} <= after | {during["id"]}
    await wait_until(
        lambda: _all_published(clean_db),
        within=RECOVERY_SECONDS,
        what="every outbox row to be published after Redis came back",
    )
    assert (await gateway.readiness(http))[1]["broker"] == "up"


async def _one_of(terminal: Live, ids: set[str], seen: list[dict[str, Any]]) -> bool:
    """Reads events until one of a reservation in `ids` (True) or none for a while (False)."""
    while True:
        try:
            event = await terminal.next(within=DELIVERY_SECONDS)
        except NoEvent:
            return False
        seen.append(event)
        if event["reservation"]["id"] in ids:
            return True


async def _broker_is(http: httpx.AsyncClient, gateway: GatewayProcess, state: str) -> bool:
    return (await gateway.readiness(http))[1].get("broker") == state


async def _all_published(db: Database) -> bool:
    return await unpublished(db) == 0
