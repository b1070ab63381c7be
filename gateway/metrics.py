"""GET /metrics: the gateway's figures for Prometheus, in its text exposition format.

Each app has a registry of its own (never prometheus_client's global one: tests and several apps
in one process must not add to each other's counts), holding:

- what this process counts as it serves: HTTP requests per route template, GraphQL operations
  per operation, open subscriptions, every reserve attempt's outcome (`Deps.reserve_attempts`),
  the database pool, and the process's own figures (CPU, memory, file descriptors);
- what the database holds at scrape time (adapters/db/metrics.py): active reservations, the
  expiry and relay lags, the outbox, webhook, WMS and intake queues. Those few aggregate queries
  are read at most every DB_CACHE_SECONDS (a burst of scrapes costs one read), bounded by
  DB_TIMEOUT_SECONDS, and when the database does not answer /metrics still answers, with
  `ropos_metrics_db_up 0` and the process's figures.

Every label value comes from a bounded set: route templates (never the path), HTTP methods and
status classes, operation types, operation names first come up to MAX_OPERATION_NAMES (then
"other"), error codes, the schema's subscription fields, reserve sources and outcomes, channel
accounts (ops configure them; at most MAX_ACCOUNTS). Never a customer, reservation, order or
message id.

The per-request cost is a dict lookup, a perf_counter() pair and an inc() and observe() on
label children made once: the HTTP side is a pure ASGI middleware, the GraphQL side overrides
the schema's own execute and stream (no schema extension: strawberry's per-extension overhead
would be paid on every request), and a GraphQL document is read for its labels once, then
remembered."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from adapters.db.metrics import DatabaseFigures, PoolStatus, pool_status, read_figures
from domain.access import Role
from domain.errors import DomainError
from gateway.auth import actor_from_header
from gateway.runtime import Runtime, runtime_of
from gateway.settings import Settings
from resolvers.errors import BAD_REQUEST
from resolvers.root import RoposSchema

log = logging.getLogger(__name__)

# The text format every Prometheus reads (our names need none of 1.0.0's escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Latency buckets, 1 ms to 10 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_CACHE_SECONDS = 2.0
DB_TIMEOUT_SECONDS = 2.0

OTHER = "other"
OK, ERROR = "ok", "error"
# An operation whose document does not parse, names an operation it does not hold, or selects
# a root field the schema does not have.
INVALID = "invalid"
ANONYMOUS = "anonymous"
UNKNOWN_TYPE = "unknown"
# Distinct operation names taken as label values; later ones are "other".
MAX_OPERATION_NAMES = 100
# The longest operation name taken as a label value.
LONGEST_NAME = 64
# Documents whose labels are remembered; past that the memory starts again (the names stay).
MAX_DOCUMENTS = 1000
MAX_ERROR_CODES = 32
MAX_ACCOUNTS = 200
INTROSPECTION_FIELDS = frozenset({"__typename", "__schema", "__type"})
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A request no route matched (an unknown path): never the path itself.
UNMATCHED = "unmatched"
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
# What Deps.reserve_attempts counts (services.kpis / domain.kpis); any other key is "other".
RESERVE_SOURCES = ("graphql", "intake")
RESERVE_OUTCOMES = ("reserved", "out_of_stock", "limit_exceeded", "bad_input", "technical")


# --- bounded label values -------------------------------------------------------------------------


class BoundedNames:
    """Label values taken first come, up to `limit` distinct ones of at most `longest`
    characters (matching `pattern` if given); any other value is "other"."""

    def __init__(
        self, limit: int, *, longest: int = LONGEST_NAME, pattern: re.Pattern[str] | None = None
    ) -> None:
        self.limit = limit
        self.longest = longest
        self.pattern = pattern
        self._taken: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._taken:
            return value
        if (
            len(self._taken) >= self.limit
            or len(value) > self.longest
            or (self.pattern is not None and self.pattern.fullmatch(value) is None)
        ):
            return OTHER
        self._taken.add(value)
        return value

    @property
    def taken(self) -> frozenset[str]:
        return frozenset(self._taken)


class Operation(NamedTuple):
    """The labels of one GraphQL operation: its type, its bounded name and, for a
    subscription, its root field."""

    type: str
    name: str
    field: str = ""


class OperationLabels:
    """The labels of a GraphQL document (and the operation name the request chose), read once
    per document and remembered: a named operation by its name, an anonymous one by its root
    fields ("stores+availability"), a document that is no valid operation as "invalid". Names
    are bounded (BoundedNames); root fields are checked against the schema's, so neither a junk
    name nor a junk field grows the label values without end."""

    def __init__(
        self,
        root_fields: Mapping[str, frozenset[str]] | None = None,
        *,
        max_names: int = MAX_OPERATION_NAMES,
        max_documents: int = MAX_DOCUMENTS,
        max_tokens: int = 2_000,
        max_chars: int = 20_000,
    ) -> None:
        self.root_fields = dict(root_fields or {})
        self.names = BoundedNames(max_names)
        self.max_documents = max_documents
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self._seen: dict[tuple[str | None, str | None], Operation] = {}

    def of(self, query: str | None, operation_name: str | None) -> Operation:
        if query is not None and len(query) > self.max_chars:
            return Operation(UNKNOWN_TYPE, INVALID)  # refused before parsing: neither is it
        key = (query, operation_name)
        found = self._seen.get(key)
        if found is None:
            found = self._read(query, operation_name)
            if len(self._seen) >= self.max_documents:
                self._seen.clear()
            self._seen[key] = found
        return found

    def __len__(self) -> int:
        """How many documents' labels are remembered now."""
        return len(self._seen)

    def _read(self, query: str | None, operation_name: str | None) -> Operation:
        if not query:
            return Operation(UNKNOWN_TYPE, INVALID)
        try:
            document = parse(query, no_location=True, max_tokens=self.max_tokens)
        except (GraphQLError, RecursionError):
            return Operation(UNKNOWN_TYPE, INVALID)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name:
            operations = [o for o in operations if o.name and o.name.value == operation_name]
        if len(operations) != 1:
            return Operation(UNKNOWN_TYPE, INVALID)
        (operation,) = operations
        kind = operation.operation.value
        fields = [
            s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)
        ]
        known = self.root_fields.get(kind, frozenset()) | INTROSPECTION_FIELDS
        if any(f not in known for f in fields):
            return Operation(kind, INVALID)
        if operation.name is not None:
            name = operation.name.value
        else:
            name = "+".join(sorted(set(fields))) or ANONYMOUS
        field = fields[0] if kind == OperationType.SUBSCRIPTION.value and fields else ""
        return Operation(kind, self.names(name), field)


