"""A real gateway for API tests: uvicorn serving the app on a free loopback port, in the test
loop, with a controlled clock; and a small client that speaks GraphQL over HTTP to it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from adapters.db.engine import Database
from domain.access import Role
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.settings import Settings
from tests.clock import FakeClock
from tests.conftest import START
from tests.helpers import serving


class Endpoint(Protocol):
    """What the API helpers use of a gateway, in this process or another: where it listens, and
    tokens it accepts."""

    @property
    def url(self) -> str: ...

    def token(
        self, role: Role | str, *, sub: str | None = None, store: str | None = None
    ) -> str: ...


@dataclass
class Gateway:
    url: str
    settings: Settings
    clock: FakeClock
    db: Database
    app: Starlette

    def token(
        self,
        role: Role | str,
        *,
        sub: str | None = None,
        store: str | None = None,
        channel: str | None = None,
        ttl: int | None = None,
    ) -> str:
        role = Role(role)
        return issue_token(
            self.settings,
            role=role,
            subject=sub or f"{role.value}-1",
            now=self.clock.now(),
            store_id=store,
            channel=channel,
            ttl_seconds=ttl,
        )


@asynccontextmanager
async def running_gateway(
    database_url: str, db: Database, **overrides: Any
) -> AsyncIterator[Gateway]:
    """A gateway on the test database with short worker intervals; `overrides` are settings."""
    options: dict[str, Any] = {
        "database_url": database_url,
        "broker_url": os.environ.get("ROPOS_TEST_BROKER_URL", "memory://"),
        "sweep_interval_seconds": 0.1,
        "relay_interval_seconds": 0.2,
        "webhook_interval_seconds": 0.1,
        "webhook_max_attempts": 3,
        "intake_interval_seconds": 0.1,
        # The gap sweep runs where a test asks for it (test_intake_sweep.py).
        "intake_sweep_interval_seconds": 0,
        "log_json": False,
        "graphiql": True,
    }
    settings = Settings(**{**options, **overrides})
    clock = FakeClock(START)
    app = create_app(settings, clock=clock)
    async with serving(app) as url:
        yield Gateway(url, settings, clock, db, app)


@asynccontextmanager
async def intake_stopped(gateway: Gateway) -> AsyncIterator[None]:
    """The gateway's intake worker stopped meanwhile (what is stored stays waiting), started
    again on leaving, whatever happened."""
    worker = gateway.app.state.runtime.intake
    assert worker is not None
    await worker.stop()
    try:
        yield
    finally:
        worker.start()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    """One uvicorn server per test module; its clock is set back to START before each test."""
    async with running_gateway(database_url, db) as running:
        yield running


def _forget_the_last_test(gateway: Gateway) -> None:
    runtime = gateway.app.state.runtime
    # The database is reset under the running server: forget what it had cached.
    runtime.db.forget_cached()
    runtime.deps.intake_accounts.clear()
    runtime.deps.intake_backlog.clear()
    # Counts not written yet would be written into the next test's database (and their upserts
    # would contend with its reset's TRUNCATE).
    runtime.deps.intake_counts.clear()
    runtime.deps.reserve_attempts.clear()
    # Each test starts with full rate-limit buckets (the clock is set back; counts are not).
    runtime.rate_limits.store.clear()


@pytest.fixture
def gateway_between_tests(gateway: Gateway) -> Gateway:
    """The running gateway with the last test's unwritten counts dropped, before the reset."""
    _forget_the_last_test(gateway)
    return gateway


@pytest.fixture
def api(gateway_between_tests: Gateway, clean_db: Database) -> Gateway:
    """The running gateway, with an empty database and its clock at START."""
    gateway_between_tests.clock.set(START)
    _forget_the_last_test(gateway_between_tests)
    return gateway_between_tests


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@dataclass
class Result:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    def ok(self) -> Any:
        assert not self.errors, self.errors
        return self.data


async def gql(
    client: httpx.AsyncClient,
    api: Endpoint,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> Result:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        f"{api.url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    return Result(response.status_code, response.json())


@dataclass
class ChannelEmulator:
    """`ropos channel-emulator` served on a free port, and its admin API."""

    url: str
    app: Starlette

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.request(method, f"{self.url}{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def emulator() -> AsyncIterator[ChannelEmulator]:
    """The channels' APIs (one emulator per test module that asks for it)."""
    from adapters.channels.emulator import create_channel_emulator

    app = create_channel_emulator()
    async with serving(app) as url:
        yield ChannelEmulator(url, app)
