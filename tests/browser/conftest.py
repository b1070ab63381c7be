"""The browser tier: the consoles driven in Debian's Chromium by Playwright, against a real gateway
served by uvicorn on a free port in the test loop (SQLite and in-memory events by default;
PostgreSQL and Redis when the environment names them, as for every other tier).

Playwright runs the system's /usr/bin/chromium (`executable_path`), never a browser of its own:
`playwright install` downloads one, which CI must not do. Without that binary the tier is
skipped, and a strict run (ROPOS_TEST_STRICT=1) turns the skip into a failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from adapters.db.engine import Database
from tests.api.conftest import Gateway, running_gateway
from tests.browser.consoles import Consoles
from tests.conftest import START

CHROMIUM = Path("/usr/bin/chromium")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: the consoles in a real browser (Playwright and Debian's Chromium)"
    )


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (what .ci/run does)")
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """One headless Chromium for the run; each test gets contexts of its own (no shared
    storage, cookies or permissions)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            # A till plays its chime only after a click; in the tests it may play at once.
            args=["--autoplay-policy=no-user-gesture-required"],
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def served(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    """One gateway for the browser tests. A POS webhook that fails once is dead at once (what
    /ops replays)."""
    async with running_gateway(database_url, db, webhook_max_attempts=1) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def consoles(
    served: Gateway, clean_db: Database, browser: Browser
) -> AsyncIterator[Consoles]:
    """The gateway with an empty database and its clock at START, and the browser to open its
    consoles in; every page the test opened is closed after it, and a script error on any of
    them fails the test."""
    served.clock.set(START)
    runtime = served.app.state.runtime
    runtime.db.forget_cached()
    runtime.deps.intake_accounts.clear()
    runtime.deps.intake_backlog.clear()
    runtime.deps.intake_counts.clear()
    runtime.rate_limits.store.clear()
    runtime.deps.reserve_attempts.clear()
    async with httpx.AsyncClient(timeout=30) as http:
        opened = Consoles(served, browser, http)
        try:
            yield opened
        finally:
            await opened.close()
    assert not opened.script_errors, opened.script_errors
