"""GET /metrics read as Prometheus reads it (prometheus_client's own text parser, the content type
it is served with), around a few API actions: a reserve, an out-of-stock reserve, a bad query, an
intake delivery, an open subscription. The figures are compared before and after (deltas: the
module's gateway counts for all its tests), every label value must come from a bounded set (no
ids of any kind), unknown paths and junk operations must not grow the label values, the database
being unreachable must leave /metrics answering, and the optional tokens must hold."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from adapters.db.engine import Database
from adapters.db.metrics import read_figures
from domain.intake import IntakeStatus, SalesChannel
from gateway.metrics import (
    CONTENT_TYPE,
    DATABASE_GAUGES,
    INVALID,
    MAX_OPERATION_NAMES,
    OTHER,
    UNMATCHED,
    Metrics,
)
from tests.api.conftest import Gateway, gql, running_gateway
from tests.api.given import RESERVE, given_stores_with_stock
from tests.api.test_intake_flow import an_order, finished, generic_body, given_account, post
from tests.api.test_subscriptions import STOCK_UPDATES, subscribed

pytestmark = pytest.mark.asyncio(loop_scope="session")

WAIT_SECONDS = 15.0  # the workers and the database figures' cache (2 s) have caught up within this
UUID_LIKE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
METRICS_TOKEN = "scrape-secret-0123456789"
HAS_PROC = Path("/proc/self/stat").exists()


@dataclass
class Scrape:
    """One /metrics answer, parsed: family name -> type, and (sample name, labels) -> value."""

    types: dict[str, str]
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for one not shown (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def values_of(self, label: str, name: str | None = None) -> set[str]:
        return {
            value
            for (sample, labels) in self.samples
            if name is None or sample == name
            for key, value in labels
            if key == label
        }

    def label_values(self) -> set[str]:
        return {value for (_, labels) in self.samples for key, value in labels if key != "le"}


async def scrape(
    http: httpx.AsyncClient, api: Gateway, headers: dict[str, str] | None = None
) -> Scrape:
    response = await http.get(f"{api.url}/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    types, samples = {}, {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(types, samples)


async def until(http: httpx.AsyncClient, api: Gateway, holds: Callable[[Scrape], bool]) -> Scrape:
    """The first scrape for which `holds` is true, polling; the last one fails the test."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        found = await scrape(http, api)
        if holds(found) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


def assert_no_ids(found: Scrape, *ids: str) -> None:
    for value in found.label_values():
        assert not UUID_LIKE.search(value), value
        for id_ in ids:
            assert id_ not in value, (id_, value)


# --- the format -----------------------------------------------------------------------------------


