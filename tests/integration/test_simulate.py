"""`ropos simulate` end to end on the test backend (SQLite, or a fresh PostgreSQL database per
run on ROPOS_TEST_DATABASE_URL's server, through --database-url): a small day twice with the same
seed, in two processes with different hash seeds, writes byte-identical KPI JSON; another seed
gives another day; the figures are within what a chain could have; the plot is a PNG."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.db.engine import Database
from adapters.db.uow import SqlUnitOfWork
from domain.catalog import Store
from gateway import migrate, simulate_report
from gateway.simulate import Outcome, simulate
from services import stock
from services.simulation import Parameters, SimClock
from tests.conftest import _create_postgres_database, _drop_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"stores": 3, "shoppers": 150, "hours": 3.0}
SMALL_PARAMS: dict[str, Any] = dict(SMALL)
PNG = b"\x89PNG\r\n\x1a\n"


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str | None]:
    """A new empty database on the test server; None on SQLite (the run makes its own file)."""
    server = os.environ.get("ROPOS_TEST_DATABASE_URL")
    if not server:
        yield None
        return
    url, name = await _create_postgres_database(server)
    try:
        yield url
    finally:
        await _drop_postgres_database(server, name)


async def run_cli(tmp: Path, name: str, *args: str, hash_seed: str) -> tuple[bytes, str]:
    """`ropos simulate` in a process of its own; the JSON it wrote and what it printed."""
    out = tmp / f"{name}.json"
    async with fresh_database() as url:
        command = [sys.executable, "-m", "gateway.cli", "simulate", *args, "--json", str(out)]
        if url is not None:
            command += ["--database-url", url]
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-3000:]
    return out.read_bytes(), stdout.decode()


def small(seed: int) -> list[str]:
    return [f"--{k}={v}" for k, v in {"seed": seed, **SMALL}.items()]


async def simulate_in_process(params: Parameters) -> Outcome:
    async with fresh_database() as url:
        return await simulate(params, database_url=url)


async def test_a_seed_gives_the_same_day_and_another_seed_another(tmp_path: Path) -> None:
    plot = tmp_path / "day.png"
    # Three days at once, each on a database of its own (the two cores run them side by side).
    (written, printed), (again, _), other = await asyncio.gather(
        run_cli(tmp_path, "first", *small(7), "--plot", str(plot), hash_seed="1"),
        run_cli(tmp_path, "again", *small(7), "--plot", "-", hash_seed="2"),
        simulate_in_process(Parameters(seed=8, **SMALL_PARAMS)),
    )
    assert written == again  # byte for byte, whatever the process's string hashing
    first = json.loads(written)
    assert other.to_json()["kpis"] != first["kpis"]
    assert other.to_json()["hourly"] != first["hourly"]
    assert simulate_report.json_text(other) != written.decode()
    # What an operator reads: the parameters first, the KPIs beside the targets, the plot.
    assert printed.index("Parameters") < printed.index("The day's KPIs")
    for target in ("98.5 %", "< 30.0 min", "99.2 %"):
        assert target in printed
    assert plot.read_bytes().startswith(PNG)
    assert f"Plot of the day by hour: {plot}" in printed
    assert_plausible(first)


def assert_plausible(day: dict[str, Any]) -> None:
    """Figures a real chain could have, from both sources of reserves."""
    kpis = day["kpis"]
    success = kpis["reservationSuccess"]
    assert success["asked"] >= SMALL["shoppers"]  # every shopper asks, a few again
    assert 0.8 <= success["rateWhereStockExisted"] <= 1
    assert success["technicalFailures"] == 0
    channels = {c["channel"]: c["figures"] for c in kpis["perChannel"]}
    assert {"web", "app", "generic:shop"} <= set(channels)
    assert all(channels[c]["reservationSuccess"]["reserved"] > 0 for c in channels)
    wait = kpis["pickupWait"]
    assert wait["count"] > 0
    assert 0 < wait["meanSeconds"] < 30 * 60
    assert wait["p90Seconds"] > wait["p50Seconds"]
    assert kpis["timeToReady"]["count"] > 0
    endings = kpis["endings"]
    assert endings["collected"] > endings["expired"] > 0
    assert endings["noShows"] > 0
    accuracy = kpis["stockAccuracy"]
    assert accuracy["pick"]["lines"] > 0
    assert accuracy["reconciliation"]["lines"] > 0
    assert 0.9 <= accuracy["overall"]["rate"] <= 1
    # The hours of the day were read as it ran, each its own window.
    hourly = day["hourly"]
    assert [h["hour"] for h in hourly[:3]] == ["09:00", "10:00", "11:00"]
    assert sum(h["asked"] for h in hourly) == success["asked"]
    assert day["happened"]["shoppers"] == SMALL["shoppers"]


async def test_the_report_says_when_a_target_is_not_met(tmp_path: Path) -> None:
    async with fresh_database() as url:
        day = await simulate(
            Parameters(seed=3, stores=2, shoppers=60, hours=2.0, handover_median_minutes=45.0),
            database_url=url,
        )
    printed = simulate_report.text(day, 1.0, None)
    wait_line = next(line for line in printed.splitlines() if "average pickup wait" in line)
    assert wait_line.rstrip().endswith("NOT MET")
    assert day.kpis["pickupWait"]["meanWithinTarget"] is False


async def test_a_database_that_holds_stores_is_refused(tmp_path: Path) -> None:
    async with fresh_database() as server_url:
        url = server_url or f"sqlite+aiosqlite:///{tmp_path / 'used.db'}"
        db = Database(url)
        try:
            await migrate.upgrade(db)
            await stock.upsert_stores(
                [Store.build(id="S001", name="A store", lat=51.5, lon=-0.1, timezone="UTC")],
                uow=lambda: SqlUnitOfWork(db),
                clock=SimClock(Parameters().opens),
            )
        finally:
            await db.dispose()
        with pytest.raises(SystemExit, match="already holds stores"):
            await simulate(Parameters(stores=1, shoppers=1, hours=1.0), database_url=url)
        db = Database(url)
        try:
            async with db.read() as conn:
                names = (await conn.exec_driver_sql("SELECT id, name FROM stores")).all()
        finally:
            await db.dispose()
        assert [tuple(row) for row in names] == [("S001", "A store")]  # nothing was touched
