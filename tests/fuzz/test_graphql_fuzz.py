"""GraphQL fuzzing: hypothesis-graphql writes valid (and, now and then, deliberately invalid)
queries and mutations of every root field of the served schema, with nasty scalars (the 32-bit
edges, odd and empty strings, unicode, empty lists, negative quantities, far-away dates, huge and
malformed decimals) mixed with the ids and codes of a small world (two stores, stock, reservations
in each state, a channel account, an intake message), and sends each over HTTP to a real gateway
with the token of one kind of caller (mostly one the field lets in, by the auth matrix), or none.
Rate limits are off here (they are tested on their own). Subscriptions are not fuzzed here: a
subscription that is accepted waits for events, so what it answers could only be judged after a
wait; their refusals and first frames are tested in tests/api/test_subscriptions.py.

Whatever it sends, the answer must keep the contract: HTTP status below 500; every error with a
code from the contract's list, never INTERNAL; no traceback and no Python exception's name in any
message (unless the request itself said it); and a refused request changes nothing: a query never
changes a row, nor does a mutation answered with errors and no data.

The gateway runs without its background workers, so between two requests nothing moves in the
database: any difference is the request's doing. Every string it can generate is either random
text without "://" or one of a few fixed values; the only URLs are loopback ones, so nothing a
generated request stores (a POS webhook, a channel's API) can point outside this machine."""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import graphql
import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis_graphql import Mode, mutations, nodes, queries

from adapters.db import invariants
from adapters.db.engine import Database
from adapters.db.tables import metadata
from domain.intake import SalesChannel
from resolvers.root import build_schema
from tests.api import test_auth_matrix as matrix
from tests.api.conftest import Gateway, gql, running_gateway
from tests.api.given import (
    KINGS_CROSS,
    OXFORD_CIRCUS,
    given_reservation,
    given_stock,
    given_stores,
)
from tests.api.test_intake_flow import an_order, generic_body, given_account, post
from tests.conftest import START, reset
from tests.property.profiles import bounded

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONTRACT_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "BAD_USER_INPUT",
        "NOT_FOUND",
        "OUT_OF_STOCK",
        "LIMIT_EXCEEDED",
        "INVALID_TRANSITION",
        "RESERVATION_EXPIRED",
        "RATE_LIMITED",
        "INTERNAL",
    }
)
# Bookkeeping a refused request may touch without changing anything: counters of attempts and
# refusals (written by in-memory tallies each second), worker leases.
_BOOKKEEPING = {"reserve_attempts", "intake_counts", "worker_leases"}

# What a message must not show: a traceback, a source line, the name of a Python exception or
# of a database driver. (graphql-core's own "Syntax Error: ..." is not a class name.)
_EXCEPTIONS = sorted(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type)
    and issubclass(value, BaseException)
    and not issubclass(value, Warning)
)
LEAK = re.compile(
    r"Traceback|File \"|line \d+, in |\b(?:"
    + "|".join(_EXCEPTIONS)
    + r")\b|\b[A-Z][a-z]+(?:[A-Z][a-z]*)*(?:Error|Exception)\b"
    + r"|sqlalchemy|asyncpg|aiosqlite|sqlite3|psycopg|strawberry\.|graphql\.error"
)

# Each caller of this module as the auth matrix's column of that kind of caller (a customer, a
# store's staff or POS and the other store's, ...): who gets past each field's permissions.
_MATRIX_COLUMN = {
    caller: matrix.CALLERS.index(column)
    for caller, column in {
        "nobody": matrix.ANONYMOUS,
        "forged": matrix.GARBAGE,
        "customer": matrix.ALICE,
        "other customer": matrix.BOB,
        "staff": matrix.STAFF,
        "staff elsewhere": matrix.STAFF_ELSEWHERE,
        "pos": matrix.POS,
        "pos elsewhere": matrix.POS_ELSEWHERE,
        "ops": matrix.OPS,
        "wms": matrix.WMS,
        "channel": matrix.CHANNEL,
    }.items()
}

# --- nasty scalars -------------------------------------------------------------------------------

INT32 = 2**31 - 1
LOOPBACK_URLS = ("http://127.0.0.1:9/hooks", "https://127.0.0.1:9/api")


def _harmless(text: str) -> bool:
    """Random text that is no URL (nothing generated may point outside this machine) and names no
    exception (so a message echoing it is not taken for a leak)."""
    return "://" not in text and not LEAK.search(text)


