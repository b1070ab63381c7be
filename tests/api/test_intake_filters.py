"""An account filter of ops' intake queries and mutations is an account's code: anything else is
bad input with its field named. Found by the GraphQL fuzzing (tests/fuzz), which met `INTERNAL`
on PostgreSQL for an account holding a NUL character (PostgreSQL cannot even compare such text)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Gateway, gql
from tests.helpers import snapshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPLAY = "mutation($account: String) { replayIntakeMessages(status: DEAD, account: $account) }"
MESSAGES = "query($account: String) { intakeMessages(account: $account) { id } }"
HEALTH = (
    "query($account: String!) { intakeHealth(channel: GENERIC, account: $account) { received } }"
)
ORDER = """query($account: String!, $externalId: String!) {
  channelOrder(channel: GENERIC, account: $account, externalId: $externalId) { externalId }
}"""


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        (REPLAY, {"account": "web\x00shop"}, "account"),
        (MESSAGES, {"account": "\x00"}, "account"),
        (HEALTH, {"account": "web-shop\x00"}, "account"),
        (ORDER, {"account": "web\x00shop", "externalId": "1001"}, "account"),
        (ORDER, {"account": "web-shop", "externalId": "10\x0001"}, "externalId"),
        (MESSAGES, {"account": "no such account!"}, "account"),
    ],
    ids=["replay", "messages", "health", "order-account", "order-external-id", "not-a-code"],
)
async def test_a_filter_that_is_no_account_code_is_bad_input(
    api: Gateway, http: httpx.AsyncClient, query: str, variables: dict[str, Any], field: str
) -> None:
    before = await snapshot(api.db)

    result = await gql(http, api, query, variables, api.token("ops"))

    assert result.status == 200
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    assert result.errors[0]["extensions"]["field"] == field
    assert await snapshot(api.db) == before


async def test_a_filter_by_an_account_code_is_answered(
    api: Gateway, http: httpx.AsyncClient
) -> None:
    ops = api.token("ops")

    assert (await gql(http, api, MESSAGES, {"account": "web-shop"}, ops)).ok() == {
        "intakeMessages": []
    }
    assert (await gql(http, api, REPLAY, {"account": "web-shop"}, ops)).ok() == {
        "replayIntakeMessages": 0
    }