async def test_metrics_is_prometheus_text_with_every_family(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    found = await scrape(http, api)  # no token: open by default
    assert found.types["ropos_http_requests"] == "counter"
    assert found.types["ropos_http_request_duration_seconds"] == "histogram"
    assert found.types["ropos_graphql_operations"] == "counter"
    assert found.types["ropos_graphql_operation_duration_seconds"] == "histogram"
    assert found.types["ropos_graphql_subscriptions_open"] == "gauge"
    assert found.types["ropos_reserve_attempts"] == "counter"
    for name in DATABASE_GAUGES:
        assert found.types[name] == "gauge", name
    assert found.value("ropos_metrics_db_up") == 1
    assert found.value("ropos_db_pool_size") >= 1
    assert found.has("ropos_reservations_active", status="HELD")
    assert found.has("ropos_webhook_deliveries", status="DEAD")
    assert found.has("ropos_graphql_subscriptions_open", field="pickupEvents")
    assert found.has("ropos_reserve_attempts_total", source="intake", outcome="technical")
    assert "python_info" in found.types  # the platform collector
    if HAS_PROC:  # the process collector reads /proc
        assert found.value("process_resident_memory_bytes") > 0
    # Latency buckets from 1 ms to 10 s.
    again = await scrape(http, api)
    buckets = {
        le
        for le in again.values_of("le", "ropos_http_request_duration_seconds_bucket")
        if le != "+Inf"
    }
    assert min(map(float, buckets)) == 0.001
    assert max(map(float, buckets)) == 10.0
    # The scrape before this one was counted under its route.
    assert (
        again.value("ropos_http_requests_total", method="GET", route="/metrics", status="2xx") >= 1
    )


# --- what API actions move ------------------------------------------------------------------------


async def test_a_reserve_a_refusal_a_bad_query_and_an_order_move_their_figures(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 3})
    await given_account(api, SalesChannel.GENERIC)
    before = await until(http, api, lambda s: s.value("ropos_outbox_backlog") == 0)

    alice = api.token("customer", sub="alice")
    lines = [{"sku": "SKU-1", "quantity": 1}]
    reserved = (
        await gql(http, api, RESERVE, {"input": {"storeId": "S001", "lines": lines}}, alice)
    ).ok()
    group_id = reserved["reserve"]["id"]
    (reservation,) = reserved["reserve"]["reservations"]
    too_many = [{"sku": "SKU-1", "quantity": 5}]
    refused = await gql(
        http, api, RESERVE, {"input": {"storeId": "S001", "lines": too_many}}, alice
    )
    assert refused.codes == ["OUT_OF_STOCK"]
    bad = await gql(http, api, "{ nope }")
    assert bad.codes == ["BAD_USER_INPUT"]
    delivered = await post(http, api, generic_body(an_order("ORD-77", lines={"SKU-1": 1})))
    assert delivered.status_code == 202
    message_id = delivered.json()["messageId"]
    assert (await finished(api, message_id)).status is IntakeStatus.ACCEPTED

    account = {"channel": "generic", "account": "acme"}

    def caught_up(s: Scrape) -> bool:
        return (
            s.value("ropos_reservations_active", status="HELD") == 2
            and s.value("ropos_intake_messages", **account, status="ACCEPTED") == 1
            and s.value("ropos_intake_backlog", **account) == 0
            and s.value("ropos_outbox_backlog") == 0
        )

    after = await until(http, api, caught_up)
    assert caught_up(after), after

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    operations = "ropos_graphql_operations_total"
    assert delta(operations, type="mutation", operation="reserve", outcome="ok") == 1
    assert delta(operations, type="mutation", operation="reserve", outcome="OUT_OF_STOCK") == 1
    assert delta(operations, type="query", operation=INVALID, outcome="BAD_USER_INPUT") == 1
    latency = "ropos_graphql_operation_duration_seconds_count"
    assert delta(latency, type="mutation", operation="reserve", result="ok") == 1
    assert delta(latency, type="mutation", operation="reserve", result="error") == 1
    http_total = "ropos_http_requests_total"
    assert delta(http_total, method="POST", route="/graphql", status="2xx") == 3
    assert delta(http_total, method="POST", route="/intake/{channel}/{account}", status="2xx") == 1
    assert (
        delta(
            "ropos_http_request_duration_seconds_count",
            method="POST",
            route="/intake/{channel}/{account}",
            status="2xx",
        )
        == 1
    )
    attempts = "ropos_reserve_attempts_total"
    assert delta(attempts, source="graphql", outcome="reserved") == 1
    assert delta(attempts, source="graphql", outcome="out_of_stock") == 1
    assert delta(attempts, source="intake", outcome="reserved") == 1
    assert delta("ropos_reservations_active", status="HELD") == 2
    assert delta("ropos_intake_received", **account) == 1
    assert after.value("ropos_intake_oldest_waiting_seconds", **account) == 0
    assert after.value("ropos_outbox_relay_lag_seconds") == 0
    assert after.value("ropos_reservation_expiry_lag_seconds") == 0  # none overdue at START
    assert after.value("ropos_metrics_db_up") == 1
    assert_no_ids(
        after, reservation["id"], reservation["code"], group_id, message_id, "alice", "ORD-77"
    )