RANDOM_TEXT = st.text(max_size=40).filter(_harmless)
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "\x00",
        "\u200b",
        "é",
        "ǅ",
        "😀",
        "\U0001f937\u200d\u2640\ufe0f",
        "S001 ",
        " SKU-1",
        "sku-1",
        "'; DROP TABLE stores; --",
        "%s%n",
        "{{7*7}}",
        "../../etc/passwd",
        "x" * 65,
        "x" * 201,
        "y" * 5_000,
        *LOOPBACK_URLS,
    ]
)
DATES = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.sampled_from(
        [None, UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))]
    ),
)
SOON = st.integers(-10 * 86400, 10 * 86400).map(lambda s: START + timedelta(seconds=s))
DATE_TEXT = st.one_of(
    SOON.map(datetime.isoformat),
    DATES.map(datetime.isoformat),
    st.sampled_from(
        [
            START.isoformat(),
            "2026-03-02T09:00:00Z",
            "2026-03-01",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59.999999+14:00",
            "2026-13-45T99:99:99Z",
            "yesterday",
            "",
        ]
    ),
)
DECIMALS = st.one_of(
    st.sampled_from(
        [
            "9.99",
            "0",
            "0.00",
            "-0.01",
            "-1",
            "0.001",
            "1e400",
            "-1e-400",
            "NaN",
            "sNaN",
            "Infinity",
            "-Infinity",
            "123456789012345678901234567890.123456789",
            "99999999999.99",
            "abc",
            "",
        ]
    ).map(nodes.String),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(nodes.String),
    st.integers(-INT32 - 1, INT32).map(nodes.Int),
)
SMALL_INTS = st.sampled_from([1, 2, 0, 3, 5, 10, 100, 7200, 86400, 900, -1])
INTS = st.one_of(
    SMALL_INTS,
    SMALL_INTS,
    st.sampled_from([-INT32 - 1, INT32, 1000, 10_000, 10_001, 1_000_000]),
    st.integers(-INT32 - 1, INT32),
).map(nodes.Int)
FLOATS = st.one_of(
    st.sampled_from(
        [
            *(0.0, -0.0, 1.0, 51.5152, -0.1419, 51.5308, 90.0, -90.0, 180.0, -180.0, 90.000001),
            *(1e308, -1e308, 5e-324, 1e-9, 1e3, 1e6),
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
).map(nodes.Float)


@dataclass
class World:
    """The ids and codes set up before fuzzing, and the strategies built from them."""

    gateway: Gateway
    reservation_ids: list[str]
    codes: list[str]
    qr_payloads: list[str]
    message_ids: list[str]
    callers: list[tuple[str, str | None]] = field(default_factory=list)
    # The rows as the last request left them, when they were read after it.
    rows: dict[str, list[tuple[Any, ...]]] | None = None
    operations: dict[tuple[str, str, bool], st.SearchStrategy[str]] = field(default_factory=dict)

    def scalars(self) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
        known_ids = st.sampled_from(
            [
                "S001",
                "S002",
                "S999",
                "no-such-id",
                *self.reservation_ids,
                *self.message_ids,
            ]
        )
        known_text = st.sampled_from(
            [
                "SKU-1",
                "SKU-2",
                "SKU-3",
                "S001",
                "web",
                "acme",
                "web-shop",
                "GBP",
                "card",
                "pay-1",
                "bay 4",
                "changed my mind",
                "a-secret-of-the-s001-pos",
                *self.codes,
                *self.qr_payloads,
                *self.reservation_ids,
            ]
        )
        # Mostly what the world holds, so that requests get past validation to the services.
        text = st.one_of(*[known_text] * 8, ODD_TEXT, RANDOM_TEXT)
        return {
            "String": text.map(nodes.String),
            "ID": st.one_of(known_ids, known_ids, known_ids, text).map(nodes.String) | INTS,
            "Int": INTS,
            "Float": FLOATS,
            "DateTime": DATE_TEXT.map(nodes.String),
            "Decimal": DECIMALS,
        }

    def caller(self, name: str) -> st.SearchStrategy[tuple[str, str | None]]:
        """Mostly a caller the field lets in (by the auth matrix), so the fuzzing reaches the
        resolvers and services behind the permissions; now and then anyone."""
        row = matrix.MATRIX.get(name)
        allowed = [
            (caller, token)
            for caller, token in self.callers
            if row is None or row[_MATRIX_COLUMN[caller]] not in ("UNAUTHENTICATED", "FORBIDDEN")
        ]
        anyone = st.sampled_from(self.callers)
        return st.one_of(*[st.sampled_from(allowed)] * 3, anyone) if allowed else anyone

    def operation(self, kind: str, name: str, negative: bool) -> st.SearchStrategy[str]:
        """One root field's operations (built once per field and mode)."""
        key = (kind, name, negative)
        if key not in self.operations:
            make = queries if kind == "query" else mutations
            self.operations[key] = make(
                SDL,
                fields=[name],
                custom_scalars=self.scalars(),
                mode=Mode.NEGATIVE if negative else Mode.POSITIVE,
            )
        return self.operations[key]


SDL = build_schema().as_str()
_PARSED = graphql.build_schema(SDL)
assert _PARSED.query_type is not None
assert _PARSED.mutation_type is not None
QUERY_FIELDS = sorted(_PARSED.query_type.fields)
MUTATION_FIELDS = sorted(_PARSED.mutation_type.fields)


# Rate limits are tested on their own (tests/api/test_rate_limits.py); here they would refuse
# the fuzzing's requests before they reach what is fuzzed.
_NO_RATE_LIMITS = {
    f"rate_limit_{edge}_per_second": 0
    for edge in ("graphql", "graphql_service", "graphql_anonymous", "intake", "wms")
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def quiet_gateway(database_url: str, db: Database) -> AsyncIterator[Gateway]:
    """A gateway without background workers: between two requests nothing in the database
    moves, so what a request changed can be seen."""
    async with running_gateway(database_url, db, run_workers=False, **_NO_RATE_LIMITS) as gateway:
        yield gateway


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    quiet_gateway: Gateway, db: Database, http: httpx.AsyncClient
) -> AsyncIterator[World]:
    """Two stores with stock; reservations held, ready, cancelled and collected; a channel
    account with one stored delivery; a POS webhook (on loopback). Set up once for the module:
    what the fuzzing changes stays for the fields fuzzed after (any state must keep the
    contract), and the invariants must still hold at the end."""
    await reset(db)
    api = quiet_gateway
    api.clock.set(START)
    runtime = api.app.state.runtime
    runtime.db.forget_cached()
    runtime.deps.intake_accounts.clear()
    ops = api.token("ops")
    await given_stores(http, api, OXFORD_CIRCUS, KINGS_CROSS)
    await given_stock(
        http,
        api,
        {
            ("S001", "SKU-1"): 10,
            ("S001", "SKU-2"): 5,
            ("S001", "SKU-3"): 1,
            ("S002", "SKU-1"): 3,
            ("S002", "SKU-2"): 0,
        },
    )
    c1, c2 = api.token("customer", sub="c1"), api.token("customer", sub="c2")
    staff = api.token("staff", store="S001")
    made = [
        await given_reservation(http, api, c1, storeId="S001", lines=[_line("SKU-1", 1)]),
        await given_reservation(http, api, c1, storeId="S001", lines=[_line("SKU-2", 2)]),
        await given_reservation(http, api, c2, storeId="S002", lines=[_line("SKU-1", 2)]),
        await given_reservation(http, api, c2, storeId="S001", lines=[_line("SKU-3", 1)]),
        await given_reservation(
            http, api, ops, customerId="c3", storeId="S001", lines=[_line("SKU-1", 1)]
        ),
    ]
    ready, cancelled, collected = made[1]["id"], made[3]["id"], made[4]["id"]
    for query, variables, token in (
        ("mutation($id: ID!) { markReadyForPickup(id: $id) { id } }", {"id": ready}, staff),
        ("mutation($id: ID!) { cancelReservation(id: $id) { id } }", {"id": cancelled}, c2),
        ("mutation($id: ID!) { markReadyForPickup(id: $id) { id } }", {"id": collected}, staff),
        (
            """mutation($id: ID!) { completePickup(id: $id, payment: {amount: "9.99",
               currency: "GBP", method: "card", reference: "pay-1"}) { id } }""",
            {"id": collected},
            staff,
        ),
        (
            """mutation { setStoreWebhook(storeId: "S001", url: "http://127.0.0.1:9/hooks",
               secret: "a-secret-of-the-s001-pos") { storeId } }""",
            {},
            ops,
        ),
    ):
        (await gql(http, api, query, variables, token)).ok()
    qr = "query($id: ID!) { reservation(id: $id) { pickupQrPayload } }"
    payload = (await gql(http, api, qr, {"id": made[0]["id"]}, c1)).ok()
    await given_account(api, SalesChannel.GENERIC)
    delivered = await post(http, api, generic_body(an_order()))
    assert delivered.status_code == 202, delivered.text
    world = World(
        gateway=api,
        reservation_ids=[r["id"] for r in made],
        codes=[r["code"] for r in made],
        qr_payloads=[payload["reservation"]["pickupQrPayload"]],
        message_ids=[delivered.json()["messageId"]],
    )
    world.callers = [
        ("ops", ops),
        ("staff", staff),
        ("customer", c1),
        ("other customer", c2),
        ("pos", api.token("pos", store="S001")),
        ("staff elsewhere", api.token("staff", store="S002")),
        ("pos elsewhere", api.token("pos", store="S002")),
        ("wms", api.token("wms")),
        ("channel", api.token("channel", channel="web")),
        ("nobody", None),
        ("forged", "not-a-token"),
    ]
    yield world
    broken = await invariants.violations(db)
    assert not broken, f"invariants broken after fuzzing: {broken}"


def _line(sku: str, quantity: int) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity}


async def fingerprint(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but bookkeeping."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in _BOOKKEEPING:
                continue
            query = sa.select(table).order_by(*table.primary_key.columns)
            found[table.name] = [tuple(row) for row in (await conn.execute(query)).all()]
    return found


def assert_contract(status: int, body: Any, sent: str) -> list[dict[str, Any]]:
    """The answer's shape, whatever was asked; returns its errors."""
    assert status < 500, (status, body)
    assert isinstance(body, dict), body
    assert "data" in body or "errors" in body, body
    errors: list[dict[str, Any]] = body.get("errors") or []
    for error in errors:
        extensions = error.get("extensions") or {}
        code = extensions.get("code")
        assert code in CONTRACT_CODES, f"an error without a contract code: {error}"
        assert code != "INTERNAL", f"an unexpected failure reached the client: {error}"
        assert code != "RATE_LIMITED", f"rate limits are off here: {error}"
        assert not {"exception", "stacktrace", "traceback"} & set(extensions), error
        message = error.get("message")
        assert isinstance(message, str), error
        assert message.strip(), error
        for leak in LEAK.finditer(json.dumps(error, ensure_ascii=False)):
            assert leak.group() in sent, f"{leak.group()!r} in an error: {error}"
    return errors


# The lifecycle's mutations, where a refusal that writes or a crash would hurt most: more
# examples each (their inputs are wide, and most drawn ones are refused at the edge).
LIFECYCLE = frozenset(
    {
        "reserve",
        "cancelReservation",
        "markReadyForPickup",
        "checkIn",
        "scanPickup",
        "completePickup",
        "reportShortPick",
        "syncStock",
        "updateReservationPolicy",
        "setLowStockThresholds",
    }
)
OTHER_FIELDS = [("query", name) for name in QUERY_FIELDS] + [
    ("mutation", name) for name in MUTATION_FIELDS if name not in LIFECYCLE
]


@pytest.mark.parametrize(("kind", "name"), OTHER_FIELDS, ids=lambda value: str(value))
@given(data=st.data())
@bounded(examples=6, long_factor=25)
async def test_every_generated_operation_keeps_the_contract(
    world: World, db: Database, http: httpx.AsyncClient, kind: str, name: str, data: st.DataObject
) -> None:
    await fuzz_one(world, db, http, kind, name, data)


@pytest.mark.parametrize("name", sorted(LIFECYCLE))
@given(data=st.data())
@bounded(examples=20, long_factor=25)
async def test_every_generated_lifecycle_mutation_keeps_the_contract(
    world: World, db: Database, http: httpx.AsyncClient, name: str, data: st.DataObject
) -> None:
    await fuzz_one(world, db, http, "mutation", name, data)


async def fuzz_one(
    world: World,
    db: Database,
    http: httpx.AsyncClient,
    kind: str,
    name: str,
    data: st.DataObject,
) -> None:
    """One generated operation of the field, from one caller: the answer keeps the contract, and
    a query or a refused mutation changes no row."""
    negative = data.draw(st.sampled_from([False, False, False, True]), label="negative")
    try:
        document = data.draw(world.operation(kind, name, negative), label="operation")
    except InvalidArgument:  # a field without arguments cannot be written invalid
        document = data.draw(world.operation(kind, name, False), label="operation")
    caller, token = data.draw(world.caller(name), label="caller")

    # What the last request left (nothing moves between two requests), else read now.
    before = world.rows if world.rows is not None else await fingerprint(db)
    world.rows = None
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        f"{world.gateway.url}/graphql", json={"query": document}, headers=headers
    )
    world.gateway.clock.advance(1)  # time goes on between requests, as in service
    assert response.status_code < 500, (response.status_code, response.text[:2000])
    assert response.headers["content-type"].startswith("application/json"), response.text[:2000]
    body = response.json()
    errors = assert_contract(response.status_code, body, document + (token or ""))
    event(f"answer: {sorted({e['extensions']['code'] for e in errors}) or 'ok'}")
    event(f"caller: {caller}")
    refused = bool(errors) and body.get("data") is None
    if kind == "query" or refused:
        after = await fingerprint(db)
        assert after == before, (
            f"{'a query' if kind == 'query' else 'a refused mutation'} changed rows: {body}"
        )
        world.rows = after
