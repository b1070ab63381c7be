"""/metrics' parts without a server: the GraphQL operation labels and their bounds, the error
codes, the collectors read at scrape time (reserve attempts, the database figures and the pool),
the database figures' cache, timeout and outage, open subscriptions, and the HTTP middleware's
route templates. Parsed back as Prometheus would, with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionResult

from adapters.db.metrics import AccountIntake, DatabaseFigures, PoolStatus
from domain.errors import OutOfStock
from gateway.metrics import (
    ANONYMOUS,
    INVALID,
    OTHER,
    RESERVE_OUTCOMES,
    RESERVE_SOURCES,
    UNMATCHED,
    BoundedNames,
    DatabaseCollector,
    DatabaseGauges,
    MeteredSchema,
    Metrics,
    MetricsMiddleware,
    Operation,
    OperationLabels,
    ReserveAttemptsCollector,
    error_code,
    root_fields,
)
from resolvers.root import build_schema

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROOTS = {
    "query": frozenset({"stores", "availability", "reservation"}),
    "mutation": frozenset({"reserve"}),
    "subscription": frozenset({"stockUpdates", "pickupEvents"}),
}


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry's exposition, parsed back: (name, labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return samples(registry).get((name, tuple(sorted(labels.items()))))


# --- operation labels -----------------------------------------------------------------------------


def test_a_named_operation_is_labelled_by_its_name_and_type() -> None:
    labels = OperationLabels(ROOTS)
    assert labels.of("query Nearby { stores { id } }", None) == Operation("query", "Nearby")
    assert labels.of(
        "mutation Checkout($i: ReserveInput!) { reserve(input: $i) { id } }", None
    ) == (Operation("mutation", "Checkout"))
    two = "query A { stores { id } } query B { reservation(id: 1) { id } }"
    assert labels.of(two, "B") == Operation("query", "B")


def test_an_anonymous_operation_is_labelled_by_its_root_fields() -> None:
    labels = OperationLabels(ROOTS)
    assert labels.of("{ stores { id } }", None) == Operation("query", "stores")
    assert labels.of("{ b: stores { id } availability { x } a: stores { id } }", None) == (
        Operation("query", "availability+stores")
    )
    assert labels.of("{ __typename }", None) == Operation("query", "__typename")
    assert labels.of("{ ...F } fragment F on Query { stores { id } }", None) == (
        Operation("query", ANONYMOUS)
    )


def test_a_subscription_carries_its_root_field() -> None:
    labels = OperationLabels(ROOTS)
    assert labels.of("subscription { stockUpdates { sku } }", None) == (
        Operation("subscription", "stockUpdates", "stockUpdates")
    )
    assert labels.of("subscription Till { pickupEvents(storeId: 1) { id } }", None) == (
        Operation("subscription", "Till", "pickupEvents")
    )


@pytest.mark.parametrize(
    ("query", "operation_name", "kind"),
    [
        ("{ stores { id }", None, "unknown"),  # does not parse
        ("", None, "unknown"),
        (None, None, "unknown"),
        ("{ nope }", None, "query"),  # a root field the schema lacks
        ("query Junk { stores { id } nope }", None, "query"),
        ("mutation M { stores { id } }", None, "mutation"),  # a field of another root type
        ("query A { stores { id } }", "Junk", "unknown"),  # names an operation it lacks
        ("query A { stores { id } } query B { stores { id } }", None, "unknown"),
    ],
)
def test_what_is_no_valid_operation_is_invalid_and_takes_no_name(
    query: str | None, operation_name: str | None, kind: str
) -> None:
    labels = OperationLabels(ROOTS)
    assert labels.of(query, operation_name) == Operation(kind, INVALID)
    assert labels.names.taken == frozenset()


def test_operation_names_are_bounded_first_come() -> None:
    labels = OperationLabels(ROOTS, max_names=3)
    names = [labels.of(f"query Op{i} {{ stores {{ id }} }}", None).name for i in range(10)]
    assert names == ["Op0", "Op1", "Op2", *[OTHER] * 7]
    # Those taken keep their name; an anonymous one past the bound is "other" too.
    assert labels.of("query Op1 { stores { id } __typename }", None).name == "Op1"
    assert labels.of("{ availability { x } }", None).name == OTHER


def test_a_long_name_is_other() -> None:
    labels = OperationLabels(ROOTS)
    assert labels.of(f"query {'N' * 65} {{ stores {{ id }} }}", None).name == OTHER
    assert labels.of(f"query {'N' * 64} {{ stores {{ id }} }}", None).name == "N" * 64


def test_a_query_longer_than_the_limit_is_not_parsed_nor_remembered() -> None:
    labels = OperationLabels(ROOTS, max_chars=100)
    long = "query Long { stores { id } }" + " " * 100
    assert labels.of(long, None) == Operation("unknown", INVALID)
    assert len(labels) == 0


def test_documents_are_read_once_and_the_memory_is_bounded() -> None:
    labels = OperationLabels(ROOTS, max_documents=5)
    query = "query Once { stores { id } }"
    first = labels.of(query, None)
    labels.root_fields = {}  # were it read again, the field would now be unknown
    assert labels.of(query, None) is first
    for i in range(20):
        labels.of(f"{{ stores {{ id{i}: id }} }}", None)
        assert len(labels) <= 5


def test_root_fields_come_from_the_schema() -> None:
    roots = root_fields(build_schema())
    assert {"stores", "availability", "reservation"} <= roots["query"]
    assert "reserve" in roots["mutation"]
    assert roots["subscription"] == {
        "pickupEvents",
        "reservationUpdates",
        "stockUpdates",
        "intakeEvents",
    }


def test_bounded_names_take_only_what_fits_the_pattern() -> None:
    codes = BoundedNames(2, pattern=re.compile(r"[A-Z_]+"))
    assert [codes(c) for c in ("OUT_OF_STOCK", "not a code", "NOT_FOUND", "FORBIDDEN")] == [
        "OUT_OF_STOCK",
        OTHER,
        "NOT_FOUND",
        OTHER,
    ]


def test_error_codes_are_the_clients() -> None:
    assert error_code(GraphQLError("x", extensions={"code": "LIMIT_EXCEEDED"})) == "LIMIT_EXCEEDED"
    assert error_code(GraphQLError("x", original_error=OutOfStock(["A"]))) == ("OUT_OF_STOCK")
    assert error_code(GraphQLError("Syntax Error")) == "BAD_USER_INPUT"
    assert error_code(GraphQLError("x", original_error=RuntimeError("bug"))) == "INTERNAL"


# --- GraphQL operations and subscriptions -------------------------------------------------------


async def test_the_metered_schema_counts_each_operation_by_name_and_outcome() -> None:
    metrics = Metrics()
    schema = build_schema(schema_class=MeteredSchema)
    metrics.instrument(schema)
    for _ in range(2):
        assert (await schema.execute("query Ping { __typename }")).errors is None
    assert (await schema.execute("{ nope }")).errors
    registry = metrics.registry
    assert (
        value(
            registry, "ropos_graphql_operations_total", type="query", operation="Ping", outcome="ok"
        )
        == 2
    )
    assert (
        value(
            registry,
            "ropos_graphql_operations_total",
            type="query",
            operation=INVALID,
            outcome="BAD_USER_INPUT",
        )
        == 1
    )
    assert (
        value(
            registry,
            "ropos_graphql_operation_duration_seconds_count",
            type="query",
            operation="Ping",
            result="ok",
        )
        == 2
    )
    assert (
        value(
            registry,
            "ropos_graphql_operation_duration_seconds_bucket",
            type="query",
            operation=INVALID,
            result="error",
            le="10.0",
        )
        == 1
    )


def test_outcomes_by_error_code_are_bounded() -> None:
    metrics = Metrics()
    metrics.operations.root_fields = dict(ROOTS)
    for i in range(40):
        metrics.observe_operation("{ stores { id } }", None, f"CODE_{i}", 0.01)
    metrics.observe_operation("{ stores { id } }", None, "lower case junk", 0.01)
    outcomes = {
        dict(labels)["outcome"]
        for name, labels in samples(metrics.registry)
        if name == "ropos_graphql_operations_total"
    }
    assert len(outcomes) <= 33
    assert OTHER in outcomes
    assert "lower case junk" not in outcomes


async def test_an_open_subscription_is_counted_until_it_ends() -> None:
    metrics = Metrics()
    metrics.operations.root_fields = dict(ROOTS)
    release = asyncio.Event()

    async def source() -> StreamResult:
        yield ExecutionResult(data={"stockUpdates": {"sku": "A"}}, errors=None)
        await release.wait()

    def open_now() -> float | None:
        return value(metrics.registry, "ropos_graphql_subscriptions_open", field="stockUpdates")

    counted = metrics.subscription("subscription { stockUpdates { sku } }", None, source())
    assert open_now() in (None, 0)
    assert await anext(counted)
    assert open_now() == 1
    other = metrics.subscription("subscription Two { stockUpdates { sku } }", None, source())
    await anext(other)
    assert open_now() == 2
    await other.aclose()  # the client stopped it
    assert open_now() == 1
    release.set()  # the server ended it
    with pytest.raises(StopAsyncIteration):
        await anext(counted)
    assert open_now() == 0
    # A query over the same path is no subscription: left as it is.
    plain = source()
    assert metrics.subscription("{ stores { id } }", None, plain) is plain
    await plain.aclose()


# --- reserve attempts -----------------------------------------------------------------------------


class Attempts:
    """What Deps.reserve_attempts gives /metrics: totals per (source, outcome) so far."""

    def __init__(self, totals: Mapping[tuple[str, str], int]) -> None:
        self._totals = dict(totals)

    def totals(self) -> Mapping[tuple[str, str], int]:
        return dict(self._totals)


def test_reserve_attempts_are_read_at_scrape_time_every_outcome_shown() -> None:
    attempts = Attempts({("graphql", "reserved"): 3})
    registry = CollectorRegistry()
    registry.register(ReserveAttemptsCollector(lambda: attempts))
    assert (
        value(registry, "ropos_reserve_attempts_total", source="graphql", outcome="reserved") == 3
    )
    for source in RESERVE_SOURCES:
        for outcome in RESERVE_OUTCOMES:
            if (source, outcome) != ("graphql", "reserved"):
                assert (
                    value(registry, "ropos_reserve_attempts_total", source=source, outcome=outcome)
                    == 0
                )
    attempts._totals[("graphql", "reserved")] = 5
    attempts._totals[("intake", "out_of_stock")] = 1
    attempts._totals[("intake", "something new")] = 2
    assert (
        value(registry, "ropos_reserve_attempts_total", source="graphql", outcome="reserved") == 5
    )
    assert (
        value(registry, "ropos_reserve_attempts_total", source="intake", outcome="out_of_stock")
        == 1
    )
    assert value(registry, "ropos_reserve_attempts_total", source="intake", outcome=OTHER) == 2


def test_reserve_attempts_before_the_app_started_are_zeros() -> None:
    registry = CollectorRegistry()
    registry.register(ReserveAttemptsCollector(lambda: None))
    totals = [
        v for (name, _), v in samples(registry).items() if name == "ropos_reserve_attempts_total"
    ]
    assert totals == [0] * (len(RESERVE_SOURCES) * len(RESERVE_OUTCOMES))


# --- the database's figures -----------------------------------------------------------------------


def figures(**changes: Any) -> DatabaseFigures:
    given: dict[str, Any] = {
        "reservations": {"HELD": 4, "READY_FOR_PICKUP": 1},
        "earliest_active_expiry": NOW - timedelta(seconds=3),
        "unpublished": 2,
        "oldest_unpublished": NOW - timedelta(seconds=7),
        "webhooks": {"PENDING": 5, "DEAD": 1},
        "wms_movements": {"PENDING": 0, "DEAD": 2},
        "intake": {
            ("shopify", "acme"): AccountIntake(
                received=9,
                statuses={"ACCEPTED": 6, "RECEIVED": 2, "RETRYING": 1},
                backlog=3,
                oldest_waiting=NOW - timedelta(seconds=40),
            )
        },
    }
    given.update(changes)
    return DatabaseFigures(**given)


def collected(
    gauges: DatabaseGauges, now: datetime | None = NOW, pool: PoolStatus | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(gauges, now=lambda: now, pool=lambda: pool))
    return registry


async def test_database_figures_become_gauges_with_ages_measured_now() -> None:
    gauges = DatabaseGauges(lambda: _value(figures()))
    await gauges.refresh()
    registry = collected(gauges, pool=PoolStatus(size=16, checked_out=3, overflow=0, idle=5))
    assert value(registry, "ropos_metrics_db_up") == 1
    assert value(registry, "ropos_reservations_active", status="HELD") == 4
    assert value(registry, "ropos_reservations_active", status="READY_FOR_PICKUP") == 1
    assert value(registry, "ropos_reservation_expiry_lag_seconds") == 3
    assert value(registry, "ropos_outbox_backlog") == 2
    assert value(registry, "ropos_outbox_relay_lag_seconds") == 7
    assert value(registry, "ropos_webhook_deliveries", status="PENDING") == 5
    assert value(registry, "ropos_wms_movements", status="DEAD") == 2
    account = {"channel": "shopify", "account": "acme"}
    assert value(registry, "ropos_intake_received", **account) == 9
    assert value(registry, "ropos_intake_messages", **account, status="ACCEPTED") == 6
    assert value(registry, "ropos_intake_backlog", **account) == 3
    assert value(registry, "ropos_intake_oldest_waiting_seconds", **account) == 40
    assert value(registry, "ropos_db_pool_size") == 16
    assert value(registry, "ropos_db_pool_checked_out") == 3
    assert value(registry, "ropos_db_pool_idle") == 5
    # A cached figure still ages: the lag is measured when it is shown.
    assert (
        value(collected(gauges, now=NOW + timedelta(seconds=2)), "ropos_outbox_relay_lag_seconds")
        == 9
    )


async def test_lags_are_zero_when_nothing_is_due_or_waiting() -> None:
    nothing = figures(
        earliest_active_expiry=NOW + timedelta(hours=2),  # active, not yet due
        oldest_unpublished=None,
        unpublished=0,
        intake={("generic", "b"): AccountIntake()},
    )
    gauges = DatabaseGauges(lambda: _value(nothing))
    await gauges.refresh()
    registry = collected(gauges)
    assert value(registry, "ropos_reservation_expiry_lag_seconds") == 0
    assert value(registry, "ropos_outbox_relay_lag_seconds") == 0
    assert (
        value(registry, "ropos_intake_oldest_waiting_seconds", channel="generic", account="b") == 0
    )
    none_active = DatabaseGauges(lambda: _value(figures(earliest_active_expiry=None)))
    await none_active.refresh()
    assert value(collected(none_active), "ropos_reservation_expiry_lag_seconds") == 0


async def _value(found: DatabaseFigures) -> DatabaseFigures:
    return found


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_figures_are_read_once_per_cache_period_however_many_scrape() -> None:
    clock, reads = Clock(), []

    async def read() -> DatabaseFigures:
        reads.append(clock.now)
        await asyncio.sleep(0)  # let the other scrapes queue behind this one
        return figures()

    gauges = DatabaseGauges(read, cache_seconds=2, monotonic=clock)
    await asyncio.gather(*(gauges.refresh() for _ in range(20)))
    assert reads == [100.0]
    clock.now += 1.5
    await gauges.refresh()
    assert reads == [100.0]
    clock.now += 1.0
    await gauges.refresh()
    assert reads == [100.0, 102.5]


async def test_a_database_that_fails_or_hangs_is_down_and_nothing_else_is_lost() -> None:
    clock = Clock()

    async def broken() -> DatabaseFigures:
        raise ConnectionRefusedError("the database is gone")

    gauges = DatabaseGauges(broken, cache_seconds=2, monotonic=clock)
    await gauges.refresh()
    registry = collected(gauges, pool=PoolStatus(size=5, checked_out=0, overflow=0, idle=0))
    assert value(registry, "ropos_metrics_db_up") == 0
    assert value(registry, "ropos_outbox_backlog") is None  # no figure rather than a made-up one
    assert value(registry, "ropos_db_pool_size") == 5  # in-process figures still shown

    never = asyncio.Event()

    async def hanging() -> DatabaseFigures:
        await never.wait()
        return figures()

    slow = DatabaseGauges(hanging, timeout_seconds=0.05, monotonic=clock)
    await slow.refresh()  # returns: the timeout ends the read
    assert not slow.up
    assert value(collected(slow), "ropos_metrics_db_up") == 0

    # Back again at the next read after the cache period.
    gauges.read = lambda: _value(figures())
    clock.now += 2
    await gauges.refresh()
    assert value(collected(gauges), "ropos_metrics_db_up") == 1


async def test_the_app_not_started_is_down() -> None:
    gauges = DatabaseGauges()
    await gauges.refresh()
    assert value(collected(gauges, now=None), "ropos_metrics_db_up") == 0


def test_one_apps_metrics_do_not_add_to_anothers() -> None:
    first, second = Metrics(), Metrics()
    first.observe_http("GET", "/healthz", 200, 0.001)
    assert (
        value(
            first.registry,
            "ropos_http_requests_total",
            method="GET",
            route="/healthz",
            status="2xx",
        )
        == 1
    )
    assert (
        value(
            second.registry,
            "ropos_http_requests_total",
            method="GET",
            route="/healthz",
            status="2xx",
        )
        is None
    )


# --- HTTP -----------------------------------------------------------------------------------------


async def test_http_requests_are_counted_by_route_template_never_the_path() -> None:
    metrics = Metrics()

    async def item(request: Request) -> PlainTextResponse:
        if request.path_params["item_id"] == "boom":
            raise RuntimeError("a bug")
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/items/{item_id}", item, methods=["GET"])],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for item_id in ("a1b2", "c3d4", "boom"):
            await client.get(f"/items/{item_id}")
        await client.post("/items/e5f6")  # 405: the route matched, not the method
        for junk in ("x1", "x2", "x3"):
            await client.get(f"/no/such/{junk}")
        await client.request("BREW", "/items/a1b2")
    found = samples(metrics.registry)
    routes = {
        dict(labels)["route"] for name, labels in found if name == "ropos_http_requests_total"
    }
    assert routes == {"/items/{item_id}", UNMATCHED}
    total = "ropos_http_requests_total"
    assert value(metrics.registry, total, method="GET", route="/items/{item_id}", status="2xx") == 2
    assert value(metrics.registry, total, method="GET", route="/items/{item_id}", status="5xx") == 1
    assert (
        value(metrics.registry, total, method="POST", route="/items/{item_id}", status="4xx") == 1
    )
    assert value(metrics.registry, total, method="GET", route=UNMATCHED, status="4xx") == 3
    assert value(metrics.registry, total, method=OTHER, route="/items/{item_id}", status="4xx") == 1
    assert (
        value(
            metrics.registry,
            "ropos_http_request_duration_seconds_count",
            method="GET",
            route=UNMATCHED,
            status="4xx",
        )
        == 3
    )
    for _name, labels in found:
        assert not any(junk in v for _k, v in labels for junk in ("a1b2", "c3d4", "x1", "boom"))
