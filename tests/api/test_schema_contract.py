"""The exported SDL is the contract: it must match the code, and keep the names clients use."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLInputObjectType, GraphQLObjectType
from graphql import build_schema as parse_sdl

from resolvers.root import build_schema

SDL = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_exported_schema_is_current() -> None:
    assert SDL.read_text() == build_schema().as_str() + "\n", (
        "schema/schema.graphql is out of date: run `ropos export-schema` and commit it"
    )


def test_the_contract_names_are_there() -> None:
    schema = parse_sdl(SDL.read_text())
    query, mutation = schema.query_type, schema.mutation_type
    assert query is not None
    assert mutation is not None
    assert {
        "stores",
        "availability",
        "stockLevel",
        "reservation",
        "myReservations",
        "pickupQueue",
        "reservationPolicy",
    } <= set(query.fields)
    assert {
        "reserve",
        "cancelReservation",
        "checkIn",
        "upsertStores",
        "syncStock",
        "updateReservationPolicy",
    } <= set(mutation.fields)
    reservation = schema.type_map["Reservation"]
    assert isinstance(reservation, GraphQLObjectType)
    assert {
        "id",
        "code",
        "groupId",
        "customerId",
        "storeId",
        "status",
        "lines",
        "createdAt",
        "expiresAt",
        "secondsRemaining",
        "readyAt",
        "collectedAt",
        "arrivedAt",
        "arrivalNote",
        "waitingSeconds",
    } <= set(reservation.fields)
    reserve_input = schema.type_map["ReserveInput"]
    assert isinstance(reserve_input, GraphQLInputObjectType)
    assert set(reserve_input.fields) == {
        "customerId",
        "lines",
        "storeId",
        "near",
        "radiusKm",
        "holdSeconds",
        "idempotencyKey",
        "channel",
    }


def test_every_field_and_argument_is_described() -> None:
    schema = parse_sdl(SDL.read_text())
    missing = []
    for name, kind in schema.type_map.items():
        if name.startswith("__") or not hasattr(kind, "fields"):
            continue
        for field_name, field in kind.fields.items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in getattr(field, "args", {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
    assert missing == []


async def test_a_repeated_query_is_validated_once() -> None:
    from strawberry.extensions.validation_cache import _get_validate_cache

    schema = build_schema()
    # strawberry annotates the shared lru_cache wrapper as a plain Callable
    cache_info = _get_validate_cache(256).cache_info  # type: ignore[attr-defined]
    query = "query Repeated($first: Int) { stores(first: $first) { id } }"
    await schema.execute(query, {"first": 1})
    before = cache_info()

    for _ in range(3):
        await schema.execute(query, {"first": 2})

    after = cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)


def test_each_subscription_event_gets_its_own_sub_field_cache() -> None:
    # graphql-core shares one cache between an executor and its per-event copies; the schema's
    # executor gives every event a fresh one, so a long subscription does not grow without end.
    from graphql import parse

    from schema.plain import RoposExecutionContext

    schema = build_schema()
    document = parse('subscription { stockUpdates(storeId: "S1") { sku available } }')
    executor = RoposExecutionContext.build(schema._schema, document)
    assert isinstance(executor, RoposExecutionContext), executor  # not a list of errors

    first = executor.build_per_event_executor({"n": 1})
    second = executor.build_per_event_executor({"n": 2})

    caches = [
        executor._relevant_sub_fields,
        first._relevant_sub_fields,
        second._relevant_sub_fields,
    ]
    assert len({id(cache) for cache in caches}) == 3