def root_fields(schema: RoposSchema) -> dict[str, frozenset[str]]:
    """The root fields of each operation type, by their GraphQL names."""
    graphql = schema._schema
    roots = {
        OperationType.QUERY.value: graphql.query_type,
        OperationType.MUTATION.value: graphql.mutation_type,
        OperationType.SUBSCRIPTION.value: graphql.subscription_type,
    }
    return {kind: frozenset(root.fields) for kind, root in roots.items() if root is not None}


def error_code(error: GraphQLError) -> str:
    """The code the client is answered with (resolvers.errors.client_error's rule)."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code
    if original is None or isinstance(original, GraphQLError):
        return BAD_REQUEST
    return "INTERNAL"


# --- what the database holds, cached ------------------------------------------------------------


class DatabaseGauges:
    """The database's figures as last read: read again when older than `cache_seconds`, by one
    scrape while the others wait for it, within `timeout_seconds`. A failed read (the database
    down, or too slow) leaves no figures and `up` false until the next read."""

    def __init__(
        self,
        read: Callable[[], Awaitable[DatabaseFigures]] | None = None,
        *,
        cache_seconds: float = DB_CACHE_SECONDS,
        timeout_seconds: float = DB_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read = read
        self.cache_seconds = cache_seconds
        self.timeout_seconds = timeout_seconds
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._read_at: float | None = None
        self.figures: DatabaseFigures | None = None
        self.up = False
        self.read_seconds = 0.0
        self.reads = 0

    def _fresh(self) -> bool:
        return self._read_at is not None and self._monotonic() - self._read_at < self.cache_seconds

    async def refresh(self) -> None:
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return  # another scrape read them while this one waited
            started = time.perf_counter()
            self.reads += 1
            try:
                if self.read is None:
                    raise RuntimeError("the app has not started")
                async with asyncio.timeout(self.timeout_seconds):
                    figures = await self.read()
            except Exception as error:
                log.warning(
                    "metrics: database figures not read", extra={"error": repr(error)[:300]}
                )
                self.figures, self.up = None, False
            else:
                self.figures, self.up = figures, True
            self.read_seconds = time.perf_counter() - started
            self._read_at = self._monotonic()


# --- collectors read at scrape time -------------------------------------------------------------


class ReserveAttempts(Protocol):
    def totals(self) -> Mapping[tuple[str, str], int]: ...


class ReserveAttemptsCollector:
    """`ropos_reserve_attempts_total{source, outcome}` from the process's running totals, read
    at scrape time; every known (source, outcome) is shown, 0 until it happens."""

    NAME = "ropos_reserve_attempts"
    HELP = "Reserve attempts by where they came in (graphql, intake) and what they came to."

    def __init__(self, attempts: Callable[[], ReserveAttempts | None]) -> None:
        self._attempts = attempts

    def describe(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self.NAME, self.HELP, labels=["source", "outcome"])

    def collect(self) -> Iterable[Metric]:
        counts = {(s, o): 0 for s in RESERVE_SOURCES for o in RESERVE_OUTCOMES}
        attempts = self._attempts()
        if attempts is not None:
            for (source, outcome), n in attempts.totals().items():
                key = (
                    _known(getattr(source, "value", source), RESERVE_SOURCES),
                    _known(getattr(outcome, "value", outcome), RESERVE_OUTCOMES),
                )
                counts[key] = counts.get(key, 0) + n
        family = CounterMetricFamily(self.NAME, self.HELP, labels=["source", "outcome"])
        for (source, outcome), n in sorted(counts.items()):
            family.add_metric([source, outcome], n)
        yield family


def _known(value: object, allowed: tuple[str, ...]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


# name -> (help, labels) of every gauge DatabaseCollector shows.
DATABASE_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ropos_metrics_db_up": (
        "1 when the database answered the last read of its figures, else 0.",
        (),
    ),
    "ropos_metrics_db_read_seconds": ("How long the last read of the database figures took.", ()),
    "ropos_reservations_active": (
        "Active reservations by status (HELD, READY_FOR_PICKUP).",
        ("status",),
    ),
    "ropos_reservation_expiry_lag_seconds": (
        "How far past its expiry the oldest still-active reservation is (0: none is overdue).",
        (),
    ),
    "ropos_outbox_backlog": ("Outbox events not yet published.", ()),
    "ropos_outbox_relay_lag_seconds": ("Age of the oldest unpublished outbox event (0: none).", ()),
    "ropos_webhook_deliveries": ("POS webhook deliveries pending and dead-lettered.", ("status",)),
    "ropos_wms_movements": ("Movements for the WMS pending and dead-lettered.", ("status",)),
    "ropos_intake_received": (
        "Deliveries an intake account's edge stored, held now (finished ones leave with retention).",
        ("channel", "account"),
    ),
    "ropos_intake_messages": (
        "Intake messages held now by status (finished ones leave with retention).",
        ("channel", "account", "status"),
    ),
    "ropos_intake_backlog": (
        "Intake messages waiting (RECEIVED and RETRYING).",
        ("channel", "account"),
    ),
    "ropos_intake_oldest_waiting_seconds": (
        "Age of an account's oldest waiting intake message (0: none).",
        ("channel", "account"),
    ),
    "ropos_db_pool_size": ("Connections the database pool keeps.", ()),
    "ropos_db_pool_checked_out": ("Pool connections in use now.", ()),
    "ropos_db_pool_overflow": ("Connections open beyond the pool's size.", ()),
    "ropos_db_pool_idle": ("Open pool connections not in use.", ()),
}


class DatabaseCollector:
    """The database's figures (as DatabaseGauges last read them) with ages measured `now` (the
    app's clock), and the pool's figures as they are."""

    def __init__(
        self,
        gauges: DatabaseGauges,
        *,
        now: Callable[[], datetime | None],
        pool: Callable[[], PoolStatus | None],
    ) -> None:
        self.gauges = gauges
        self._now = now
        self._pool = pool

    def describe(self) -> Iterable[Metric]:
        for name, (documentation, labels) in DATABASE_GAUGES.items():
            yield _gauge(name, documentation, labels)

    def collect(self) -> Iterable[Metric]:
        families = {
            name: _gauge(name, doc, labels) for name, (doc, labels) in DATABASE_GAUGES.items()
        }
        families["ropos_metrics_db_up"].add_metric([], 1 if self.gauges.up else 0)
        families["ropos_metrics_db_read_seconds"].add_metric([], self.gauges.read_seconds)
        figures, now = self.gauges.figures, self._now()
        if figures is not None and now is not None:
            _add_figures(families, figures, now)
        pool = self._pool()
        if pool is not None:
            families["ropos_db_pool_size"].add_metric([], pool.size)
            families["ropos_db_pool_checked_out"].add_metric([], pool.checked_out)
            families["ropos_db_pool_overflow"].add_metric([], pool.overflow)
            families["ropos_db_pool_idle"].add_metric([], pool.idle)
        yield from families.values()


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def _add_figures(
    families: dict[str, GaugeMetricFamily], figures: DatabaseFigures, now: datetime
) -> None:
    for status, n in sorted(figures.reservations.items()):
        families["ropos_reservations_active"].add_metric([status], n)
    families["ropos_reservation_expiry_lag_seconds"].add_metric(
        [], _age(now, figures.earliest_active_expiry)
    )
    families["ropos_outbox_backlog"].add_metric([], figures.unpublished)
    families["ropos_outbox_relay_lag_seconds"].add_metric([], _age(now, figures.oldest_unpublished))
    for status, n in sorted(figures.webhooks.items()):
        families["ropos_webhook_deliveries"].add_metric([status], n)
    for status, n in sorted(figures.wms_movements.items()):
        families["ropos_wms_movements"].add_metric([status], n)
    accounts = sorted(figures.intake.items())
    if len(accounts) > MAX_ACCOUNTS:
        log.warning("metrics: more channel accounts than shown", extra={"accounts": len(accounts)})
    for (channel, account), intake in accounts[:MAX_ACCOUNTS]:
        labels = [channel, account]
        families["ropos_intake_received"].add_metric(labels, intake.received)
        for status, n in sorted(intake.statuses.items()):
            families["ropos_intake_messages"].add_metric([*labels, status], n)
        families["ropos_intake_backlog"].add_metric(labels, intake.backlog)
        families["ropos_intake_oldest_waiting_seconds"].add_metric(
            labels, _age(now, intake.oldest_waiting)
        )


# --- the app's metrics ----------------------------------------------------------------------------


class Metrics:
    """One app's registry and the in-process figures it counts as it serves."""

    def __init__(self, *, max_tokens: int = 2_000, max_query_chars: int = 20_000) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._http_total = Counter(
            "ropos_http_requests",
            "HTTP requests by method, route template and status class.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._http_seconds = Histogram(
            "ropos_http_request_duration_seconds",
            "HTTP request latency by method, route template and status class.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._operations_total = Counter(
            "ropos_graphql_operations",
            "GraphQL operations over HTTP by type, operation and outcome (ok, or the error code).",
            ["type", "operation", "outcome"],
            registry=self.registry,
        )
        self._operation_seconds = Histogram(
            "ropos_graphql_operation_duration_seconds",
            "GraphQL operation latency over HTTP by type, operation and result (ok or error).",
            ["type", "operation", "result"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._subscriptions = Gauge(
            "ropos_graphql_subscriptions_open",
            "Subscriptions open now, by subscription field.",
            ["field"],
            registry=self.registry,
        )
        self.operations = OperationLabels(max_tokens=max_tokens, max_chars=max_query_chars)
        self.codes = BoundedNames(MAX_ERROR_CODES, pattern=_ERROR_CODE)
        self.database = DatabaseGauges()
        self._runtime: Runtime | None = None
        self.registry.register(DatabaseCollector(self.database, now=self._now, pool=self._pool))
        self.registry.register(ReserveAttemptsCollector(self._reserve_attempts))
        # Label children, made once per label values (the values are bounded, so are these).
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._graphql: dict[tuple[Operation, str], tuple[Any, Any]] = {}

    def instrument(self, schema: RoposSchema) -> None:
        """Count the operations `schema` (a MeteredSchema) runs, labelled by its root fields."""
        if not isinstance(schema, MeteredSchema):
            raise TypeError("only a MeteredSchema counts what it runs")
        self.operations.root_fields = root_fields(schema)
        for field in sorted(self.operations.root_fields.get(OperationType.SUBSCRIPTION.value, ())):
            self._subscriptions.labels(field)  # shown at 0 before the first one opens
        schema.metrics = self

    def bind(self, runtime: Runtime | None) -> None:
        """Read the database and the counts of what the lifespan opened (None: it closed)."""
        self._runtime = runtime
        self.database.read = (lambda: read_figures(runtime.db)) if runtime is not None else None

    def _now(self) -> datetime | None:
        return self._runtime.deps.clock.now() if self._runtime is not None else None

    def _pool(self) -> PoolStatus | None:
        return pool_status(self._runtime.db) if self._runtime is not None else None

    def _reserve_attempts(self) -> ReserveAttempts | None:
        return self._runtime.deps.reserve_attempts if self._runtime is not None else None

    def observe_http(self, method: str, route: str | None, status: int, seconds: float) -> None:
        key = (method if method in HTTP_METHODS else OTHER, route or UNMATCHED, status // 100)
        children = self._http.get(key)
        if children is None:
            labels = (key[0], key[1], f"{key[2]}xx")
            children = self._http_total.labels(*labels), self._http_seconds.labels(*labels)
            self._http[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_operation(
        self, query: str | None, operation_name: str | None, code: str | None, seconds: float
    ) -> None:
        """One operation done in `seconds`: ok (`code` None) or refused with `code`."""
        operation = self.operations.of(query, operation_name)
        outcome = OK if code is None else self.codes(code)
        children = self._graphql.get((operation, outcome))
        if children is None:
            result = OK if outcome == OK else ERROR
            children = (
                self._operations_total.labels(operation.type, operation.name, outcome),
                self._operation_seconds.labels(operation.type, operation.name, result),
            )
            self._graphql[(operation, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def subscription(
        self, query: str | None, operation_name: str | None, source: StreamResult
    ) -> StreamResult:
        """`source`, counted among the open subscriptions while it runs when it is one."""
        operation = self.operations.of(query, operation_name)
        if operation.type != OperationType.SUBSCRIPTION.value or not operation.field:
            return source
        return _counted(self._subscriptions.labels(operation.field), source)

    async def exposition(self) -> bytes:
        """Every figure in the text format, the database's read now if they are stale."""
        await self.database.refresh()
        return generate_latest(self.registry)


async def _counted(gauge: Any, source: StreamResult) -> StreamResult:
    gauge.inc()
    try:
        async with aclosing(source):
            async for result in source:
                yield result
    finally:
        gauge.dec()


class MeteredSchema(RoposSchema):
    """The schema, counting the operations it runs (over HTTP) and the subscriptions it has
    open (over WebSocket) into `metrics`, when set."""

    metrics: Metrics | None = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        metrics = self.metrics
        started = time.perf_counter()
        try:
            result = await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        except Exception:
            # No operation to run (no query, an operation type this method may not run, an
            # operation name the document lacks): the view answers 400.
            if metrics is not None:
                seconds = time.perf_counter() - started
                metrics.observe_operation(query, operation_name, BAD_REQUEST, seconds)
            raise
        if metrics is not None:
            seconds = time.perf_counter() - started
            code = error_code(result.errors[0]) if result.errors else None
            metrics.observe_operation(query, operation_name, code, seconds)
        return result

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        source = await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )
        if self.metrics is None:
            return source
        return self.metrics.subscription(query, operation_name, source)


# --- HTTP -----------------------------------------------------------------------------------------


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template (Starlette's router leaves
    the route it matched in the scope) and status class. Pure ASGI: BaseHTTPMiddleware would
    cost every request a task and a stream."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception becomes a 500 further out

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None)
            self.metrics.observe_http(scope["method"], route, status, time.perf_counter() - started)


def metrics_endpoint(
    settings: Settings, metrics: Metrics
) -> Callable[[Request], Awaitable[Response]]:
    """GET /metrics. Open unless ROPOS_METRICS_TOKEN or ROPOS_METRICS_REQUIRE_OPS is set; then
    it takes `Authorization: Bearer <the metrics token>` or an ops token."""

    async def endpoint(request: Request) -> Response:
        if not _may_read(settings, request):
            return JSONResponse(
                {"error": "Send 'Authorization: Bearer <the metrics token or an ops token>'."},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(
            await metrics.exposition(),
            media_type=CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

    return endpoint


def _may_read(settings: Settings, request: Request) -> bool:
    secret = settings.metrics_token
    if secret is None and not settings.metrics_require_ops:
        return True
    header = request.headers.get("authorization")
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if (
        secret is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), secret.get_secret_value().encode())
    ):
        return True
    actor, _ = actor_from_header(settings, header, runtime_of(request).deps.clock.now())
    return actor is not None and actor.role is Role.OPS