async def test_expired_holds_leave_the_gauges_and_the_expiry_lag_stays_near_zero(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    await given_stores_with_stock(http, api, {("S001", "SKU-1"): 3})
    lines = [{"sku": "SKU-1", "quantity": 1}]
    token = api.token("customer", sub="bob")
    (await gql(http, api, RESERVE, {"input": {"storeId": "S001", "lines": lines}}, token)).ok()
    held = await until(
        http, api, lambda s: s.value("ropos_reservations_active", status="HELD") == 1
    )
    assert held.value("ropos_reservations_active", status="HELD") == 1
    api.clock.advance(3 * 3600)  # past the 2 h hold: the sweeper expires it
    gone = await until(
        http,
        api,
        lambda s: (
            s.value("ropos_reservations_active", status="HELD") == 0
            and s.value("ropos_reservation_expiry_lag_seconds") == 0
        ),
    )
    assert gone.value("ropos_reservations_active", status="HELD") == 0
    assert gone.value("ropos_reservation_expiry_lag_seconds") == 0


async def test_an_open_subscription_is_counted_while_it_is_open(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    field = {"field": "stockUpdates"}
    before = (await scrape(http, api)).value("ropos_graphql_subscriptions_open", **field)
    async with subscribed(api, STOCK_UPDATES, {"storeId": "S001"}):
        opened = await until(
            http,
            api,
            lambda s: s.value("ropos_graphql_subscriptions_open", **field) == before + 1,
        )
        assert opened.value("ropos_graphql_subscriptions_open", **field) == before + 1
    closed = await until(
        http, api, lambda s: s.value("ropos_graphql_subscriptions_open", **field) == before
    )
    assert closed.value("ropos_graphql_subscriptions_open", **field) == before


# --- bounded labels -------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def quiet_gateway(database_url: str, clean_db: Database) -> AsyncIterator[Gateway]:
    """A gateway of its own (no workers), so that what a test floods it with stays there."""
    async with running_gateway(database_url, clean_db, run_workers=False) as gateway:
        yield gateway


async def test_unknown_paths_and_junk_operations_add_no_label_values(
    http: httpx.AsyncClient, quiet_gateway: Gateway
) -> None:
    api = quiet_gateway
    ops = {"authorization": f"Bearer {api.token('ops', sub='flooder')}"}
    await http.post(f"{api.url}/graphql", json={"query": "{ stores { id } }"}, headers=ops)
    before = await scrape(http, api)
    junk = [uuid.uuid4().hex for _ in range(5)]
    for j in junk:
        assert (await http.get(f"{api.url}/reservations-{j}/{j}")).status_code == 404
        assert (await http.post(f"{api.url}/intake/{j}")).status_code == 404
        named = {"query": "{ stores { id } }", "operationName": f"Op{j}"}
        await http.post(f"{api.url}/graphql", json=named, headers=ops)
        await http.post(f"{api.url}/graphql", json={"query": f"{{ f{j} }}"}, headers=ops)
        await http.post(f"{api.url}/graphql", json={"query": f"query Q{j} {{"}, headers=ops)
    after = await scrape(http, api)
    assert_no_ids(after, *junk)
    routes = after.values_of("route")
    assert routes - before.values_of("route") <= {UNMATCHED, "/metrics"}
    operations = after.values_of("operation")
    assert operations - before.values_of("operation") <= {INVALID}
    assert INVALID in operations

    # Valid operations under ever new names: the first MAX_OPERATION_NAMES, then "other".
    for i in range(MAX_OPERATION_NAMES + 20):
        query = f"query Name{i:04d} {{ __typename }}"
        (await gql(http, api, query, token=api.token("ops", sub="flooder"))).ok()
    flooded = await scrape(http, api)
    operations = flooded.values_of("operation", "ropos_graphql_operations_total")
    assert OTHER in operations
    assert len(operations) <= MAX_OPERATION_NAMES + 3  # with "invalid" and "other"
    assert (
        flooded.value("ropos_graphql_operations_total", type="query", operation=OTHER, outcome="ok")
        >= 20
    )


# --- the database down ----------------------------------------------------------------------------


async def test_metrics_answers_without_the_database(
    http: httpx.AsyncClient, api: Gateway, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics: Metrics = api.app.state.metrics
    unreachable = Database(
        "postgresql+asyncpg://postgres@127.0.0.1:9/none"
        if backend == "postgresql"
        else "sqlite+aiosqlite:////nonexistent-dir/ropos.db"
    )
    try:
        monkeypatch.setattr(metrics.database, "read", lambda: read_figures(unreachable))
        monkeypatch.setattr(metrics.database, "cache_seconds", 0.0)
        await http.get(f"{api.url}/healthz")
        down = await scrape(http, api)
        assert down.value("ropos_metrics_db_up") == 0
        assert not down.has("ropos_outbox_backlog")  # no figure rather than a stale one
        assert (
            down.value("ropos_http_requests_total", method="GET", route="/healthz", status="2xx")
            >= 1
        )
        assert down.has("ropos_reserve_attempts_total", source="graphql", outcome="reserved")
        assert down.has("ropos_db_pool_size")
    finally:
        await unreachable.dispose()
    monkeypatch.undo()
    back = await until(http, api, lambda s: s.value("ropos_metrics_db_up") == 1)
    assert back.value("ropos_metrics_db_up") == 1
    assert back.has("ropos_outbox_backlog")


# --- who may read it ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "metrics_token_works"),
    [({"metrics_token": METRICS_TOKEN}, True), ({"metrics_require_ops": True}, False)],
)
async def test_metrics_can_require_a_token(
    http: httpx.AsyncClient,
    database_url: str,
    clean_db: Database,
    settings: dict[str, object],
    metrics_token_works: bool,
) -> None:
    async with running_gateway(database_url, clean_db, run_workers=False, **settings) as api:
        url = f"{api.url}/metrics"

        async def status(header: str | None) -> int:
            headers = {"authorization": header} if header else {}
            return (await http.get(url, headers=headers)).status_code

        refused = await http.get(url)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert await status("Bearer not-the-token-at-all") == 401
        assert await status(f"Bearer {api.token('customer', sub='nosy')}") == 401
        assert await status(f"Bearer {api.token('ops')}") == 200
        assert await status(f"Bearer {METRICS_TOKEN}") == (200 if metrics_token_works else 401)
        found = await scrape(http, api, {"authorization": f"Bearer {api.token('ops')}"})
        assert found.value("ropos_metrics_db_up") == 1
