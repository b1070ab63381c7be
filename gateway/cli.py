"""The `ropos` command: serve, worker, wms-emulator, channel-emulator, wms-baseline, migrate, seed,
check, token, export-schema, simulate."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.access import Role
from domain.clock import SystemClock
from domain.errors import DomainError
from gateway.settings import Settings


def _settings() -> Settings:

    try:
        return Settings()
    except ValidationError as error:
        messages = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        sys.exit(f"ropos: bad settings: {messages}")


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway import logs
    from gateway.app import create_app

    settings = _settings()
    logs.configure(settings.log_level, json_lines=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Events are a few hundred bytes; per-socket compressors cost ~40 KB each.
        ws_per_message_deflate=False,
        # One WebSocket message at most this big (the app checks it too): a larger frame is
        # refused by the server before it is buffered whole.
        ws_max_size=settings.graphql_max_bytes,
        timeout_graceful_shutdown=10,
    )


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop where it is installed (as uvicorn does for `serve`: its event loop
    costs a third of asyncio's per database round trip), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def cmd_worker(args: argparse.Namespace) -> None:
    from gateway import logs
    from gateway.runtime import running

    settings = _settings()
    logs.configure(settings.log_level, json_lines=settings.log_json)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with running(settings, SystemClock(), workers=True):
            await stop.wait()

    _run_loop(run())


def cmd_wms_emulator(args: argparse.Namespace) -> None:
    import uvicorn

    from adapters.wms.emulator import create_emulator
    from gateway.seed import demo_skus, demo_stock, demo_stores

    app = create_emulator(token=args.token or os.environ.get("ROPOS_WMS_TOKEN"))
    if args.demo:
        # The same counts `ropos seed --demo` gives ROPOS: both sides start in step.
        for level in demo_stock(demo_stores(), demo_skus()):
            app.state.wms.set_level(level.store_id, level.sku, level.on_hand)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


def cmd_channel_emulator(args: argparse.Namespace) -> None:
    import uvicorn

    from adapters.channels.emulator import create_channel_emulator

    uvicorn.run(create_channel_emulator(), host=args.host, port=args.port, log_level="info")


def cmd_wms_baseline(args: argparse.Namespace) -> None:
    from adapters.db.engine import Database
    from adapters.db.uow import SqlUnitOfWork
    from services.wms import feed

    settings = _settings()
    if not args.yes:
        sys.exit(
            "ropos wms-baseline: movements not yet sent to the WMS will never be sent. "
            "Run it once, when connecting a WMS that has its own counts, with --yes."
        )

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            return await feed.baseline(uow=lambda: SqlUnitOfWork(db))
        finally:
            await db.dispose()

    print(json.dumps({"passed_over": asyncio.run(run())}))


def cmd_migrate(args: argparse.Namespace) -> None:
    from adapters.db.engine import Database
    from gateway import migrate

    settings = _settings()

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            if args.downgrade:
                await migrate.downgrade(db, args.downgrade)
            else:
                await migrate.upgrade(db, args.revision)
            print(f"database at migration {await migrate.current_revision(db) or 'none'}")
        finally:
            await db.dispose()

    asyncio.run(run())


def cmd_seed(args: argparse.Namespace) -> None:
    from adapters.db.engine import Database
    from adapters.db.uow import SqlUnitOfWork
    from gateway.seed import load_demo

    if not args.demo:
        sys.exit("ropos seed: say what to load (--demo)")
    settings = _settings()

    async def run() -> dict[str, int]:
        db = Database(settings.database_url)
        try:
            return await load_demo(uow=lambda: SqlUnitOfWork(db), clock=SystemClock())
        finally:
            await db.dispose()

    print(json.dumps({"loaded": asyncio.run(run())}))


def cmd_check(args: argparse.Namespace) -> None:
    from adapters.db import invariants
    from adapters.db.engine import Database

    settings = _settings()

    async def run() -> dict[str, list[tuple[object, ...]]]:
        db = Database(settings.database_url)
        try:
            return await invariants.violations(db)
        finally:
            await db.dispose()

    broken = asyncio.run(run())
    print(json.dumps({"ok": not broken, "violations": broken}, default=str, indent=2))
    if broken:
        sys.exit(1)


def cmd_token(args: argparse.Namespace) -> None:
    from gateway.auth import issue_token

    settings = _settings()
    role = Role(args.role)
    subject = args.sub or {Role.CUSTOMER: "customer-1"}.get(role, f"{role.value}-1")
    try:
        print(
            issue_token(
                settings,
                role=role,
                subject=subject,
                now=SystemClock().now(),
                store_id=args.store,
                channel=args.channel,
                ttl_seconds=args.ttl,
                kid=args.kid,
            )
        )
    except DomainError as error:
        sys.exit(f"ropos token: {error.message}")


def cmd_export_schema(args: argparse.Namespace) -> None:
    from resolvers.root import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl)
        print(f"wrote {args.output}")


def cmd_simulate(args: argparse.Namespace) -> None:
    import time

    from gateway import logs, simulate_report
    from gateway.seed import LONDON_STORES
    from gateway.simulate import Outcome, simulate
    from services.simulation import Parameters

    if not 1 <= args.stores <= len(LONDON_STORES):
        sys.exit(f"ropos simulate: --stores is 1 to {len(LONDON_STORES)} (the demo chain's)")
    try:
        params = Parameters(
            seed=args.seed, stores=args.stores, shoppers=args.shoppers, hours=args.hours
        )
    except ValueError as error:
        sys.exit(f"ropos simulate: {error}")
    plot = None if args.plot == "-" else args.plot
    _check_simulate_outputs(plot, args.json)
    # The services' own log lines (a shortage resolved, a hold expired) are the day's noise here.
    logs.configure(args.log_level, json_lines=False)
    print(simulate_report.header(params), flush=True)
    done: list[Outcome] = []

    async def run() -> None:
        done.append(await simulate(params, database_url=args.database_url))

    started = time.monotonic()
    _run_loop(run())
    took = time.monotonic() - started
    outcome = done[0]
    if plot is not None:
        simulate_report.plot(outcome, Path(plot))
    if args.json:
        Path(args.json).write_text(simulate_report.json_text(outcome))
    print(simulate_report.text(outcome, took, plot))


def _check_simulate_outputs(plot: str | None, json_path: str | None) -> None:
    """Refuse, before a run of minutes, what could only fail at its end."""
    import importlib.util

    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        sys.exit(
            "ropos simulate: the plot needs matplotlib (pip install 'ropos[sim]'), "
            "or --plot - for none"
        )
    for option, path in (("--plot", plot), ("--json", json_path)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            sys.exit(f"ropos simulate: {option} {path}: its folder does not exist")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ropos", description="ROPOS: reserve online, pick up in store."
    )
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (GraphQL at /graphql)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the background workers without the HTTP server")
    worker.set_defaults(func=cmd_worker)

    emulator = sub.add_parser(
        "wms-emulator", help="run the reference WMS emulator (for the demo and tests)"
    )
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8700)
    emulator.add_argument("--token", help="the bearer token it requires (default ROPOS_WMS_TOKEN)")
    emulator.add_argument(
        "--demo", action="store_true", help="start with the demo chain's stock (as `seed --demo`)"
    )
    emulator.set_defaults(func=cmd_wms_emulator)

    channels = sub.add_parser(
        "channel-emulator",
        help="run the reference emulator of the BigCommerce, Square and Amazon order APIs "
        "(for the demo and tests)",
    )
    channels.add_argument("--host", default="127.0.0.1")
    channels.add_argument("--port", type=int, default=8710)
    channels.set_defaults(func=cmd_channel_emulator)

    baseline = sub.add_parser(
        "wms-baseline",
        help="connecting a WMS to a running ROPOS: do not send it the movements made before",
    )
    baseline.add_argument("--yes", action="store_true", help="yes, pass them over")
    baseline.set_defaults(func=cmd_wms_baseline)

    migrate = sub.add_parser("migrate", help="upgrade the database to the newest migration")
    migrate.add_argument("--revision", default="head")
    migrate.add_argument(
        "--downgrade", metavar="REVISION", help="downgrade to REVISION (e.g. base)"
    )
    migrate.set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed", help="load data")
    seed.add_argument(
        "--demo", action="store_true", help="the demo chain: London stores, SKUs, stock"
    )
    seed.set_defaults(func=cmd_seed)

    check = sub.add_parser("check", help="check the stock and reservation invariants")
    check.set_defaults(func=cmd_check)

    token = sub.add_parser("token", help="print a signed JWT for local use and tests")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--store", help="the store (staff, pos)")
    token.add_argument("--sub", help="the subject: the customer id for customers")
    token.add_argument("--channel", help="the channel (channel role)")
    token.add_argument(
        "--ttl", type=int, help="lifetime in seconds (default ROPOS_TOKEN_TTL_SECONDS)"
    )
    token.add_argument(
        "--kid", help="the key to sign with (default ROPOS_JWT_SIGNING_KID, or the only key)"
    )
    token.set_defaults(func=cmd_token)

    export = sub.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", default="schema/schema.graphql")
    export.set_defaults(func=cmd_export_schema)

    sim = sub.add_parser(
        "simulate",
        help="a day of a chain in accelerated time, through the real services: the KPIs beside "
        "the targets, and a plot",
    )
    sim.add_argument("--seed", type=int, default=1, help="the same seed gives the same day")
    sim.add_argument("--stores", type=int, default=25, help="the first N demo stores (1 to 28)")
    sim.add_argument("--shoppers", type=int, default=3000, help="shoppers over the day")
    sim.add_argument("--hours", type=float, default=14.0, help="opening hours from 08:00")
    sim.add_argument(
        "--database-url",
        help="an empty database to run on (e.g. PostgreSQL); default: a temporary SQLite file",
    )
    sim.add_argument("--plot", default="simulation.png", help="the PNG to write ('-': none)")
    sim.add_argument("--json", help="also write the KPIs, hour by hour too, as JSON here")
    sim.add_argument("--log-level", default="ERROR", help="of the services' logs (default ERROR)")
    sim.set_defaults(func=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (SQLAlchemyError, OSError) as error:
        sys.exit(f"ropos {args.command}: cannot use the database: {error}")


if __name__ == "__main__":
    main()
