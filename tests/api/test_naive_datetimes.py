"""A time without a time zone, where ops give a window (the intake's health, a sweep of a
channel account over a range), is bad input with its field named, never an error on our side:
found by the GraphQL fuzzing (tests/fuzz), which met `INTERNAL` for `since: "2026-03-01T00:00"`."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Gateway, gql
from tests.helpers import snapshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEALTH = """query($since: DateTime, $until: DateTime) {
  intakeHealth(channel: GENERIC, account: "web-shop", since: $since, until: $until) { received }
}"""
HEALTH_BY_ACCOUNT = """query($since: DateTime, $until: DateTime) {
  intakeHealthByAccount(since: $since, until: $until) { account }
}"""
SWEEP = """mutation($since: DateTime!, $until: DateTime) {
  sweepChannelAccount(channel: WOOCOMMERCE, account: "shop", since: $since, until: $until) {
    fed
  }
}"""
NAIVE = "2026-03-01T09:00:00"
AWARE = "2026-03-02T08:00:00+00:00"


@pytest.mark.parametrize("query", [HEALTH, HEALTH_BY_ACCOUNT, SWEEP], ids=["one", "every", "sweep"])
@pytest.mark.parametrize(
    ("since", "until", "field"),
    [(NAIVE, None, "since"), (NAIVE, AWARE, "since"), ("2026-03-01T09:00:00Z", NAIVE, "until")],
    ids=["naive-since", "naive-since-aware-until", "naive-until"],
)
async def test_a_time_without_a_zone_is_bad_input(
    api: Gateway, http: httpx.AsyncClient, query: str, since: str, until: str | None, field: str
) -> None:
    before = await snapshot(api.db)

    result = await gql(http, api, query, {"since": since, "until": until}, api.token("ops"))

    assert result.status == 200
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    (error,) = result.errors
    assert error["extensions"]["field"] == field
    assert "time zone" in error["message"]
    assert await snapshot(api.db) == before


async def test_a_window_with_zones_is_answered(api: Gateway, http: httpx.AsyncClient) -> None:
    result = await gql(
        http, api, HEALTH, {"since": "2026-03-01T09:00:00Z", "until": AWARE}, api.token("ops")
    )

    assert result.ok() == {"intakeHealth": {"received": 0}}
