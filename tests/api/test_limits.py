"""The query limits over real HTTP (depth, aliases, tokens), and the pages around the API: the
GraphiQL IDE, liveness and readiness."""

from __future__ import annotations

import httpx
import pytest
from graphql import GraphQLSyntaxError, parse

from tests.api.conftest import Gateway, gql
from tests.api.given import assert_readable, database_rows, given_stores

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAX_DEPTH = 10  # Settings.max_query_depth; depth counts from 0 at the top-level field
MAX_ALIASES = 15
MAX_TOKENS = 2_000
BAD = "BAD_USER_INPUT"


def nested(depth: int) -> str:
    """A query whose deepest field sits at `depth`: stores, then `inner` fields below it."""
    return "query Deep { stores { " + "inner { " * (depth - 1) + "id" + " }" * depth + " }"


def aliased(count: int) -> str:
    return (
        "{ "
        + " ".join(f"p{n}: reservationPolicy {{ defaultHoldSeconds }}" for n in range(count))
        + " }"
    )


def stock_sync(token_count: int) -> str:
    """A syncStock of one unit of many SKUs at S001, written inline, of exactly `token_count`
    tokens. (Repeating one field instead would trip graphql-core's own budget for comparing
    overlapping fields before the token count is what is tested.)"""
    # `mutation { syncStock(levels: [` ... `]) { applied } }` is 13 tokens, a level
    # `{storeId: "S001", sku: "SKU-n", onHand: 1}` is 11, and `safetyStock: 0` in one adds 3.
    rest = token_count - 13
    padded = next(p for p in range(11) if (rest - 3 * p) % 11 == 0)
    written = [
        f'{{storeId: "S001", sku: "SKU-{n}", onHand: 1{", safetyStock: 0" if n < padded else ""}}}'
        for n in range((rest - 3 * padded) // 11)
    ]
    return "mutation { syncStock(levels: [" + " ".join(written) + "]) { applied } }"


NORMAL = """
query { reservationPolicy { defaultHoldSeconds allowedHoldSeconds } stores { id name } }
"""
AT_DEPTH_LIMIT = nested(MAX_DEPTH)
TOO_DEEP = nested(MAX_DEPTH + 1)
AT_ALIAS_LIMIT = aliased(MAX_ALIASES)
TOO_MANY_ALIASES = aliased(MAX_ALIASES + 1)
AT_TOKEN_LIMIT = stock_sync(MAX_TOKENS)
TOO_MANY_TOKENS = stock_sync(MAX_TOKENS + 1)
STOCK_LEVEL = """
query($sku: String!) { stockLevel(storeId: "S001", sku: $sku) { onHand } }
"""
DOES_NOT_PARSE = "{ stores( { id } }"
# Introspection is left out of the depth count; graphql-core bounds it on its own.
DEEP_INTROSPECTION = (
    "{ __schema { types { fields { type { ofType { fields { type { ofType { fields {"
    " type { ofType { fields { name } } } } } } } } } } } } }"
)

UNKNOWN_FIELD = "Cannot query field 'inner' on type 'Store'."
TOO_DEEP_MESSAGE = f"'Deep' exceeds maximum operation depth of {MAX_DEPTH}"


async def test_a_normal_query_passes(http: httpx.AsyncClient, api: Gateway) -> None:
    # Given two stores
    await given_stores(http, api)

    # When a shopper asks for the policy and the stores
    result = await gql(http, api, NORMAL)

    # Then both come back
    assert result.status == 200
    assert result.ok() == {
        "reservationPolicy": {"defaultHoldSeconds": 7200, "allowedHoldSeconds": [7200, 86400]},
        "stores": [
            {"id": "S001", "name": "Oxford Circus"},
            {"id": "S002", "name": "King's Cross"},
        ],
    }


async def test_the_limits_under_test_are_the_configured_ones(api: Gateway) -> None:
    assert api.settings.max_query_depth == MAX_DEPTH
    assert api.settings.max_aliases == MAX_ALIASES
    assert api.settings.max_tokens == MAX_TOKENS


async def test_a_query_deeper_than_the_limit_is_refused(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a query one level deeper than the limit (no type nests that deep, so its fields are
    # also unknown: the depth refusal is what differs from the query at the limit)
    # When it is sent
    result = await gql(http, api, TOO_DEEP)

    # Then it is refused as bad input, saying why, and nothing ran
    assert result.status == 200
    assert result.data is None
    assert result.codes == [BAD, BAD]
    assert {e["message"] for e in result.errors} == {TOO_DEEP_MESSAGE, UNKNOWN_FIELD}


async def test_a_query_at_the_depth_limit_is_not_refused_for_its_depth(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a query exactly as deep as the limit
    # When it is sent
    result = await gql(http, api, AT_DEPTH_LIMIT)

    # Then only its unknown field is reported, not its depth
    assert result.codes == [BAD]
    assert [e["message"] for e in result.errors] == [UNKNOWN_FIELD]


async def test_a_query_with_more_aliases_than_the_limit_is_refused(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a query with 16 aliases
    # When it is sent
    result = await gql(http, api, TOO_MANY_ALIASES)

    # Then it is refused as bad input, counting them, and nothing ran
    assert result.status == 200
    assert result.data is None
    assert result.errors == [
        {
            "message": f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}",
            "extensions": {"code": BAD},
        }
    ]


async def test_a_query_with_as_many_aliases_as_the_limit_passes(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a query with 15 aliases
    # When it is sent
    result = await gql(http, api, AT_ALIAS_LIMIT)

    # Then every alias is answered
    assert result.ok() == {f"p{n}": {"defaultHoldSeconds": 7200} for n in range(MAX_ALIASES)}


async def test_the_token_counts_are_what_they_say() -> None:
    parse(AT_TOKEN_LIMIT, max_tokens=MAX_TOKENS)
    with pytest.raises(GraphQLSyntaxError):
        parse(AT_TOKEN_LIMIT, max_tokens=MAX_TOKENS - 1)
    parse(TOO_MANY_TOKENS, max_tokens=MAX_TOKENS + 1)
    with pytest.raises(GraphQLSyntaxError):
        parse(TOO_MANY_TOKENS, max_tokens=MAX_TOKENS)


async def test_a_query_over_the_token_limit_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given S001, and a stock sync written inline in 2001 tokens
    await given_stores(http, api)
    rows_before = await database_rows(api.db)

    # When ops send it
    result = await gql(http, api, TOO_MANY_TOKENS, token=api.token("ops"))

    # Then it is refused as bad input, saying why, and no level was written
    assert result.status == 200
    assert result.data is None
    assert [e["message"] for e in result.errors] == [
        f"Syntax Error: Document contains more than {MAX_TOKENS} tokens. Parsing aborted."
    ]
    assert await database_rows(api.db) == rows_before
    assert result.codes == [BAD]


async def test_a_query_of_exactly_the_token_limit_passes(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given S001, and a stock sync written inline in exactly 2000 tokens
    await given_stores(http, api)

    # When ops send it
    result = await gql(http, api, AT_TOKEN_LIMIT, token=api.token("ops"))

    # Then every level is written
    assert result.ok() == {"syncStock": {"applied": 179}}
    level = await gql(http, api, STOCK_LEVEL, {"sku": "SKU-178"}, api.token("ops"))
    assert level.ok() == {"stockLevel": {"onHand": 1}}


async def test_a_query_that_does_not_parse_is_bad_user_input(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given a query with a syntax error
    # When it is sent
    result = await gql(http, api, DOES_NOT_PARSE)

    # Then it is refused as bad input, pointing at the mistake
    assert result.status == 200
    assert result.data is None
    (error,) = result.errors
    assert error["message"] == "Syntax Error: Expected Name, found '{'."
    assert error["locations"] == [{"line": 1, "column": 11}]
    assert_readable(error["message"])
    assert result.codes == [BAD]


async def test_an_introspection_query_nested_too_deep_is_refused(
    http: httpx.AsyncClient, api: Gateway
) -> None:
    # Given an introspection query that nests fields/type/ofType over and over
    # When it is sent
    result = await gql(http, api, DEEP_INTROSPECTION)

    # Then it is refused as bad input rather than answered with a huge document
    assert result.data is None
    assert result.codes == [BAD]
    assert result.errors[0]["message"] == "Maximum introspection depth exceeded"


async def test_graphiql_is_served_to_a_browser(http: httpx.AsyncClient, api: Gateway) -> None:
    # Given the test gateway, which enables the IDE
    # When a browser opens /graphql
    response = await http.get(f"{api.url}/graphql", headers={"accept": "text/html"})

    # Then it gets the GraphiQL page
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Strawberry GraphiQL</title>" in response.text


async def test_liveness_says_ok(http: httpx.AsyncClient, api: Gateway) -> None:
    response = await http.get(f"{api.url}/healthz")

    assert response.status_code == 200
    assert response.text == "ok"


async def test_readiness_reports_the_database_up(http: httpx.AsyncClient, api: Gateway) -> None:
    response = await http.get(f"{api.url}/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up", "broker": "up"}
