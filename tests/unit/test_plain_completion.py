"""Plain sub-selections completed by plan (schema/plain.py) give exactly what graphql-core gives:
the same data in the same order, the same errors at the same paths, the same null propagation.
Each query runs on two schemas over the same types, one with PlainExecutionContext and one with
strawberry's own execution context, and the answers are compared."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema import plain
from schema.plain import PlainExecutionContext

pytestmark = pytest.mark.unit


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


@strawberry.type
class Line:
    sku: str
    available: int
    price: float | None = None
    colour: Colour = Colour.RED


@strawberry.type
class Shop:
    id: strawberry.ID
    name: str
    opened_at: datetime
    tags: list[str]
    grid: list[list[int]]
    note: str | None = None


@strawberry.type
class Offer:
    shop: Shop
    distance_km: float
    can_serve_all: bool
    lines: list[Line]
    maybe_lines: list[Line | None] | None = None

    @strawberry.field
    def shouted(self, suffix: str = "!") -> str:
        return self.shop.name.upper() + suffix


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Person(Named):
    age: int


def _offers(broken: str | None = None) -> list[Offer]:
    offers = []
    for i in range(3):
        lines = [Line(sku=f"SKU-{i}-{j}", available=j, price=1.5 * j or None) for j in range(3)]
        shop = Shop(
            id=strawberry.ID(f"S{i:03d}"),
            name=f"Shop {i}",
            opened_at=datetime(2026, 1, 1 + i, tzinfo=UTC),
            tags=["a", "b"][: i + 1],
            grid=[[i, i + 1], []],
            note=None if i % 2 else "open late",
        )
        offers.append(
            Offer(
                shop=shop,
                distance_km=0.5 + i,
                can_serve_all=i != 1,
                lines=lines,
                maybe_lines=[lines[0], None] if i == 2 else None,
            )
        )
    if broken == "null-in-non-null":
        offers[1].shop.name = None  # type: ignore[assignment]
    elif broken == "int-out-of-range":
        offers[2].lines[1].available = 2**40
    elif broken == "not-a-list":
        offers[0].lines = "nope"  # type: ignore[assignment]
    elif broken == "wrong-leaf-type":
        offers[0].shop.tags = [1, 2]  # type: ignore[list-item]
    elif broken == "null-line":
        offers[1].lines[0] = None  # type: ignore[call-overload]
    return offers


@strawberry.type
class Query:
    @strawberry.field
    def offers(self, broken: str | None = None) -> list[Offer]:
        return _offers(broken)

    @strawberry.field
    def maybe_offer(self, broken: str | None = None) -> Offer | None:
        return _offers(broken)[1]

    @strawberry.field
    async def later(self) -> list[Offer]:
        return _offers()

    @strawberry.field
    def people(self) -> list[Named]:
        return [Person(name="Ann", age=3)]


PLANNED = strawberry.Schema(
    query=Query, types=[Person], execution_context_class=PlainExecutionContext
)
GENERAL = strawberry.Schema(
    query=Query, types=[Person], execution_context_class=StrawberryGraphQLCoreExecutionContext
)

FULL = "shop { id name openedAt tags grid note } distanceKm canServeAll lines { sku available price colour }"
QUERIES = [
    ("every field", f"{{ offers {{ {FULL} }} }}", None),
    (
        "aliases and typename",
        "{ offers { s: shop { n: name __typename } __typename d: distanceKm x: distanceKm } }",
        None,
    ),
    (
        "fields in another order, twice",
        "{ offers { lines { available sku } shop { name } lines { price } } }",
        None,
    ),
    ("named fragment", "fragment F on Shop { id name } { offers { shop { ...F tags } } }", None),
    (
        "inline fragment",
        "{ offers { ... on Offer { distanceKm shop { name } } canServeAll } }",
        None,
    ),
    (
        "skip and include with variables",
        "query Q($a: Boolean!, $b: Boolean!) { offers { distanceKm @skip(if: $a) shop { name @include(if: $b) id } } }",
        {"a": True, "b": False},
    ),
    (
        "skip and include the other way",
        "query Q($a: Boolean!, $b: Boolean!) { offers { distanceKm @skip(if: $a) shop { name @include(if: $b) id } } }",
        {"a": False, "b": True},
    ),
    (
        "a field with a resolver among plain ones",
        '{ offers { shouted(suffix: "?") shop { name } } }',
        None,
    ),
    ("nullable list with a null item", "{ offers { maybeLines { sku } } }", None),
    ("nullable root object", f"{{ maybeOffer {{ {FULL} }} }}", None),
    ("async root resolver", f"{{ later {{ {FULL} }} }}", None),
    ("interface", "{ people { name ... on Person { age } } }", None),
    ("null in a non-null field", f'{{ offers(broken: "null-in-non-null") {{ {FULL} }} }}', None),
    (
        "null in a non-null field under a nullable root",
        f'{{ maybeOffer(broken: "null-in-non-null") {{ {FULL} }} }}',
        None,
    ),
    ("Int out of range", f'{{ offers(broken: "int-out-of-range") {{ {FULL} }} }}', None),
    (
        "not a list",
        '{ maybeOffer(broken: "not-a-list") { lines { sku } } offers(broken: "not-a-list") { distanceKm } }',
        None,
    ),
    ("an int where a string goes", '{ offers(broken: "wrong-leaf-type") { shop { tags } } }', None),
    ("null item in a non-null list", '{ offers(broken: "null-line") { lines { sku } } }', None),
]


def _answer(schema: strawberry.Schema, query: str, variables: dict[str, Any] | None) -> Any:
    result = schema.execute_sync(query, variable_values=variables)
    errors = [(e.message, e.path) for e in result.errors or []]
    return result.data, errors


async def _answer_async(
    schema: strawberry.Schema, query: str, variables: dict[str, Any] | None
) -> Any:
    result = await schema.execute(query, variable_values=variables)
    errors = [(e.message, e.path) for e in result.errors or []]
    return result.data, errors


@pytest.mark.parametrize(
    ("query", "variables"), [q[1:] for q in QUERIES], ids=[q[0] for q in QUERIES]
)
async def test_a_planned_answer_is_graphql_cores_answer(query: str, variables: Any) -> None:
    expected = await _answer_async(GENERAL, query, variables)
    got = await _answer_async(PLANNED, query, variables)
    assert got == expected
    assert list(_keys(got[0])) == list(_keys(expected[0]))  # the same order, all the way down


def _keys(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def test_the_errors_are_graphql_cores_errors() -> None:
    data, errors = _answer(
        PLANNED, f'{{ maybeOffer(broken: "null-in-non-null") {{ {FULL} }} }}', None
    )
    assert data == {"maybeOffer": None}
    assert errors == [
        ("Cannot return null for non-nullable field Shop.name.", ["maybeOffer", "shop", "name"])
    ]


def test_plain_selections_are_completed_by_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[Any] = []
    real = plain.run

    def counting(plan: plain.Plan, source: Any) -> dict[str, Any]:
        runs.append(source)
        return real(plan, source)

    monkeypatch.setattr(plain, "run", counting)
    result = PLANNED.execute_sync(f"{{ offers {{ {FULL} }} }}")
    assert result.errors is None
    # Each offer by plan, and within it its shop and lines: graphql-core completes none of them.
    assert [type(s) for s in runs] == [Offer, Shop, Line, Line, Line] * 3


def object_type(schema: GraphQLSchema, name: str) -> GraphQLObjectType:
    found = schema.type_map[name]
    assert isinstance(found, GraphQLObjectType)
    return found


def test_a_field_with_a_resolver_or_arguments_is_not_planned() -> None:
    offer = object_type(PLANNED._schema, "Offer")
    assert plain.attribute_of(offer.fields["distanceKm"]) == "distance_km"
    assert plain.attribute_of(offer.fields["shouted"]) is None
    query = object_type(PLANNED._schema, "Query")
    assert plain.attribute_of(query.fields["offers"]) is None


def test_the_availability_answer_is_completed_by_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The product's own hot type: every field of StoreAvailability and below is plain. This
    fails if a change (a resolver on Store, say, or a strawberry upgrade) silently takes the
    slow path."""
    from resolvers.root import build_schema

    graphql_schema = build_schema()._schema
    availability = object_type(graphql_schema, "StoreAvailability")
    for name in ("store", "distanceKm", "canServeAll", "lines"):
        assert plain.attribute_of(availability.fields[name]) is not None, name
    for type_name in ("Store", "AvailabilityLine", "StockLevel"):
        for name, field in object_type(graphql_schema, type_name).fields.items():
            assert plain.attribute_of(field) is not None, f"{type_name}.{name}"


