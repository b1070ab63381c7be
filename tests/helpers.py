"""Builders for the tests: stores, SKUs and stock through the same use cases the API calls."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette

from adapters.db.engine import Database
from adapters.db.tables import outbox, reservations, stock_levels, stock_movements
from domain.catalog import StockCount, Store
from domain.clock import Clock
from domain.commands import Reserve
from domain.geo import GeoPoint
from services import stock
from services.unit_of_work import UnitOfWorkFactory

# A few stores along a line east of a point in London: S1 nearest, 1 km apart.
ORIGIN = GeoPoint(51.5, -0.12)


def store_at(store_id: str, km_east: float, *, lat: float = ORIGIN.lat) -> Store:
    # 1 degree of longitude at 51.5 N is about 69.4 km.
    return Store.build(
        id=store_id,
        name=f"Store {store_id}",
        lat=lat,
        lon=ORIGIN.lon + km_east / 69.4,
        timezone="Europe/London",
    )


async def given_stores(uow: UnitOfWorkFactory, clock: Clock, *stores: Store) -> None:
    await stock.upsert_stores(list(stores), uow=uow, clock=clock)


async def given_stock(
    uow: UnitOfWorkFactory,
    clock: Clock,
    levels: dict[tuple[str, str], int],
    safety: int | None = None,
) -> None:
    await stock.sync_stock(
        [
            StockCount.build(store_id=s, sku=k, on_hand=q, safety_stock=safety)
            for (s, k), q in levels.items()
        ],
        uow=uow,
        clock=clock,
    )


def reserve_cmd(
    customer: str = "c1", lines: dict[str, int] | None = None, **kwargs: Any
) -> Reserve:
    return Reserve.build(customer_id=customer, lines=list((lines or {"SKU1": 1}).items()), **kwargs)


async def snapshot(db: Database) -> dict[str, Any]:
    """What a failed call must leave unchanged: stock, reservations, outbox, ledger."""
    async with db.read() as conn:
        levels = (await conn.execute(sa.select(stock_levels).order_by("store_id", "sku"))).all()
        counts = {
            table.name: (
                await conn.execute(sa.select(sa.func.count()).select_from(table))
            ).scalar_one()
            for table in (reservations, outbox, stock_movements)
        }
    return {"levels": [tuple(row) for row in levels], **counts}


async def level(db: Database, store_id: str, sku: str) -> tuple[int, int]:
    """(on hand, reserved) of one row."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(stock_levels.c.on_hand, stock_levels.c.reserved).where(
                    stock_levels.c.store_id == store_id, stock_levels.c.sku == sku
                )
            )
        ).one()
    return row.on_hand, row.reserved


# --- serving apps on loopback ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The ASGI app served by uvicorn on a free loopback port, in the test loop; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        task.result()  # raises what stopped it
        raise RuntimeError("the server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