# --- the start-up check and the switch ------------------------------------------------------------


def test_the_pinned_graphql_core_and_strawberry_pass_the_start_up_probe() -> None:
    assert plain.probe() is None
    assert plain.execution_context() is PlainExecutionContext


def test_switched_off_the_schema_runs_on_graphql_cores_own_path() -> None:
    assert plain.execution_context(enabled=False) is plain.RoposExecutionContext


def test_a_hook_that_changed_shape_turns_planning_off_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As if graphql-core had renamed a parameter of the hook the plan overrides
    monkeypatch.setattr(plain, "_HOOK_PARAMETERS", ("parent_type", "renamed"))

    with caplog.at_level("WARNING", logger="schema.plain"):
        chosen = plain.execution_context()

    assert chosen is plain.RoposExecutionContext
    assert "plain completion off" in caplog.text


def test_strawberry_renaming_its_attribute_resolver_turns_planning_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plain, "_BASIC_RESOLVER_NAME", "a_name_strawberry_no_longer_uses")

    assert plain.probe() == "strawberry's attribute fields are no longer recognised"
    assert plain.execution_context() is plain.RoposExecutionContext


def test_a_plan_that_answers_otherwise_turns_planning_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(plan: plain.Plan, source: Any) -> dict[str, Any]:
        return {key: None for key, _, _ in plan}

    monkeypatch.setattr(plain, "run", wrong)

    assert plain.probe() == "the probe query answered otherwise by plan than through graphql-core"


@pytest.mark.parametrize("plain_completion", [True, False])
def test_build_schema_takes_the_switch(
    plain_completion: bool,
) -> None:
    from resolvers.root import build_schema

    schema = build_schema(plain_completion=plain_completion)
    expected = plain.PlainExecutionContext if plain_completion else plain.RoposExecutionContext
    assert schema.execution_context_class is expected
